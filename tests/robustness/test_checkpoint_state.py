"""Checkpoints edited with their digests recomputed (issue 41, items 3, 4 and 5).

A checkpoint's optimiser hyper-parameters must be the run's own, its torch
RNG state one torch can restore, and its position and metrics ones such a run
can reach. A slot that fails is damaged: the resume falls back to the other
slot (and then ends bit-identical to the uninterrupted run), or, with no
other, stops with one line naming the slot and the field.
"""

from __future__ import annotations

import json
import traceback
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file

from lgn.cli import main
from tests.robustness.attacks import lines
from tests.train.test_checkpoint import rewrite as rewrite_checkpoint


def _resume(run: Path, capsys, *extra: str) -> tuple[int, str]:
    """``lgn train --out RUN --resume`` in this process: (exit code, stderr); an escaping exception is exit 1."""
    capsys.readouterr()
    try:
        rc = main(["train", "--out", str(run), "--resume", "--no-progress", *extra])
    except BaseException:  # noqa: BLE001 -- the traceback is what the test reports
        return 1, capsys.readouterr().err + traceback.format_exc()
    return rc, capsys.readouterr().err


def _stopped(rc: int, err: str, *names: str) -> None:
    """Exit 2 with one line naming each of ``names``."""
    assert rc == 2 and len(lines(err)) == 1 and err.startswith("lgn train: error: "), f"exit {rc}:\n{err}"
    for name in names:
        assert name in err, f"{name!r} not named: {err}"


def _fell_back(rc: int, err: str, run: Path, reference: Path, *names: str) -> None:
    """Exit 0 after one warning naming checkpoint-1 and ``names``, ending with ``reference``'s weights."""
    assert rc == 0, f"exit {rc}:\n{err}"
    warnings = [line for line in lines(err) if line.startswith("warning: ")]
    assert len(warnings) == 1 and "checkpoint-1" in warnings[0], err
    for name in names:
        assert name in warnings[0], f"{name!r} not named: {warnings[0]}"
    resumed, uninterrupted = load_file(run / "model.safetensors"), load_file(reference / "model.safetensors")
    assert resumed.keys() == uninterrupted.keys()
    assert all(torch.equal(resumed[k], uninterrupted[k]) for k in resumed), "the resumed run ended elsewhere"


def _only_epoch_one(run2: Path) -> None:
    """The two-epoch run as a kill after its first epoch leaves it: checkpoint-1 never written."""
    for name in ("checkpoint-1.json", "checkpoint-1.safetensors"):
        (run2 / name).unlink()


def _group(**changes):
    """An edit of the optimiser's first parameter group."""
    return lambda meta: meta["optimizer"]["param_groups"][0].update(changes)


OPTIMISER = {  # issue 41 item 3: each changes Adam's arithmetic, or crashes it
    "betas-one": dict(betas=[1, 1]),                   # ZeroDivisionError
    "betas-out-of-range": dict(betas=[5, -3]),         # complex numbers
    "amsgrad": dict(amsgrad=True),                     # KeyError: max_exp_avg_sq
    "capturable": dict(capturable=True),               # AssertionError
    "eps-negative": dict(eps=-1),
    "maximize": dict(maximize=True),
    "weight-decay": dict(weight_decay=1e30),
    "differentiable": dict(differentiable=True),
    "decoupled-weight-decay": dict(decoupled_weight_decay=True),
}


@pytest.mark.parametrize("changes", OPTIMISER.values(), ids=OPTIMISER.keys())
def test_optimiser_settings_unlike_the_runs_stop_the_resume(run2, capsys, changes):
    """The run killed after epoch 1, its one checkpoint edited: the resume would train epoch 2 with them."""
    _only_epoch_one(run2)
    rewrite_checkpoint(run2, meta=_group(**changes))
    rc, err = _resume(run2, capsys)
    _stopped(rc, err, "checkpoint-0", f"param_groups[0].{next(iter(changes))}")


def test_optimiser_settings_unlike_the_runs_fall_back_to_the_other_slot(digits_runs, run2, capsys):
    """The two-epoch run with its epoch-2 checkpoint edited: epoch 2 is trained again from epoch 1's."""
    rewrite_checkpoint(run2, "checkpoint-1", meta=_group(betas=[1, 1]))
    rc, err = _resume(run2, capsys)
    _fell_back(rc, err, run2, digits_runs[2], "betas")


