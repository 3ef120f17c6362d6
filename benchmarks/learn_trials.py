"""The generator-only trials behind docs/discovery.md's tables of learned groups.

Each approach learns one generator A from the training data alone (never from T), on a
planted set, and is scored by the alignment of A's orbits with the planted ones. No LGN
is trained here: this isolates whether the generator is found.

Two families:

- the first trials (second moments and nearest-neighbour matching), printed only:

      python -m benchmarks.learn_trials APPROACH DATASETS [SEEDS [STEPS]]
      python -m benchmarks.learn_trials cyclic-restarts-match perm4,rot90 0,1,2

  APPROACH: free-commutator, cyclic-commutator, cyclic-restarts-spread,
  cyclic-restarts-match, free-spectrum; scored with 16 training images as base filters.

- the distribution losses of ``lgn discover --method learn`` (:func:`lgn.discovery.learn_generator`),
  scored with 32 *test* images as base filters, with the two floors of
  :func:`lgn.discovery.alignment_floor` beside each score; every finished
  (approach, dataset, seed) is appended to a JSONL file as one row and skipped when the
  command runs again, so an interrupted run resumes where it stopped:

      python -m benchmarks.learn_trials run APPROACH DATASETS SEEDS [OUT.jsonl]
      python -m benchmarks.learn_trials run mmd rot90,shift-x,flip,perm4,perm6,diag 100,101,102
      python -m benchmarks.learn_trials table [OUT.jsonl]

  APPROACH: see :data:`RUNS` (mmd, mmd-pooled, sinkhorn, mmd-third, mmd-estimate, ...).
  OUT defaults to results/discovery-learn/trials.jsonl.

- loss or search: the training loss at T, at the learned map and at random generators
  (appended to results/discovery-learn/losses.jsonl); and the verdict of ``--method learn``
  for T, for random generators and for rot90 on unmoved digits:

      python -m benchmarks.learn_trials losses APPROACH DATASET SEED
      python -m benchmarks.learn_trials verdicts

DATASETS: planted names, or perm6 (a random permutation of six 6-cycles), perm23 (six
2-cycles and six 3-cycles, order 6), diag (cyclic diagonal shift, order 6), all 6×6 with
8 templates, σ = 0.1, 6,000 training and 2,000 test images; and the ``digits-*`` sets.
For ``run``, perm6's permutation is drawn from the data seed, so each seed is another
group. Seeds 100, 101, 102 are the evaluation seeds (no test and no tuning uses them);
seed 10 was used to choose settings. The plain sets ``digits`` (scikit-learn's 8×8) and
``mnist16`` (mnist5k's digits at 16×16, as the ``digits-*`` sets but unmoved) have no planted
map: their rows have no alignment, only the verdict (order 4 asked). One torch thread;
numbers depend on the seed only.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

import numpy as np
import torch

from lgn.data.planted import DIGIT_NAMES, digit_images, planted_data, smooth_templates
from lgn.discovery import judge
from lgn.discovery.episodic import EpisodicConfig, learn_episodic
from lgn.discovery.learn import LearnConfig, learn_generator
from lgn.discovery.losses import class_moments, matching_loss, symmetry_loss
from lgn.discovery.score import alignment_floor, orbit_alignment
from lgn.groups import operators
from lgn.groups.generators import CyclicGenerator, cyclic_rotation_block

EXTRA = ("perm6", "perm23", "diag")


def extra_group(name: str, seed: int, k: int = 6, m: int = 8, sigma: float = 0.1, n: int = 6000,
                perm_seed: int = 3, n_test: int = 0):
    """Template data under a group outside the planted names: ``(x (N, k²), labels, T, order)``; with
    ``n_test`` > 0 also ``(x_test, labels_test)`` drawn after the training images."""
    if name == "perm6":
        t, p = operators.cyclic_permutation(k * k, 6, seed=perm_seed), 6
    elif name == "perm23":
        rng = np.random.default_rng(5)
        pix, perm = rng.permutation(k * k), np.arange(k * k)
        for s in range(0, 12, 2):
            c = pix[s:s + 2]
            perm[c] = np.roll(c, 1)
        for s in range(12, 30, 3):
            c = pix[s:s + 3]
            perm[c] = np.roll(c, 1)
        t, p = operators.permutation_matrix(perm), 6
    else:
        t, p = operators.shift(k, 1, 1), k
    rng = np.random.default_rng(seed)
    temps = smooth_templates(m, k, rng).reshape(m, -1)
    powers = np.stack([np.linalg.matrix_power(t, j) for j in range(p)])
    orbits = np.einsum("jab,cb->cja", powers, temps)
    c, j = rng.integers(0, m, n), rng.integers(0, p, n)
    x = orbits[c, j] + sigma * rng.standard_normal((n, k * k))
    out = (torch.from_numpy(x).float(), torch.from_numpy(c), t, p)
    if not n_test:
        return out
    c, j = rng.integers(0, m, n_test), rng.integers(0, p, n_test)
    x = orbits[c, j] + sigma * rng.standard_normal((n_test, k * k))
    return out + ((torch.from_numpy(x).float(), torch.from_numpy(c)),)


def data(name: str, seed: int):
    if name in EXTRA:
        return extra_group(name, seed)
    x, y, _, _, t, p = planted_data(name, seed=seed)
    return x.reshape(len(x), -1), y, t, p


def score(a: torch.Tensor, x: torch.Tensor, t: np.ndarray, p: int, bases: int = 16) -> float:
    a = a.detach().double().numpy()
    return float(np.mean([orbit_alignment(a, b, t, p) for b in x[:bases].double().numpy()]))


def _prepare(name, seed):
    x, y, t, p = data(name, seed)
    x = x.double()
    x = (x - x.mean()) / x.std()
    return x, y, t, p, class_moments(x, y)  # (classes, n, n), each of unit norm


def free_commutator(name, seed, steps=2000, lr=0.01):
    """A free, orthogonality penalty, commutator with the class second moments."""
    x, y, t, p, s = _prepare(name, seed)
    n = x.shape[1]
    g = torch.Generator().manual_seed(100 + seed)
    q, _ = torch.linalg.qr(torch.randn(n, n, generator=g, dtype=torch.float64))
    a = q.clone().requires_grad_(True)
    opt = torch.optim.Adam([a], lr=lr)
    eye = torch.eye(n, dtype=torch.float64)
    for _ in range(steps):
        loss = symmetry_loss(a, s) + ((a.T @ a - eye) ** 2).sum() / n
        opt.zero_grad()
        loss.backward()
        opt.step()
    return score(a, x, t, p)


def _cyclic_steps(gen, s, x, y, steps, lr, match=0.0, spread=0.0, g=None):
    opt = torch.optim.Adam(gen.parameters(), lr=lr)
    for _ in range(steps):
        a = gen.matrix()[0, 0]
        loss = symmetry_loss(a, s)
        if spread:
            xs = x[:512]
            ax = xs @ a.T
            cos = (ax * xs).sum(1) / (xs.norm(dim=1) * ax.norm(dim=1))
            loss = loss + spread * torch.relu(cos.abs() - 0.9).mean()
        if match:
            i = torch.randint(0, len(x), (256,), generator=g)
            r = torch.randint(0, len(x), (2048,), generator=g)
            loss = loss + match * matching_loss(a, x[i], y[i], x[r], y[r])
        opt.zero_grad()
        loss.backward()
        opt.step()
    return gen.matrix()[0, 0].detach()


def cyclic_commutator(name, seed, steps=1500, lr=0.02):
    """Exact cyclic A = Q R Qᵀ, one start (skew part 0.5·N(0, 1)), commutator only."""
    x, y, t, p, s = _prepare(name, seed)
    n = x.shape[1]
    gen = CyclicGenerator(1, 1, n, p).double()
    g = torch.Generator().manual_seed(100 + seed)
    with torch.no_grad():
        gen.skew.copy_(0.5 * torch.randn(n, n, generator=g, dtype=torch.float64))
    return score(_cyclic_steps(gen, s, x, y, steps, lr), x, t, p)


def cyclic_restarts_spread(name, seed, restarts=8, warm=300, steps=1500, lr=0.02):
    """Exact cyclic, 8 starts chosen by the lowest commutator, a hinge against orbits that barely move data."""
    x, y, t, p, s = _prepare(name, seed)
    n = x.shape[1]
    torch.manual_seed(seed)
    best = None
    for _ in range(restarts):
        gen = CyclicGenerator(1, 1, n, p, init_scale=3.0).double()
        a = _cyclic_steps(gen, s, x, y, warm, lr, spread=1.0)
        c = float(symmetry_loss(a, s))
        if best is None or c < best[0]:
            best = (c, gen)
    return score(_cyclic_steps(best[1], s, x, y, steps, lr, spread=1.0), x, t, p)


def cyclic_restarts_match(name, seed, restarts=8, warm=300, refine=300, steps=1000, lr=0.02, w=0.1):
    """--method learn's generator stage as first measured: 8 starts, commutator then + matching, the lowest
    matching loss kept, compared on the first 1,024 training images (the shipped recipe uses 512 random ones)."""
    x, y, t, p, s = _prepare(name, seed)
    n = x.shape[1]
    torch.manual_seed(seed)
    g = torch.Generator().manual_seed(seed)
    cands = []
    for _ in range(restarts):
        gen = CyclicGenerator(1, 1, n, p, init_scale=3.0).double()
        _cyclic_steps(gen, s, x, y, warm, lr, g=g)
        a = _cyclic_steps(gen, s, x, y, refine, lr, match=w, g=g)
        i = torch.arange(1024)
        with torch.no_grad():
            cands.append((float(matching_loss(a, x[i], y[i], x, y)), len(cands), gen))
    best = min(cands)[2]
    return score(_cyclic_steps(best, s, x, y, steps, lr, match=w, g=g), x, t, p)


def free_spectrum(name, seed, steps=2000, lr=0.01):
    """A free with penalties: commutator, class means kept, orthogonality, traces of powers as R's, A**p = I."""
    x, y, t, p, s = _prepare(name, seed)
    nc, n = int(y.max()) + 1, x.shape[1]
    mu = torch.stack([x[y == c].mean(0) for c in range(nc)])
    mu = mu / mu.norm(dim=1, keepdim=True)
    r = torch.from_numpy(cyclic_rotation_block(n, p))
    target = [float(torch.trace(torch.linalg.matrix_power(r, q))) for q in range(1, p)]
    g = torch.Generator().manual_seed(seed)
    q, _ = torch.linalg.qr(torch.randn(n, n, generator=g, dtype=torch.float64))
    a = q.clone().requires_grad_(True)
    opt = torch.optim.Adam([a], lr=lr)
    eye = torch.eye(n, dtype=torch.float64)
    for _ in range(steps):
        power, traces = a, 0
        for k in range(1, p):
            traces = traces + ((torch.trace(power) - target[k - 1]) / n) ** 2
            power = power @ a
        loss = (symmetry_loss(a, s) + ((mu @ a.T - mu) ** 2).sum(1).mean() + ((a.T @ a - eye) ** 2).sum() / n
                + traces + ((power - eye) ** 2).sum() / n)
        opt.zero_grad()
        loss.backward()
        opt.step()
    return score(a, x, t, p)


