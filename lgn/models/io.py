"""Saving and loading models: safetensors for the weights, JSON for the config. No pickle."""

from __future__ import annotations

import json
import os
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import save

from lgn.files import MAX_JSON_BYTES, atomic_write, read_file, read_safetensors, write_json
from lgn.models.config import ModelConfig
from lgn.models.lgn import LGN, build_model
from lgn.parsing import load_json

__all__ = ["save_model", "load_model", "WEIGHTS_FILE", "CONFIG_FILE"]

WEIGHTS_FILE = "model.safetensors"
CONFIG_FILE = "model.json"
FORMAT, VERSION = "lgn", "1"  # the weights file's metadata


def save_model(model: LGN, directory: str | os.PathLike, *, weights: str = WEIGHTS_FILE,
               state: dict[str, torch.Tensor] | None = None) -> Path:
    """Write ``model.safetensors`` (or the file named ``weights``) and ``model.json`` (the model config) into
    ``directory``; the weights are ``model``'s, or ``state`` where given (``model``'s state dict of an earlier
    moment, e.g. the best epoch of a run)."""
    directory = Path(directory)
    directory.mkdir(parents=True, exist_ok=True)
    state = {k: v.detach().contiguous().cpu() for k, v in (model.state_dict() if state is None else state).items()}
    atomic_write(directory / weights, save(state, metadata={"format": FORMAT, "version": VERSION}))
    write_json(model.config.to_dict(), directory / CONFIG_FILE)
    return directory


def load_model(directory: str | os.PathLike, map_location: str | torch.device = "cpu", *,
               weights: str = WEIGHTS_FILE) -> LGN:
    """Rebuild the model saved by :func:`save_model` in ``directory`` (eval mode), its weights read from
    ``model.safetensors`` or the file named ``weights`` (a run folder's ``model-best.safetensors``).

    The model expects preprocessed input; for a run folder, :func:`lgn.runs.load_run`
    gives the model with the run's preprocessing, which takes raw images.

    Raises ``FileNotFoundError`` if a file is missing and ``ValueError``, naming
    the file, for one that is damaged, of another format or version, holds
    non-finite weights, or disagrees with the other.
    """
    directory = Path(directory)
    config_path, weights_path = directory / CONFIG_FILE, directory / weights
    for path in (config_path, weights_path):
        if not path.is_file():
            raise FileNotFoundError(f"no {path.name} in {directory}: not a saved lgn model")
    try:
        raw = load_json(read_file(config_path, MAX_JSON_BYTES).decode("utf-8"), str(config_path))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{config_path} is not valid JSON: {e}") from None
    if not isinstance(raw, dict):
        raise ValueError(f"{config_path} must hold a JSON object of model settings, got {type(raw).__name__}")
    try:
        config = ModelConfig.from_dict(raw)
    except (TypeError, ValueError) as e:
        raise ValueError(f"{config_path}: {e}") from None
    try:
        state, metadata = read_safetensors(weights_path, map_location)
    except (SafetensorError, OSError) as e:
        raise ValueError(f"{weights_path} is not a readable safetensors file: {e}") from None
    if metadata.get("format", FORMAT) != FORMAT:
        raise ValueError(f"{weights_path} holds weights of format {metadata['format']!r}: not an lgn model")
    if metadata.get("version", VERSION) != VERSION:
        raise ValueError(f"{weights_path} is lgn weights version {metadata['version']}, this lgn reads version "
                         f"{VERSION}: use the lgn that wrote it, or a newer one")
    non_finite = [k for k, v in state.items() if v.is_floating_point() and not bool(torch.isfinite(v).all())]
    if non_finite:
        raise ValueError(f"{weights_path} holds NaN or Inf in {', '.join(non_finite[:3])}"
                         f"{', ...' if len(non_finite) > 3 else ''}: the run that saved it diverged")
    try:
        model = build_model(config)  # an LGN, or the CNN baseline
    except (TypeError, ValueError) as e:
        raise ValueError(f"{config_path}: {e}") from None
    # the float dtype it was saved in; safetensors gives no key order, and counters such as
    # BatchNorm's num_batches_tracked are integers, so look past those
    dtype = next((v.dtype for v in state.values() if v.is_floating_point()), torch.float32)
    model = model.to(dtype)
    expected = model.state_dict()  # one real float dtype throughout; integers only where the model counts
    wrong = [k for k in sorted(state) if k in expected and state[k].dtype != expected[k].dtype]
    if wrong:
        key = wrong[0]
        got, want = (str(t.dtype).removeprefix("torch.") for t in (state[key], expected[key]))
        others = "its other floating tensors are" if expected[key].is_floating_point() else "the model keeps it as"
        raise ValueError(f"{weights_path} holds {key} as {got}, but {others} {want}: a model is saved in one "
                         f"real float dtype")
    try:
        model.load_state_dict(state, strict=True)
    except RuntimeError as e:
        first = str(e).strip().splitlines()
        raise ValueError(f"{weights_path} does not match the architecture in {config_path.name}: "
                         f"{' '.join(first[:3])}") from None
    return model.to(map_location).eval()
