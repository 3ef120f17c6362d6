"""Data-parallel training through torchrun: 2 gloo processes on CPU against 1 process."""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

import torch.distributed as dist
from lgn.cli import main
from lgn.train.distributed import SINGLE, World
from tests.train.helpers import newest_step
from tests.train.helpers import TINY_SET, write_tiny_npz

pytestmark = pytest.mark.skipif(not dist.is_available() or not dist.is_gloo_available(),
                                reason="torch.distributed with gloo is not available")


@pytest.fixture(scope="module")
def npz(tmp_path_factory):
    return write_tiny_npz(tmp_path_factory.mktemp("data") / "tiny.npz", n_train=96)  # 6 batches of 16


def _args(npz, out, epochs, *extra):
    return ["--dataset", f"npz:{npz}", "--out", str(out), "--epochs", str(epochs), "--no-progress", *TINY_SET,
            *extra]


def _torchrun(nproc, args, **kwargs):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "LGN_DIST_TIMEOUT": "60"}
    return subprocess.Popen([sys.executable, "-m", "torch.distributed.run", "--standalone",
                             f"--nproc_per_node={nproc}", "-m", "lgn", "train", *args],
                            env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True, **kwargs)


def _max_diff(a: Path, b: Path) -> float:
    wa, wb = load_file(a / "model.safetensors"), load_file(b / "model.safetensors")
    assert wa.keys() == wb.keys()
    return max(float((wa[k].double() - wb[k].double()).abs().max()) for k in wa)


def _records(out: Path) -> list[dict]:
    return [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]


def test_shard_splits_a_global_batch_exactly():
    idx = torch.arange(13)
    parts = [World(r, 3).shard(idx) for r in range(3)]
    assert torch.equal(torch.cat(parts), idx) and [len(p) for p in parts] == [5, 4, 4]
    assert SINGLE.shard(idx) is idx


def test_two_processes_end_where_one_does(tmp_path, npz):
    # batch norm over each rank's half alone moves these weights by 6e-2
    proc = _torchrun(2, _args(npz, tmp_path / "two", 2))
    stdout, stderr = proc.communicate(timeout=300)
    assert proc.returncode == 0, stderr
    assert stdout.count("done:") == 1 and stdout.count("epoch 2/2") == 1  # rank 0 alone prints
    assert main(["train", *_args(npz, tmp_path / "one", 2)]) == 0
    assert _max_diff(tmp_path / "one", tmp_path / "two") < 1e-5
    one, two = _records(tmp_path / "one"), _records(tmp_path / "two")
    assert [r["step"] for r in two] == [r["step"] for r in one] == [6, 12]
    for a, b in zip(one, two):
        assert b["train_loss"] == pytest.approx(a["train_loss"], rel=1e-5)
        assert b["train_acc"] == a["train_acc"] and b["test_loss"] == pytest.approx(a["test_loss"], rel=1e-5)
    assert sorted(p.name for p in (tmp_path / "two").iterdir()) == sorted(p.name for p in (tmp_path / "one").iterdir())


def _children(pid: int) -> list[int]:
    path = Path(f"/proc/{pid}/task/{pid}/children")
    return [int(c) for c in path.read_text().split()] if path.exists() else []


def _rank(pid: int) -> int | None:
    try:
        env = Path(f"/proc/{pid}/environ").read_bytes().split(b"\0")
    except OSError:
        return None
    ranks = [int(e[5:]) for e in env if e.startswith(b"RANK=")]
    return ranks[0] if ranks else None


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="needs /proc to find the worker processes")
@pytest.mark.parametrize("launcher", ["torchrun", "lgn"])
def test_a_killed_rank_stops_the_job_and_the_run_resumes(tmp_path, npz, launcher):
    out, epochs = tmp_path / "cut", 8
    args = _args(npz, out, epochs, "--checkpoint-every", "1")
    proc = _torchrun(2, args) if launcher == "torchrun" else _lgn_popen(*args, "--nproc", "2")
    deadline = time.monotonic() + 240
    while proc.poll() is None and newest_step(out) < 4 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert proc.poll() is None, proc.communicate()[1]
    ranks = {_rank(pid): pid for pid in _children(proc.pid)}
    os.kill(ranks[1], signal.SIGKILL)
    _, stderr = proc.communicate(timeout=120)  # no hang: torchrun stops the other rank
    assert proc.returncode != 0
    if launcher == "lgn":  # the surviving rank stays quiet: no gloo traceback before the launcher's one line
        assert proc.returncode == 2, stderr
        assert stderr == "lgn train: error: rank 1 was killed by signal SIGKILL; the run folder keeps its last checkpoint\n"
    assert not any(_rank(pid) is not None for pid in _children(proc.pid))
    reached = newest_step(out)
    assert 4 <= reached < 6 * epochs
    assert main(["train", *_args(npz, out, epochs, "--resume")]) == 0  # 1 process, epoch-end checkpoints
    assert main(["train", *_args(npz, tmp_path / "one", epochs)]) == 0
    assert [r["epoch"] for r in _records(out)] == list(range(1, epochs + 1))
    assert _max_diff(out, tmp_path / "one") < 1e-5


