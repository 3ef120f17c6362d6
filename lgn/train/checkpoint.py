"""Training checkpoints: safetensors for every tensor, JSON for the rest. Never pickle.

A checkpoint is a pair of files in the run folder, ``<slot>.safetensors`` and
``<slot>.json``, and a run keeps two slots (``checkpoint-0``, ``checkpoint-1``),
written in turn, so that the previous checkpoint survives while the next is
being written, and a damaged latest one falls back to it.

- ``<slot>.safetensors``: the model's state (``model/<key>``), the optimiser's
  per-parameter state (``optimizer/<index>/<name>``), the RNG states
  (``rng/torch``, ``rng/cuda/<device>``, ``rng/numpy``, ``rng/python``) and
  the caller's extra tensors (``extra/<name>``, e.g. a partial epoch's sums);
- ``<slot>.json``: the format version, the position reached (``epoch``
  completed, ``batch`` of the next epoch done, ``step``), the optimiser's
  hyper-parameters, the run's resolved config, the caller's JSON-able
  ``state``, the SHA-256 of the tensor file and the SHA-256 of the JSON itself.

Each file is written to a temporary name, flushed to disk and renamed, tensors
first; the JSON names the tensor file's digest, so a pair from two different
saves is detected on load. The data order needs no state: each epoch's
permutation is a function of (seed, epoch), and the position within it is
``batch``.
"""

from __future__ import annotations

import hashlib
import json
import os
import random
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load, save

from lgn.models.io import atomic_write

__all__ = ["save_checkpoint", "load_checkpoint", "Checkpoint", "CHECKPOINT_SLOTS", "CHECKPOINT_FILES", "next_slot"]

CHECKPOINT_SLOTS = ("checkpoint-0", "checkpoint-1")
_LEGACY_SLOT = "checkpoint"  # the single checkpoint of format version 1, still read
CHECKPOINT_FILES = tuple(f"{slot}{ext}" for slot in (*CHECKPOINT_SLOTS, _LEGACY_SLOT)
                         for ext in (".safetensors", ".json"))
FORMAT, VERSION = "lgn-checkpoint", 2


@dataclass
class Checkpoint:
    """What :func:`load_checkpoint` restores besides the model, optimiser and RNG."""

    epoch: int    # epochs completed
    step: int     # optimiser steps (batches) completed
    config: dict  # the resolved config the run was started with
    batch: int = 0                                   # batches of epoch ``epoch`` (0-based) completed
    state: dict = field(default_factory=dict)        # the caller's JSON-able state
    tensors: dict = field(default_factory=dict)      # the caller's extra tensors
    slot: str = CHECKPOINT_SLOTS[0]                  # the slot it was read from
    warnings: list[str] = field(default_factory=list)  # damaged newer checkpoints passed over


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


def next_slot(slot: str | None) -> str:
    """The slot to write after ``slot`` (the first one after None or the legacy single checkpoint)."""
    return CHECKPOINT_SLOTS[1] if slot == CHECKPOINT_SLOTS[0] else CHECKPOINT_SLOTS[0]


def _meta_digest(meta: dict) -> str:
    body = {k: v for k, v in meta.items() if k != "meta_sha256"}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def _newest_valid_slot(directory: Path) -> str | None:
    found = [_read(directory, slot) for slot in CHECKPOINT_SLOTS]
    valid = [(meta["step"], slot) for slot, (meta, _, error) in zip(CHECKPOINT_SLOTS, found) if error is None]
    return max(valid)[1] if valid else None


def save_checkpoint(directory: str | os.PathLike, model: torch.nn.Module, optimizer: torch.optim.Optimizer, *,
                    epoch: int, step: int, config: dict, batch: int = 0, state: dict | None = None,
                    tensors: dict[str, torch.Tensor] | None = None, slot: str | None = None) -> str:
    """Write the checkpoint of a run that has completed ``epoch`` epochs, ``batch`` batches of the next and
    ``step`` optimiser steps; returns the slot written.

    ``slot`` defaults to the one not holding the newest valid checkpoint (a
    caller that alternates itself saves re-reading both). ``state`` (JSON-able)
    and ``tensors`` come back in :class:`Checkpoint`.
    """
    directory = Path(directory)
    if slot is None:
        slot = next_slot(_newest_valid_slot(directory))
    if slot not in CHECKPOINT_SLOTS:
        raise ValueError(f"checkpoint slot must be one of {CHECKPOINT_SLOTS}, got {slot!r}")
    named = {f"model/{k}": v for k, v in model.state_dict().items()}
    optim_tensors, optim_rest = _optimizer_tensors(optimizer)
    named.update(optim_tensors)
    named.update({f"extra/{k}": v for k, v in (tensors or {}).items()})
    named["rng/torch"] = torch.get_rng_state()
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            named[f"rng/cuda/{i}"] = s
    np_kind, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()
    named["rng/numpy"] = torch.from_numpy(np_keys.astype(np.int64))
    py_version, py_state, py_gauss = random.getstate()
    named["rng/python"] = torch.tensor(py_state, dtype=torch.int64)
    data = save({k: v.detach().contiguous().cpu() for k, v in named.items()})
    meta = {"format": FORMAT, "version": VERSION, "epoch": epoch, "batch": batch, "step": step,
            "optimizer": optim_rest, "config": config, "state": state or {},
            "rng": {"numpy": [np_kind, int(np_pos), int(np_has_gauss), float(np_gauss)],
                    "python": [py_version, py_gauss]},
            "sha256": hashlib.sha256(data).hexdigest()}
    meta["meta_sha256"] = _meta_digest(meta)
    atomic_write(directory / f"{slot}.safetensors", data)
    atomic_write(directory / f"{slot}.json", (json.dumps(meta, indent=1) + "\n").encode())
    return slot


