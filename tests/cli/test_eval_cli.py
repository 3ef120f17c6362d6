import json

import pytest

from lgn.cli import main
from tests.train.helpers import TINY_SET, write_tiny_npz


@pytest.fixture(scope="module")
def run(tmp_path_factory):
    tmp = tmp_path_factory.mktemp("eval")
    npz = write_tiny_npz(tmp / "tiny.npz")
    out = tmp / "run"
    assert main(["train", "--dataset", f"npz:{npz}", "--out", str(out), "--epochs", "1", "--no-progress",
                 *TINY_SET]) == 0
    return out


def test_eval_reproduces_the_last_epoch(run, capsys):
    capsys.readouterr()
    assert main(["eval", str(run)]) == 0
    last = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
    line = capsys.readouterr().out.strip()
    assert line.startswith(f"test_acc {last['test_acc']:.4f}  test_loss {last['test_loss']:.4f}  (24 test examples")


def test_eval_other_dataset_and_split(run, tmp_path, capsys):
    other = write_tiny_npz(tmp_path / "other.npz", n_train=9, n_test=6, size=12, seed=5)
    capsys.readouterr()
    assert main(["eval", str(run), "--dataset", f"npz:{other}", "--split", "train", "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["dataset"] == f"npz:{other}" and result["split"] == "train" and result["examples"] == 9
    assert 0 <= result["acc"] <= 1


@pytest.mark.parametrize("args, message", [
    (["{tmp}"], "no config.json in"),
    (["{run}", "--dataset", "nope"], "unknown dataset 'nope'"),
    (["{run}", "--dataset", "digits", "--batch-size", "0"], "--batch-size must be at least 1"),
    (["{run}", "--dataset", "cifar10"], "give --data-dir"),
])
def test_eval_errors(run, tmp_path, capsys, args, message):
    rc = main(["eval", *[a.format(run=run, tmp=tmp_path) for a in args]])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and message in err[0], err


def test_eval_refuses_other_channels(run, tmp_path, capsys):
    import numpy as np

    path = tmp_path / "rgb.npz"
    x = np.zeros((2, 3, 10, 10))
    np.savez(path, x_train=x, y_train=[0, 1], x_test=x, y_test=[0, 1])
    rc = main(["eval", str(run), "--dataset", f"npz:{path}"])
    err = capsys.readouterr().err.strip().splitlines()
    assert rc == 2 and len(err) == 1 and "expects (N, 1, H, W)" in err[0], err


def test_a_run_folder_whose_name_is_not_utf8(run, tmp_path, capsys):
    import os
    import shutil
    from pathlib import Path

    odd = Path(os.fsdecode(bytes(tmp_path) + b"/run-\xff\xfe"))
    shutil.copytree(run, odd)
    capsys.readouterr()
    assert main(["eval", str(odd), "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["examples"] == 24
    assert main(["analyze", str(odd), "--out", str(tmp_path / "analysis"), "--no-figures"]) == 0


@pytest.mark.parametrize("dtype", ["float16", "float64"])
def test_eval_of_a_model_saved_in_another_float_dtype(run, tmp_path, capsys, dtype):
    import shutil

    import torch

    from lgn.models import load_model, save_model

    other = tmp_path / dtype
    shutil.copytree(run, other)
    save_model(load_model(run).to(getattr(torch, dtype)), other)
    assert load_model(other).encoder.thresholds[0].dtype == getattr(torch, dtype)
    capsys.readouterr()
    assert main(["eval", str(other), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    last = json.loads((run / "metrics.jsonl").read_text().splitlines()[-1])
    assert result["acc"] == pytest.approx(last["test_acc"], abs=0.05)


def test_eval_best_scores_the_best_epoch(tmp_path, capsys):
    from lgn.runs import read_run_record
    from lgn.train import train
    from tests.train.helpers import tiny_settings

    npz = write_tiny_npz(tmp_path / "tiny.npz")
    result = train(tiny_settings(npz, epochs=3), tmp_path / "run", log=None)
    best = read_run_record(tmp_path / "run")["best"]
    assert main(["eval", str(tmp_path / "run"), "--best", "--json"]) == 0
    scored = json.loads(capsys.readouterr().out)
    assert scored["acc"] == pytest.approx(best["value"])
    assert scored["loss"] == pytest.approx(result.metrics[best["epoch"] - 1]["test_loss"], rel=1e-5)
