"""lgn: Linear Group Networks, networks that learn the linear group acting on their weights.

Subpackages and the names below are imported on first use (a module ``__getattr__``), so that
``import lgn`` is cheap, ``lgn --help`` answers without importing torch, and
``import lgn; lgn.train.train(...)`` works without importing ``lgn.train`` first.
"""

from __future__ import annotations

import importlib

__version__ = "0.1.0"

# name -> the module it is defined in
_NAMES = {
    "LGN": "lgn.models",
    "ModelConfig": "lgn.models",
    "build_model": "lgn.models",
    "load_reference_state_dict": "lgn.models",
    "to_reference_state_dict": "lgn.models",
    "GroupConv2d": "lgn.nn",
    "GroupLinear": "lgn.nn",
}
SUBPACKAGES = ("analysis", "bench", "data", "discovery", "groups", "models", "nn", "reproduce", "runs", "testing",
               "train")

__all__ = [*_NAMES, *SUBPACKAGES, "__version__"]


def __getattr__(name: str):
    if name in _NAMES:
        value = getattr(importlib.import_module(_NAMES[name]), name)
    elif name in SUBPACKAGES:
        value = importlib.import_module(f"{__name__}.{name}")
    else:
        raise AttributeError(f"module 'lgn' has no attribute {name!r}")
    globals()[name] = value  # looked up once
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(__all__))