def _read(directory: Path, slot: str) -> tuple[dict | None, dict | None, str | None]:
    """(meta, tensors, None) for an intact checkpoint in ``slot``, else (None, None, why not)."""
    meta_path, tensor_path = directory / f"{slot}.json", directory / f"{slot}.safetensors"
    try:
        meta = json.loads(meta_path.read_text())
        data = tensor_path.read_bytes()
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as e:
        return None, None, f"unreadable ({type(e).__name__}: {e})"
    if not isinstance(meta, dict) or meta.get("format") != FORMAT or meta.get("version") not in (1, VERSION):
        return None, None, f"not an lgn checkpoint of version {VERSION}"
    if meta["version"] > 1 and meta.get("meta_sha256") != _meta_digest(meta):
        return None, None, f"{meta_path.name} does not match its own digest"
    if hashlib.sha256(data).hexdigest() != meta.get("sha256"):
        return None, None, f"{tensor_path.name} does not match the digest in {meta_path.name}"
    try:
        tensors = load(data)
    except SafetensorError as e:
        return None, None, f"{tensor_path.name} is not a readable safetensors file ({e})"
    return meta, tensors, None


def load_checkpoint(directory: str | os.PathLike, model: torch.nn.Module,
                    optimizer: torch.optim.Optimizer) -> Checkpoint | None:
    """Restore ``model``, ``optimizer`` and the RNG from the newest intact checkpoint in ``directory``.

    None if ``directory`` holds no checkpoint files at all. A damaged newer
    checkpoint is passed over for the older one, with a line in
    :attr:`Checkpoint.warnings`. Raises ``ValueError`` if every checkpoint is
    damaged, or for one of another architecture; the caller's model and
    optimiser are then left untouched.
    """
    directory = Path(directory)
    slots = [s for s in (*CHECKPOINT_SLOTS, _LEGACY_SLOT)
             if (directory / f"{s}.json").exists() or (directory / f"{s}.safetensors").exists()]
    if not slots:
        return None
    read = {slot: _read(directory, slot) for slot in slots}
    damaged = {slot: error for slot, (_, _, error) in read.items() if error is not None}
    intact = sorted((meta["step"], slot) for slot, (meta, _, error) in read.items() if error is None)
    if not intact:
        raise ValueError(f"no intact checkpoint in {directory}, so it cannot resume: "
                         + "; ".join(f"{slot}: {why}" for slot, why in damaged.items()))
    slot = intact[-1][1]
    meta, tensors, _ = read[slot]
    warnings = [f"checkpoint {s} in {directory} is damaged or half-written ({why}); using {slot} "
                f"(step {meta['step']}) instead" for s, why in damaged.items()]
    _restore(directory, meta, tensors, model, optimizer)
    state = meta.get("state", {})
    return Checkpoint(epoch=int(meta["epoch"]), step=int(meta["step"]), config=meta["config"],
                      batch=int(meta.get("batch", 0)), state=state,
                      tensors={k[len("extra/"):]: v for k, v in tensors.items() if k.startswith("extra/")},
                      slot=slot, warnings=warnings)


def _restore(directory: Path, meta: dict, tensors: dict[str, torch.Tensor], model: torch.nn.Module,
             optimizer: torch.optim.Optimizer) -> None:
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
    rng = groups["rng"]
    torch.set_rng_state(rng["torch"])
    cuda = {int(k[len("cuda/"):]): v for k, v in rng.items() if k.startswith("cuda/")}
    cuda_states = [cuda[i] for i in sorted(cuda)]
    if cuda_states and torch.cuda.is_available() and len(cuda_states) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda_states)
    if "numpy" in rng and "rng" in meta:
        kind, pos, has_gauss, gauss = meta["rng"]["numpy"]
        np.random.set_state((kind, rng["numpy"].numpy().astype(np.uint32), pos, has_gauss, gauss))
    if "python" in rng and "rng" in meta:
        version, gauss = meta["rng"]["python"]
        random.setstate((version, tuple(rng["python"].tolist()), gauss))
