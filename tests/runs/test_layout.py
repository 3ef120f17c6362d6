"""The run folder: one writer at a time (the lock), and what --force deletes."""

from __future__ import annotations

import json
import os
import signal
import subprocess
import sys
import time

import pytest

from lgn.cli import main
from lgn.runs import LOCK_FILE, RunFolderBusy, clear_run_files
from lgn.train import train
from lgn.train.checkpoint import CHECKPOINT_FILES
from lgn.train.evaluate import evaluate_run
from tests.robustness.test_malformed import snapshot
from tests.train.test_loop import _same_weights, _without_times
from tests.train.helpers import TINY_SET, tiny_settings, write_tiny_npz

HOLD = ("import sys, time\nfrom lgn.runs import lock_run_dir\n"
        "with lock_run_dir(sys.argv[1]):\n    print('held', flush=True)\n    time.sleep(600)\n")


@pytest.fixture(scope="module")
def npz(tmp_path_factory):
    return write_tiny_npz(tmp_path_factory.mktemp("data") / "tiny.npz")


@pytest.fixture
def holder(tmp_path):
    """Another process holding the lock of ``tmp_path/run``: yields it; killed (SIGKILL) at the end."""
    procs = []

    def hold(out):
        proc = subprocess.Popen([sys.executable, "-c", HOLD, str(out)], stdout=subprocess.PIPE, text=True)
        procs.append(proc)
        assert proc.stdout.readline().strip() == "held"
        return proc

    yield hold
    for proc in procs:
        proc.kill()
        proc.wait()


@pytest.mark.parametrize("mode", ["force", "resume"])
def test_a_second_writer_is_refused_naming_the_holder_and_changes_nothing(tmp_path, npz, holder, mode, capsys):
    out = tmp_path / "run"
    train(tiny_settings(npz, epochs=1), out, log=None)
    proc = holder(out)
    before = snapshot(tmp_path)
    with pytest.raises(RunFolderBusy, match=f"process {proc.pid} is training into it"):
        train(tiny_settings(npz, epochs=2), out, log=None, **{mode: True})
    capsys.readouterr()
    assert main(["train", "--out", str(out), f"--{mode}", "--epochs", "2", "--no-progress",
                 *(["--dataset", f"npz:{npz}", *TINY_SET] if mode == "force" else [])]) == 2
    err = capsys.readouterr().err.strip().splitlines()
    assert len(err) == 1 and err[0].startswith("lgn train: error: ") and f"process {proc.pid}" in err[0], err
    assert snapshot(tmp_path) == before


def test_a_lock_left_by_a_killed_process_blocks_no_one(tmp_path, npz, holder):
    out = tmp_path / "run"
    train(tiny_settings(npz, epochs=1), out, log=None)
    proc = holder(out)
    proc.kill()
    proc.wait()
    assert (out / LOCK_FILE).read_text().strip() == str(proc.pid)  # left behind, unlocked
    result = train(tiny_settings(npz, epochs=2), out, force=True, log=None)
    assert [r["epoch"] for r in result.metrics] == [1, 2]
    assert not (out / LOCK_FILE).exists()


def test_eval_and_analyze_read_a_folder_being_written(tmp_path, npz, holder, capsys):
    out = tmp_path / "run"
    train(tiny_settings(npz, epochs=1), out, log=None)
    holder(out)
    assert evaluate_run(out)["examples"] == 24
    assert main(["analyze", str(out), "--out", str(tmp_path / "analysis"), "--no-figures"]) == 0


def test_a_refused_fresh_run_leaves_no_folder(tmp_path):
    with pytest.raises(ValueError, match="no dataset"):
        train({"train": {"epochs": 1}}, tmp_path / "a" / "b" / "run", log=None)
    assert not (tmp_path / "a").exists()


