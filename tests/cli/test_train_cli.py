import dataclasses
import json
import subprocess
import sys

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

import lgn.train.loop
from lgn.cli import main
from lgn.models import load_model
from tests.train.helpers import TINY_SET, newest_step, write_tiny_npz


@pytest.fixture(scope="module")
def npz(tmp_path_factory):
    return write_tiny_npz(tmp_path_factory.mktemp("data") / "tiny.npz")


def _train(npz, out, *extra):
    return main(["train", "--dataset", f"npz:{npz}", "--out", str(out), "--no-progress", *TINY_SET, *extra])


def test_one_epoch_end_to_end_on_mnist5k(tmp_path, capsys):
    out = tmp_path / "run"
    rc = main(["train", "--dataset", "mnist5k", "--out", str(out), "--epochs", "1", "--no-progress",
               "--set", "data.train_subset=64", "--set", "data.test_subset=32", *TINY_SET])
    assert rc == 0
    stdout = capsys.readouterr().out
    assert "epoch 1/1" in stdout and f"done: {out}" in stdout
    records = [json.loads(line) for line in (out / "metrics.jsonl").read_text().splitlines()]
    assert len(records) == 1 and records[0]["epoch"] == 1 and records[0]["step"] == 4  # 64 / 16
    config = json.loads((out / "config.json").read_text())
    assert config["data"]["name"] == "mnist5k" and config["model"]["image_size"] == 28
    assert config["model"]["n_groups"] == 2 and config["train"]["lr"] == 0.01
    model = load_model(out)
    assert model(torch.zeros(2, 1, 28, 28)).shape == (2, 10)

    assert main(["eval", str(out), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["examples"] == 32 and result["acc"] == pytest.approx(records[0]["test_acc"])


def test_toml_config_and_flags(tmp_path, npz):
    config = tmp_path / "c.toml"
    config.write_text("[train]\nepochs = 5\nseed = 3\n[model]\nn_layers = 1\n")
    assert _train(npz, tmp_path / "run", "--config", str(config), "--set", "train.epochs=4", "--epochs", "1") == 0
    resolved = json.loads((tmp_path / "run" / "config.json").read_text())
    # flags win over --set, which wins over the file
    assert resolved["train"]["epochs"] == 1 and resolved["train"]["seed"] == 3
    assert resolved["model"]["n_layers"] == 2  # TINY_SET's --set comes after the file


def test_interrupted_run_resumes(tmp_path, npz, monkeypatch, capsys):
    assert _train(npz, tmp_path / "full", "--epochs", "3") == 0
    save = lgn.train.loop.save_checkpoint

    def save_then_die(*args, **kwargs):
        save(*args, **kwargs)
        raise KeyboardInterrupt  # as a user's ^C right after the first epoch's checkpoint

    monkeypatch.setattr(lgn.train.loop, "save_checkpoint", save_then_die)
    assert _train(npz, tmp_path / "cut", "--epochs", "3") == 130
    assert len((tmp_path / "cut" / "metrics.jsonl").read_text().splitlines()) == 1
    monkeypatch.setattr(lgn.train.loop, "save_checkpoint", save)
    capsys.readouterr()
    assert main(["train", "--out", str(tmp_path / "cut"), "--resume", "--no-progress"]) == 0
    assert "after epoch 1 of 3" in capsys.readouterr().out
    full, cut = load_file(tmp_path / "full" / "model.safetensors"), load_file(tmp_path / "cut" / "model.safetensors")
    assert all(torch.equal(full[k], cut[k]) for k in full)
    assert [json.loads(line)["epoch"] for line in (tmp_path / "cut" / "metrics.jsonl").read_text().splitlines()] \
        == [1, 2, 3]


def test_force_overwrites_run_files_only(tmp_path, npz):
    out = tmp_path / "run"
    out.mkdir()
    (out / "metrics.jsonl").write_text("old\n")
    (out / "notes.txt").write_text("keep me")
    assert _train(npz, out, "--epochs", "1", "--force") == 0
    assert (out / "notes.txt").read_text() == "keep me"
    assert json.loads((out / "metrics.jsonl").read_text().splitlines()[0])["epoch"] == 1


def _bad_npz(tmp_path, change):
    rng = np.random.default_rng(0)
    arrays = {"x_train": rng.random((6, 8, 8)), "y_train": np.arange(6) % 2,
              "x_test": rng.random((4, 8, 8)), "y_test": np.arange(4) % 2}
    arrays = change(arrays)
    path = tmp_path / "bad.npz"
    np.savez(path, **arrays)
    return f"npz:{path}"


def _without(key):
    return lambda a: {k: v for k, v in a.items() if k != key}


def _with(key, f):
    return lambda a: {**a, key: f(a[key])}


NPZ_CASES = {
    "missing x_test": (_without("x_test"), "missing array"),
    "length mismatch": (_with("y_train", lambda y: y[:5]), "5 labels for 6 images"),
    "nan": (_with("x_train", lambda x: np.where(x > 0.9, np.nan, x)), "NaN or Inf"),
    "inf": (_with("x_test", lambda x: np.where(x > 0.9, -np.inf, x)), "NaN or Inf"),
    "label out of range": (_with("y_test", lambda y: y + 2), "labels out of range"),
    "wrong rank": (_with("x_train", lambda x: x.reshape(6, 64)), r"\(N, H, W\) or \(N, C, H, W\)"),
    "too small for the kernel": (lambda a: {**a, "x_train": a["x_train"][:, :3, :3],
                                            "x_test": a["x_test"][:, :3, :3]}, "too small for kernel_size=6"),
    "object array": (_with("y_train", lambda y: np.array([1, "a", None, 2, 3, 4], dtype=object)),
                     "object arrays"),
}


@pytest.mark.parametrize("case", NPZ_CASES)
def test_bad_npz_exits_2_with_one_line(tmp_path, capsys, case):
    change, message = NPZ_CASES[case]
    rc = main(["train", "--dataset", _bad_npz(tmp_path, change), "--out", str(tmp_path / "run")])
    _assert_one_line_error(capsys, rc, message)
    assert not (tmp_path / "run").exists()


@pytest.mark.parametrize("args, message", [
    (["--dataset", "mnist6k"], "unknown dataset 'mnist6k'"),
    (["--dataset", "digits", "--set", "train.epoks=2"], "unknown config key train.epoks"),
    (["--dataset", "digits", "--set", "train.epochs=two"], "train.epochs must be an integer, got 'two'"),
    (["--dataset", "digits", "--set", "model.n_groups=2.5"], "model.n_groups must be an integer"),
    (["--dataset", "digits", "--set", "epochs=2"], "section.key=value"),
    (["--dataset", "digits", "--data-dir", "/nonexistent"], "does not read a data folder"),
    (["--dataset", "cifar10", "--data-dir", "/nonexistent"], "lacks data_batch_1"),
    (["--set", "train.epochs=2"], "no dataset"),
    (["--dataset", "digits", "--config", "/nonexistent.toml"], "config file /nonexistent.toml does not exist"),
])
def test_bad_arguments_exit_2_with_one_line(tmp_path, capsys, args, message):
    rc = main(["train", "--out", str(tmp_path / "run"), *args])
    _assert_one_line_error(capsys, rc, message)


def test_bad_config_file(tmp_path, capsys):
    path = tmp_path / "c.toml"
    path.write_text("[train]\nepochs = 2\nlearning_rate = 0.1\n")
    rc = main(["train", "--dataset", "digits", "--out", str(tmp_path / "run"), "--config", str(path)])
    _assert_one_line_error(capsys, rc, "unknown config key train.learning_rate")


def test_existing_folder_refused_untouched(tmp_path, npz, capsys):
    out = tmp_path / "run"
    out.mkdir()
    (out / "model.safetensors").write_bytes(b"someone's weights")
    rc = _train(npz, out, "--epochs", "1")
    _assert_one_line_error(capsys, rc, "exists and is not empty; pass --resume")
    assert [p.name for p in out.iterdir()] == ["model.safetensors"]
    assert (out / "model.safetensors").read_bytes() == b"someone's weights"


@pytest.mark.skipif(torch.cuda.is_available(), reason="a CUDA device is present")
def test_cuda_unavailable(tmp_path, npz, capsys):
    _assert_one_line_error(capsys, _train(npz, tmp_path / "run", "--device", "cuda"), "CUDA is not available")


def test_tensorboard_missing_or_written(tmp_path, npz, capsys):
    rc = _train(npz, tmp_path / "run", "--epochs", "1", "--tensorboard")
    try:
        import tensorboard  # noqa: F401
    except ImportError:
        _assert_one_line_error(capsys, rc, r"pip install 'lgn\[tensorboard\]'")
        assert not (tmp_path / "run").exists()
    else:
        assert rc == 0 and any((tmp_path / "run" / "tensorboard").iterdir())


def test_help_documents_every_option(capsys):
    with pytest.raises(SystemExit) as e:
        main(["train", "--help"])
    assert e.value.code == 0
    text = capsys.readouterr().out
    for option in ("--dataset", "--task", "--out", "--epochs", "--config", "--set", "--seed", "--resume",
                   "--force", "--device", "--data-dir", "--tensorboard", "--no-progress", "--checkpoint-every",
                   "--on-nan", "--nproc", "--init-from", "--list-keys"):
        assert option in text


def test_list_keys_prints_every_key_with_its_default(capsys):
    from lgn.train.config import SECTIONS

    with pytest.raises(SystemExit) as e:
        main(["train", "--list-keys"])
    assert e.value.code == 0
    text = capsys.readouterr().out
    assert "lr=0.01" in text and "batch_size=128" in text and "in_channels=(from data)" in text
    for section, cls in SECTIONS.items():
        line = next(line for line in text.splitlines() if line.startswith(f"  [{section}] "))
        assert [item.split("=")[0] for item in line.split("] ", 1)[1].split(", ") if "=" in item][:3] == \
            [f.name for f in dataclasses.fields(cls)][:3]


def test_list_keys_lists_the_registered_generators(capsys, monkeypatch):
    from lgn.groups import FixedGenerator, register_generator, registry

    monkeypatch.setattr(registry, "_NAMES", dict(registry._NAMES))
    register_generator("mine", lambda shape: FixedGenerator(torch.eye(shape.dim), shape.n_groups, shape.n_blocks))
    with pytest.raises(SystemExit):
        main(["train", "--list-keys"])
    listed = capsys.readouterr().out.split("model.generator:")[1].split("precedence:")[0]
    assert [n.strip(" .") for n in " ".join(listed.split()).split(",")] == \
        [*registry.generator_names(), "independent"]
    assert "mine" in listed and "fixed:rot90" in listed


def test_real_process_prints_no_traceback(tmp_path):
    proc = subprocess.run([sys.executable, "-m", "lgn", "train", "--dataset", "nope", "--out", str(tmp_path)],
                          capture_output=True, text=True, timeout=120)
    assert proc.returncode == 2
    assert proc.stderr.count("\n") == 1 and "Traceback" not in proc.stderr
    assert proc.stderr.startswith("lgn train: error: unknown dataset 'nope'")


def _assert_one_line_error(capsys, rc, message):
    import re

    err = capsys.readouterr().err
    assert rc == 2, err
    lines = err.strip().splitlines()
    assert len(lines) == 1 and "Traceback" not in err, err
    assert lines[0].startswith("lgn train: error: ") and re.search(message, lines[0]), lines[0]


def test_sigkill_at_random_moments_then_resume_ends_bit_identical(tmp_path):
    """A real process killed (SIGKILL) at seeded random moments, resumed each time; 4 epochs of 12 batches."""
    import random
    import signal
    import time

    npz = write_tiny_npz(tmp_path / "tiny.npz", n_train=192)
    common = ["--dataset", f"npz:{npz}", "--epochs", "4", "--checkpoint-every", "1", "--no-progress", *TINY_SET]
    assert main(["train", "--out", str(tmp_path / "full"), *common]) == 0
    command = [sys.executable, "-m", "lgn", "train", "--out", str(tmp_path / "cut"), *common]
    rng, kills, resumes = random.Random(7), 0, 0
    while True:
        proc = subprocess.Popen(command + (["--resume"] if kills else []), stdout=subprocess.PIPE,
                                stderr=subprocess.PIPE, text=True)
        if kills < 3:
            before, deadline = newest_step(tmp_path / "cut"), time.monotonic() + 120
            while proc.poll() is None and newest_step(tmp_path / "cut") <= before and time.monotonic() < deadline:
                time.sleep(0.005)  # until this process has trained a step
            time.sleep(rng.uniform(0.0, 0.3))
            if proc.poll() is None:
                proc.send_signal(signal.SIGKILL)
                proc.communicate(timeout=60)
                kills += 1
                continue
        stdout, stderr = proc.communicate(timeout=120)
        assert proc.returncode == 0, stderr
        resumes += stdout.splitlines()[1].startswith("resuming")  # after the run header
        break
    assert kills == 3 and resumes == 1
    full, cut = load_file(tmp_path / "full" / "model.safetensors"), load_file(tmp_path / "cut" / "model.safetensors")
    assert full.keys() == cut.keys() and all(torch.equal(full[k], cut[k]) for k in full)
    records = [json.loads(line) for line in (tmp_path / "cut" / "metrics.jsonl").read_text().splitlines()]
    expected = [json.loads(line) for line in (tmp_path / "full" / "metrics.jsonl").read_text().splitlines()]
    strip = lambda rs: [{k: v for k, v in r.items() if not k.endswith("_seconds")} for r in rs]  # noqa: E731
    assert strip(records) == strip(expected)


def test_checkpoint_flags_and_a_damaged_checkpoint_warning(tmp_path, npz, capsys):
    out = tmp_path / "run"
    assert _train(npz, out, "--epochs", "2", "--checkpoint-every", "2", "--on-nan", "skip") == 0
    config = json.loads((out / "config.json").read_text())["train"]
    assert config["checkpoint_every"] == 2 and config["on_nan"] == "skip"
    newest = max(out.glob("checkpoint-*.json"), key=lambda p: json.loads(p.read_text())["step"])
    newest.write_text(newest.read_text().replace('"epoch": 2', '"epoch": 1'))
    capsys.readouterr()
    assert main(["train", "--out", str(out), "--resume", "--no-progress"]) == 0
    captured = capsys.readouterr()
    warning, = captured.err.strip().splitlines()
    assert warning.startswith(f"warning: checkpoint {newest.stem} in {out} is damaged")
    assert "in epoch 2 of 2, after batch 1 of 3" in captured.out  # the previous checkpoint: step 4, 3 batches an epoch
    assert [json.loads(line)["epoch"] for line in (out / "metrics.jsonl").read_text().splitlines()] == [1, 2]


def test_unusable_checkpoints_exit_2_with_one_line(tmp_path, npz, capsys):
    import shutil

    assert _train(npz, tmp_path / "a", "--epochs", "1") == 0
    assert _train(npz, tmp_path / "b", "--epochs", "1", "--set", "model.n_groups=3") == 0
    for name in ("checkpoint-0.json", "checkpoint-0.safetensors"):
        shutil.copy(tmp_path / "b" / name, tmp_path / "a" / name)
    capsys.readouterr()
    rc = main(["train", "--out", str(tmp_path / "a"), "--resume", "--epochs", "2"])
    _assert_one_line_error(capsys, rc, "the checkpoint in .* is of another architecture")
    (tmp_path / "b" / "checkpoint-0.safetensors").write_bytes(b"")
    rc = main(["train", "--out", str(tmp_path / "b"), "--resume", "--epochs", "2"])
    _assert_one_line_error(capsys, rc, "no intact checkpoint in .*, so it cannot resume")


def test_nproc_relaunch_keeps_every_other_argument():
    from lgn.cli import build_parser
    from lgn.cli.train import _relaunch_argv

    argv = ["train", "--dataset", "digits", "--out", "runs/x", "--epochs", "3", "--set", "train.lr=0.1",
            "--checkpoint-every", "5", "--on-nan", "skip", "--resume", "--no-progress", "--nproc", "2"]
    args = build_parser().parse_args(argv)
    again = build_parser().parse_args(["train", *_relaunch_argv(args)])
    assert again.nproc is None
    assert {k: v for k, v in vars(args).items() if k != "nproc"} == \
        {k: v for k, v in vars(again).items() if k != "nproc"}


def test_every_train_flag_is_in_the_one_table_and_relaunches():
    import argparse

    from lgn.cli import build_parser
    from lgn.cli.train import FLAGS, _relaunch_argv

    parser = build_parser()
    train = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction)).choices["train"]
    # --nproc is the launcher's; --threads every command's (lgn.cli), passed on to the processes launched
    options = {o for a in train._actions for o in a.option_strings} - {"-h", "--help", "--list-keys", "--nproc",
                                                                      "--threads"}
    assert options == {f"--{f.name}" for f in FLAGS}
    argv = ["train", "--dataset", "digits", "--task", "reconstruct", "--out", "o", "--epochs", "3",
            "--config", "c.toml", "--set", "train.lr=0.1", "--set", "model.eta=0.5", "--seed", "4",
            "--data-dir", "d", "--device", "cpu", "--force", "--checkpoint-every", "5", "--on-nan", "skip",
            "--tensorboard", "--no-progress", "--init-from", "runs/a", "--threads", "2"]
    args = parser.parse_args(argv)
    assert vars(parser.parse_args(["train", *_relaunch_argv(args)])) == vars(args)
    assert sorted(_relaunch_argv(args)) == sorted(argv[1:])


