"""Reading a trained run back: its model behind its preprocessing, and a split of its data as the run saw it.

:func:`load_run` gives a :class:`RunModel`, which takes raw images; :func:`load_run_split`
gives a :class:`LoadedRun`: the bare model, the preprocessing, and one split of the run's
dataset (or of another one with the same image format) already preprocessed, which is
what evaluation and the code-energy measure need.
"""

from __future__ import annotations

import os
from dataclasses import dataclass
from pathlib import Path

import torch

from lgn.data import Dataset, get_dataset
from lgn.data.preprocess import PREPROCESS_FILE, Preprocessing, load_preprocessing
from lgn.device import resolve_device
from lgn.models import load_model
from lgn.runs.layout import BEST_WEIGHTS_FILE, CONFIG_FILE, WEIGHTS_FILE
from lgn.runs.records import read_config

__all__ = ["RunModel", "load_run", "LoadedRun", "load_run_split"]


class RunModel(torch.nn.Module):
    """A trained model behind its run's preprocessing: it takes raw images, as the dataset gives them.

    ``run_model(x)`` applies the standardisation (and ZCA) fitted on the run's
    training split, then the model: logits ``(N, classes)``, or, to
    reconstruct, the reconstruction mapped back to the raw scale
    ``(N, C, H, W)``. ``run_model.model`` is the bare model, which expects
    preprocessed input; ``run_model.preprocessing`` the map itself.
    """

    _FIELDS = ("mean", "std", "zca_mean", "zca", "zca_inverse")

    def __init__(self, model: torch.nn.Module, preprocessing: Preprocessing):
        super().__init__()
        self.model = model
        for name, value in preprocessing.tensors().items():
            self.register_buffer(name, value, persistent=False)  # follows .to(device) with the model

    @property
    def preprocessing(self) -> Preprocessing:
        return Preprocessing(*(getattr(self, name) for name in self._FIELDS))

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The model's code of raw images ``x`` ``(N, C, H, W)``."""
        return self.model.encode(self.preprocessing(x))

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        prep = self.preprocessing
        out = self.model(prep(x))
        return prep.invert(out) if self.model.config.task == "reconstruct" else out


WHICH = {"last": WEIGHTS_FILE, "best": BEST_WEIGHTS_FILE}  # a run's weights: its last epoch's, or its best's


def _weights_file(run_dir: str | os.PathLike, which: str) -> str:
    """The weights file of ``which`` epoch (``'last'`` or ``'best'``), refused in one line if the run has none."""
    if which not in WHICH:
        raise ValueError(f"which must be 'last' or 'best', got {which!r}")
    name = WHICH[which]
    if which == "best" and not (Path(run_dir) / name).is_file() and (Path(run_dir) / WEIGHTS_FILE).is_file():
        raise FileNotFoundError(f"no {name} in {run_dir}: the run was trained before lgn kept its best epoch; "
                                f"load its last epoch (which='last')")
    return name


def _model_and_preprocessing(run_dir: str | os.PathLike, device: str | torch.device,
                             which: str = "last") -> tuple[torch.nn.Module, Preprocessing]:
    """The bare model of a run folder (an LGN or the CNN baseline, eval mode), its weights those of the
    ``which`` epoch (``'last'`` or ``'best'``), and its preprocessing, both on ``device``, checked to agree."""
    model = load_model(run_dir, device, weights=_weights_file(run_dir, which))
    prep = load_preprocessing(run_dir).to(device)
    if len(prep.mean) != model.config.in_channels:
        raise ValueError(f"{Path(run_dir) / PREPROCESS_FILE} standardises {len(prep.mean)} channels, "
                         f"but the model takes {model.config.in_channels}")
    return model, prep


def load_run(run_dir: str | os.PathLike, map_location: str | torch.device = "cpu", *,
             which: str = "last") -> RunModel:
    """The model of a run folder written by ``lgn train``, applying the run's preprocessing (eval mode).

    ``which``: ``'last'``, the last epoch's weights (``model.safetensors``), or
    ``'best'``, those of the epoch with the best validation metric
    (``model-best.safetensors``; its epoch and score are in ``run.json``,
    :func:`lgn.runs.read_run_record`). Feed it raw images: :func:`lgn.models.load_model`
    alone gives the bare model, which expects standardised input and scores near chance on raw data.
    """
    return RunModel(*_model_and_preprocessing(run_dir, map_location, which)).eval()


