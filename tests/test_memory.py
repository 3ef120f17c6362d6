"""keep_freed_memory: freed memory stays mapped, so allocating it again does not fault pages in."""

import os
import subprocess
import sys

import pytest

from lgn.memory import ENV, glibc, keep_freed_memory

# A step's pattern: allocate 8 tensors of 16 MB, touch them, free them all; page faults of rounds 2-4.
# The library is loaded first, as in a training process by its first step (lgn.memory alone imports nothing).
_ROUNDS = """
import resource, sys, torch
import lgn.train
from lgn.memory import keep_freed_memory
kept = keep_freed_memory()
faults = []
for round in range(4):
    before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
    tensors = [torch.ones(4 << 20) for _ in range(8)]
    del tensors
    faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
print(kept, sum(faults[1:]))
"""


def _faults(env_value: str) -> tuple[bool, int]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}  # glibc's own settings unset
    out = subprocess.run([sys.executable, "-c", _ROUNDS], env={**env, ENV: env_value},
                         capture_output=True, text=True, check=True).stdout.split()
    return out[0] == "True", int(out[1])


@pytest.mark.skipif(not (sys.platform.startswith("linux") and glibc() is not None), reason="glibc's malloc only")
def test_freed_memory_is_reused_without_page_faults():
    kept, faults_kept = _faults("1")
    default, faults_default = _faults("0")
    assert kept and not default
    pages = 3 * 8 * (16 << 20) // 4096  # rounds 2-4 faulting every page back in
    assert faults_kept < pages // 10, faults_kept
    # glibc's defaults return the memory and fault it in again: seen 36,860-98,237 here, against 4,096 kept
    assert faults_default > 4 * faults_kept, (faults_default, faults_kept)


def test_switched_off_by_the_environment(monkeypatch):
    keep_freed_memory.cache_clear()
    monkeypatch.setenv(ENV, "0")
    try:
        assert keep_freed_memory() is False
    finally:
        keep_freed_memory.cache_clear()


def test_training_from_python_leaves_the_allocator_alone(tmp_path):
    # the allocator setting belongs to the CLI's process, not to a library call in someone else's
    from lgn.train import train
    from tests.train.helpers import tiny_settings, write_tiny_npz

    keep_freed_memory.cache_clear()
    train(tiny_settings(write_tiny_npz(tmp_path / "d.npz"), epochs=1), tmp_path / "run", log=None)
    assert keep_freed_memory.cache_info().misses == 0


def test_the_cli_keeps_freed_memory(tmp_path, monkeypatch):
    from lgn.cli import main

    keep_freed_memory.cache_clear()
    try:
        main(["analyze", str(tmp_path / "missing")])
        assert keep_freed_memory.cache_info().misses == 1
    finally:
        keep_freed_memory.cache_clear()


# Evaluation at the default batch size: its codes stay under the mmap threshold, so a second pass over the
# same images faults no pages in; at 1000 images a batch, they did, every batch (0.5-1.1 million faults for
# Fashion-MNIST's test set, about half of the evaluation's time).
_EVALUATION = """
import resource, sys, torch
from lgn.models import ModelConfig, build_model
from lgn.train.config import TrainConfig
from lgn.train.evaluate import evaluate
from lgn.memory import keep_freed_memory
assert keep_freed_memory()
torch.manual_seed(0)
model = build_model(ModelConfig(in_channels=1, image_size=28, num_classes=10))
x, y = torch.randn(1000, 1, 28, 28), torch.randint(0, 10, (1000,))
for batch_size in (TrainConfig().eval_batch_size, 1000):
    evaluate(model, x, y, task="classify", batch_size=batch_size)
    faults = []
    for _ in range(2):
        before = resource.getrusage(resource.RUSAGE_SELF).ru_minflt
        evaluate(model, x, y, task="classify", batch_size=batch_size)
        faults.append(resource.getrusage(resource.RUSAGE_SELF).ru_minflt - before)
    print(min(faults))
"""


@pytest.mark.skipif(not (sys.platform.startswith("linux") and glibc() is not None), reason="glibc's malloc only")
def test_evaluation_at_the_default_batch_size_reuses_its_memory():
    env = {k: v for k, v in os.environ.items() if not k.startswith("MALLOC_")}
    out = subprocess.run([sys.executable, "-c", _EVALUATION], env={**env, ENV: "1"},
                         capture_output=True, text=True, check=True).stdout.split()
    default, thousand = int(out[0]), int(out[1])
    assert default < 2_000, default
    assert thousand > 20 * max(default, 100), (default, thousand)
