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
from pathlib import Path

import numpy as np

from lgn.settings import check_positive_int
__all__ = ["FLOAT32_MAX", "check_float32", "memory_bytes", "memory_limits", "check_fits", "set_threads"]

FLOAT32_MAX = float(np.finfo(np.float32).max)  # 3.4028235e38


def check_float32(value: float, where: str) -> float:
    """``value`` if float32 can hold it (its magnitude at most :data:`FLOAT32_MAX`), else ``ValueError`` naming ``where``."""
    if abs(value) > FLOAT32_MAX:
        raise ValueError(f"{where} must be at most {FLOAT32_MAX:.7g} in magnitude (float32's largest), got {value!r}")
    return value


def memory_bytes() -> int | None:
    """The memory this process may use: the tightest of :func:`memory_limits`; None if none is known."""
    limits = memory_limits()
    return min(limits.values()) if limits else None


def memory_limits(cgroup_root: str | os.PathLike = "/sys/fs/cgroup",
                  proc: str | os.PathLike = "/proc/self") -> dict[str, int]:
    """Every limit on this process's memory that can be read, in bytes, by where it comes from.

    Physical memory; the cgroup limits of this process's cgroup and of each
    cgroup above it (v2 ``memory.max``; v1 ``memory.limit_in_bytes`` under
    ``memory/``), since the tightest anywhere up the tree applies; and
    ``RLIMIT_AS`` (``ulimit -v``) less the address space already in use.
    """
    limits = {}
    try:
        limits["physical memory"] = os.sysconf("SC_PHYS_PAGES") * os.sysconf("SC_PAGE_SIZE")
    except (AttributeError, ValueError, OSError):
        pass
    limits.update(_cgroup_limits(Path(cgroup_root), Path(proc)))
    try:
        import resource

        soft, _ = resource.getrlimit(resource.RLIMIT_AS)
        if soft != resource.RLIM_INFINITY:
            with open(Path(proc) / "statm") as f:
                used = int(f.read().split()[0]) * os.sysconf("SC_PAGE_SIZE")
            limits["ulimit -v, less what this process uses"] = max(0, soft - used)
    except (ImportError, OSError, ValueError, IndexError):
        pass
    return limits


def _cgroup_limits(root: Path, proc: Path) -> dict[str, int]:
    """The memory limits of the cgroups (v1 and v2) ``proc`` is in, and of every cgroup above them."""
    try:
        lines = (proc / "cgroup").read_text().splitlines()
    except OSError:
        return {}
    places = []  # (the hierarchy's mount point, the file of a limit)
    for line in lines:
        _, controllers, path = line.split(":", 2) if line.count(":") >= 2 else ("", "", "")
        if controllers == "":  # v2: one unified hierarchy (on hybrid systems mounted at unified/)
            places += [(mount, path, "memory.max") for mount in (root, root / "unified")]
        elif "memory" in controllers.split(","):
            places.append((root / "memory", path, "memory.limit_in_bytes"))
    limits = {}
    for mount, path, name in places:
        folder = mount / path.strip("/")
        for level in (folder, *folder.parents):  # from the process's cgroup up to the hierarchy's root
            if mount not in (level, *level.parents):
                break
            try:
                text = (level / name).read_text().strip()
            except OSError:
                continue
            if text.isdigit():
                limits[f"the cgroup limit in {level / name}"] = int(text)
    return limits


def _size(n: float) -> str:
    for unit in ("bytes", "KB", "MB", "GB", "TB", "PB"):
        if n < 1000 or unit == "PB":
            return f"{n:.3g} {unit}"
        n /= 1000
    raise AssertionError  # not reached


def check_fits(nbytes: float, what: str) -> None:
    """Raise ``ValueError`` if ``nbytes`` is more than the memory this process may use (the tightest of
    :func:`memory_limits`), naming ``what`` asks for it and the limit."""
    limits = memory_limits()
    if not limits:
        return
    source, total = min(limits.items(), key=lambda item: item[1])
    if nbytes > total:
        where = "" if source == "physical memory" else f" ({source})"
        raise ValueError(f"{what} needs {_size(nbytes)}, more than this machine's {_size(total)} of memory{where}")


def set_threads(n: int) -> None:
    """Use ``n`` CPU threads in this process: torch's intra-op pool and the BLAS/LAPACK pools numpy,
    scipy and scikit-learn call (through threadpoolctl). A process-wide setting: for the CLI's entry points
    and the worker processes of ``lgn reproduce --jobs``, never a library call's to make."""
    import torch
    from threadpoolctl import threadpool_limits

    check_positive_int(n, "--threads")
    torch.set_num_threads(n)
    threadpool_limits(limits=n, user_api="blas")  # left in force for the rest of the process
