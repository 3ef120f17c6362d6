"""Import of the authors' checkpoint layout, checked against the straightforward implementation."""

import pytest
import torch

from lgn.bench.baseline import BaselineLGN
from lgn import load_reference_state_dict, to_reference_state_dict


def _randomise_batch_norm(model):
    with torch.no_grad():
        for bn in getattr(model, "bn", []):
            bn.weight.uniform_(0.5, 1.5)
            bn.bias.normal_(0, 0.1)
            bn.running_mean.normal_(0, 0.1)
            bn.running_var.uniform_(0.5, 2.0)
        for lam in model.lmbd:
            lam.uniform_(0.0, 2.0)


@pytest.mark.parametrize("task", ["classify", "reconstruct"])
@pytest.mark.parametrize("channels,size,stride,classes", [(1, 28, 1, 10), (3, 32, 1, 7), (1, 27, 2, 10)])
def test_import_matches_reference_forward(task, channels, size, stride, classes):
    ref = BaselineLGN(in_channels=channels, num_classes=classes, n_layers=3, group_size=3, kernel_size=5,
                      stride=stride, eta=0.05, task=task)
    _randomise_batch_norm(ref)
    ref.eval()
    model = load_reference_state_dict(ref.state_dict(), image_size=size, stride=stride, eta=0.05)
    c = model.config
    assert (c.n_layers, c.n_groups, c.group_size, c.in_channels, c.kernel_size, c.task) == \
        (3, 5, 3, channels, 5, task)
    if task == "classify":
        assert c.num_classes == classes
    assert not model.training
    x = torch.randn(6, channels, size, size)
    with torch.no_grad():
        diff = (model(x) - ref(x)).abs().max().item()
    assert diff <= 1e-4


def test_import_round_trips_to_the_reference_layout():
    ref = BaselineLGN(n_layers=2)
    sd = ref.state_dict()
    back = to_reference_state_dict(load_reference_state_dict(sd, image_size=28))
    assert set(back) == set(sd)
    for k in sd:
        torch.testing.assert_close(back[k], sd[k], rtol=0, atol=0)


def test_import_without_aux_inverse():
    sd = {k: v for k, v in BaselineLGN(n_layers=2).state_dict().items() if not k.startswith("A_inv")}
    assert load_reference_state_dict(sd, image_size=28).config.regularizer == "none"


def _state():
    return dict(BaselineLGN(n_layers=2).state_dict())


@pytest.mark.parametrize("mutate,match", [
    (lambda sd: sd.pop("A.1"), "missing key 'A.1'"),
    (lambda sd: [sd.pop("fc.weight"), sd.pop("fc.bias")], "neither"),
    (lambda sd: sd.update({"A.0": torch.randn(5, 1, 30, 30)}), "'A.0' must have shape"),
    (lambda sd: sd.update({"lmbd.1": torch.randn(1, 21, 1, 1)}), "'lmbd.1' must have shape"),
    (lambda sd: sd.update({"bn.0.weight": torch.randn(3)}), "'bn.0.weight' must have shape"),
    (lambda sd: sd.update({"extra": torch.zeros(1)}), "unexpected key"),
    (lambda sd: sd.update({"B.0": torch.randn(5, 1, 6)}), "'B.0' must have 4 dimensions"),
    (lambda sd: sd.update({"lmbd.0": torch.randn(1, 22, 1, 1)}), "not a multiple"),
    (lambda sd: [sd.pop(k) for k in list(sd) if k.startswith("B.")], "no 'B"),
    (lambda sd: sd.update({"fc.weight": torch.randn(10, 321)}), "fc.weight"),
])
def test_import_refuses_bad_state_dicts(mutate, match):
    sd = _state()
    mutate(sd)
    with pytest.raises(ValueError, match=match):
        load_reference_state_dict(sd, image_size=28)


def test_import_refuses_non_mappings():
    with pytest.raises(TypeError, match="mapping"):
        load_reference_state_dict([1, 2], image_size=28)