APPROACHES = {"free-commutator": free_commutator, "cyclic-commutator": cyclic_commutator,
              "cyclic-restarts-spread": cyclic_restarts_spread, "cyclic-restarts-match": cyclic_restarts_match,
              "free-spectrum": free_spectrum}


# ---- the distribution losses of ``--method learn``: one JSONL row per (approach, dataset, seed) ----

OUT = Path("results/discovery-learn/trials.jsonl")
BASES = 32  # test images scored as base filters

# approach → (LearnConfig settings, labels): each is ``lgn discover --method learn`` with these settings; labels
# True: the data's, False: none (one pool, or LearnConfig.shells), or "sorted": no labels, but pseudo-classes of
# a feature every pixel permutation leaves unchanged (:func:`sorted_pixel_classes`)
RUNS = {
    "mmd": ({}, True),
    "mmd-pooled": ({}, False),
    "sinkhorn": ({"loss": "sinkhorn"}, True),
    "sinkhorn-64": ({"loss": "sinkhorn", "sample": 64}, True),
    "mmd-third": ({"third_weight": 1.0}, True),
    "mmd-estimate": ({"start": "estimate"}, True),
    "mmd-estimate-pooled": ({"start": "estimate"}, False),
    "episodic": ({}, True),  # lgn discover --method episodic (EpisodicConfig)
    # 16×16 digits at a quarter of the kernel work: 64 images per class and side
    "mmd-64": ({"sample": 64}, True),
    "mmd-64-pooled": ({"sample": 64}, False),
    "mmd-64-estimate": ({"sample": 64, "start": "estimate"}, True),
    "mmd-64-estimate-pooled": ({"sample": 64, "start": "estimate"}, False),
    "mmd-64-coarse": ({"sample": 64, "start": "coarse"}, True),
    "mmd-64-coarse-pooled": ({"sample": 64, "start": "coarse"}, False),
    # refine: the picked start continued 500 steps with the bandwidth falling to 0.5× the median
    "mmd-64-refine": ({"sample": 64, "refine": 500, "refine_scale": 0.5}, True),
    "mmd-64-refine-pooled": ({"sample": 64, "refine": 500, "refine_scale": 0.5}, False),
    "mmd-64-refine-third": ({"sample": 64, "refine": 500, "refine_scale": 0.5, "third_weight": 1.0}, True),
    # the better half of the starts refined, the lowest loss at 0.5× kept
    "mmd-64-refine-keep4": ({"sample": 64, "refine": 500, "refine_scale": 0.5, "refine_keep": 4}, True),
    "mmd-64-refine-keep4-pooled": ({"sample": 64, "refine": 500, "refine_scale": 0.5, "refine_keep": 4}, False),
    # 6×6: four times the starts, the better 4 refined at 0.5×
    "mmd-32-refine-keep4": ({"restarts": 32, "refine": 500, "refine_scale": 0.5, "refine_keep": 4}, True),
    # the random starts plus one at --method episodic's generator, all trained on MMD, the lowest loss kept
    "mmd-episodic": ({"start": "episodic"}, True),
    # the same with the pick passing over starts that barely move the data (LearnConfig.still, the default since)
    "mmd-episodic-moving": ({"start": "episodic"}, True),
    # unlabelled, but compared within pseudo-classes that the hidden map cannot change
    "mmd-64-refine-keep4-sorted": ({"sample": 64, "refine": 500, "refine_scale": 0.5, "refine_keep": 4}, "sorted"),
    "mmd-64-refine-keep4-norm": ({"sample": 64, "refine": 500, "refine_scale": 0.5, "refine_keep": 4, "shells": 10},
                                 False),
    "mmd-64-refine-keep4-norm20": ({"sample": 64, "refine": 500, "refine_scale": 0.5, "refine_keep": 4,
                                    "shells": 20}, False),
    "sinkhorn-64-refine-keep4-norm": ({"loss": "sinkhorn", "sample": 64, "refine": 500, "refine_scale": 0.5,
                                       "refine_keep": 4, "shells": 10}, False),
    "sinkhorn-64-refine-keep4": ({"loss": "sinkhorn", "sample": 64, "refine": 500, "refine_scale": 0.5,
                                  "refine_keep": 4}, True),
    # many cheap starts (24 × 300 steps, 32 images per class and side), the best 2 refined
    "mmd-32x24-refine": ({"sample": 32, "restarts": 24, "steps": 300, "refine": 500, "refine_scale": 0.5,
                          "refine_keep": 2}, True),
}


