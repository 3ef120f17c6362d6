"""What fits the machine: numbers within float32's range, arrays within its memory.

Settings and data arrive as Python floats or float64 arrays, but models and
data are float32: a value beyond float32's range would become Inf on the first
cast and surface steps later as a non-finite gradient blaming the wrong thing.
A size setting (layers, groups, examples, classes) can ask for more memory than
the machine has, which ends in the allocator's traceback or the kernel's OOM
killer after minutes of swapping. These checks refuse such a value where it
enters, naming it, before anything is allocated.
"""

from __future__ import annotations

import os

import numpy as np

__all__ = ["FLOAT32_MAX", "check_float32", "memory_bytes", "check_fits", "set_threads"]

FLOAT32_MAX = float(np.finfo(np.float32).max)  # 3.4028235e38


def check_float32(value: float, where: str) -> float:
    """``value`` if float32 can hold it (its magnitude at most :data:`FLOAT32_MAX`), else ``ValueError`` naming ``where``."""
    if abs(value) > FLOAT32_MAX:
        raise ValueError(f"{where} must be at most {FLOAT32_MAX:.7g} in magnitude (float32's largest), got {value!r}")
    return value


def memory_bytes() -> int | None:
    """The memory this process may use: physical memory, or a smaller cgroup limit; None if unknown."""
    try:
        total = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        total = None
    try:
        with open("/sys/fs/cgroup/memory.max") as f:
            limit = f.read().strip()
        if limit.isdigit():
            total = int(limit) if total is None else min(total, int(limit))
    except OSError:
        pass
    return total


def _size(n: float) -> str:
    for unit in ("bytes", "KB", "MB", "GB", "TB", "PB"):
        if n < 1000 or unit == "PB":
            return f"{n:.3g} {unit}"
        n /= 1000
    raise AssertionError  # not reached


def check_fits(nbytes: float, what: str) -> None:
    """Raise ``ValueError`` if ``nbytes`` is more than this machine's memory, naming ``what`` asks for it."""
    total = memory_bytes()
    if total is not None and nbytes > total:
        raise ValueError(f"{what} needs {_size(nbytes)}, more than this machine's {_size(total)} of memory")


def set_threads(n: int) -> None:
    """Use ``n`` CPU threads in this process: torch's intra-op pool and the BLAS/LAPACK pools numpy,
    scipy and scikit-learn call (through threadpoolctl). A process-wide setting: for the CLI's entry points
    and the worker processes of ``lgn reproduce --jobs``, never a library call's to make."""
    import torch
    from threadpoolctl import threadpool_limits

    if isinstance(n, bool) or not isinstance(n, int) or n < 1:
        raise ValueError(f"--threads must be a positive integer, got {n!r}")
    torch.set_num_threads(n)
    threadpool_limits(limits=n, user_api="blas")  # left in force for the rest of the process
