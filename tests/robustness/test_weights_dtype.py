"""Saved weights of a dtype the run does not compute in (issue 41, item 9).

Complex64 weights evaluated with exit 0 and a torch warning (and a NaN among
them went unseen: the finiteness check looked at real tensors only); int32
weights were cast silently. A saved model's floating weights share one real
float dtype (float16, bfloat16, float32 or float64: a model evaluates in the
dtype it was saved in), and its integer tensors are the counters the model
itself keeps as integers; anything else is refused, naming the file, the
tensor and its dtype.
"""

from __future__ import annotations

import warnings

import pytest
import torch
from safetensors import safe_open
from safetensors.torch import load_file, save_file

from lgn.cli import main
from lgn.models import load_model
from tests.robustness.attacks import lines


def _retype(run, change) -> None:
    path = run / "model.safetensors"
    with safe_open(str(path), "pt") as f:
        metadata = f.metadata()
    state = load_file(str(path))
    change(state)
    save_file(state, str(path), metadata=metadata)


def _floats(state) -> list[str]:
    return sorted(k for k, v in state.items() if v.is_floating_point())


def _all_complex(state) -> None:
    for key in _floats(state):
        state[key] = state[key].to(torch.complex64)


def _complex_with_nan(state) -> None:
    _all_complex(state)
    key = _floats({k: v.real for k, v in state.items() if v.is_complex()})[0]
    state[key] = state[key].clone()
    state[key].view(-1)[0] = complex(float("nan"), 0.0)


def _one_int32(state) -> None:
    key = _floats(state)[0]
    state[key] = state[key].round().to(torch.int32)


def _all_int32(state) -> None:
    for key in _floats(state):
        state[key] = state[key].round().to(torch.int32)


def _mixed_floats(state) -> None:
    key = _floats(state)[0]
    state[key] = state[key].to(torch.float64)


def _counter_as_float(state) -> None:
    key = next(k for k in sorted(state) if k.endswith("num_batches_tracked"))
    state[key] = state[key].to(torch.float32)


CASES = {
    "complex64": (_all_complex, "complex64"),
    "complex64-with-nan": (_complex_with_nan, "complex64"),
    "one-int32": (_one_int32, "int32"),
    "all-int32": (_all_int32, "int32"),
    "float64-among-float32": (_mixed_floats, "float64"),
    "counter-as-float32": (_counter_as_float, "num_batches_tracked"),
}


@pytest.mark.parametrize("change, named", CASES.values(), ids=CASES.keys())
def test_weights_of_another_dtype_are_refused(run1, capsys, change, named):
    _retype(run1, change)
    capsys.readouterr()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        rc = main(["eval", str(run1)])
    err = capsys.readouterr().err
    assert rc == 2 and len(lines(err)) == 1 and "model.safetensors" in err and named in err, \
        f"exit {rc}: {err} (warnings: {[str(w.message)[:100] for w in caught]})"
    with pytest.raises(ValueError, match=named):
        load_model(run1)


@pytest.mark.parametrize("dtype", [torch.float64, torch.float16])
def test_a_model_saved_in_another_float_dtype_still_evaluates(run1, capsys, dtype):
    """The guard: one real float dtype throughout is a model saved in that dtype, and it evaluates."""
    _retype(run1, lambda state: state.update({k: state[k].to(dtype) for k in _floats(state)}))
    assert main(["eval", str(run1)]) == 0, capsys.readouterr().err
    assert next(load_model(run1).parameters()).dtype == dtype