SORTED_CLASSES = 10


def sorted_pixel_classes(x: torch.Tensor, seed: int) -> torch.Tensor:
    """Pseudo-classes ``(N,)`` of the images ``x`` ``(N, n)`` that no pixel permutation can change: k-means
    (:data:`SORTED_CLASSES` clusters) on each image's sorted pixel values. No label is read. (The norm shells
    that every orthogonal map keeps are ``LearnConfig.shells``.)"""
    from sklearn.cluster import KMeans

    feature = torch.sort(x, dim=1).values.numpy()
    return torch.from_numpy(KMeans(SORTED_CLASSES, n_init=4, random_state=seed).fit_predict(feature)).long()


# measured before the pick passed over starts that barely move the data (LearnConfig.still): these run with
# still = 1.0, the pick they were measured with
BEFORE_STILL = set(RUNS) - {"mmd-episodic-moving", "sinkhorn-64-refine-keep4-norm"}
PLAIN = ("digits", "mnist16")  # no map planted: scikit-learn's 8×8 digits; mnist5k's digits at 16×16, unmoved


def split(name: str, seed: int):
    """``(x_train (N, n), y_train, x_test (M, n), y_test, T, order)``, standardised by the training set's mean
    and standard deviation (as ``lgn discover`` does). For the :data:`PLAIN` sets T is None and the order 4."""
    if name in PLAIN:
        if name == "digits":
            from lgn.data import get_dataset

            d = get_dataset("digits", seed=seed)
            x, y, xt, yt = d.x_train, d.y_train, d.x_test, d.y_test
        else:
            x, y, xt, yt = (torch.from_numpy(a) for a in digit_images(16))
        t, p = None, 4
    elif name in EXTRA:
        x, y, t, p, (xt, yt) = extra_group(name, seed, perm_seed=seed, n_test=2000)
    else:
        x, y, xt, yt, t, p = planted_data(name, seed=seed)
    x, xt = x.reshape(len(x), -1).double(), xt.reshape(len(xt), -1).double()
    mean, std = x.mean(), x.std()
    return (x - mean) / std, y, (xt - mean) / std, yt, t, p


