"""Batch norm over a group of processes, checked in one process against the batch they hold together."""

import pytest
import torch

from lgn.nn import kernels
from lgn.nn.batchnorm import BatchNorm2d, batch_norm

ATOL = 1e-10  # float64


class _Mirrored:
    """A group of ``size`` processes holding the same batch: a sum over them is ``size`` times the local one."""

    def __init__(self, size: int):
        self.size, self.calls = size, 0

    def all_reduce_(self, tensors):
        self.calls += 1
        for t in tensors:
            t.mul_(self.size)


@pytest.fixture(params=["fused", "plain"])
def path(request, monkeypatch):
    if request.param == "plain":
        monkeypatch.setattr(kernels, "fused", lambda x: False)
    return request.param


def test_module_is_torchs_with_the_same_state():
    ours, theirs = BatchNorm2d(5), torch.nn.BatchNorm2d(5)
    assert isinstance(ours, torch.nn.BatchNorm2d) and ours.group is None
    assert ours.state_dict().keys() == theirs.state_dict().keys()


@pytest.mark.parametrize("toward", [False, True])
def test_statistics_and_gradients_over_a_group_are_those_of_the_whole_batch(path, toward):
    torch.manual_seed(4)
    x = torch.randn(3, 4, 5, 6, dtype=torch.float64).relu() + 0.5
    prev = torch.randn_like(x) if toward else None
    ours = BatchNorm2d(4).double()
    with torch.no_grad():
        ours.weight.uniform_(0.5, 1.5)
        ours.bias.normal_()
    ref = torch.nn.BatchNorm2d(4).double()
    ref.load_state_dict(ours.state_dict())
    group = _Mirrored(2)
    ours.group = group

    leaves = [t.clone().requires_grad_() for t in ([x, prev] if toward else [x])]
    out = ours(leaves[0], leaves[1] if toward else None, -0.3)
    # the reference: one process holding both processes' (equal) batches
    ref_leaves = [torch.cat([t, t]).requires_grad_() for t in ([x, prev] if toward else [x])]
    m = torch.lerp(ref_leaves[0], ref_leaves[1], -0.3) if toward else ref_leaves[0]
    expected = ref(m)
    torch.testing.assert_close(out, expected[:3], rtol=0, atol=ATOL)
    for key, value in ref.state_dict().items():  # running statistics of the whole batch
        torch.testing.assert_close(ours.state_dict()[key], value, rtol=0, atol=ATOL)

    g = torch.randn_like(out)
    got = torch.autograd.grad(out, leaves + [ours.weight, ours.bias], g)
    want = torch.autograd.grad(expected, ref_leaves + [ref.weight, ref.bias], torch.cat([g, g]))
    for a, b in zip(got[:len(leaves)], want[:len(leaves)]):  # this process's share of the input gradients
        torch.testing.assert_close(a, b[:3], rtol=0, atol=ATOL)
    for a, b in zip(got[len(leaves):], want[len(leaves):]):  # weight and bias: this process's half of the sum
        torch.testing.assert_close(a, b / 2, rtol=0, atol=ATOL)
    assert group.calls == 2  # one collective forward, one backward


def test_group_is_unused_in_evaluation():
    norm = BatchNorm2d(3).eval()
    norm.group = _Mirrored(2)
    x = torch.randn(2, 3, 4, 4)
    torch.testing.assert_close(norm(x), batch_norm(x, torch.nn.BatchNorm2d(3).eval()), rtol=0, atol=0)
    assert norm.group.calls == 0
