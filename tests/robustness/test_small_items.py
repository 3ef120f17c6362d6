"""Smaller items of issue 41 (item 11): SIGTERM, a huge dataset name, the resume message's arithmetic."""

from __future__ import annotations

import os
import re
import signal
import subprocess
import sys
import time

import pytest

from lgn.cli import main
from lgn.train import train
from tests.robustness.attacks import DIGITS_1, lines


def test_sigterm_ends_a_single_process_run_in_one_line(tmp_path):
    """Under ``--nproc`` SIGTERM prints "interrupted (SIGTERM)" and exits 143; one process does the same, and its
    run folder is left resumable (the lock released)."""
    out = tmp_path / "r"
    proc = subprocess.Popen([sys.executable, "-m", "lgn", "train", "--dataset", "digits", "--epochs", "500",
                             "--no-progress", "--out", str(out)], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            env={k: v for k, v in os.environ.items() if k != "LGN_DEBUG"})
    try:
        deadline = time.monotonic() + 120
        while not (out / "checkpoint-0.json").exists():  # training, past its first epoch
            assert proc.poll() is None and time.monotonic() < deadline, proc.stderr.read().decode()
            time.sleep(0.2)
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    err = err.decode()
    assert proc.returncode == 128 + signal.SIGTERM, f"exit {proc.returncode}: {err}"
    assert lines(err) == ["lgn train: interrupted (SIGTERM)"], err
    assert not (out / ".lgn-lock").exists()


@pytest.mark.parametrize("how", ["config", "flag"])
def test_a_huge_dataset_name_is_not_echoed_whole(tmp_path, capsys, how):
    """A 10 MB name in a config file (the command line caps one argument at 128 KiB: 100 KB there)."""
    if how == "config":
        name = "x" * 10_000_000
        (tmp_path / "c.toml").write_text(f'[data]\nname = "{name}"\n')
        argv = ["--config", str(tmp_path / "c.toml")]
    else:
        name = "npz:" + "y" * 100_000
        argv = ["--dataset", name]
    rc = main(["train", *argv, "--out", str(tmp_path / "r"), "--epochs", "1"])
    err = capsys.readouterr().err
    assert rc == 2 and len(lines(err)) == 1, err[:500]
    assert len(err) < 1000, f"{len(err)} characters: {err[:300]}..."
    assert name[:20] in err and str(len(name)) in err  # its start and its length are shown


class _Stop(Exception):
    pass


def _stop_after_first_epoch(record):
    raise _Stop


def test_the_resume_message_counts_batches_of_the_epoch(tmp_path, capsys):
    """A checkpoint at batch 6 of the first of 2 epochs (12 batches each) was reported as "after epoch 0,
    batch 6 of 2"."""
    out = tmp_path / "r"
    settings = {"data": {"name": "digits"}, "train": {"epochs": 2, "checkpoint_every": 6, "progress": False}}
    with pytest.raises(_Stop):  # checkpoints at steps 6 (epoch 1, batch 6) and 12 (the end of epoch 1)
        train(settings, out, log=None, on_epoch_end=_stop_after_first_epoch)
    for name in ("checkpoint-1.json", "checkpoint-1.safetensors"):  # the kill came before step 12's
        (out / name).unlink()
    capsys.readouterr()
    assert main(["train", "--out", str(out), "--resume", "--no-progress"]) == 0
    header, first = capsys.readouterr().out.splitlines()[:2]  # the run header names the threads first
    assert header.startswith(f"lgn train: {out}"), header
    assert first.startswith(f"resuming {out}"), first
    assert "batch 6 of 12" in first and "epoch 1 of 2" in first, first
    assert all(int(a) <= int(b) for a, b in re.findall(r"(\d+) of (\d+)", first)), first


def test_the_resume_message_at_an_epoch_end(tmp_path, capsys, digits_runs):
    """The guard: a checkpoint at the end of epoch 1 of 2 says so."""
    import shutil

    out = shutil.copytree(digits_runs[2], tmp_path / "r")
    for name in ("checkpoint-1.json", "checkpoint-1.safetensors"):
        (out / name).unlink()
    assert main(["train", "--out", str(out), "--resume", "--no-progress"]) == 0
    first = capsys.readouterr().out.splitlines()[1]  # after the run header
    assert first.startswith(f"resuming {out} after epoch 1 of 2"), first