def _config(approach: str) -> LearnConfig:
    """The :class:`LearnConfig` of a ``--method learn`` approach, with the pick its rows were measured with."""
    settings = RUNS[approach][0]
    return LearnConfig(**({"still": 1.0} if approach in BEFORE_STILL else {}), **settings)


def _labels(x: torch.Tensor, y: torch.Tensor, labelled, seed: int) -> torch.Tensor | None:
    """The labels a run's search sees: ``y``, none, or :func:`sorted_pixel_classes`."""
    if labelled == "sorted":
        return sorted_pixel_classes(x, seed)
    return y if labelled else None


def run_one(approach: str, name: str, seed: int) -> dict:
    settings, labelled = RUNS[approach]
    x, y, xt, _, t, p = split(name, seed)
    start = time.time()
    if approach == "episodic":
        estimate, records = learn_episodic(x, y, p, EpisodicConfig(**settings), seed=seed)
    else:
        estimate, records = learn_generator(x, _labels(x, y, labelled, seed), p, _config(approach), seed=seed)
    seconds = time.time() - start
    a, bases = estimate.generator, xt[:BASES].numpy()
    nan = float("nan")
    scores = [orbit_alignment(a, b, t, p) for b in bases] if t is not None else [nan]
    floor = (alignment_floor(np.stack([a] * BASES), bases, t, p, seed=seed) if t is not None else
             {"random_generator": nan, "unrelated_filters": nan})
    chosen = next(r for r in records if r["chosen"])
    return {"approach": approach, "dataset": name, "seed": seed, "alignment": float(np.mean(scores)),
            "floor_random": floor["random_generator"], "floor_unrelated": floor["unrelated_filters"],
            "loss": chosen["loss"], "losses": [r["loss"] for r in records],
            "fit_residual": estimate.fit_residual, "null_median": float(np.median(estimate.null)),
            "two_sample_p": estimate.two_sample_p, "found": judge(estimate).found,
            "refined": [r.get("refined") for r in records],
            "seconds": round(seconds, 1), "settings": settings, "labelled": labelled,
            "still": None if approach == "episodic" else _config(approach).still,
            "stillness": chosen.get("stillness")}


