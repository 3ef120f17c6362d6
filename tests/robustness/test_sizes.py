"""Sizes: settings bounded by the image, and the memory pre-check (issue 41, items 6 and 11).

``model.pool_size`` or ``model.padding`` of 1e9 gave a traceback (an overflow
deep in torch) in ``lgn train`` and in ``lgn eval`` of an edited
``model.json``; both are bounded by the image size and refused in one line.
The memory pre-check counts activations as well as weights and takes the
tightest limit it can find, ``RLIMIT_AS`` included: a run that cannot fit is
refused naming the setting, instead of an allocation failing later.
"""

from __future__ import annotations

import json
import resource

import pytest

from lgn.cli import main
from tests.robustness.attacks import DIGITS_1, assert_one_line_error, lgn, lines

HUGE = 1_000_000_000


@pytest.mark.parametrize("key", ["pool_size", "padding"])
def test_a_huge_pool_size_or_padding_is_refused_by_train(tmp_path, capsys, key):
    out = tmp_path / "p"
    rc = main(["train", *DIGITS_1, "--out", str(out), "--set", f"model.{key}={HUGE}"])
    err = capsys.readouterr().err
    assert rc == 2 and len(lines(err)) == 1 and "Traceback" not in err, err
    assert f"{key} must be at most image_size=8" in err and str(HUGE) in err, err
    assert not out.exists()


@pytest.mark.parametrize("key", ["pool_size", "padding"])
def test_a_huge_pool_size_or_padding_in_model_json_is_refused_by_eval(run1, capsys, key):
    path = run1 / "model.json"
    path.write_text(json.dumps({**json.loads(path.read_text()), key: HUGE}))
    rc = main(["eval", str(run1)])
    err = capsys.readouterr().err
    assert rc == 2 and len(lines(err)) == 1 and "model.json" in err and f"{key} must be at most" in err, err


@pytest.mark.parametrize("key, value", [("pool_size", 8), ("padding", 8)])
def test_the_bound_itself_still_trains(tmp_path, capsys, key, value):
    """The guard: the largest value the bound allows (the image size) is a run like any other."""
    assert main(["train", *DIGITS_1, "--out", str(tmp_path / "p"), "--set", f"model.{key}={value}"]) == 0, \
        capsys.readouterr().err


CAP = 2 << 30  # bytes of address space


def _capped():
    resource.setrlimit(resource.RLIMIT_AS, (CAP, CAP))


def test_weights_beyond_the_address_space_limit_are_refused_before_allocating(tmp_path):
    """100,000 groups need gigabytes of weights: more than the 2 GiB ``ulimit -v`` allows, less than the machine."""
    proc = lgn("train", *DIGITS_1, "--out", tmp_path / "big", "--set", "model.n_groups=100000",
               preexec_fn=_capped, timeout=240)
    line = assert_one_line_error(proc, "train", "n_groups=100000")
    assert "more than" in line and "out of memory" not in line, line


def test_activations_beyond_the_limit_are_refused_before_allocating(tmp_path):
    """4,000 groups: their weights (and Adam's state) fit under 2 GiB, a training step's activations do not."""
    proc = lgn("train", *DIGITS_1, "--out", tmp_path / "big", "--set", "model.n_groups=4000",
               preexec_fn=_capped, timeout=240)
    line = assert_one_line_error(proc, "train", "n_groups=4000")
    assert "more than" in line and "out of memory" not in line, line


def test_memory_limits_read_cgroup_v1_and_v2_at_every_level(tmp_path):
    """A fake /sys/fs/cgroup and /proc/self: the limit of every cgroup from the process's up to the root counts."""
    from lgn.limits import memory_limits

    root, proc = tmp_path / "cgroup", tmp_path / "proc"
    files = {"memory/memory.limit_in_bytes": "9223372036854771712",  # v1: unlimited at the root
             "memory/job/memory.limit_in_bytes": "3000000000",          # the parent's limit is the tightest
             "memory/job/task/memory.limit_in_bytes": "5000000000",
             "slice/memory.max": "4000000000",                           # v2: a limit above the leaf
             "slice/leaf/memory.max": "max"}
    for name, text in files.items():
        (root / name).parent.mkdir(parents=True, exist_ok=True)
        (root / name).write_text(text + "\n")
    proc.mkdir()
    (proc / "cgroup").write_text("5:cpu,cpuacct:/job/task\n4:memory:/job/task\n0::/slice/leaf\n")
    found = {k: v for k, v in memory_limits(root, proc).items() if "cgroup" in k}
    assert sorted(found.values()) == [3_000_000_000, 4_000_000_000, 5_000_000_000, 9223372036854771712]
    assert found[f"the cgroup limit in {root / 'memory/job/memory.limit_in_bytes'}"] == 3_000_000_000
