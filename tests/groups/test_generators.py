import numpy as np
import pytest
import torch

from lgn.groups import (CyclicGenerator, FixedGenerator, FreeGenerator, GeneratorShape, make_generator,
                        matrix_powers, operators, orbit)
from lgn.groups.generators import cyclic_rotation_block


@pytest.mark.parametrize("order", [1, 2, 3, 4, 5, 6, 7])
@pytest.mark.parametrize("dim", [1, 4, 9, 36])
def test_rotation_block_has_exact_order(order, dim):
    r = cyclic_rotation_block(dim, order)
    np.testing.assert_allclose(np.linalg.matrix_power(r, order), np.eye(dim), atol=1e-12)
    np.testing.assert_allclose(r @ r.T, np.eye(dim), atol=1e-12)
    if order > 1 and dim >= order:  # no smaller power is the identity
        for q in range(1, order):
            assert not np.allclose(np.linalg.matrix_power(r, q), np.eye(dim))


@pytest.mark.parametrize("dtype,atol", [(torch.float32, 1e-5), (torch.float64, 1e-10)])
@pytest.mark.parametrize("order", [2, 3, 4, 6])
@pytest.mark.parametrize("scale", [0.1, 1.0, 30.0])
def test_cyclic_generator_is_exact_group(dtype, atol, order, scale):
    gen = CyclicGenerator(3, 2, 36, order).to(dtype)
    with torch.no_grad():
        gen.skew.normal_(0, scale)
    a = gen.matrix()
    assert a.dtype == dtype
    eye = torch.eye(36, dtype=dtype)
    power = torch.linalg.matrix_power(a, order)
    assert (power - eye).abs().max().item() < atol
    # a genuine generator: its first power is not the identity
    assert (a - eye).abs().max().item() > 0.1


def test_cyclic_generator_stays_exact_and_finite_under_training():
    gen = CyclicGenerator(2, 1, 16, 4)
    opt = torch.optim.Adam(gen.parameters(), lr=0.5)
    target = torch.randn(2, 1, 16, 16)
    for _ in range(50):
        loss = ((gen.matrix() - target) ** 2).sum()
        opt.zero_grad()
        loss.backward()
        opt.step()
    a = gen.matrix()
    assert torch.isfinite(a).all()
    assert (torch.linalg.matrix_power(a, 4) - torch.eye(16)).abs().max().item() < 1e-5


def test_free_generator_projection_and_regularizers():
    gen = FreeGenerator(3, 2, 9, "aux-inverse")
    with torch.no_grad():
        gen.weight.mul_(7.0)
    gen.project_()
    norms = gen.weight.flatten(2).norm(dim=-1)
    torch.testing.assert_close(norms, torch.ones(3, 2))
    a, b = gen.weight.detach().double().numpy(), gen.inverse.detach().double().numpy()
    expected = sum(np.linalg.norm(a[i, j] @ b[i, j] - np.eye(9)) for i in range(3) for j in range(2))
    assert gen.regularization().item() == pytest.approx(expected, rel=1e-5)

    sv = FreeGenerator(3, 2, 9, "singular-values")
    a = sv.weight.detach().double().numpy()
    expected = -sum(np.linalg.svd(a[i, j], compute_uv=False).sum() for i in range(3) for j in range(2))
    assert sv.regularization().item() == pytest.approx(expected, rel=1e-5)
    assert sv.inverse is None
    assert FreeGenerator(3, 2, 9, "none").regularization().item() == 0.0


def test_free_generator_rejects_unknown_regularizer():
    with pytest.raises(ValueError, match="regularizer"):
        FreeGenerator(1, 1, 4, "l2")


def test_fixed_generator_from_named_operator():
    gen = make_generator("fixed:rot90", GeneratorShape(n_groups=2, n_blocks=3, dim=9, order=4, kernel_size=3))
    assert isinstance(gen, FixedGenerator)
    a = gen.matrix()
    assert a.shape == (2, 3, 9, 9)
    kernel = torch.arange(9.0).reshape(3, 3)
    rotated = (a[0, 0] @ kernel.reshape(9)).reshape(3, 3)
    torch.testing.assert_close(rotated, torch.rot90(kernel, 1))
    assert not any(True for _ in gen.parameters())


def test_fixed_generator_joint_action_is_block_diagonal():
    gen = make_generator("fixed:flip-x", GeneratorShape(n_groups=1, n_blocks=1, dim=2 * 9, order=2, kernel_size=3,
                                                        channels_per_block=2))
    a = gen.matrix()[0, 0]
    single = torch.as_tensor(operators.flip(3, "x"), dtype=a.dtype)
    torch.testing.assert_close(a, torch.block_diag(single, single))


@pytest.mark.parametrize("kind", ["cyclics", "fixed:nope", "fixed"])
def test_make_generator_rejects_unknown_kinds(kind):
    with pytest.raises(ValueError):
        make_generator(kind, GeneratorShape(n_groups=1, n_blocks=1, dim=9, order=2, kernel_size=3))


@pytest.mark.parametrize("bad", [0, -1, 2.5])
def test_generator_counts_must_be_positive_integers(bad):
    with pytest.raises(ValueError):
        FreeGenerator(bad, 1, 4)


def test_orbit_matches_explicit_matrix_powers():
    a = torch.randn(3, 2, 5, 5, dtype=torch.float64)
    b = torch.randn(3, 2, 5, dtype=torch.float64)
    out = orbit(a, b, 4)
    assert out.shape == (4, 3, 2, 5)
    for i in range(4):
        explicit = torch.linalg.matrix_power(a, i) @ b.unsqueeze(-1)
        torch.testing.assert_close(out[i], explicit.squeeze(-1), rtol=0, atol=1e-12)
    powers = matrix_powers(a, 4)
    for i in range(4):
        torch.testing.assert_close(powers[i], torch.linalg.matrix_power(a, i), rtol=0, atol=1e-12)


