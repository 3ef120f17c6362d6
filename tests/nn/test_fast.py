"""The fast training path against the straightforward implementation, in float64.

The baseline (lgn/bench/baseline.py) builds its filter bank with explicit matrix
powers and synthesises with ``conv_transpose2d``; ours builds the orbit by
repeated products, folds η and λ into the convolution, and computes the
transposed convolution as a phase convolution. Same weights, same batch: the
outputs, the batch-norm statistics and the gradient of every parameter agree.

The ``path`` fixture runs a test twice: on the fused CPU path, and on the plain
PyTorch operations that every other device (CUDA) takes.
"""

import pytest
import torch
import torch.nn.functional as F

from lgn.bench.baseline import BaselineLGN
from lgn import load_reference_state_dict
from lgn.models.reference import reference_key_map
from lgn.nn import kernels
from lgn.nn.batchnorm import batch_norm
from lgn.nn.functional import adaptive_avg_pool, analysis, fista_step, synthesis

ATOL = 1e-10  # float64


@pytest.fixture(params=["fused", "plain"])
def path(request, monkeypatch):
    if request.param == "plain":
        monkeypatch.setattr(kernels, "fused", lambda x: False)
    return request.param


def _pair(task, channels, stride, size, n_layers=4):
    torch.manual_seed(1)
    base = BaselineLGN(in_channels=channels, num_classes=7, n_layers=n_layers, stride=stride, eta=0.05,
                       task=task).double()
    with torch.no_grad():
        for lam in base.lmbd:  # thresholds that leave part of the code at zero
            lam.uniform_(0.0, 2.0)
    ours = load_reference_state_dict(base.state_dict(), image_size=size, stride=stride, eta=0.05)
    return base.train(), ours.train()


def _loss(out, target):
    return out.square().mean() if target is None else F.cross_entropy(out, target)


@pytest.mark.parametrize("task", ["classify", "reconstruct"])
@pytest.mark.parametrize("channels", [1, 3])
@pytest.mark.parametrize("stride,size", [(1, 14), (1, 13), (2, 15)])
def test_training_step_matches_baseline(path, task, channels, stride, size):
    base, ours = _pair(task, channels, stride, size)
    x = torch.randn(6, channels, size, size, dtype=torch.float64)
    target = torch.randint(0, 7, (6,)) if task == "classify" else None

    out_base, out_ours = base(x), ours(x)
    assert out_ours.shape == out_base.shape
    assert out_base.abs().max() > 1e-3  # not trivially zero
    torch.testing.assert_close(out_ours, out_base, rtol=0, atol=ATOL)

    (_loss(out_base, target) + base.regularization()).backward()
    (_loss(out_ours, target) + ours.encoder.regularization()).backward()
    theirs = dict(base.named_parameters())
    mine = dict(ours.named_parameters())
    key_map = reference_key_map(ours.config, aux_inverse=True)
    checked = 0
    for their_key, my_key in key_map.items():
        if their_key not in theirs:  # batch-norm buffers
            torch.testing.assert_close(ours.state_dict()[my_key], base.state_dict()[their_key], rtol=0, atol=ATOL)
            continue
        g_base, g_ours = theirs[their_key].grad, mine[my_key].grad
        assert g_base is not None and g_ours is not None, their_key
        torch.testing.assert_close(g_ours, g_base, rtol=0, atol=ATOL, msg=f"gradient of {their_key}")
        checked += 1
    assert checked == len(mine)


