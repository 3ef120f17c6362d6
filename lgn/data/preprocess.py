"""Preprocessing fitted on the training split: per-channel standardisation, optional ZCA (docs/method.md §5).

:class:`Preprocessing` is a plain invertible affine map. Its tensors are saved
with a run (``preprocess.safetensors``), so a saved model is always fed data
scaled exactly as in training.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import save

from lgn.files import atomic_write, read_safetensors

__all__ = ["Preprocessing", "fit_preprocessing", "save_preprocessing", "load_preprocessing", "PREPROCESS_FILE"]

PREPROCESS_FILE = "preprocess.safetensors"


@dataclass
class Preprocessing:
    """``x ↦ (x − mean_c) / std_c``, then, with ZCA, ``z ↦ (z − zca_mean) · W`` on flattened images.

    Shapes: ``mean``, ``std`` ``(C,)``; ``zca_mean`` ``(D,)`` and ``zca``,
    ``zca_inverse`` ``(D, D)`` with D = C·H·W, or None without ZCA.
    """

    mean: torch.Tensor
    std: torch.Tensor
    zca_mean: torch.Tensor | None = None
    zca: torch.Tensor | None = None
    zca_inverse: torch.Tensor | None = None

    def _check(self, x: torch.Tensor) -> None:
        if x.dim() != 4 or x.shape[1] != len(self.mean):
            raise ValueError(f"preprocessing expects (N, {len(self.mean)}, H, W), got {tuple(x.shape)}")
        if self.zca is not None and x[0].numel() != self.zca.shape[0]:
            raise ValueError(f"ZCA was fitted on images of {self.zca.shape[0]} values, got {tuple(x.shape[1:])}")

    def __call__(self, x: torch.Tensor) -> torch.Tensor:
        """Apply to ``(N, C, H, W)``; returns a new tensor of the same shape."""
        self._check(x)
        z = (x - self.mean.view(1, -1, 1, 1)) / self.std.view(1, -1, 1, 1)
        if self.zca is not None:
            z = ((z.flatten(1) - self.zca_mean) @ self.zca).view_as(x)  # (N, D) → (N, C, H, W)
        return z

    def invert(self, z: torch.Tensor) -> torch.Tensor:
        """Undo :meth:`__call__`: back to the raw scale."""
        self._check(z)
        if self.zca is not None:
            z = (z.flatten(1) @ self.zca_inverse + self.zca_mean).view_as(z)
        return z * self.std.view(1, -1, 1, 1) + self.mean.view(1, -1, 1, 1)

    def to(self, device) -> "Preprocessing":
        return Preprocessing(**{k: None if v is None else v.to(device) for k, v in self.tensors().items()})

    def tensors(self) -> dict[str, torch.Tensor | None]:
        return {"mean": self.mean, "std": self.std, "zca_mean": self.zca_mean, "zca": self.zca,
                "zca_inverse": self.zca_inverse}


def fit_preprocessing(x_train: torch.Tensor, *, zca: bool = False, zca_epsilon: float = 1e-2) -> Preprocessing:
    """Fit on training images ``(N, C, H, W)``.

    Standardisation uses each channel's mean and standard deviation over
    (N, H, W); a constant channel keeps std 1. ZCA whitening uses the
    eigendecomposition U·diag(s)·Uᵀ of the standardised images' covariance:
    W = U·diag(1/√(s + ε))·Uᵀ, the eigendecomposition in float64.
    """
    if x_train.dim() != 4:
        raise ValueError(f"expected training images (N, C, H, W), got {tuple(x_train.shape)}")
    mean = x_train.mean(dim=(0, 2, 3), dtype=torch.float64)
    std = x_train.double().std(dim=(0, 2, 3), correction=0)
    std = torch.where(std > 0, std, torch.ones_like(std))
    prep = Preprocessing(mean.float(), std.float())
    if not zca:
        return prep
    if not zca_epsilon > 0:
        raise ValueError(f"zca_epsilon must be positive, got {zca_epsilon}")
    z = prep(x_train).flatten(1)  # (N, D)
    centre = z.mean(0, dtype=torch.float64)
    z = z - centre.float()
    cov = (z.T @ z).double() / len(z)  # (D, D); the product in float32 keeps CIFAR's D = 3072 quick
    s, u = torch.linalg.eigh(cov)
    s = s.clamp_min(0) + zca_epsilon
    whiten = (u * s.rsqrt()) @ u.T
    colour = (u * s.sqrt()) @ u.T
    return Preprocessing(prep.mean, prep.std, centre.float(), whiten.float(), colour.float())


def save_preprocessing(prep: Preprocessing, directory: str | os.PathLike) -> None:
    tensors = {k: v.detach().contiguous().cpu() for k, v in prep.tensors().items() if v is not None}
    atomic_write(Path(directory) / PREPROCESS_FILE, save(tensors))  # 0644 like every other run file


def load_preprocessing(directory: str | os.PathLike) -> Preprocessing:
    path = os.path.join(directory, PREPROCESS_FILE)
    if not os.path.isfile(path):
        raise FileNotFoundError(f"no {PREPROCESS_FILE} in {directory}: not an lgn run folder")
    try:
        tensors, _ = read_safetensors(path)
    except (SafetensorError, OSError) as e:
        raise ValueError(f"{path} is not a readable safetensors file: {e}") from None
    if not {"mean", "std"} <= set(tensors):
        raise ValueError(f"{path} lacks mean/std")
    unknown = sorted(set(tensors) - set(Preprocessing.__dataclass_fields__))
    if unknown:
        raise ValueError(f"{path} holds unknown tensors {', '.join(unknown)}: not lgn preprocessing")
    mean, std = tensors["mean"], tensors["std"]
    if mean.dim() != 1 or std.shape != mean.shape or not bool(torch.isfinite(mean).all()) \
            or not bool((std > 0).all()) or not bool(torch.isfinite(std).all()):
        raise ValueError(f"{path}: mean and std must be finite (C,) vectors, std positive; got shapes "
                         f"{tuple(mean.shape)} and {tuple(std.shape)}")
    zca = [k for k in ("zca_mean", "zca", "zca_inverse") if k in tensors]
    if zca and len(zca) != 3:
        raise ValueError(f"{path} has {', '.join(zca)} but ZCA needs zca_mean, zca and zca_inverse")
    return Preprocessing(**tensors)