@dataclass(frozen=True)
class LoadedRun:
    """A run folder's model with one split of a dataset, preprocessed as the run was."""

    folder: Path                  # the run folder
    config: dict                  # its config.json: the settings it was trained with
    model: torch.nn.Module        # the bare model (an LGN or the CNN baseline), eval mode, on the device
    preprocessing: Preprocessing  # the input map fitted on the run's training split, on the device
    name: str                     # the dataset's name: the run's own, or the one asked for
    data: Dataset                 # that dataset, raw (its value_range is the PSNR peak)
    split: str                    # 'train' or 'test'
    x: torch.Tensor               # (N, C, H, W) the split's images, preprocessed, on the device
    y: torch.Tensor | None        # (N,) its labels, on the device; None when the model reconstructs


def _setting(config: dict, section: str, key: str, kinds: tuple[type, ...], what: str, path: Path, *,
             minimum: int | None = None):
    """``config[section][key]`` (None if absent), refused in one line naming ``path`` unless one of ``kinds``
    (and at least ``minimum``)."""
    table = config.get(section, {})
    if not isinstance(table, dict):
        raise ValueError(f"{path}: top-level key {section!r} must be a [section] (a table of settings), "
                         f"got {type(table).__name__}")
    value = table.get(key)
    if value is not None and (not isinstance(value, kinds) or isinstance(value, bool) and bool not in kinds
                              or minimum is not None and value < minimum):
        raise ValueError(f"{path}: {section}.{key} must be {what}, got {value!r}")
    return value


def load_run_split(run_dir: str | os.PathLike, *, dataset: str | None = None, data_dir: str | None = None,
                   split: str = "test", device: str = "cpu", which: str = "last") -> LoadedRun:
    """The model of the run folder ``run_dir`` (its ``which`` epoch's weights, as :func:`load_run`) and a split
    of its dataset (or of ``dataset``), preprocessed as the run was.

    Without ``dataset`` the run's data settings are reused (folder, options, subsets,
    seed), so the split is the one the run was scored on. The settings it reads from
    ``config.json`` are checked; a damaged file is refused in one line naming it.
    """
    if split not in ("train", "test"):
        raise ValueError(f"split must be 'train' or 'test', got {split!r}")
    folder = Path(run_dir)
    config = read_config(folder)
    if config is None:
        raise FileNotFoundError(f"no {CONFIG_FILE} in {folder}: not an lgn run folder")
    path = folder / CONFIG_FILE
    own = _setting(config, "data", "name", (str,), "a dataset name", path)
    same = dataset is None or dataset == own
    name = own if same else dataset
    options = _setting(config, "data", "options", (dict,), "a table of dataset options", path) or {}
    ds = get_dataset(name, data_dir=data_dir if data_dir is not None or not same
                     else _setting(config, "data", "data_dir", (str,), "a folder", path),
                     seed=_setting(config, "train", "seed", (int,), "a non-negative integer", path, minimum=0) or 0,
                     **(options if same else {}))
    if same:
        ds = ds.subset(*(_setting(config, "data", key, (int,), "a positive integer or none", path, minimum=1)
                         for key in ("train_subset", "test_subset")))
    device = resolve_device(device)
    model, prep = _model_and_preprocessing(folder, device, which)
    x, y = (ds.x_train, ds.y_train) if split == "train" else (ds.x_test, ds.y_test)
    if model.config.task == "classify":
        if y is None:
            raise ValueError(f"{name} has no labels; this run's model classifies")
        if int(y.max()) >= model.config.num_classes:
            raise ValueError(f"{name} has label {int(y.max())} but the model knows "
                             f"{model.config.num_classes} classes")
        y = y.to(device)
    else:
        y = None
    x = prep(x.to(device))
    dtype = next((p.dtype for p in model.parameters() if p.is_floating_point()), x.dtype)
    model.check_input(x[:1].to(dtype))
    return LoadedRun(folder=folder, config=config, model=model, preprocessing=prep, name=name, data=ds,
                     split=split, x=x, y=y)