def test_two_real_trainings_into_one_folder(tmp_path, npz):
    """While one ``lgn train`` runs, a second with --force exits 2 naming it; the first's files stay its own."""
    out = tmp_path / "run"
    command = [sys.executable, "-m", "lgn", "train", "--dataset", f"npz:{npz}", "--out", str(out), *TINY_SET,
               "--no-progress"]
    # SIGINT as a terminal's ^C delivers it: a suite started in the background can inherit SIGINT ignored
    # (seen: SigIgn in /proc), and Python then never raises KeyboardInterrupt, so the run would train on
    first = subprocess.Popen(command + ["--epochs", "100000"], stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True, preexec_fn=lambda: signal.signal(signal.SIGINT, signal.SIG_DFL))
    try:
        deadline = time.monotonic() + 60
        while not (out / "checkpoint-0.json").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        second = subprocess.run(command + ["--epochs", "3", "--seed", "7", "--force"], capture_output=True,
                                text=True, timeout=120)
        assert second.returncode == 2, second.stderr
        lines = second.stderr.strip().splitlines()
        assert len(lines) == 1 and f"process {first.pid}" in lines[0], second.stderr
    finally:
        first.send_signal(signal.SIGINT)
        first.communicate(timeout=60)
    assert first.returncode == 130
    assert json.loads((out / "config.json").read_text())["train"]["seed"] == 0
    epochs = [json.loads(line)["epoch"] for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert epochs == list(range(1, len(epochs) + 1))


def test_force_deletes_only_what_a_run_wrote(tmp_path, npz):
    out = tmp_path / "run"
    train(tiny_settings(npz, epochs=1), out, log=None)
    (out / "tensorboard").mkdir()
    (out / "tensorboard" / "my-notes.txt").write_text("mine")
    (out / "tensorboard" / "events.out.tfevents.1.host").write_bytes(b"x")
    (out / "notes.txt").write_text("mine")
    assert (out / "checkpoint-0.safetensors").exists()
    clear_run_files(out, CHECKPOINT_FILES)
    assert (out / "tensorboard" / "my-notes.txt").read_text() == "mine"
    assert not (out / "tensorboard" / "events.out.tfevents.1.host").exists()
    assert sorted(p.name for p in out.iterdir()) == ["notes.txt", "tensorboard"]
    (out / "tensorboard" / "my-notes.txt").unlink()
    clear_run_files(out, CHECKPOINT_FILES)
    assert not (out / "tensorboard").exists()  # emptied of the run's event files, the folder goes too


def _disk_full_at(monkeypatch, k: int) -> list[str]:
    """Make the k-th file synced to disk fail as a full disk would; returns the names written till then."""
    import errno

    import lgn.files

    fsync, seen = os.fsync, []

    def full(fd):
        seen.append(os.readlink(f"/proc/self/fd/{fd}"))
        if len(seen) == k + 1:
            raise OSError(errno.ENOSPC, os.strerror(errno.ENOSPC))
        return fsync(fd)

    monkeypatch.setattr(lgn.files.os, "fsync", full)
    return seen


@pytest.mark.skipif(not os.path.isdir("/proc/self/fd"), reason="names the files through /proc")
@pytest.mark.parametrize("k", range(11))  # every file a 2-epoch run syncs: 3 at the start, 4 at each epoch end
def test_a_full_disk_names_the_file_and_the_run_resumes_exactly(tmp_path, npz, monkeypatch, k):
    settings = tiny_settings(npz, epochs=2)
    full = train(settings, tmp_path / "full", log=None)
    seen = _disk_full_at(monkeypatch, k)
    with pytest.raises(OSError, match="No space left on device") as info:
        train(settings, tmp_path / "cut", log=None)
    failed = seen[-1].removesuffix(".tmp")
    assert f"cannot write {failed}:" in str(info.value)
    assert not list((tmp_path / "cut").glob("*.tmp"))  # the partial file does not keep the space
    monkeypatch.undo()
    resumed = train(settings, tmp_path / "cut", resume=True, log=None)
    assert _same_weights(tmp_path / "cut", tmp_path / "full")
    assert _without_times(resumed.metrics) == _without_times(full.metrics)


def test_a_full_disk_is_one_line_from_the_command_line(tmp_path, npz, monkeypatch, capsys):
    _disk_full_at(monkeypatch, 4)
    capsys.readouterr()
    rc = main(["train", "--dataset", f"npz:{npz}", "--out", str(tmp_path / "run"), "--epochs", "2",
               "--no-progress", *TINY_SET])  # 2: one epoch would add the line saying its schedule is degenerate
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "cannot write " in err[0] and str(tmp_path / "run") in err[0], err


def test_every_run_file_has_the_same_mode(tmp_path, npz):
    old = os.umask(0o022)
    try:
        train(tiny_settings(npz, epochs=1), tmp_path / "run", log=None)
    finally:
        os.umask(old)
    modes = {p.name: oct(p.stat().st_mode & 0o777) for p in (tmp_path / "run").iterdir() if p.is_file()}
    assert set(modes.values()) == {"0o644"}, modes
