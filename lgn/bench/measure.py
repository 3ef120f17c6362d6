"""The measurements of ``lgn bench``: the library's training step against the straightforward baseline.

For the paper's classifier (L = 4, K = 5, p = 4, k = 6, batch 128) on
MNIST-shaped (1×28×28) and CIFAR-shaped (3×32×32) batches:

1. builds the baseline (:mod:`lgn.bench.baseline`) and our model with the same
   weights (``load_reference_state_dict``) and checks that outputs and the
   gradient of every parameter agree to ``TOLERANCE``;
2. times training steps (the recipe of ``lgn train``: loss plus regulariser,
   backward, gradient clipping, Adam, re-projection), alternating baseline and
   ours on the same batches, so that load from other processes hits both;
3. measures the peak memory of one training step of each;
4. times inference of ``LGN.export()`` against a plain conv net with the same
   filters (:mod:`lgn.bench.plain`);
5. converts step times to GFLOP/s of the model's convolutions and compares
   them with an fp32 GEMM timed in the same run;
6. with ``profile``, lists the operations our training step spends its time in
   (``torch.profiler``), to name what bounds it.

Both models run under the memory settings ``lgn train`` uses
(:func:`lgn.memory.keep_freed_memory`): the bench measures what training runs.
"""

from __future__ import annotations

import contextlib
import copy
import ctypes
import os
import platform
import statistics
import time
from concurrent.futures import ProcessPoolExecutor
from multiprocessing import get_context

import torch
import torch.nn.functional as F

from lgn.bench.baseline import BaselineLGN
from lgn.bench.plain import PlainConvNet
from lgn.models.reference import load_reference_state_dict, reference_key_map
from lgn.nn.functional import output_size
from lgn.memory import keep_freed_memory

__all__ = ["SHAPES", "run_bench", "profile_step", "format_report", "format_profile"]

SHAPES = {"mnist": (1, 28), "cifar": (3, 32)}  # name: (channels, image size)
BATCH = 128
TOLERANCE = 1e-4  # max abs difference of outputs and gradients, float32
REG_WEIGHT = 1e-4  # μ of the classifier (docs/method.md §2, §5); ours carries it in its config
GRAD_CLIP = 2.0


def build_pair(channels: int, size: int, device: torch.device, seed: int = 0):
    """The baseline and our model with the same weights, both in train mode."""
    torch.manual_seed(seed)
    base = BaselineLGN(in_channels=channels).to(device).train()
    ours = load_reference_state_dict(base.state_dict(), image_size=size).to(device).train()
    return base, ours


def make_batches(channels: int, size: int, device: torch.device, n: int = 4, seed: int = 1):
    g = torch.Generator().manual_seed(seed)
    return [(torch.randn(BATCH, channels, size, size, generator=g).to(device),
             torch.randint(0, 10, (BATCH,), generator=g).to(device)) for _ in range(n)]


def _regularization(model) -> torch.Tensor:
    """μ·Σ invertibility terms: the baseline's is unweighted, ours is weighted by its config."""
    return REG_WEIGHT * model.regularization() if isinstance(model, BaselineLGN) else model.regularization()


def train_step(model, optimizer, x: torch.Tensor, y: torch.Tensor) -> None:
    """One step of the training recipe of ``lgn train`` (docs/method.md §5)."""
    loss = F.cross_entropy(model(x), y) + _regularization(model)
    optimizer.zero_grad(set_to_none=True)
    loss.backward()
    torch.nn.utils.clip_grad_norm_(model.parameters(), GRAD_CLIP)
    optimizer.step()
    model.project_()


@contextlib.contextmanager
def _strict_fp32():
    """TF32 off for cuDNN and cuBLAS within the block, restored after."""
    saved = torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32
    torch.backends.cudnn.allow_tf32 = torch.backends.cuda.matmul.allow_tf32 = False
    try:
        yield
    finally:
        torch.backends.cudnn.allow_tf32, torch.backends.cuda.matmul.allow_tf32 = saved


