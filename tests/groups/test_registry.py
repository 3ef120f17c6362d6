"""Generators by name: the one table that layers, configs and the command line read."""

import pytest
import torch

from lgn.groups import (CyclicGenerator, FixedGenerator, FreeGenerator, GeneratorShape, PermutationGenerator,
                        SelectionGenerator, generator_names, is_generator, make_generator, operators,
                        register_generator, register_generator_prefix, registry, takes_option)

SHAPE = GeneratorShape(n_groups=2, n_blocks=3, dim=16, order=4, kernel_size=4)


@pytest.fixture
def fresh_tables(monkeypatch):
    """Registrations in a test stay in it."""
    monkeypatch.setattr(registry, "_NAMES", dict(registry._NAMES))
    monkeypatch.setattr(registry, "_PREFIXES", dict(registry._PREFIXES))


@pytest.mark.parametrize("name,cls", [("free", FreeGenerator), ("cyclic", CyclicGenerator),
                                      ("select", SelectionGenerator), ("select-divisor", SelectionGenerator),
                                      ("permute", PermutationGenerator), ("fixed:rot90", FixedGenerator)])
def test_each_builtin_name_builds_its_generator_of_the_asked_shape(name, cls):
    gen = make_generator(name, SHAPE)
    assert type(gen) is cls
    assert gen.matrix().shape == (2, 3, 16, 16)


def test_names_list_every_fixed_operator_and_no_bank_kind():
    names = generator_names()
    assert names[:5] == ["free", "cyclic", "select", "select-divisor", "permute"]
    assert [n for n in names if n.startswith("fixed:")] == [f"fixed:{op}" for op in operators.OPERATOR_NAMES]
    assert "independent" not in names  # a kind of bank, not a generator
    assert all(is_generator(n) for n in names)
    assert not any(is_generator(n) for n in ("independent", "fixed:", "fixed:nope", "fixed", "cyclics", ":free"))


def test_unknown_name_lists_the_known_ones():
    with pytest.raises(ValueError, match=r"^unknown generator 'cyclics'; known: free, cyclic, .*fixed:rot90"):
        make_generator("cyclics", SHAPE)


def test_options_go_to_the_factory_that_takes_them():
    assert make_generator("free", SHAPE, regularizer="none").inverse is None
    assert make_generator("free", SHAPE).inverse.shape == (2, 3, 16, 16)  # the default: aux-inverse
    assert make_generator("permute", SHAPE, steps=7).steps == 7
    assert takes_option("free", "regularizer") and not takes_option("cyclic", "regularizer")
    with pytest.raises(ValueError, match=r"^generator 'cyclic' has no option\(s\) regularizer; its options: "
                                         r"init_scale$"):
        make_generator("cyclic", SHAPE, regularizer="none")
    with pytest.raises(ValueError, match=r"^generator 'fixed:rot90' has no option\(s\) steps; it takes none$"):
        make_generator("fixed:rot90", SHAPE, steps=3)


def test_pixel_generators_need_square_kernels():
    flat = GeneratorShape(n_groups=1, n_blocks=1, dim=16, order=4)
    for name in ("select", "fixed:rot90"):
        with pytest.raises(ValueError, match=f"generator '{name}' acts on the pixels of square k×k kernels"):
            make_generator(name, flat)
    assert make_generator("free", flat).dim == 16


def test_a_registered_prefix_reads_its_argument(fresh_tables):
    """A prefix without a list of choices (as a file path would be): any argument, checked by its factory."""
    def scaled(arg, shape):
        return FixedGenerator(float(arg) * torch.eye(shape.dim), shape.n_groups, shape.n_blocks)

    register_generator_prefix("scaled", scaled, arg="FACTOR")
    assert "scaled:FACTOR" in generator_names() and is_generator("scaled:0.5") and not is_generator("scaled:")
    gen = make_generator("scaled:0.5", SHAPE)
    torch.testing.assert_close(gen.matrix(), 0.5 * torch.eye(16).expand(2, 3, 16, 16))


def test_a_factory_must_return_a_generator_of_the_asked_shape(fresh_tables):
    register_generator("wrong", lambda shape: FixedGenerator(torch.eye(shape.dim + 1), shape.n_groups,
                                                             shape.n_blocks))
    with pytest.raises(ValueError, match=r"must return \(n_groups, n_blocks, dim\) = \(2, 3, 16\), got \(2, 3, 17\)"):
        make_generator("wrong", SHAPE)
    register_generator("matrix", lambda shape: torch.eye(shape.dim))
    with pytest.raises(TypeError, match="must return a Generator, got Tensor"):
        make_generator("matrix", SHAPE)


@pytest.mark.parametrize("name", ["", "a:b", None])
def test_bad_names_are_refused(fresh_tables, name):
    with pytest.raises(ValueError, match="register_generator_prefix"):
        register_generator(name, lambda shape: None)