@pytest.mark.parametrize("channels,kernel,stride,padding,size", [
    (1, 6, 1, 1, (28, 28)), (3, 6, 1, 1, (32, 32)), (2, 5, 2, 2, (17, 14)),
    (1, 4, 3, 0, (13, 11)), (4, 3, 1, 4, (6, 7)), (3, 2, 2, 1, (5, 9)),
])
def test_synthesis_is_the_adjoint_with_its_gradients(path, channels, kernel, stride, padding, size):
    """⟨analysis(x), u⟩ = ⟨x, synthesis(u)⟩, and both gradients equal ``conv2d``'s own."""
    weight = torch.randn(7, channels, kernel, kernel, dtype=torch.float64, requires_grad=True)
    x = torch.randn(3, channels, *size, dtype=torch.float64, requires_grad=True)
    a = analysis(x, weight, stride, padding)
    u = torch.randn_like(a, requires_grad=True)
    s = synthesis(u, weight, stride, padding, size)
    assert s.shape == x.shape
    torch.testing.assert_close((a * u).sum(), (x * s).sum(), rtol=1e-12, atol=0)

    ref = F.conv2d(x, weight, stride=stride, padding=padding)
    torch.testing.assert_close(a, ref, rtol=0, atol=ATOL)
    g = torch.randn_like(a)
    grads = torch.autograd.grad(a, (x, weight), g)
    expected = torch.autograd.grad(ref, (x, weight), g)
    for got, want in zip(grads, expected):
        torch.testing.assert_close(got, want, rtol=0, atol=ATOL)

    # synthesis(u) = ∂⟨analysis(x), u⟩/∂x, so its gradients are second derivatives of conv2d
    gs = torch.randn_like(s)
    grads = torch.autograd.grad(s, (u, weight), gs)
    ref_s = torch.autograd.grad((F.conv2d(x, weight, stride=stride, padding=padding) * u).sum(), x,
                                create_graph=True)[0]
    expected = torch.autograd.grad(ref_s, (u, weight), gs)
    torch.testing.assert_close(s, ref_s, rtol=0, atol=ATOL)
    for got, want in zip(grads, expected):
        torch.testing.assert_close(got, want, rtol=0, atol=ATOL)


@pytest.mark.parametrize("code,kernel,stride,padding,size", [
    (25, 6, 1, 1, (30, 30)), (25, 6, 2, 2, (22, 27)), (25, 6, 1, 0, (25, 31)), (25, 6, 3, 1, (80, 9)),
    (2, 3, 1, 5, (3, 3)), (3, 2, 2, 4, (6, 2)),  # padding beyond the uncropped output: all zeros
])
def test_synthesis_to_any_size(path, code, kernel, stride, padding, size):
    """Sizes analysis does not map to the code's, beyond what conv_transpose2d's output padding reaches
    or short of it: the full transposed convolution (the gradient of a padding-free conv2d) is cropped to
    the window from row ``padding`` on, and rows it never reaches are zero."""
    u = torch.randn(2, 4, code, code, dtype=torch.float64, requires_grad=True)
    weight = torch.randn(4, 2, kernel, kernel, dtype=torch.float64, requires_grad=True)
    full_size = (code - 1) * stride + kernel
    x = torch.zeros(2, 2, full_size, full_size, dtype=torch.float64, requires_grad=True)
    full = torch.autograd.grad((F.conv2d(x, weight, stride=stride) * u).sum(), x, create_graph=True)[0]
    reach = padding + max(size) - full_size  # rows and columns past ``full`` the window reaches
    want = F.pad(full, (0, max(0, reach), 0, max(0, reach)))[..., padding:padding + size[0], padding:padding + size[1]]
    got = synthesis(u, weight, stride, padding, size)
    assert got.shape == (2, 2, *size)
    torch.testing.assert_close(got, want, rtol=0, atol=ATOL)
    g = torch.randn_like(want)
    for a, b in zip(torch.autograd.grad(got, (u, weight), g), torch.autograd.grad(want, (u, weight), g)):
        torch.testing.assert_close(a, b, rtol=0, atol=ATOL)


def _graph(out: torch.Tensor) -> set[str]:
    """The names of the autograd nodes ``out`` was computed by."""
    nodes, todo = set(), [out.grad_fn]
    while todo:
        node = todo.pop()
        if node is not None and node not in nodes:
            nodes.add(node)
            todo.extend(next_node for next_node, _ in node.next_functions)
    return {node.name() for node in nodes}


def test_plain_path_is_plain_autograd(monkeypatch):
    """Off the CPU, no custom autograd function: every node of the graph is one of PyTorch's own."""
    monkeypatch.setattr(kernels, "fused", lambda x: False)
    _, ours = _pair("classify", 3, 1, 14)
    names = _graph(ours(torch.randn(2, 3, 14, 14, dtype=torch.float64)))
    assert {"ConvolutionBackward0", "ReluBackward0"} <= names
    assert not [name for name in names if name.startswith("_")], names


def test_cpu_takes_the_fused_path():
    _, ours = _pair("classify", 3, 1, 14)
    names = _graph(ours.float()(torch.randn(2, 3, 14, 14)))
    assert {"_FistaStepBackward", "_BatchNormBackward"} <= names, names
    assert "ConvolutionBackward0" not in names