def check_agreement(base, ours, x: torch.Tensor, y: torch.Tensor) -> dict:
    """Max abs differences of the outputs and of every parameter's gradient (on copies of the models).

    On CUDA the check runs in strict fp32: TF32 convolutions (cuDNN's default)
    round inputs to 10 mantissa bits, which alone moves gradients by ~1e-2.
    """
    base, ours = copy.deepcopy(base), copy.deepcopy(ours)
    with _strict_fp32():
        out_base, out_ours = base(x), ours(x)
        (F.cross_entropy(out_base, y) + _regularization(base)).backward()
        (F.cross_entropy(out_ours, y) + _regularization(ours)).backward()
    theirs, mine = dict(base.named_parameters()), dict(ours.named_parameters())
    grad_diff = 0.0
    for their_key, my_key in reference_key_map(ours.config, aux_inverse=True).items():
        if their_key in theirs:
            diff = (theirs[their_key].grad - mine[my_key].grad).abs().max().item()
            grad_diff = max(grad_diff, diff)
    return {"output": (out_base - out_ours).abs().max().item(), "gradient": grad_diff}


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def alternate(fns: dict, rounds: int, device: torch.device, warmup: int = 2) -> dict[str, list[float]]:
    """Seconds per call of each ``fns[name](i)``, calls interleaved round by round, order flipped each round."""
    names = list(fns)
    for i in range(warmup):
        for name in names:
            fns[name](i)
    times = {name: [] for name in names}
    for i in range(rounds):
        for name in (names if i % 2 == 0 else names[::-1]):
            _sync(device)
            start = time.perf_counter()
            fns[name](i)
            _sync(device)
            times[name].append(time.perf_counter() - start)
    return times


def gemm_gflops(device: torch.device, n: int = 1024, reps: int = 5) -> float:
    """GFLOP/s of an fp32 ``n × n`` matrix product: the median of ``reps`` timings."""
    a, b = torch.randn(n, n, device=device), torch.randn(n, n, device=device)
    times = alternate({"gemm": lambda i: a @ b}, reps, device)["gemm"]
    return 2 * n ** 3 / statistics.median(times) / 1e9


def training_flops(model, size: int) -> float:
    """FLOPs of the convolutions in one training step (the bulk of the work).

    Forward: L analyses and L − 1 syntheses; backward: a weight gradient for each
    and an input gradient for each but the first analysis (its input is the data):
    6L − 4 convolutions of 2·N·F·C·k²·h·w FLOPs.
    """
    c = model.config
    h = output_size(size, c.kernel_size, c.stride, c.padding)
    conv = 2 * BATCH * c.n_filters * c.in_channels * c.kernel_size ** 2 * h * h
    return (6 * c.n_layers - 4) * conv


def _rss_mb(field: str) -> float:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith(field + ":"):
                return int(line.split()[1]) / 1024
    raise OSError(f"no {field} in /proc/self/status")


def peak_step_memory(kind: str, shape: str) -> float:
    """MB of memory one CPU training step of ``kind`` ('baseline' or 'ours') adds at its peak.

    Run in a fresh process: after a warm-up step, freed memory is returned to the
    system (``malloc_trim``) and the high-water mark reset, so the peak resident
    set of the next step, minus the resident set before it, is what the step
    itself holds at once.
    """
    torch.set_num_threads(int(os.environ.get("LGN_BENCH_THREADS", torch.get_num_threads())))
    keep_freed_memory()
    device = torch.device("cpu")
    base, ours = build_pair(*SHAPES[shape], device)
    model = base if kind == "baseline" else ours
    del base, ours
    optimizer = torch.optim.Adam(model.parameters(), lr=0.01)
    (x, y), = make_batches(*SHAPES[shape], device, n=1)
    train_step(model, optimizer, x, y)
    ctypes.CDLL("libc.so.6").malloc_trim(0)
    with open("/proc/self/clear_refs", "w") as f:
        f.write("5")  # reset VmHWM
    before = _rss_mb("VmRSS")
    train_step(model, optimizer, x, y)
    return _rss_mb("VmHWM") - before


def _peak_memory_cuda(model, optimizer, x, y, device) -> float:
    train_step(model, optimizer, x, y)
    torch.cuda.synchronize(device)
    torch.cuda.reset_peak_memory_stats(device)
    before = torch.cuda.memory_allocated(device)
    train_step(model, optimizer, x, y)
    torch.cuda.synchronize(device)
    return (torch.cuda.max_memory_allocated(device) - before) / 2 ** 20


def _peak_memory_cpu(shapes) -> dict:
    """Peak step memory of both models for each shape, each in its own fresh process."""
    if platform.system() != "Linux":
        return {}
    jobs = [(kind, shape) for shape in shapes for kind in ("baseline", "ours")]
    os.environ["LGN_BENCH_THREADS"] = str(torch.get_num_threads())
    with ProcessPoolExecutor(max_workers=1, mp_context=get_context("spawn"), max_tasks_per_child=1) as pool:
        results = [pool.submit(peak_step_memory, kind, shape) for kind, shape in jobs]
        try:
            return {job: r.result() for job, r in zip(jobs, results)}
        except OSError:  # no /proc/self/clear_refs or malloc_trim here: report no memory figures
            return {}


