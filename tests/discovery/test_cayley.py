"""The Cayley-map cyclic generator against the matrix-exponential one (:class:`lgn.groups.CyclicGenerator`)."""

import numpy as np
import pytest
import torch
from scipy.linalg import logm

from lgn.data.planted import planted_generator
from lgn.discovery.learn import basis_for, block_average_basis, lift_basis
from lgn.groups import operators
from lgn.groups.cayley import CayleyCyclic, cayley
from lgn.groups.generators import CyclicGenerator, cyclic_rotation_block


@pytest.mark.parametrize("dim, order", [(36, 4), (36, 6), (37, 4), (16, 2), (25, 3)])
def test_cayley_generator_is_the_matrix_exponential_group_and_exact_in_float32(dim, order):
    gen = CayleyCyclic(dim, order, 3, generator=torch.Generator().manual_seed(dim + order))
    with torch.no_grad():
        gen.skew.normal_(0.0, 0.5)
    a = gen.matrix().detach()  # (3, D, D), float64
    q = gen.basis().detach()
    assert torch.allclose(q @ q.transpose(-1, -2), torch.eye(dim, dtype=torch.float64).expand(3, dim, dim),
                          atol=1e-12)
    for s in range(3):
        # the same A from the matrix exponential: CyclicGenerator with exp(S − Sᵀ) = Q (Q = logm's exp)
        reference = CyclicGenerator(1, 1, dim, order).double()
        with torch.no_grad():
            reference.skew.copy_(torch.from_numpy(np.real(logm(q[s].numpy())) / 2.0))
        assert torch.allclose(reference.matrix()[0, 0], a[s], atol=1e-8)
        a32 = a[s].float()
        power = torch.linalg.matrix_power(a32, order)
        assert torch.allclose(power, torch.eye(dim), atol=1e-5)  # A^p = I in float32
        for i in range(1, order):  # no smaller power is the identity: the group has order p
            assert not torch.allclose(torch.linalg.matrix_power(a32, i), torch.eye(dim), atol=1e-2)


def test_rotation_in_the_basis_is_the_block_matrix_power():
    dim, order = 30, 6
    gen = CayleyCyclic(dim, order, 1)
    r = torch.from_numpy(cyclic_rotation_block(dim, order))
    u = torch.randn(7, dim, dtype=torch.float64)
    for i in range(-1, order + 1):
        assert torch.allclose(gen.rotate(u, i), u @ torch.linalg.matrix_power(r, i % order).T, atol=1e-12)


def test_cayley_is_orthogonal_and_reanchoring_keeps_the_generator():
    k = torch.randn(4, 10, 10, dtype=torch.float64)
    q = cayley(k - k.transpose(-1, -2))
    assert torch.allclose(q.transpose(-1, -2) @ q, torch.eye(10, dtype=torch.float64).expand(4, 10, 10), atol=1e-12)
    gen = CayleyCyclic(10, 4, 2)
    with torch.no_grad():
        gen.skew.normal_()
    before = gen.matrix()
    gen.reanchor_()
    assert float(gen.skew.detach().abs().max()) == 0.0
    assert torch.allclose(gen.matrix(), before, atol=1e-12)


@pytest.mark.parametrize("name, k", [("rot90", 6), ("shift-x", 6), ("perm4", 6), ("flip", 4)])
def test_basis_for_a_planted_map_reproduces_it(name, k):
    t, order = planted_generator(name, k)
    q = torch.from_numpy(basis_for(t, order))[None]
    gen = CayleyCyclic(k * k, order, 1, anchor=q)
    assert np.allclose(gen.matrix()[0].detach().numpy(), t, atol=1e-9)


@pytest.mark.parametrize("name", ["digits-rot90", "digits-shift-y"])
def test_a_coarse_map_lifts_to_a_full_map_that_acts_as_it_on_block_averaged_images(name):
    t, order = planted_generator(name, 16)
    u = block_average_basis(16)  # (256, 64)
    assert torch.allclose(u.T @ u, torch.eye(64, dtype=torch.float64), atol=1e-12)
    coarse = u.T @ torch.from_numpy(t) @ u  # T on 2×2-averaged images: rot90 or a shift by 2 on 8×8
    expected = operators.rotation(8, 90) if name == "digits-rot90" else operators.shift(8, 0, 2)
    assert np.allclose(coarse.numpy(), expected)
    q = lift_basis(torch.from_numpy(basis_for(expected, order)), u, torch.Generator().manual_seed(0))
    a = CayleyCyclic(256, order, 1, anchor=q[None]).matrix()[0].detach()
    assert torch.allclose(q.T @ q, torch.eye(256, dtype=torch.float64), atol=1e-10)
    assert torch.allclose(a @ u, torch.from_numpy(t) @ u, atol=1e-10)  # A = T on block-constant images