def _lgn_popen(*args):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "LGN_DIST_TIMEOUT": "60"}
    return subprocess.Popen([sys.executable, "-m", "lgn", "train", *args], env=env, stdout=subprocess.PIPE,
                            stderr=subprocess.PIPE, text=True)


@pytest.mark.skipif(not Path("/proc/self/task").is_dir(), reason="needs /proc to find the worker processes")
@pytest.mark.parametrize("signum", [signal.SIGINT, signal.SIGTERM])
def test_a_signal_to_the_launcher_ends_in_one_line_and_the_run_resumes(tmp_path, npz, signum):
    out, epochs = tmp_path / "cut", 8
    proc = _lgn_popen(*_args(npz, out, epochs, "--checkpoint-every", "1", "--nproc", "2"))
    deadline = time.monotonic() + 240
    while proc.poll() is None and newest_step(out) < 4 and time.monotonic() < deadline:
        time.sleep(0.01)
    assert proc.poll() is None, proc.communicate()[1]
    proc.send_signal(signum)
    _, stderr = proc.communicate(timeout=120)
    name = "" if signum == signal.SIGINT else " (SIGTERM)"
    assert (proc.returncode, stderr) == (128 + signum, f"lgn train: interrupted{name}\n")
    assert main(["train", *_args(npz, out, epochs, "--resume")]) == 0
    assert [r["epoch"] for r in _records(out)] == list(range(1, epochs + 1))


def _lgn(*args):
    env = {**os.environ, "OMP_NUM_THREADS": "1", "LGN_DIST_TIMEOUT": "60"}
    return subprocess.run([sys.executable, "-m", "lgn", "train", *args], env=env, capture_output=True, text=True,
                          timeout=240)


def test_a_refused_run_under_nproc_is_one_line_and_exit_2(tmp_path, npz):
    # rank 0's set-up errors used to leave rank 1 failing in its broadcast with a gloo traceback,
    # followed by torchrun's ChildFailedError traceback and exit code 1
    out = tmp_path / "run"
    assert main(["train", *_args(npz, out, 1)]) == 0
    for extra in ((), ("--resume", "--seed", "5")):  # a non-empty folder; a resume with other settings
        done = _lgn(*_args(npz, out, 1, "--nproc", "2", *extra))
        assert done.returncode == 2, done.stderr
        assert done.stderr.count("\n") == 1 and done.stderr.startswith("lgn train: error: "), done.stderr


def _own_group(tmp_path):
    store = dist.FileStore(str(tmp_path / "store"), 1)
    dist.init_process_group("gloo", store=store, rank=0, world_size=1)


def test_closing_leaves_a_process_group_the_caller_created(tmp_path, monkeypatch):
    from lgn.train.distributed import from_environment

    _own_group(tmp_path)
    try:
        monkeypatch.setenv("WORLD_SIZE", "2")
        monkeypatch.setenv("RANK", "0")
        monkeypatch.setattr(dist, "get_world_size", lambda *a, **k: 2)
        world, _ = from_environment("cpu")
        assert world.distributed and not world.owns_group
        world.close()
        assert dist.is_initialized()  # before, close() destroyed the caller's group
    finally:
        dist.destroy_process_group()


def test_closing_destroys_the_group_lgn_created(monkeypatch):
    from lgn.train.distributed import from_environment

    monkeypatch.setenv("WORLD_SIZE", "2")
    monkeypatch.setenv("RANK", "0")
    monkeypatch.setenv("MASTER_ADDR", "127.0.0.1")
    monkeypatch.setenv("MASTER_PORT", "0")
    calls = []
    monkeypatch.setattr(dist, "init_process_group", lambda **kw: calls.append("init"))
    monkeypatch.setattr(dist, "is_initialized", lambda: bool(calls) and calls[-1] == "init")
    monkeypatch.setattr(dist, "get_world_size", lambda *a, **k: 2)
    monkeypatch.setattr(dist, "get_rank", lambda *a, **k: 0)
    monkeypatch.setattr(dist, "destroy_process_group", lambda *a, **k: calls.append("destroy"))
    world, _ = from_environment("cpu")
    assert world.owns_group
    world.close()
    assert calls == ["init", "destroy"]