def test_orbit_rejects_mismatched_sizes():
    with pytest.raises(ValueError, match="size"):
        orbit(torch.randn(2, 4, 4), torch.randn(2, 5), 3)
    with pytest.raises(ValueError, match="order"):
        orbit(torch.randn(2, 4, 4), torch.randn(2, 4), 0)


def _select(order=4, k=6, n_groups=3, n_blocks=1, kind="select"):
    return make_generator(kind, GeneratorShape(n_groups=n_groups, n_blocks=n_blocks, dim=k * k, order=order,
                                               kernel_size=k))


@pytest.mark.parametrize("kind", ["select", "select-divisor"])
def test_selection_generator_is_always_an_exact_candidate(kind):
    gen = _select(kind=kind)
    lib = operators.permutation_operations(6, 4, exact=kind == "select")
    assert list(lib) == (["rot90", "rot270"] if kind == "select" else list(operators.permutation_operations(6, 4)))
    assert gen.names == list(lib)
    a = gen.matrix()  # in training mode too: the straight-through value is exactly the chosen candidate
    assert a.requires_grad
    for g, (name,) in enumerate(gen.chosen()):
        np.testing.assert_array_equal(a[g, 0].detach().double().numpy(), lib[name])
        power = torch.linalg.matrix_power(a[g, 0].detach().double(), 4)
        assert (power - torch.eye(36, dtype=torch.float64)).abs().max().item() < 1e-6


@pytest.mark.parametrize("kind,start", [("select-divisor", "flip-x"), ("select", "rot270")])
def test_selection_moves_to_the_candidate_the_loss_prefers_then_freezes(kind, start):
    torch.manual_seed(0)
    gen = _select(n_groups=2, kind=kind)
    target = gen.names.index("rot90")
    with torch.no_grad():  # start every group on another operation
        gen.logits.zero_()
        gen.logits[..., gen.names.index(start)] = 0.5
    gen.project_()
    assert gen.chosen() == [[start], [start]]
    x = torch.randn(64, 36)
    t = torch.from_numpy(operators.rotation(6, 90)).float()
    opt = torch.optim.Adam(gen.parameters(), lr=0.05)
    while not gen.frozen:
        loss = ((x @ gen.matrix()[:, 0].transpose(-1, -2) - x @ t.T) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        gen.project_()
    assert gen.frozen and int(gen.step) == gen.steps
    assert gen.chosen() == [["rot90"], ["rot90"]] and (gen.choice == target).all()
    with torch.no_grad():  # after the anneal the choice no longer follows the logits
        gen.logits[..., gen.names.index(start)] = 100.0
    gen.project_()
    assert gen.chosen() == [["rot90"], ["rot90"]]
    a = gen.matrix()
    assert not a.requires_grad
    torch.testing.assert_close(a[:, 0], t.expand(2, 36, 36), rtol=0, atol=0)


def test_selection_joint_action_repeats_the_operation_per_channel():
    gen = make_generator("select", GeneratorShape(n_groups=2, n_blocks=1, dim=3 * 16, order=4, kernel_size=4,
                                                  channels_per_block=3))
    a = gen.matrix()[0, 0].detach().double().numpy()
    op = operators.permutation_operations(4, 4, exact=True)[gen.chosen()[0][0]]
    np.testing.assert_array_equal(a, np.kron(np.eye(3), op))


def test_selection_without_candidates_is_refused():
    with pytest.raises(ValueError, match="order dividing group_size=3"):
        _select(order=3, k=5, kind="select-divisor")
    with pytest.raises(ValueError, match="order equal to group_size=3"):
        _select(order=3, k=5, kind="select")


@pytest.mark.parametrize("order", [2, 4, 6])
def test_permutation_generator_is_an_exact_permutation_of_the_order(order):
    from lgn.groups import PermutationGenerator

    torch.manual_seed(1)
    gen = PermutationGenerator(3, 2, 36, order)
    a = gen.matrix().detach().double()
    eye = torch.eye(36, dtype=torch.float64)
    assert set(a.unique().tolist()) == {0.0, 1.0} and (a.sum(-1) == 1).all() and (a.sum(-2) == 1).all()
    assert (torch.linalg.matrix_power(a, order) - eye).abs().max().item() < 1e-6
    assert not torch.equal(a[0, 0], a[1, 0])  # random starts: different pixel cycles


def test_permutation_generator_learns_a_target_permutation_and_freezes():
    from lgn.groups import PermutationGenerator

    torch.manual_seed(0)
    k = 4
    gen = PermutationGenerator(1, 1, k * k, 4, steps=150)
    t = torch.from_numpy(operators.rotation(k, 90)).float()
    start = gen.matrix().detach().clone()
    x = torch.randn(256, k * k)
    opt = torch.optim.Adam(gen.parameters(), lr=0.1)
    while not gen.frozen:
        loss = ((x @ gen.matrix()[0, 0].T - x @ t.T) ** 2).mean()
        opt.zero_grad()
        loss.backward()
        opt.step()
        gen.project_()
    a = gen.matrix().detach()[0, 0]
    assert gen.frozen and not torch.equal(a, start[0, 0])  # the permutation moved
    # closer to the target than where it started (an exact hit is not guaranteed)
    assert (a * t).sum() > (start[0, 0] * t).sum()
    assert (torch.linalg.matrix_power(a.double(), 4) - torch.eye(k * k, dtype=torch.float64)).abs().max() < 1e-6