def bench_shape(shape: str, device: torch.device, rounds: int, profile: bool = False) -> dict:
    """Check, then time training and exported inference, for one input shape (and profile our step)."""
    channels, size = SHAPES[shape]
    base, ours = build_pair(channels, size, device)
    batches = make_batches(channels, size, device)
    check = check_agreement(base, ours, *batches[0])
    if max(check.values()) > TOLERANCE:
        raise RuntimeError(f"{shape}: ours and the baseline disagree (max abs diff output "
                           f"{check['output']:.2e}, gradient {check['gradient']:.2e} > {TOLERANCE:g})")

    optimizers = {"baseline": torch.optim.Adam(base.parameters(), lr=0.01),
                  "ours": torch.optim.Adam(ours.parameters(), lr=0.01)}
    models = {"baseline": base, "ours": ours}
    times = alternate({name: (lambda i, name=name: train_step(models[name], optimizers[name],
                                                               *batches[i % len(batches)]))
                       for name in models}, rounds, device)
    step = {name: statistics.median(t) for name, t in times.items()}
    ratios = [b / o for b, o in zip(times["baseline"], times["ours"])]
    result = {
        "images_per_s": {name: BATCH / t for name, t in step.items()},
        "step_ms": {name: 1e3 * t for name, t in step.items()},
        "speedup": step["baseline"] / step["ours"],
        "speedup_range": [min(ratios), max(ratios)],
        "gflops": {name: training_flops(ours, size) / t / 1e9 for name, t in step.items()},
        "check_max_abs_diff": check,
    }
    if device.type == "cuda":
        result["peak_memory_mb"] = {name: _peak_memory_cuda(models[name], optimizers[name], *batches[0], device)
                                    for name in models}
    if profile:
        result["profile"] = profile_step(ours, optimizers["ours"], batches, device)

    exported = ours.export().eval()
    plain = PlainConvNet(exported, size)
    x = batches[0][0]
    with torch.inference_mode():
        with _strict_fp32():
            diff = (exported(x) - plain(x)).abs().max().item()
        if diff > TOLERANCE:
            raise RuntimeError(f"{shape}: exported model and plain conv net disagree by {diff:.2e}")
        times = alternate({"exported": lambda i: exported(x), "plain": lambda i: plain(x)}, rounds, device)
    infer = {name: statistics.median(t) for name, t in times.items()}
    result["inference"] = {"images_per_s": {name: BATCH / t for name, t in infer.items()},
                           "overhead": infer["exported"] / infer["plain"], "max_abs_diff": diff}
    return result


def profile_step(model, optimizer, batches: list, device: torch.device, steps: int = 5,
                 top: int = 12) -> list[dict]:
    """The operations one training step of ``model`` (warmed up) spends the most time in, most first.

    Each row: ``op``, ``ms_per_step`` (self time on the host, as ``torch.profiler``
    counts it), ``share`` of the profiled steps' host time, ``calls_per_step``,
    and on CUDA ``device_ms_per_step`` (kernel time).
    """
    activities = [torch.profiler.ProfilerActivity.CPU]
    if device.type == "cuda":
        activities.append(torch.profiler.ProfilerActivity.CUDA)
    with torch.profiler.profile(activities=activities) as prof:
        for i in range(steps):
            train_step(model, optimizer, *batches[i % len(batches)])
        _sync(device)
    events = prof.key_averages()
    total = sum(e.self_cpu_time_total for e in events) or 1.0
    rows = []
    for e in sorted(events, key=lambda e: e.self_cpu_time_total, reverse=True)[:top]:
        row = {"op": e.key, "ms_per_step": e.self_cpu_time_total / 1e3 / steps,
               "share": e.self_cpu_time_total / total, "calls_per_step": e.count / steps}
        if device.type == "cuda":
            row["device_ms_per_step"] = e.self_device_time_total / 1e3 / steps
        rows.append(row)
    return rows