def test_resume_with_more_epochs_extends_and_fewer_exit_2_with_one_line(tmp_path, npz, capsys):
    run = tmp_path / "run"
    assert _train(npz, run, "--epochs", "1") == 0
    capsys.readouterr()
    assert main(["train", "--out", str(run), "--resume", "--epochs", "2", "--no-progress"]) == 0
    out = capsys.readouterr().out
    assert f"resuming {run} after epoch 1 of 2, extended from 1 epochs at step 3" in out and "epoch 2/2" in out
    assert "; best: epoch " in out
    assert [json.loads(line)["epoch"] for line in (run / "metrics.jsonl").read_text().splitlines()] == [1, 2]
    rc = main(["train", "--out", str(run), "--resume", "--epochs", "1", "--no-progress"])
    _assert_one_line_error(capsys, rc, "cannot resume .* with 1 epochs: it is set to 2, and a run is extended, "
                                       "never shortened")


def test_init_from_another_architecture_exits_2_with_one_line(tmp_path, npz, capsys):
    assert _train(npz, tmp_path / "source", "--epochs", "1") == 0
    capsys.readouterr()
    rc = _train(npz, tmp_path / "warm", "--epochs", "1", "--init-from", str(tmp_path / "source"),
                "--set", "model.n_groups=3")
    _assert_one_line_error(capsys, rc, r"cannot start from .*source \(train.init_from\): its weights do not fit "
                                       r"this model: encoder.banks.0.base has shape \(2, 1, 3, 3\) there")
    assert _train(npz, tmp_path / "warm", "--epochs", "1", "--init-from", str(tmp_path / "source")) == 0
