"""Generators by name: what ``generator="free"`` or ``generator="fixed:rot90"`` builds in a layer or a config.

Two tables, as for datasets (:mod:`lgn.data.registry`): plain names, and
prefixes ``PREFIX:ARG`` whose factory receives ARG (``fixed:NAME`` reads an
operator of :mod:`lgn.groups.operators`, ``file:PATH`` a matrix from a file,
:mod:`lgn.groups.loading`). A factory receives the
:class:`GeneratorShape` a layer asks for and returns a :class:`Generator` of
that shape; it declares its options by its keyword parameters (the free
generator's ``regularizer``), and passing an option a factory does not take is
an error, not silently ignored. Config validation, the command line's list of
choices and the error messages all read these tables, so a generator
registered here is accepted everywhere a built-in one is::

    register_generator("mine", lambda shape: MyGenerator(shape.n_groups, shape.n_blocks, shape.dim))
    lgn.build_model(generator="mine")
"""

from __future__ import annotations

import inspect
from dataclasses import dataclass
from typing import Callable

import numpy as np

from lgn.groups import operators
from lgn.groups.generators import (ANNEAL_STEPS, CyclicGenerator, FixedGenerator, FreeGenerator, Generator,
                                   PermutationGenerator, SelectionGenerator)
from lgn.groups.loading import load_generator

__all__ = ["GeneratorShape", "register_generator", "register_generator_prefix", "generator_names", "is_generator",
           "takes_option", "make_generator"]


@dataclass(frozen=True)
class GeneratorShape:
    """What a layer asks of its generator: ``n_groups × n_blocks`` matrices of size ``dim × dim``, used to order p."""

    n_groups: int                   # K: one generator (and base filter) per group
    n_blocks: int                   # matrices per group: C for the per-channel action, 1 for the joint one
    dim: int                        # d: the size of a block's filter (C·k² for the joint action)
    order: int                      # p: the layer takes the powers A**0 … A**(p−1)
    kernel_size: int | None = None  # k when the filters are square k×k kernels (pixel operations), else None
    channels_per_block: int = 1     # input channels one block spans: 1, or C for the joint action


Factory = Callable[..., Generator]


@dataclass(frozen=True)
class _Prefix:
    factory: Factory                   # factory(arg, shape, **options)
    arg: str                           # what ARG is, for the list of names: NAME, PATH, ...
    choices: tuple[str, ...] | None    # the accepted ARGs, or None for any non-empty one


def _kernel_size(name: str, shape: GeneratorShape) -> int:
    if shape.kernel_size is None:
        raise ValueError(f"generator {name!r} acts on the pixels of square k×k kernels; this layer's filters "
                         f"are not square kernels")
    return shape.kernel_size


def _free(shape: GeneratorShape, *, regularizer: str = "aux-inverse") -> Generator:
    return FreeGenerator(shape.n_groups, shape.n_blocks, shape.dim, regularizer)


def _cyclic(shape: GeneratorShape, *, init_scale: float = 1.0) -> Generator:
    return CyclicGenerator(shape.n_groups, shape.n_blocks, shape.dim, shape.order, init_scale)


def _permute(shape: GeneratorShape, *, steps: int = ANNEAL_STEPS) -> Generator:
    return PermutationGenerator(shape.n_groups, shape.n_blocks, shape.dim, shape.order, steps)


def _selection(name: str, shape: GeneratorShape, exact: bool, steps: int) -> Generator:
    """A :class:`SelectionGenerator` among the library's permutations of order ``shape.order`` (or dividing it)."""
    k = _kernel_size(name, shape)
    ops = operators.permutation_operations(k, shape.order, exact=exact)
    if not ops:
        raise ValueError(f"no library operation on {k}×{k} kernels has an order "
                         f"{'equal to' if exact else 'dividing'} group_size={shape.order}: {name!r} needs one "
                         f"(e.g. group_size 2 or 4)")
    mats = np.stack([np.kron(np.eye(shape.channels_per_block), m) for m in ops.values()])
    if mats.shape[-1] != shape.dim:
        raise ValueError(f"{name!r} candidates have size {mats.shape[-1]}, expected {shape.dim}")
    return SelectionGenerator(mats, list(ops), shape.n_groups, shape.n_blocks, steps)


def _select(shape: GeneratorShape, *, steps: int = ANNEAL_STEPS) -> Generator:
    return _selection("select", shape, True, steps)


def _select_divisor(shape: GeneratorShape, *, steps: int = ANNEAL_STEPS) -> Generator:
    return _selection("select-divisor", shape, False, steps)


def _given(name: str, op: np.ndarray, shape: GeneratorShape) -> Generator:
    """A :class:`FixedGenerator` of ``op``, made block-diagonal over a block's channels unless it spans the block."""
    if op.shape[0] != shape.dim:
        op = np.kron(np.eye(shape.channels_per_block), op)
    if op.shape[0] != shape.dim:
        raise ValueError(f"generator {name!r} has size {op.shape[0]}, expected {shape.dim}")
    return FixedGenerator(op, shape.n_groups, shape.n_blocks)


def _fixed(name: str, shape: GeneratorShape) -> Generator:
    """The library operator ``name`` on the layer's kernels, block-diagonal over a block's channels."""
    return _given(f"fixed:{name}", operators.named_operator(name, _kernel_size(f"fixed:{name}", shape)), shape)