def _fill_torch_rng(named: dict) -> None:
    named["rng/torch"] = torch.full_like(named["rng/torch"], 0xFF)


def test_a_torch_rng_state_torch_refuses_stops_the_resume(run2, capsys):
    """``rng/torch`` filled with 0xFF: torch's ``Invalid mt19937 state``, after every check had passed."""
    _only_epoch_one(run2)
    rewrite_checkpoint(run2, tensors=_fill_torch_rng)
    rc, err = _resume(run2, capsys)
    _stopped(rc, err, "checkpoint-0", "rng/torch")


def test_a_torch_rng_state_torch_refuses_falls_back_to_the_other_slot(digits_runs, run2, capsys):
    rewrite_checkpoint(run2, "checkpoint-1", tensors=_fill_torch_rng)
    rc, err = _resume(run2, capsys)
    _fell_back(rc, err, run2, digits_runs[2], "rng/torch")


JUNK = [{"epoch": 1, "step": 5, "train_acc": 1.33, "train_loss": -1.0, "test_acc": 7.0},
        {"epoch": 0, "junk": "carried forward"}]


def _junk_metrics(run: Path) -> None:
    (run / "metrics.jsonl").write_text("".join(json.dumps(r) + "\n" for r in JUNK))


def _written(run: Path) -> list[dict]:
    return [json.loads(line) for line in (run / "metrics.jsonl").read_text().splitlines()]


@pytest.mark.parametrize("version", [2, 3])
def test_an_emptied_state_cannot_skip_the_checks(run2, capsys, version):
    """``state={}`` with step 1e18 and junk lines in metrics.jsonl: the resume exited 0, wrote step
    1000000000000000009 and kept the junk."""
    _only_epoch_one(run2)
    rewrite_checkpoint(run2, meta=lambda m: m.update(state={}, step=10 ** 18, version=version))
    _junk_metrics(run2)
    rc, err = _resume(run2, capsys)
    assert _written(run2) == JUNK, "the refused resume wrote metrics"
    _stopped(rc, err, "checkpoint-0")


def test_the_legacy_single_slot_format_is_refused_in_one_line(run2, capsys):
    """Version 1 (one ``checkpoint`` slot, no self-digest) read junk metrics.jsonl records as the run's."""
    _only_epoch_one(run2)
    rewrite_checkpoint(run2, meta=lambda m: [m.update(version=1), m.pop("meta_sha256"), m.pop("threads"),
                                             m.pop("rng"), m.pop("state"), m.pop("batch")])
    for ext in (".json", ".safetensors"):
        (run2 / f"checkpoint-0{ext}").rename(run2 / f"checkpoint{ext}")
    _junk_metrics(run2)
    rc, err = _resume(run2, capsys)
    assert _written(run2) == JUNK, "the refused resume wrote metrics"
    _stopped(rc, err, "checkpoint.json", "format 1")


IMPOSSIBLE = {  # finite, but no run computes them
    "test-acc-99": ("test_acc", 99.0),
    "train-acc-above-1": ("train_acc", 1.33),
    "train-loss-negative": ("train_loss", -5.0),
    "test-loss-negative": ("test_loss", -0.5),
    "step-not-epochs-times-batches": ("step", 5),
    "epoch-seconds-negative": ("train_seconds", -1.0),
}


@pytest.mark.parametrize("key, value", IMPOSSIBLE.values(), ids=IMPOSSIBLE.keys())
def test_impossible_metrics_stop_the_resume(run1, capsys, key, value):
    rewrite_checkpoint(run1, meta=lambda m: m["state"]["metrics"][0].update({key: value}))
    rc, err = _resume(run1, capsys)
    _stopped(rc, err, "checkpoint-0", "state.metrics[0]", key)


def test_the_untouched_run_resumes(run1, capsys):
    """The guard: the checks above refuse the edits, not the run (a finished run resumes to nothing to do)."""
    rewrite_checkpoint(run1)
    rc, err = _resume(run1, capsys)
    assert rc == 0 and not [line for line in lines(err) if "checkpoint" in line or "error" in line], err
