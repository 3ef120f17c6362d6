import json

import pytest
import torch

from lgn import ModelConfig, build_model
from lgn.models import load_model, save_model


def test_defaults_are_the_papers():
    c = ModelConfig()
    assert (c.n_layers, c.n_groups, c.group_size, c.kernel_size, c.stride, c.eta) == (4, 5, 4, 6, 1, 0.01)
    assert c.padding == 1 and c.generator == "free" and c.regularizer == "aux-inverse"
    assert c.reg_weight == 1e-4
    assert ModelConfig(task="reconstruct").reg_weight == 1e-2


@pytest.mark.parametrize("changes,match", [
    ({"n_groups": 0}, "n_groups"),
    ({"group_size": 0}, "group_size"),
    ({"kernel_size": 0}, "kernel_size"),
    ({"stride": 7}, "stride must be at most"),
    ({"task": "segment"}, "task"),
    ({"generator": "magic"}, "generator"),
    ({"action": "both"}, "action"),
    ({"regularizer": "l1"}, "regularizer"),
    ({"eta": -1.0}, "eta"),
    ({"n_layers": 2.5}, "n_layers"),
    ({"n_layers": True}, "n_layers"),
    ({"image_size": 3, "padding": 0}, "too small"),
    ({"reg_weight": -1}, "reg_weight"),
])
def test_invalid_config_is_refused(changes, match):
    with pytest.raises(ValueError, match=match):
        ModelConfig(**changes)


# every range of [model], as the error states it: the key, the range, the value, one line
RANGES = [(key, 0, "a positive integer") for key in ("in_channels", "image_size", "num_classes", "n_layers",
                                                     "n_groups", "group_size", "kernel_size", "stride", "pool_size")]
RANGES += [
    ("n_layers", 2.5, "a positive integer"), ("n_layers", True, "a positive integer"),
    ("padding", -1, "a non-negative integer"), ("eta", 0.0, "a positive number"), ("eta", "fast", "a positive number"),
    ("eta", float("nan"), "a positive number"), ("reg_weight", -1e-9, "a non-negative number"),
    ("task", "segment", "one of ('classify', 'reconstruct')"), ("action", "both", "one of ('channel', 'joint')"),
    ("regularizer", "l1", "one of ('aux-inverse', 'singular-values', 'none')"),
    ("architecture", "rnn", "one of ('lgn', 'cnn', 'mlp')"), ("orbit_pool", "sum", "one of max, mean or none"),
]


@pytest.mark.parametrize("key, value, words", RANGES)
def test_a_value_out_of_range_names_the_key_and_the_range_in_one_line(key, value, words):
    with pytest.raises(ValueError) as raised:
        ModelConfig(**{key: value})
    assert str(raised.value) == f"model.{key} must be {words}, got {value!r}"


@pytest.mark.parametrize("key, edge", [("n_groups", 1), ("padding", 0), ("eta", 1e-30), ("reg_weight", 0.0),
                                       ("orbit_pool", None), ("orbit_pool", "mean"), ("action", "joint")])
def test_the_edge_of_each_range_is_accepted(key, edge):
    assert getattr(ModelConfig(**{key: edge}), key) == edge


def test_from_dict_rejects_unknown_keys():
    with pytest.raises(ValueError, match="unknown model config key.*n_group\\b"):
        ModelConfig.from_dict({"n_group": 3})
    assert ModelConfig.from_dict(ModelConfig(n_groups=3).to_dict()) == ModelConfig(n_groups=3)


@pytest.mark.parametrize("x,error,match", [
    (torch.randn(1, 28, 28), ValueError, r"expected shape \(batch, 1, height, width\)"),
    (torch.randn(2, 3, 28, 28), ValueError, "3 channels instead of 1"),
    (torch.zeros(2, 1, 28, 28, dtype=torch.int64), TypeError, "floating-point"),
    (torch.full((2, 1, 28, 28), float("nan")), ValueError, "NaN"),
    (torch.full((2, 1, 28, 28), float("inf")), ValueError, "Inf"),
    (torch.randn(2, 1, 3, 3), ValueError, "at least"),
])
def test_model_bad_input(x, error, match):
    with pytest.raises(error, match=match):
        build_model()(x)


def test_model_input_finiteness_is_exact():
    """One NaN or Inf among finite pixels is refused; finite pixels whose sum overflows float32 are not."""
    model = build_model()
    for bad in (float("nan"), float("inf"), -float("inf")):
        x = torch.randn(2, 1, 28, 28)
        x[1, 0, 27, 3] = bad
        with pytest.raises(ValueError, match="NaN or Inf"):
            model(x)
    huge = torch.full((2, 1, 28, 28), 3e38)
    assert not torch.isfinite(huge.sum())
    assert model(huge).shape == (2, 10)


def test_save_and_load_round_trip(tmp_path):
    model = build_model(generator="cyclic", image_size=16).eval()
    save_model(model, tmp_path)
    loaded = load_model(tmp_path)
    x = torch.randn(2, 1, 16, 16)
    torch.testing.assert_close(loaded(x), model(x), rtol=0, atol=0)
    assert loaded.config == model.config


def test_load_refuses_a_model_of_another_architecture(tmp_path):
    save_model(build_model(n_groups=3), tmp_path)
    (tmp_path / "model.json").write_text(json.dumps(ModelConfig(n_groups=4).to_dict()))
    with pytest.raises(ValueError, match="does not match"):
        load_model(tmp_path)


def test_load_refuses_corrupt_weights(tmp_path):
    save_model(build_model(), tmp_path)
    (tmp_path / "model.safetensors").write_bytes(b"not a safetensors file")
    with pytest.raises(ValueError, match="safetensors"):
        load_model(tmp_path)