def run(approach: str, names: list[str], seeds: list[int], out: Path) -> None:
    out.parent.mkdir(parents=True, exist_ok=True)
    done = set()
    if out.exists():
        for line in out.read_text().splitlines():
            row = json.loads(line)
            done.add((row["approach"], row["dataset"], row["seed"]))
    for name in names:
        for seed in seeds:
            if (approach, name, seed) in done:
                continue
            row = run_one(approach, name, seed)
            with out.open("a") as f:
                f.write(json.dumps(row) + "\n")
            print(f"{approach} {name} seed {seed}: alignment {row['alignment']:.3f} (floors: random "
                  f"{row['floor_random']:.3f}, unrelated {row['floor_unrelated']:.3f}; {row['seconds']:.0f} s)",
                  flush=True)


def table(out: Path) -> None:
    """Print the rows of ``out`` as a markdown table: alignment per seed, mean, floors."""
    rows = [json.loads(line) for line in out.read_text().splitlines()]
    keys = sorted({(r["approach"], r["dataset"]) for r in rows}, key=lambda k: (k[0], k[1]))
    print("| approach | dataset | alignment per seed | mean | floor: random / unrelated | found | s per run |")
    print("|---|---|---|---|---|---|---|")
    for approach, name in keys:
        sel = sorted((r for r in rows if (r["approach"], r["dataset"]) == (approach, name)), key=lambda r: r["seed"])
        per = " / ".join(f"{r['alignment']:.3f}" for r in sel)
        seeds = ",".join(str(r["seed"]) for r in sel)
        found = " / ".join("–" if "found" not in r else ("yes" if r["found"] else "no") for r in sel)
        print(f"| {approach} | {name} | {per} (seeds {seeds}) | {np.mean([r['alignment'] for r in sel]):.3f} | "
              f"{np.mean([r['floor_random'] for r in sel]):.3f} / {np.mean([r['floor_unrelated'] for r in sel]):.3f}"
              f" | {found} | {np.mean([r['seconds'] for r in sel]):.0f} |")


