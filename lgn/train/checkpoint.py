"""Training checkpoints: safetensors for every tensor, JSON for the rest. Never pickle.

A checkpoint is two files in the run folder:

- ``checkpoint.safetensors``: the model's state (``model/<key>``), the
  optimiser's per-parameter state (``optimizer/<index>/<name>``) and the RNG
  states (``rng/torch``, ``rng/cuda/<device>``);
- ``checkpoint.json``: the format version, the position reached (``epoch``
  completed, optimiser ``step``), the optimiser's hyper-parameters, the run's
  resolved config, and the SHA-256 of the tensor file.

Each file is written to a temporary name, flushed to disk and renamed, tensors
first; the JSON names the tensor file's digest, so a pair from two different
saves is detected on load. The data order needs no state: each epoch's
permutation is a function of (seed, epoch).
"""

from __future__ import annotations

import hashlib
import json
import os
from dataclasses import dataclass
from pathlib import Path

import torch
from safetensors import SafetensorError
from safetensors.torch import load, save

from lgn.models.io import atomic_write

__all__ = ["save_checkpoint", "load_checkpoint", "Checkpoint", "CHECKPOINT_TENSORS", "CHECKPOINT_META"]

CHECKPOINT_TENSORS = "checkpoint.safetensors"
CHECKPOINT_META = "checkpoint.json"
FORMAT, VERSION = "lgn-checkpoint", 1


@dataclass
class Checkpoint:
    """What :func:`load_checkpoint` restores besides the model and optimiser."""

    epoch: int    # epochs completed
    step: int     # optimiser steps completed
    config: dict  # the resolved config the run was started with


def _optimizer_tensors(optimizer: torch.optim.Optimizer) -> tuple[dict[str, torch.Tensor], dict]:
    """Split ``optimizer.state_dict()`` into named tensors and a JSON-able rest."""
    state = optimizer.state_dict()
    tensors, scalars = {}, {}
    for index, entry in state["state"].items():
        for name, value in entry.items():
            if isinstance(value, torch.Tensor):
                tensors[f"optimizer/{index}/{name}"] = value
            else:
                scalars.setdefault(str(index), {})[name] = value
    return tensors, {"param_groups": state["param_groups"], "scalars": scalars}


def save_checkpoint(directory: str | os.PathLike, model: torch.nn.Module, optimizer: torch.optim.Optimizer, *,
                    epoch: int, step: int, config: dict) -> None:
    """Write the checkpoint of a run that has completed ``epoch`` epochs and ``step`` optimiser steps."""
    directory = Path(directory)
    tensors = {f"model/{k}": v for k, v in model.state_dict().items()}
    optim_tensors, optim_rest = _optimizer_tensors(optimizer)
    tensors.update(optim_tensors)
    tensors["rng/torch"] = torch.get_rng_state()
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            tensors[f"rng/cuda/{i}"] = s
    data = save({k: v.detach().contiguous().cpu() for k, v in tensors.items()})
    meta = {"format": FORMAT, "version": VERSION, "epoch": epoch, "step": step,
            "optimizer": optim_rest, "config": config, "sha256": hashlib.sha256(data).hexdigest()}
    atomic_write(directory / CHECKPOINT_TENSORS, data)
    atomic_write(directory / CHECKPOINT_META, (json.dumps(meta, indent=1) + "\n").encode())


def load_checkpoint(directory: str | os.PathLike, model: torch.nn.Module,
                    optimizer: torch.optim.Optimizer) -> Checkpoint | None:
    """Restore ``model`` and ``optimizer`` (and the RNG) from ``directory``; None if it holds no checkpoint.

    Raises ``ValueError`` for a damaged checkpoint or one of another
    architecture; the caller's model and optimiser are then left untouched.
    """
    directory = Path(directory)
    meta_path, tensor_path = directory / CHECKPOINT_META, directory / CHECKPOINT_TENSORS
    if not meta_path.is_file():
        return None
    try:
        meta = json.loads(meta_path.read_text())
        data = tensor_path.read_bytes()
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"cannot read the checkpoint in {directory}: {e}") from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT or meta.get("version") != VERSION:
        raise ValueError(f"{meta_path} is not an lgn checkpoint of version {VERSION}")
    if hashlib.sha256(data).hexdigest() != meta.get("sha256"):
        raise ValueError(f"{tensor_path} does not match the digest in {meta_path.name}: damaged or half-written")
    try:
        tensors = load(data)
    except SafetensorError as e:
        raise ValueError(f"{tensor_path} is not a readable safetensors file: {e}") from None
    groups: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        kind, _, rest = key.partition("/")
        groups.setdefault(kind, {})[rest] = value
    model_state = groups.get("model", {})
    device = next(iter(model.state_dict().values())).device
    expected = model.state_dict()
    bad = sorted(set(expected) ^ set(model_state)) or sorted(
        k for k in expected if expected[k].shape != model_state[k].shape)
    if bad:
        raise ValueError(f"the checkpoint in {directory} is of another architecture "
                         f"(mismatch in {', '.join(bad[:4])}{', ...' if len(bad) > 4 else ''})")
    state: dict[int, dict] = {}
    for key, value in groups.get("optimizer", {}).items():
        index, _, name = key.partition("/")
        state.setdefault(int(index), {})[name] = value.to(device)
    for index, scalars in meta["optimizer"]["scalars"].items():
        state.setdefault(int(index), {}).update(scalars)
    # JSON turned tuples (Adam's betas) into lists; every list but the parameter indices was a tuple
    groups_json = [{k: v if k == "params" or not isinstance(v, list) else tuple(v) for k, v in g.items()}
                   for g in meta["optimizer"]["param_groups"]]
    try:
        optimizer.load_state_dict({"state": state, "param_groups": groups_json})
    except (ValueError, KeyError) as e:
        raise ValueError(f"the optimiser state in {directory} does not fit this model: {e}") from None
    model.load_state_dict({k: v.to(device) for k, v in model_state.items()})
    torch.set_rng_state(groups["rng"]["torch"])
    cuda = {int(k[len("cuda/"):]): v for k, v in groups["rng"].items() if k.startswith("cuda/")}
    cuda_states = [cuda[i] for i in sorted(cuda)]
    if cuda_states and torch.cuda.is_available() and len(cuda_states) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda_states)
    return Checkpoint(epoch=int(meta["epoch"]), step=int(meta["step"]), config=meta["config"])