def _file(path: str, shape: GeneratorShape) -> Generator:
    """The ``(n, n)`` matrix of order p stored at ``path`` (:func:`lgn.groups.loading.load_generator`), untrained:
    a group ``lgn discover`` found. On a block of n values as it is, else block-diagonal over a block's channels."""
    return _given(f"file:{path}", load_generator(path, shape.order), shape)


_NAMES: dict[str, Factory] = {
    "free": _free,                      # the paper's: unit Frobenius norm, an invertibility regulariser
    "cyclic": _cyclic,                  # an exact cyclic group A = Q·R·Qᵀ of order p
    "select": _select,                  # a learned choice among the library's permutations of order p
    "select-divisor": _select_divisor,  # … of an order dividing p
    "permute": _permute,                # a learned pixel permutation A = P·R·Pᵀ with R's p-cycles
}

_PREFIXES: dict[str, _Prefix] = {
    "fixed": _Prefix(_fixed, "NAME", operators.OPERATOR_NAMES),  # a known operator, untrained
    "file": _Prefix(_file, "PATH", None),  # a matrix read from a file (a found group), untrained
}


def register_generator(name: str, factory: Factory) -> None:
    """Make ``generator=name`` build ``factory(shape, **options)`` (see :class:`GeneratorShape`)."""
    if not isinstance(name, str) or not name or ":" in name:
        raise ValueError(f"a generator name is a non-empty string without ':', got {name!r}; "
                         f"for PREFIX:ARG use register_generator_prefix")
    if not callable(factory):
        raise TypeError(f"factory must be callable, got {type(factory).__name__}")
    _NAMES[name] = factory


def register_generator_prefix(prefix: str, factory: Factory, arg: str = "ARG",
                              choices: tuple[str, ...] | None = None) -> None:
    """Make ``generator=f"{prefix}:{ARG}"`` build ``factory(ARG, shape, **options)``.

    ``choices`` lists the accepted ARGs (``fixed``: the operator names); None
    accepts any non-empty one (a path, say), which the factory then checks.
    """
    if not isinstance(prefix, str) or not prefix or ":" in prefix:
        raise ValueError(f"a generator prefix is a non-empty string without ':', got {prefix!r}")
    if not callable(factory):
        raise TypeError(f"factory must be callable, got {type(factory).__name__}")
    _PREFIXES[prefix] = _Prefix(factory, arg, None if choices is None else tuple(choices))


def generator_names() -> list[str]:
    """Every accepted name: the plain ones, then each prefix's (``fixed:rot90``, …, or ``PREFIX:ARG``)."""
    out = list(_NAMES)
    for prefix, entry in _PREFIXES.items():
        out += [f"{prefix}:{c}" for c in entry.choices] if entry.choices is not None else [f"{prefix}:{entry.arg}"]
    return out


def _lookup(name: str) -> tuple[Factory, tuple]:
    """The factory of ``name`` and its leading arguments (ARG for a prefix), or ValueError listing the names."""
    if isinstance(name, str):
        if name in _NAMES:
            return _NAMES[name], ()
        prefix, sep, arg = name.partition(":")
        entry = _PREFIXES.get(prefix) if sep else None
        if entry is not None and arg and (entry.choices is None or arg in entry.choices):
            return entry.factory, (arg,)
    raise ValueError(f"unknown generator {name!r}; known: {', '.join(generator_names())}")


def is_generator(name: str) -> bool:
    """Whether ``name`` is a registered generator (for a prefix with choices, one of its choices)."""
    try:
        _lookup(name)
    except ValueError:
        return False
    return True


def _options(factory: Factory, leading: int) -> tuple[set[str], bool]:
    """The keyword options ``factory`` takes after its ``leading`` + 1 positional arguments, and whether any."""
    params = list(inspect.signature(factory).parameters.values())[leading + 1:]
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params)
    return {p.name for p in params if p.kind is not inspect.Parameter.VAR_KEYWORD}, takes_any


def takes_option(name: str, option: str) -> bool:
    """Whether the factory of the registered generator ``name`` takes the keyword ``option``."""
    factory, args = _lookup(name)
    names, takes_any = _options(factory, len(args))
    return takes_any or option in names


def make_generator(name: str, shape: GeneratorShape, **options) -> Generator:
    """Build the generator registered as ``name`` (see :func:`generator_names`) for ``shape``.

    ``options`` go to its factory: ``regularizer`` for ``'free'``
    (``'aux-inverse'``, ``'singular-values'`` or ``'none'``), ``init_scale``
    for ``'cyclic'``, ``steps`` (of annealing) for ``'select'``,
    ``'select-divisor'`` and ``'permute'``; ``'fixed:NAME'`` and ``'file:PATH'`` take none.
    """
    if not isinstance(shape, GeneratorShape):
        raise TypeError(f"shape must be a GeneratorShape, got {type(shape).__name__}")
    factory, args = _lookup(name)
    names, takes_any = _options(factory, len(args))
    unknown = sorted(set(options) - names)
    if unknown and not takes_any:
        raise ValueError(f"generator {name!r} has no option(s) {', '.join(unknown)}"
                         f"{'; its options: ' + ', '.join(sorted(names)) if names else '; it takes none'}")
    generator = factory(*args, shape, **options)
    if not isinstance(generator, Generator):
        raise TypeError(f"the factory of generator {name!r} must return a Generator, got {type(generator).__name__}")
    built, wanted = (generator.n_groups, generator.n_blocks, generator.dim), (shape.n_groups, shape.n_blocks, shape.dim)
    if built != wanted:
        raise ValueError(f"the factory of generator {name!r} must return (n_groups, n_blocks, dim) = {wanted}, "
                         f"got {built}")
    return generator
