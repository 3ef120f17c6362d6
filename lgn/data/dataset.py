"""The in-memory dataset every loader returns, and the checks that build it from arrays."""

from __future__ import annotations

import os
from dataclasses import dataclass

import numpy as np
import torch

from lgn.limits import FLOAT32_MAX

__all__ = ["Dataset", "from_arrays", "DataTypeError"]


class DataTypeError(TypeError, ValueError):
    """An array of the wrong dtype; a ``ValueError`` too, like every other bad input data."""


@dataclass
class Dataset:
    """A train/test pair of image sets, unnormalised (raw scale, e.g. [0, 1]).

    ``x_train`` is ``(N, C, H, W)`` float32 and ``y_train`` ``(N,)`` int64 class
    labels, or None for unlabelled data (reconstruction only); likewise for the
    test split. ``num_classes`` is 0 when there are no labels. ``value_range`` is
    the peak-to-peak range of the raw pixel scale, the peak of the PSNR.
    """

    name: str
    x_train: torch.Tensor
    y_train: torch.Tensor | None
    x_test: torch.Tensor
    y_test: torch.Tensor | None
    num_classes: int
    value_range: float = 1.0

    @property
    def in_channels(self) -> int:
        return self.x_train.shape[1]

    @property
    def image_shape(self) -> tuple[int, int]:
        """``(H, W)`` of the images."""
        return tuple(self.x_train.shape[-2:])

    @property
    def labelled(self) -> bool:
        return self.y_train is not None

    def subset(self, train: int | None = None, test: int | None = None) -> "Dataset":
        """The first ``train`` training and ``test`` test examples (None keeps a split whole)."""
        def cut(t, n):
            return t if t is None or n is None else t[:n]
        return Dataset(self.name, cut(self.x_train, train), cut(self.y_train, train),
                       cut(self.x_test, test), cut(self.y_test, test), self.num_classes, self.value_range)


def _images(where: str, x) -> torch.Tensor:
    """``x`` as float32 ``(N, C, H, W)``; (N, H, W) gains a channel axis."""
    x = np.asarray(x)
    if x.dtype == object:
        raise DataTypeError(f"{where} is an object array; expected numbers")
    if x.dtype.kind not in "uif":
        raise DataTypeError(f"{where} must hold integers or floats, got dtype {x.dtype}")
    if x.ndim == 3:
        x = x[:, None]
    if x.ndim != 4:
        raise ValueError(f"{where} must have shape (N, H, W) or (N, C, H, W), got {x.shape}")
    if x.shape[3] in (1, 3, 4) and x.shape[1] > 4 and x.shape[2] > 4:  # (N, 32, 32, 3): a colour image's layout
        raise ValueError(f"{where} has shape {x.shape}, which looks channels-last (N, H, W, C); lgn reads "
                         f"(N, C, H, W): transpose it first, e.g. x.transpose(0, 3, 1, 2)")
    if 0 in x.shape:
        raise ValueError(f"{where} is empty: shape {x.shape}")
    if x.dtype.kind == "f" and x.dtype.itemsize > 4:  # checked before the cast, which would make them Inf
        if not np.isfinite(x).all():
            raise ValueError(f"{where} contains NaN or Inf")
        largest = float(np.abs(x).max())
        if largest > FLOAT32_MAX:
            raise ValueError(f"{where} holds values too large for float32 (largest magnitude {largest:.4g}, "
                             f"float32 holds up to {FLOAT32_MAX:.4g})")
    x = torch.from_numpy(np.ascontiguousarray(x, dtype=np.float32))
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"{where} contains NaN or Inf")
    return x


def _labels(where: str, split: str, y, n: int) -> torch.Tensor:
    """``y`` as int64 ``(N,)``, checked to be non-negative integers, one per image."""
    y = np.asarray(y)
    if y.dtype == object:
        raise DataTypeError(f"{where} is an object array; expected integer labels")
    if y.ndim != 1:
        raise ValueError(f"{where} must have shape (N,), got {y.shape}")
    if len(y) != n:
        raise ValueError(f"{where} has {len(y)} labels for {n} images in x_{split}")
    if y.dtype.kind == "f":
        if not np.isfinite(y).all():
            raise ValueError(f"{where} contains NaN or Inf")
        if not (y == np.round(y)).all():
            raise ValueError(f"{where} must hold integer class labels, got non-integer values")
    elif y.dtype.kind not in "ui":
        raise DataTypeError(f"{where} must hold integer class labels, got dtype {y.dtype}")
    if y.dtype.kind in "uf" and np.abs(y).max() >= 2 ** 63:  # would wrap around in int64
        raise ValueError(f"{where}: labels out of range: found {np.abs(y).max()}, beyond int64")
    y = y.astype(np.int64)
    if y.min() < 0:
        raise ValueError(f"{where}: labels out of range: found {y.min()}, labels must be >= 0")
    return torch.from_numpy(y)


def from_arrays(name: str, x_train, y_train, x_test, y_test, *, num_classes: int | None = None,
                value_range: float | None = None, files: dict[str, str | os.PathLike] | None = None) -> Dataset:
    """Check arrays and build a :class:`Dataset`.

    ``x`` is ``(N, H, W)`` or ``(N, C, H, W)`` of integers or floats, finite;
    ``y`` is ``(N,)`` of non-negative integer labels, or None in both splits.
    ``num_classes`` defaults to 1 + the largest training label, which must be
    below the number of training examples (a larger one is not a class
    index); a test label at or above it is out of range. ``value_range``
    defaults to the training images' peak-to-peak range (1 if constant).
    ``files`` names the file each array (``'x_train'``, ...) came from, for errors.
    Wrong dtypes raise :class:`DataTypeError`, anything else ``ValueError``.
    """
    def where(key: str) -> str:
        return f"{name}: {key}" + (f" ({files[key]})" if files and key in files else "")

    xs = {split: _images(where(f"x_{split}"), x) for split, x in (("train", x_train), ("test", x_test))}
    if xs["train"].shape[1:] != xs["test"].shape[1:]:
        raise ValueError(f"{where('x_train')} images are (C, H, W) = {tuple(xs['train'].shape[1:])} but "
                         f"{where('x_test')} images are {tuple(xs['test'].shape[1:])}; they must match")
    if (y_train is None) != (y_test is None):
        missing = "y_train" if y_train is None else "y_test"
        raise ValueError(f"{name}: {missing} is missing; give labels for both splits or for neither")
    ys = {"train": None, "test": None}
    if y_train is not None:
        ys = {split: _labels(where(f"y_{split}"), split, y, len(xs[split]))
              for split, y in (("train", y_train), ("test", y_test))}
        largest = int(max(ys["train"].max(), ys["test"].max()))
        if num_classes is None:
            num_classes = int(ys["train"].max()) + 1
            if num_classes > len(ys["train"]):
                raise ValueError(f"{where('y_train')}: labels out of range: found label {num_classes - 1} among "
                                 f"{len(ys['train'])} examples; labels must be class indices 0..C-1")
        if largest >= num_classes:
            split = "test" if int(ys["test"].max()) == largest else "train"
            raise ValueError(f"{where(f'y_{split}')}: labels out of range: found label {largest}, "
                             f"expected 0..{num_classes - 1} (the classes seen in y_train)")
    else:
        num_classes = 0
    if value_range is None:
        value_range = float(xs["train"].max() - xs["train"].min()) or 1.0
    return Dataset(name, xs["train"], ys["train"], xs["test"], ys["test"], int(num_classes), float(value_range))
