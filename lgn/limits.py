"""What fits the machine: numbers within float32's range.

Settings and data arrive as Python floats or float64 arrays, but models and
data are float32: a value beyond float32's range would become Inf on the first
cast and surface steps later as a non-finite gradient blaming the wrong thing.
These checks refuse such a value where it enters, naming it.
"""

from __future__ import annotations

import numpy as np

__all__ = ["FLOAT32_MAX", "check_float32"]

FLOAT32_MAX = float(np.finfo(np.float32).max)  # 3.4028235e38


def check_float32(value: float, where: str) -> float:
    """``value`` if float32 can hold it (its magnitude at most :data:`FLOAT32_MAX`), else ``ValueError`` naming ``where``."""
    if abs(value) > FLOAT32_MAX:
        raise ValueError(f"{where} must be at most {FLOAT32_MAX:.7g} in magnitude (float32's largest), got {value!r}")
    return value
