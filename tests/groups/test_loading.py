"""Loading a found group: groups.npz of lgn discover, .npy/.npz matrices, and every way a file can be wrong."""

import numpy as np
import pytest
import torch

from lgn.analysis.summary import Groups, save_groups
from lgn.groups import FixedGenerator, GeneratorShape, generator_names, is_generator, make_generator, operators
from lgn.groups.loading import check_order, load_generator
from lgn.nn import GroupLinear

PERM = operators.cyclic_permutation(16, 4, seed=3)  # a pixel permutation of 4-cycles on 4×4 images


def _groups_npz(path, a, layers=2, groups=3):
    """A groups.npz as lgn discover writes it: A (L, K, 1, n, n) the same matrix everywhere, B, order."""
    n = a.shape[0]
    save_groups(Groups(A=np.broadcast_to(a, (layers, groups, 1, n, n)).copy(), B=np.ones((layers, groups, 1, 4, 4)),
                       kernel_size=4, channels=1, order=4), path)
    return path


def test_loads_a_discover_groups_npz_an_npy_and_a_one_array_npz(tmp_path):
    _groups_npz(tmp_path / "groups.npz", PERM)
    np.save(tmp_path / "t.npy", PERM)
    np.savez(tmp_path / "one.npz", T=PERM)
    for name in ("groups.npz", "t.npy", "one.npz"):
        a = load_generator(tmp_path / name, 4)
        assert a.dtype == np.float64 and np.array_equal(a, PERM)


def test_a_layer_built_on_the_file_uses_that_matrix(tmp_path):
    np.save(tmp_path / "t.npy", PERM)
    layer = GroupLinear(16, 3, 4, generator=f"file:{tmp_path / 't.npy'}")
    gen = layer.bank.generator
    assert isinstance(gen, FixedGenerator)
    assert torch.equal(gen.matrix(), torch.as_tensor(PERM, dtype=torch.float32).expand(3, 1, 16, 16))
    direct = GroupLinear(16, 3, 4, generator=torch.as_tensor(PERM))  # the Python API takes the matrix too
    assert torch.equal(direct.bank.generator.matrix(), gen.matrix())
    assert torch.equal(GroupLinear(16, 3, 4, generator=PERM).bank.generator.matrix(), gen.matrix())


def test_wrong_order_names_the_file_and_the_order_found(tmp_path):
    np.save(tmp_path / "flip.npy", operators.flip(4, "x"))  # order 2
    with pytest.raises(ValueError, match=r"flip\.npy: the generator has order 2, expected group_size=4"):
        GroupLinear(16, 2, 4, generator=f"file:{tmp_path / 'flip.npy'}")
    with pytest.raises(ValueError, match="the generator has order 4, expected group_size=3"):
        GroupLinear(16, 2, 3, generator=PERM)


def test_no_finite_order_and_non_finite_entries(tmp_path):
    np.save(tmp_path / "random.npy", np.random.default_rng(0).standard_normal((16, 16)))
    with pytest.raises(ValueError, match=r"random\.npy: A\*\*m ≠ I for every m ≤ 16; expected a generator of order"):
        load_generator(tmp_path / "random.npy", 4)
    bad = PERM.copy()
    bad[0, 0] = np.nan
    with pytest.raises(ValueError, match="non-finite entries"):
        check_order(bad, 4, "x")


def test_wrong_shape(tmp_path):
    np.save(tmp_path / "rect.npy", np.zeros((3, 4)))
    with pytest.raises(ValueError, match=r"rect\.npy: expected one \(n, n\) matrix, got shape \(3, 4\)"):
        load_generator(tmp_path / "rect.npy", 4)
    np.save(tmp_path / "t.npy", PERM)  # 16×16, for a layer of 25 inputs
    with pytest.raises(ValueError, match=r"has size 16, expected 25"):
        GroupLinear(25, 2, 4, generator=f"file:{tmp_path / 't.npy'}")
    np.savez(tmp_path / "two.npz", a=PERM, b=PERM)
    with pytest.raises(ValueError, match=r"two\.npz: expected an array 'A' \(a groups.npz\) or exactly one array"):
        load_generator(tmp_path / "two.npz", 4)


def test_a_groups_npz_with_different_generators_in_layer_0_is_refused(tmp_path):
    n = 16
    a = np.stack([PERM, PERM.T]).reshape(1, 2, 1, n, n)
    np.savez(tmp_path / "groups.npz", A=a, order=np.array(4))
    with pytest.raises(ValueError, match="layer 0 holds 2 different generators"):
        load_generator(tmp_path / "groups.npz", 4)


def test_missing_file_and_pickles(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"generator file .*nope\.npy does not exist"):
        GroupLinear(16, 2, 4, generator=f"file:{tmp_path / 'nope.npy'}")
    np.save(tmp_path / "obj.npy", np.array([{"a": 1}], dtype=object))  # never unpickled
    with pytest.raises(ValueError, match=r"obj\.npy is not a numpy .npy or .npz file"):
        load_generator(tmp_path / "obj.npy", 4)


def test_file_is_a_registry_prefix_block_diagonal_over_a_joint_blocks_channels(tmp_path):
    np.save(tmp_path / "t.npy", PERM)
    name = f"file:{tmp_path / 't.npy'}"
    assert "file:PATH" in generator_names() and is_generator(name) and not is_generator("file:")
    joint = make_generator(name, GeneratorShape(n_groups=2, n_blocks=1, dim=32, order=4, channels_per_block=2))
    expected = np.zeros((32, 32))  # the 16×16 matrix on each of the two channels, by hand
    expected[:16, :16] = expected[16:, 16:] = PERM
    assert np.array_equal(joint.matrix()[1, 0].numpy(), expected)
    with pytest.raises(ValueError, match=f"generator {name!r} has no option\\(s\\) regularizer; it takes none"):
        make_generator(name, GeneratorShape(n_groups=1, n_blocks=1, dim=16, order=4), regularizer="none")
    with pytest.raises(ValueError, match="generator_options are for a generator given by name"):
        GroupLinear(16, 2, 4, generator=PERM, generator_options={"regularizer": "none"})