@pytest.mark.parametrize("channels,size", [(1, 28), (3, 32)])
def test_bfloat16_autocast_takes_the_plain_path_and_keeps_the_loss(channels, size):
    """Under bfloat16 autocast the model runs PyTorch's own operations in bfloat16, and its loss stays within
    1e-3 (relative) of float32's on the same weights and batch; every gradient is float32, for float32 weights."""
    from lgn.models import build_model

    torch.manual_seed(0)
    model = build_model(in_channels=channels).train()
    x, y = torch.randn(32, channels, size, size), torch.randint(0, 10, (32,))
    loss32 = F.cross_entropy(model(x), y)
    with torch.autocast("cpu", dtype=torch.bfloat16):
        assert not kernels.fused(x)
        out = model(x)
    assert out.dtype == torch.bfloat16
    names = _graph(out)
    assert "ConvolutionBackward0" in names and "_FistaStepBackward" not in names, names
    loss16 = F.cross_entropy(out.float(), y)
    assert abs(float(loss16.detach()) - float(loss32.detach())) <= 1e-3 * float(loss32.detach())
    loss16.backward()
    grads = [p.grad for p in model.parameters() if p.grad is not None]
    assert grads and all(g.dtype == torch.float32 and bool(g.isfinite().all()) for g in grads)


def test_cached_constants_survive_inference_mode():
    """Inference first, then training: the cached phase and pooling matrices are ordinary tensors
    (cached inference tensors failed the backward pass: they cannot be saved for it)."""
    kernels._phase_selection.cache_clear()
    kernels._pooling_weights.cache_clear()
    _, ours = _pair("classify", 3, 1, 14)
    ours = ours.float()
    x = torch.randn(4, 3, 14, 14)
    with torch.inference_mode():
        ours.eval()(x)
    F.cross_entropy(ours.train()(x), torch.zeros(4, dtype=torch.long)).backward()
    assert all(t.grad is not None for t in ours.encoder.thresholds)


def test_analysis_bias_gradient(path):
    weight = torch.randn(4, 2, 3, 3, dtype=torch.float64)
    bias = torch.randn(4, dtype=torch.float64, requires_grad=True)
    x = torch.randn(2, 2, 8, 8, dtype=torch.float64)
    g = torch.randn(2, 4, 8, 8, dtype=torch.float64)
    got = torch.autograd.grad(analysis(x, weight, 1, 1, bias), bias, g)[0]
    torch.testing.assert_close(got, g.sum((0, 2, 3)), rtol=0, atol=ATOL)