LOSSES_OUT = Path("results/discovery-learn/losses.jsonl")
LOSS_SCALES = (1.0, 0.5, 0.25)  # bandwidths, in multiples of each class's median distance


def losses(approach: str, name: str, seed: int, out: Path = LOSSES_OUT) -> None:
    """Loss or search? The training loss (the pick's: mean over classes and powers of MMD² between two
    disjoint halves of each class, one moved by A^i) at the true T, at the generator ``approach`` learns,
    and at 19 random generators of the same order, on all training images and on all test images, at
    the bandwidths :data:`LOSS_SCALES` × each class's median distance. One JSONL row per call."""
    from lgn.discovery.learn import basis_for
    from lgn.discovery.search import symmetry_distance
    from lgn.discovery.losses import median_distance, self_terms
    from lgn.groups.cayley import CayleyCyclic

    settings, labelled = RUNS[approach]
    x, y, xt, yt, t, p = split(name, seed)
    start = time.time()
    estimate, _ = learn_generator(x, _labels(x, y, labelled, seed), p, _config(approach), seed=seed)
    seconds = time.time() - start
    n = x.shape[1]
    g = torch.Generator().manual_seed(seed)
    maps = {"T": CayleyCyclic(n, p, 1, anchor=torch.from_numpy(basis_for(t, p))[None]),
            "learned": CayleyCyclic(n, p, 1, anchor=torch.from_numpy(basis_for(estimate.generator, p))[None]),
            "random": CayleyCyclic(n, p, 19, generator=g)}
    row = {"approach": approach, "dataset": name, "seed": seed, "seconds": round(seconds, 1),
           "alignment": float(np.mean([orbit_alignment(estimate.generator, b, t, p) for b in xt[:BASES].numpy()]))}
    for split_name, images, labels in (("train", x, y), ("test", xt, yt)):
        halves = []
        for c in torch.unique(labels):
            idx = torch.nonzero(labels == c).flatten()
            idx = idx[torch.randperm(len(idx), generator=g)]
            halves.append((images[idx[:len(idx) // 2]], images[idx[len(idx) // 2:2 * (len(idx) // 2)]]))
        m = min(len(a) for a, _ in halves)
        x1 = torch.stack([a[:m] for a, _ in halves])  # (classes, m, n)
        x2 = torch.stack([b[:m] for _, b in halves])
        medians = torch.tensor([median_distance(torch.cat([a, b])) for a, b in zip(x1, x2)])
        for scale in LOSS_SCALES:
            h = scale * medians
            within = torch.stack([self_terms(a, b, float(s), "mmd") for a, b, s in zip(x1, x2, h)])
            with torch.no_grad():
                values = {k: symmetry_distance(gen, x1, x2, h, "mmd", within).numpy() for k, gen in maps.items()}
            row[f"{split_name} {scale}"] = {"T": float(values["T"][0]), "learned": float(values["learned"][0]),
                                            "random_median": float(np.median(values["random"])),
                                            "random_min": float(values["random"].min()), "per_class": m}
    with out.open("a") as f:
        f.write(json.dumps(row) + "\n")
    print(json.dumps(row, indent=1), flush=True)


def verdicts(seed: int = 0) -> None:
    """The verdict of ``--method learn`` (:func:`lgn.discovery.judge` on
    :func:`lgn.discovery.search.as_estimate`, the held-out fifth of each class as evidence) for the true T
    and for a random generator of T's spectrum on each ``digits-*`` set, labelled and pooled, and for
    rot90 on the unmoved digits (``mnist16``). Prints one line each."""
    from lgn.discovery.learn import _hold_out, _pools, basis_for
    from lgn.discovery.search import as_estimate
    from lgn.groups.cayley import CayleyCyclic

    def show(label, a, x, y, k):
        g = torch.Generator().manual_seed(seed)
        _, held = _hold_out(_pools(y, len(x)), LearnConfig().held_out, g)
        gen = CayleyCyclic(len(a), 4, 1, anchor=torch.from_numpy(basis_for(a, 4))[None]).float()
        v = judge(as_estimate(gen, 0, x.float(), y, held, LearnConfig().points, g), k)
        print(f"{label}: {v.text().splitlines()[0][:90]} | loss {v.fit_residual:.4f}, null median "
              f"{v.null_quantiles['0.5']:.4f}, rank p {v.p_value:.2f}, two-sample p {v.two_sample_p:.2f}", flush=True)

    rng = np.random.default_rng(seed)
    for name in DIGIT_NAMES:
        x, y, _, _, t, p = split(name, seed)
        q, _ = np.linalg.qr(rng.standard_normal((len(t), len(t))))
        for labels, tag in ((y, "labelled"), (None, "pooled")):
            show(f"{name} T {tag}", t, x, labels, 16)
            show(f"{name} random {tag}", q @ t @ q.T, x, labels, 16)
    x, y, _, _, _, _ = split("mnist16", seed)
    show("mnist16 rot90 labelled", operators.rotation(16, 90), x, y, 16)
    show("mnist16 rot90 pooled", operators.rotation(16, 90), x, None, 16)


def main(argv: list[str]) -> None:
    if argv and argv[0] == "verdicts":
        torch.set_num_threads(1)
        return verdicts()
    if argv and argv[0] == "losses":
        torch.set_num_threads(1)
        return losses(argv[1], argv[2], int(argv[3]))
    if argv and argv[0] in ("run", "table"):
        torch.set_num_threads(1)
        if argv[0] == "table":
            return table(Path(argv[1]) if len(argv) > 1 else OUT)
        if len(argv) < 4 or argv[1] not in RUNS:
            raise SystemExit(__doc__)
        return run(argv[1], argv[2].split(","), [int(v) for v in argv[3].split(",")],
                   Path(argv[4]) if len(argv) > 4 else OUT)
    if len(argv) < 2 or argv[0] not in APPROACHES:
        raise SystemExit(__doc__)
    torch.set_num_threads(1)
    seeds = [int(v) for v in (argv[2] if len(argv) > 2 else "0,1,2").split(",")]
    steps = {"steps": int(argv[3])} if len(argv) > 3 else {}
    for name in argv[1].split(","):
        if name in DIGIT_NAMES and argv[0] != "free-spectrum":
            print(f"note: {name} is 256-dimensional; {argv[0]} takes minutes per start there")
        for seed in seeds:
            start = time.time()
            value = APPROACHES[argv[0]](name, seed, **steps)
            print(f"{argv[0]} {name} seed {seed}: alignment {value:.3f} ({time.time() - start:.0f} s)", flush=True)


if __name__ == "__main__":
    main(sys.argv[1:])
