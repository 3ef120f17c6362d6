"""Datasets by name: ``get_dataset('mnist5k')``, ``get_dataset('npz:data.npz')``, ``get_dataset('planted:rot90')``.

Two tables: plain names, and prefixes ``PREFIX:ARG`` whose loader receives ARG.
A loader is a function, or a lazy ``'module:function'`` string imported on
first use, so optional modules cost nothing at import time. A loader declares
what it reads by its keyword parameters: ``data_dir`` (a folder of files),
``seed`` (for data that is sampled or generated), and any options; passing an
argument a loader does not take is an error, not silently ignored.
"""

from __future__ import annotations

import importlib
import inspect
from typing import Callable

from lgn.data import builtin
from lgn.data.dataset import Dataset
from lgn.data.npz import load_npz

__all__ = ["get_dataset", "register_dataset", "register_prefix", "dataset_names"]

Loader = Callable[..., Dataset]

_NAMES: dict[str, Loader | str] = {
    "mnist5k": builtin.load_mnist5k,
    "fashion-mnist": builtin.load_fashion_mnist,
    "mnist": builtin.load_mnist,
    "digits": builtin.load_digits,
    "cifar10": "lgn.data.cifar:load_cifar10",
    "patches": builtin.load_patches,
}

# PREFIX -> loader(arg, **kwargs); lgn.data.planted provides load_planted(name, *, seed, **options)
_PREFIXES: dict[str, Loader | str] = {
    "npz": load_npz,
    "planted": "lgn.data.planted:load_planted",
}

_PREFIX_ARGS = {"npz": "PATH", "planted": "NAME"}


def register_dataset(name: str, loader: Loader | str) -> None:
    """Make ``get_dataset(name)`` call ``loader`` (a function or ``'module:function'``)."""
    if ":" in name:
        raise ValueError(f"dataset names cannot contain ':', got {name!r}; use register_prefix")
    _NAMES[name] = loader


def register_prefix(prefix: str, loader: Loader | str, arg: str = "ARG") -> None:
    """Make ``get_dataset(f'{prefix}:{arg}')`` call ``loader(arg, ...)``."""
    _PREFIXES[prefix] = loader
    _PREFIX_ARGS[prefix] = arg


def dataset_names() -> list[str]:
    """Every accepted name, prefixes shown as ``PREFIX:ARG``."""
    return list(_NAMES) + [f"{p}:{_PREFIX_ARGS.get(p, 'ARG')}" for p in _PREFIXES]


def _resolve(loader: Loader | str, label: str) -> Loader:
    if callable(loader):
        return loader
    module, _, attr = loader.partition(":")
    try:
        return getattr(importlib.import_module(module), attr)
    except ModuleNotFoundError as e:
        if e.name is None or not module.startswith(e.name):
            raise
        raise ValueError(f"dataset {label}: this installation has no {module} module") from None
    except AttributeError:
        raise ValueError(f"dataset {label}: {module} has no function {attr}") from None


MAX_NAME = 4096  # characters: no file path is longer (Linux's PATH_MAX), nor any dataset name


def _shown(name: str, limit: int = 60) -> str:
    """``repr(name)``, cut to its first ``limit`` characters (and its length) if longer: errors echo names."""
    return repr(name) if len(name) <= limit else f"{name[:limit]!r}... ({len(name)} characters)"


def get_dataset(name: str, *, data_dir: str | None = None, seed: int = 0, **options) -> Dataset:
    """Load the dataset ``name``: raw scale, float32 ``(N, C, H, W)`` images, int64 labels or None.

    Names: see :func:`dataset_names`. ``data_dir`` is the folder of file-based
    datasets; ``seed`` seeds datasets that are sampled or generated; other
    keyword options go to the loader.
    """
    if not isinstance(name, str) or not name:
        raise ValueError(f"dataset name must be a non-empty string, got {name!r}"[:200])
    if len(name) > MAX_NAME:
        raise ValueError(f"dataset name must be at most {MAX_NAME} characters, got {_shown(name)}")
    args: tuple = ()
    prefix, sep, arg = name.partition(":")
    if sep:
        if prefix not in _PREFIXES:
            raise ValueError(f"unknown dataset prefix {_shown(prefix + ':')}; known: {', '.join(dataset_names())}")
        if not arg:
            raise ValueError(f"dataset {_shown(name)} needs an argument: {prefix}:{_PREFIX_ARGS.get(prefix, 'ARG')}")
        loader, args = _resolve(_PREFIXES[prefix], name), (arg,)
    elif name in _NAMES:
        loader = _resolve(_NAMES[name], name)
    else:
        raise ValueError(f"unknown dataset {_shown(name)}; known: {', '.join(dataset_names())}")
    params = inspect.signature(loader).parameters
    takes_any = any(p.kind is inspect.Parameter.VAR_KEYWORD for p in params.values())
    kwargs = dict(options)
    if data_dir is not None:
        if "data_dir" not in params:
            raise ValueError(f"dataset {name} does not read a data folder; drop --data-dir")
        kwargs["data_dir"] = data_dir
    if "seed" in params or takes_any:
        kwargs["seed"] = seed
    if not takes_any:
        unknown = sorted(set(options) - set(params))
        if unknown:
            known = sorted(set(params) - {"data_dir", "seed"} - set(list(params)[:len(args)]))
            raise ValueError(f"dataset {name} has no option(s) {', '.join(unknown)}"
                             f"{'; its options: ' + ', '.join(known) if known else '; it takes none'}")
    return loader(*args, **kwargs)