def test_second_derivatives_flow_through_both_convolutions(path):
    weight = torch.randn(3, 1, 3, 3, dtype=torch.float64, requires_grad=True)
    u = torch.randn(2, 3, 6, 6, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradgradcheck(lambda u, w: synthesis(u, w, 1, 1, (6, 6)), (u, weight))
    x = torch.randn(2, 1, 6, 6, dtype=torch.float64, requires_grad=True)
    assert torch.autograd.gradgradcheck(lambda x, w: analysis(x, w, 1, 1), (x, weight))


@pytest.mark.parametrize("channels", [1, 3])
def test_float32_fused_path_matches_float64_baseline(path, channels):
    """float32 on CPU takes oneDNN's fused convolutions, which float64 never reaches."""
    base, ours = _pair("classify", channels, 1, 14)
    ours = ours.float()
    x = torch.randn(16, channels, 14, 14, dtype=torch.float64)
    target = torch.randint(0, 7, (16,))
    out_base, out_ours = base(x), ours(x.float())
    torch.testing.assert_close(out_ours.double(), out_base, rtol=0, atol=1e-5)
    (_loss(out_base, target) + base.regularization()).backward()
    (_loss(out_ours, target) + ours.encoder.regularization()).backward()
    theirs, mine = dict(base.named_parameters()), dict(ours.named_parameters())
    for their_key, my_key in reference_key_map(ours.config, aux_inverse=True).items():
        if their_key in theirs:
            torch.testing.assert_close(mine[my_key].grad.double(), theirs[their_key].grad, rtol=1e-4, atol=1e-5,
                                       msg=f"gradient of {their_key}")


@pytest.mark.parametrize("dtype", [torch.float32, torch.float64])
@pytest.mark.parametrize("first", [True, False])
@pytest.mark.parametrize("s,pad,size", [(1, 1, (9, 9)), (2, 2, (11, 10))])
def test_fista_step_is_the_composition(path, dtype, first, s, pad, size):
    """float32 on CPU runs oneDNN's fused convolutions; float64 the separate ops."""
    torch.manual_seed(2)
    eta = 0.3
    weight = torch.randn(6, 2, 3, 3, dtype=torch.float64, requires_grad=True)
    bias = torch.randn(6, dtype=torch.float64, requires_grad=True)
    y = torch.randn(4, 2, *size, dtype=torch.float64, requires_grad=True)
    h, w = ((n + 2 * pad - 3) // s + 1 for n in size)
    u = None if first else torch.randn(4, 6, h, w, dtype=torch.float64).relu().requires_grad_()
    r = y if first else y - synthesis(u, weight, s, pad, size)
    expected = analysis(r, weight * eta, s, pad, bias) + (0 if first else u)
    expected = expected.relu()
    leaves = [t for t in (y, u, weight, bias) if t is not None]
    g = torch.randn_like(expected)
    want = torch.autograd.grad(expected, leaves, g)
    cast = [t.detach().to(dtype).requires_grad_() for t in leaves]
    ys, us = cast[0], None if first else cast[1]
    got_out = fista_step(ys, us, cast[-2], eta, cast[-1], s, pad)
    got = torch.autograd.grad(got_out, cast, g.to(dtype))
    tol = ATOL if dtype == torch.float64 else 1e-5
    torch.testing.assert_close(got_out.double(), expected, rtol=0, atol=tol)
    for a, b in zip(got, want):
        torch.testing.assert_close(a.double(), b, rtol=0, atol=tol * 10)


@pytest.mark.parametrize("toward,momentum", [(False, 0.1), (True, 0.1), (True, None)])
def test_batch_norm_matches_module(path, toward, momentum):
    torch.manual_seed(3)
    x = torch.randn(5, 4, 6, 7, dtype=torch.float64).relu() + 0.5
    prev = torch.randn_like(x).relu() if toward else None
    ours = torch.nn.BatchNorm2d(4, momentum=momentum).double()
    with torch.no_grad():
        ours.weight.uniform_(0.5, 1.5)
        ours.bias.normal_()
    ref = torch.nn.BatchNorm2d(4, momentum=momentum).double()
    ref.load_state_dict(ours.state_dict())
    leaves = [t.clone().requires_grad_() for t in ([x, prev] if toward else [x])]
    ref_leaves = [t.clone().requires_grad_() for t in leaves]
    for step in range(2):  # twice: the running statistics' second update too
        out = batch_norm(leaves[0], ours, leaves[1] if toward else None, -0.4)
        m = torch.lerp(ref_leaves[0], ref_leaves[1], -0.4) if toward else ref_leaves[0]
        expected = ref(m)
    torch.testing.assert_close(out, expected, rtol=0, atol=ATOL)
    g = torch.randn_like(out)
    got = torch.autograd.grad(out, leaves + [ours.weight, ours.bias], g)
    want = torch.autograd.grad(expected, ref_leaves + [ref.weight, ref.bias], g)
    for a, b in zip(got, want):
        torch.testing.assert_close(a, b, rtol=0, atol=ATOL)
    for key, value in ref.state_dict().items():
        torch.testing.assert_close(ours.state_dict()[key], value, rtol=0, atol=ATOL)


@pytest.mark.parametrize("height,width,size", [(25, 25, 4), (29, 29, 4), (7, 5, 3), (3, 9, 4), (4, 4, 4)])
def test_adaptive_avg_pool_matches_torch(path, height, width, size):
    x = torch.randn(3, 5, height, width, dtype=torch.float64, requires_grad=True)
    got, want = adaptive_avg_pool(x, size), F.adaptive_avg_pool2d(x, size)
    torch.testing.assert_close(got, want, rtol=0, atol=ATOL)
    g = torch.randn_like(want)
    torch.testing.assert_close(torch.autograd.grad(got, x, g)[0], torch.autograd.grad(want, x, g)[0],
                               rtol=0, atol=ATOL)


@pytest.mark.cuda
@pytest.mark.parametrize("task", ["classify", "reconstruct"])
def test_training_step_matches_baseline_on_cuda(task):
    base, ours = _pair(task, 3, 1, 16)
    base, ours = base.cuda(), ours.cuda()
    x = torch.randn(4, 3, 16, 16, dtype=torch.float64, device="cuda")
    target = torch.randint(0, 7, (4,), device="cuda") if task == "classify" else None
    out_base, out_ours = base(x), ours(x)
    torch.testing.assert_close(out_ours, out_base, rtol=0, atol=ATOL)
    _loss(out_base, target).backward()
    _loss(out_ours, target).backward()
    mine = dict(ours.named_parameters())
    for their_key, my_key in reference_key_map(ours.config, aux_inverse=True).items():
        p = dict(base.named_parameters()).get(their_key)
        if p is not None and p.grad is not None:
            torch.testing.assert_close(mine[my_key].grad, p.grad, rtol=0, atol=ATOL)
