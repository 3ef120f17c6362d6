"""The device a command runs on: ``torch.device`` of a name, refusing a CUDA device this machine lacks.

Low in the floors (it imports nothing of ours) so that the trainer, the run
loader and the reproduction grid share one check without importing each other.
"""

from __future__ import annotations

import torch

__all__ = ["resolve_device"]


def resolve_device(name: str) -> torch.device:
    """``torch.device(name)``, refusing CUDA where none is available."""
    if name.startswith("cuda"):
        if not torch.cuda.is_available():
            build = "a CPU-only build" if torch.version.cuda is None else f"built for CUDA {torch.version.cuda}"
            raise ValueError(f"device {name!r} requested but CUDA is not available (torch {torch.__version__}, "
                             f"{build}); use --device cpu")
        index = int(name[5:]) if name.startswith("cuda:") else 0
        if index >= torch.cuda.device_count():
            raise ValueError(f"device {name!r} requested but only {torch.cuda.device_count()} CUDA device(s) exist")
    return torch.device(name)