def run_bench(device: str = "cpu", rounds: int = 10, shapes=tuple(SHAPES), profile: bool = False) -> dict:
    """All measurements as one dict (see the module docstring); JSON-serialisable."""
    dev = torch.device(device)
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValueError("--device cuda requested but CUDA is not available")
    report = {"device": torch.cuda.get_device_name(dev) if dev.type == "cuda" else platform.processor() or "cpu",
              "threads": torch.get_num_threads(), "torch": torch.__version__, "batch": BATCH, "rounds": rounds,
              "keep_freed_memory": keep_freed_memory()}
    gemm = [gemm_gflops(dev)]
    for shape in shapes:
        report[shape] = bench_shape(shape, dev, rounds, profile)
        gemm.append(gemm_gflops(dev))
    if dev.type == "cpu":
        for (kind, shape), mb in _peak_memory_cpu(shapes).items():
            report[shape].setdefault("peak_memory_mb", {})[kind] = mb
    report["gemm_gflops"] = statistics.median(gemm)
    for shape in shapes:
        r = report[shape]
        report[f"train_speedup_{shape}"] = r["speedup"]
        r["gflops_fraction_of_gemm"] = r["gflops"]["ours"] / report["gemm_gflops"]
        if "peak_memory_mb" in r:
            r["peak_memory_ratio"] = r["peak_memory_mb"]["ours"] / r["peak_memory_mb"]["baseline"]
    report["export_overhead"] = max(report[s]["inference"]["overhead"] for s in shapes)
    report["gflops_fraction_of_gemm"] = min(report[s]["gflops_fraction_of_gemm"] for s in shapes)
    memory = [report[s]["peak_memory_ratio"] for s in shapes if "peak_memory_ratio" in report[s]]
    if memory:
        report["peak_memory_ratio"] = max(memory)
    return report


def format_report(r: dict) -> str:
    """The report as a short human-readable table."""
    shapes = [s for s in SHAPES if s in r]
    lines = [f"lgn bench on {r['device']} ({r['threads']} threads, torch {r['torch']}), batch {r['batch']}, "
             f"median of {r['rounds']} alternating rounds", ""]
    lines.append(f"{'':34s}" + "".join(f"{s:>22s}" for s in shapes))

    def row(label, fn):
        lines.append(f"{label:34s}" + "".join(f"{fn(r[s]):>22s}" for s in shapes))

    row("train images/s  baseline", lambda x: f"{x['images_per_s']['baseline']:.0f}")
    row("train images/s  ours", lambda x: f"{x['images_per_s']['ours']:.0f}")
    row("train speedup (per-round range)",
        lambda x: f"{x['speedup']:.2f} ({x['speedup_range'][0]:.2f}-{x['speedup_range'][1]:.2f})")
    row("conv GFLOP/s  baseline / ours", lambda x: f"{x['gflops']['baseline']:.1f} / {x['gflops']['ours']:.1f}")
    row("ours as fraction of GEMM", lambda x: f"{x['gflops_fraction_of_gemm']:.2f}")
    if all("peak_memory_mb" in r[s] for s in shapes):
        row("peak step memory MB  base / ours",
            lambda x: f"{x['peak_memory_mb']['baseline']:.0f} / {x['peak_memory_mb']['ours']:.0f}")
    row("inference images/s  plain / export",
        lambda x: f"{x['inference']['images_per_s']['plain']:.0f} / {x['inference']['images_per_s']['exported']:.0f}")
    row("export overhead (time ratio)", lambda x: f"{x['inference']['overhead']:.2f}")
    row("check max abs diff  out / grad",
        lambda x: f"{x['check_max_abs_diff']['output']:.1e} / {x['check_max_abs_diff']['gradient']:.1e}")
    lines += ["", f"fp32 GEMM: {r['gemm_gflops']:.1f} GFLOP/s; freed memory kept mapped between steps "
                  f"(lgn.memory): {'yes' if r.get('keep_freed_memory') else 'no'}"]
    lines += ["\n" + format_profile(s, r[s]["profile"]) for s in shapes if "profile" in r[s]]
    return "\n".join(lines)


def format_profile(shape: str, rows: list[dict]) -> str:
    """The rows of :func:`profile_step` as a table."""
    lines = [f"where our {shape} training step spends its time (self time on the host, per step)"]
    for row in rows:
        device = f"  kernels {row['device_ms_per_step']:7.2f} ms" if "device_ms_per_step" in row else ""
        lines.append(f"  {row['op'][:48]:48s} {row['ms_per_step']:7.2f} ms {100 * row['share']:5.1f}%"
                     f"  {row['calls_per_step']:5.1f} calls{device}")
    return "\n".join(lines)
