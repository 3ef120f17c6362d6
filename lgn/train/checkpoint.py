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
  hyper-parameters and which state tensors it holds per parameter, the run's
  resolved config, the caller's JSON-able ``state``, the number of CPU threads
  the run used, the SHA-256 of the tensor file and the SHA-256 of the JSON
  itself.

Each file is written to a temporary name, flushed to disk and renamed, tensors
first; the JSON names the tensor file's digest, so a pair from two different
saves is detected on load. The data order needs no state: each epoch's
permutation is a function of (seed, epoch), and the position within it is
``batch``.

A checkpoint is trusted only after its digests match and every field has been
checked against the model and optimiser it is loaded into: presence, type,
shape, dtype and range (:class:`CheckpointError` names the field). Formats 1
(a single ``checkpoint`` slot) and 2 (without the thread count) predate
release 0.1 and are not read: a run folder holding only such a checkpoint is
refused in one line naming the file, so that the run is started again.
While the first checkpoint is being written there is no intact one yet; a run
stopped then has nothing to resume and :func:`load_checkpoint` says so
(:data:`NEVER_COMPLETED`) instead of refusing.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import random
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load, save

from lgn.files import MAX_JSON_BYTES, atomic_write, read_file
from lgn.parsing import load_json

__all__ = ["check_tensor", "save_checkpoint", "load_checkpoint", "Checkpoint", "CheckpointError", "CHECKPOINT_SLOTS",
           "CHECKPOINT_FILES", "next_slot", "never_completed"]

CHECKPOINT_SLOTS = ("checkpoint-0", "checkpoint-1")
_LEGACY_SLOT = "checkpoint"  # the single checkpoint of format 1: refused, and cleared with the run's files
CHECKPOINT_FILES = tuple(f"{slot}{ext}" for slot in (*CHECKPOINT_SLOTS, _LEGACY_SLOT)
                         for ext in (".safetensors", ".json"))
FORMAT, VERSION = "lgn-checkpoint", 3
_PRE_RELEASE = (1, 2)  # formats written before release 0.1: not read
_RNG_WORDS = 624  # the Mersenne Twister's state words (numpy's and Python's)


class CheckpointError(ValueError):
    """A checkpoint field that is missing, of the wrong type, shape or dtype, or out of range."""

    def __init__(self, field: str, why: str):
        super().__init__(f"field {field} {why}")
        self.field = field


class _Unusable(Exception):
    """Why the files of one slot cannot be used (damaged, half-written, not a checkpoint)."""


class _PreRelease(_Unusable):
    """A checkpoint of a format from before release 0.1."""

    def __init__(self, path: Path, version: int):
        super().__init__(f"format {version}, which predates release 0.1 and is not read")
        self.path, self.version = path, version

    def refusal(self) -> ValueError:
        return ValueError(f"{self.path} is checkpoint format {self.version}, which predates release 0.1; "
                          f"start the run again (train with --force, which deletes the run's files)")


@dataclass
class Checkpoint:
    """What a checkpoint holds besides the model, optimiser and RNG: what :func:`save_checkpoint` writes
    (the first seven fields) and :func:`load_checkpoint` returns (all)."""

    epoch: int    # epochs completed
    step: int     # optimiser steps (batches) completed
    config: dict  # the resolved config the run was started with
    batch: int = 0                                   # batches of epoch ``epoch`` (0-based) completed
    state: dict = field(default_factory=dict)        # the caller's JSON-able state
    tensors: dict = field(default_factory=dict)      # the caller's extra tensors
    slot: str | None = None                          # the slot it was read from, or to write (None: the one
    #                                                  not holding the newest valid checkpoint)
    warnings: list[str] = field(default_factory=list)  # damaged newer checkpoints passed over
    threads: int | None = None                       # torch's CPU threads when it was saved
    optimizer_steps: int | None = None               # steps the optimiser's state has seen (None: not Adam)


# what torch.optim.lr_scheduler adds to an optimiser's hyper-parameter groups: a schedule is its caller's, placed
# again from the position on resume, so it is neither saved nor compared
_SCHEDULE_KEYS = ("initial_lr",)


def _param_groups(state: dict) -> list[dict]:
    """The hyper-parameter groups of an optimiser's ``state`` (its ``state_dict()``), less a schedule's keys."""
    return [{k: v for k, v in group.items() if k not in _SCHEDULE_KEYS} for group in state["param_groups"]]


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
    held = {str(index): sorted(entry) for index, entry in state["state"].items()}
    return tensors, {"param_groups": _param_groups(state), "scalars": scalars, "state_keys": held}


def next_slot(slot: str | None) -> str:
    """The slot to write after ``slot`` (the first one after None)."""
    return CHECKPOINT_SLOTS[1] if slot == CHECKPOINT_SLOTS[0] else CHECKPOINT_SLOTS[0]


def _meta_digest(meta: dict) -> str:
    body = {k: v for k, v in meta.items() if k != "meta_sha256"}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def _newest_valid_slot(directory: Path) -> str | None:
    valid = []
    for slot in CHECKPOINT_SLOTS:
        try:
            meta, _ = _read(directory, slot)
        except _Unusable:
            continue
        if isinstance(meta.get("step"), int):
            valid.append((meta["step"], slot))
    return max(valid)[1] if valid else None


NEVER_COMPLETED = "the first checkpoint was never completed (the run stopped while writing it)"


def never_completed(directory: str | os.PathLike) -> bool:
    """Whether ``directory`` holds only what a run stopped while writing its first checkpoint leaves behind.

    Slots are written in turn from ``checkpoint-0``, tensors before JSON, so
    that is: ``checkpoint-0.safetensors`` without its JSON, and nothing of
    any other slot.
    """
    directory = Path(directory)
    others = [f"{s}{ext}" for s in (*CHECKPOINT_SLOTS[1:], _LEGACY_SLOT) for ext in (".json", ".safetensors")]
    first = CHECKPOINT_SLOTS[0]
    return ((directory / f"{first}.safetensors").exists() and not (directory / f"{first}.json").exists()
            and not any((directory / name).exists() for name in others))


def save_checkpoint(directory: str | os.PathLike, model: torch.nn.Module, optimizer: torch.optim.Optimizer,
                    checkpoint: Checkpoint) -> str:
    """Write ``model``, ``optimizer``, the RNG states and ``checkpoint`` (position, config, state, extra
    tensors) into ``checkpoint.slot`` of ``directory``; returns the slot written.

    The slot defaults to the one not holding the newest valid checkpoint (a
    caller that alternates itself saves re-reading both). The position says
    that ``epoch`` epochs, ``batch`` batches of the next and ``step`` optimiser
    steps are complete; ``state`` (JSON-able) and ``tensors`` come back from
    :func:`load_checkpoint`.
    """
    directory = Path(directory)
    slot = checkpoint.slot or next_slot(_newest_valid_slot(directory))
    if slot not in CHECKPOINT_SLOTS:
        raise ValueError(f"checkpoint slot must be one of {CHECKPOINT_SLOTS}, got {slot!r}")
    named = {f"model/{k}": v for k, v in model.state_dict().items()}
    optim_tensors, optim_rest = _optimizer_tensors(optimizer)
    named.update(optim_tensors)
    named.update({f"extra/{k}": v for k, v in checkpoint.tensors.items()})
    named["rng/torch"] = torch.get_rng_state()
    if torch.cuda.is_available() and torch.cuda.is_initialized():
        for i, s in enumerate(torch.cuda.get_rng_state_all()):
            named[f"rng/cuda/{i}"] = s
    np_kind, np_keys, np_pos, np_has_gauss, np_gauss = np.random.get_state()
    named["rng/numpy"] = torch.from_numpy(np_keys.astype(np.int64))
    py_version, py_state, py_gauss = random.getstate()
    named["rng/python"] = torch.tensor(py_state, dtype=torch.int64)
    data = save({k: v.detach().contiguous().cpu() for k, v in named.items()})
    meta = {"format": FORMAT, "version": VERSION, "epoch": checkpoint.epoch, "batch": checkpoint.batch,
            "step": checkpoint.step, "optimizer": optim_rest, "config": checkpoint.config, "state": checkpoint.state,
            "rng": {"numpy": [np_kind, int(np_pos), int(np_has_gauss), float(np_gauss)],
                    "python": [py_version, py_gauss]},
            "threads": torch.get_num_threads(), "sha256": hashlib.sha256(data).hexdigest()}
    meta["meta_sha256"] = _meta_digest(meta)
    atomic_write(directory / f"{slot}.safetensors", data)
    atomic_write(directory / f"{slot}.json", (json.dumps(meta, indent=1) + "\n").encode())
    return slot


def _read(directory: Path, slot: str) -> tuple[dict, dict[str, torch.Tensor]]:
    """(meta, tensors) of the checkpoint in ``slot`` if its digests match, else :class:`_Unusable` saying why."""
    meta_path, tensor_path = directory / f"{slot}.json", directory / f"{slot}.safetensors"
    try:
        meta = load_json(read_file(meta_path, MAX_JSON_BYTES), meta_path.name)
        data = read_file(tensor_path)
    except (OSError, json.JSONDecodeError, UnicodeDecodeError) as e:
        raise _Unusable(f"unreadable ({type(e).__name__}: {e})") from None
    except ValueError as e:  # nested too deeply
        raise _Unusable(str(e)) from None
    if not isinstance(meta, dict) or meta.get("format") != FORMAT or type(meta.get("version")) is not int:
        raise _Unusable(f"not an lgn checkpoint of format {VERSION}")
    if meta["version"] in _PRE_RELEASE:
        raise _PreRelease(meta_path, meta["version"])
    if meta["version"] != VERSION:
        raise _Unusable(f"an lgn checkpoint of format {meta['version']}; this lgn reads format {VERSION}")
    if meta.get("meta_sha256") != _meta_digest(meta):
        raise _Unusable(f"{meta_path.name} does not match its own digest")
    if hashlib.sha256(data).hexdigest() != meta.get("sha256"):
        raise _Unusable(f"{tensor_path.name} does not match the digest in {meta_path.name}")
    try:
        return meta, load(data)
    except SafetensorError as e:
        raise _Unusable(f"{tensor_path.name} is not a readable safetensors file ({e})") from None


def load_checkpoint(directory: str | os.PathLike, model: torch.nn.Module, optimizer: torch.optim.Optimizer, *,
                    check=None) -> Checkpoint | None:
    """Restore ``model``, ``optimizer`` and the RNG from the newest intact checkpoint in ``directory``.

    None if ``directory`` holds no checkpoint files at all, or only a first
    checkpoint that was never completed (:func:`never_completed`). A checkpoint
    is intact if its digests match and every field fits ``model`` and
    ``optimizer`` (and passes ``check(checkpoint)``, the caller's own test of
    its position and state, which raises :class:`CheckpointError`). A damaged
    newer checkpoint is passed over for the older one, with a line in
    :attr:`Checkpoint.warnings`. A ``ValueError`` other than those (another
    architecture; from ``check``, settings the caller refuses) is raised if
    the newest checkpoint not damaged raised it: an older one refused alone
    (written before the run was extended) is not in the way. Raises ``ValueError`` if none is intact:
    naming the file if one is of a format from before release 0.1, else
    naming each slot's fault; the caller's model and optimiser are then left
    untouched.
    """
    directory = Path(directory)
    slots = [s for s in CHECKPOINT_SLOTS
             if (directory / f"{s}.json").exists() or (directory / f"{s}.safetensors").exists()]
    if not slots and (directory / f"{_LEGACY_SLOT}.json").exists():
        raise _PreRelease(directory / f"{_LEGACY_SLOT}.json", 1).refusal()
    if not slots or never_completed(directory):
        return None
    damaged, intact, refused = {}, [], []
    for slot in slots:
        try:
            meta, tensors = _read(directory, slot)
            found = _checked(directory, meta, tensors, model, optimizer, slot)
            if check is not None:
                check(found)
        except (_Unusable, CheckpointError) as e:
            damaged[slot] = e
        except ValueError as e:  # intact, but not to be resumed (another architecture, settings refused)
            refused.append((meta["step"] if type(meta.get("step")) is int else -1, slot, e))
        else:
            intact.append((found.step, slot, meta, tensors, found))
    newest = max(refused, key=lambda item: item[:2], default=None)
    if newest is not None and (not intact or newest[:2] > max(intact, key=lambda item: item[:2])[:2]):
        raise newest[2]
    if not intact:
        old = next((e for e in damaged.values() if isinstance(e, _PreRelease)), None)
        if old is not None:
            raise old.refusal()
        raise ValueError(f"no intact checkpoint in {directory}, so it cannot resume: "
                         + "; ".join(f"{slot}: {why}" for slot, why in damaged.items())
                         + "; to start the run over, train with --force (it deletes the run's files)")
    step, slot, meta, tensors, found = max(intact, key=lambda item: item[:2])
    found.warnings = [f"checkpoint {s} in {directory} is damaged or half-written ({why}); using {slot} "
                      f"(step {step}) instead" for s, why in damaged.items()]
    _restore(meta, tensors, model, optimizer)
    return found


# ---------------------------------------------------------------- checking every field before use

def _int(value, field: str, low: int = 0, high: int | None = None) -> int:
    if type(value) is not int:
        raise CheckpointError(field, f"must be an integer, got {type(value).__name__} {value!r}"[:200])
    if value < low or (high is not None and value > high):
        raise CheckpointError(field, f"must be in {low}..{'' if high is None else high}, got {value}")
    return value


def _number(value, field: str, none: bool = False) -> float | None:
    if value is None and none:
        return None
    if type(value) not in (int, float) or not math.isfinite(value):
        raise CheckpointError(field, f"must be a finite number, got {value!r}"[:200])
    return value


def _get(table: dict, key: str, kind: type, field: str):
    if key not in table:
        raise CheckpointError(field, "is missing")
    value = table[key]
    if not isinstance(value, kind) or isinstance(value, bool) and kind is not bool:
        raise CheckpointError(field, f"must be {_KINDS.get(kind, kind.__name__)}, got {type(value).__name__}")
    return value


_KINDS = {dict: "an object", list: "a list", str: "a string", int: "an integer"}


def check_tensor(tensors: dict, key: str, shape: tuple | None, dtype: torch.dtype | None,
                 finite: bool = True) -> torch.Tensor:
    """``tensors[key]``, present, of ``shape`` and ``dtype`` (None: any) and, with ``finite``, free of NaN and
    Inf; else :class:`CheckpointError` naming ``key``."""
    if key not in tensors:
        raise CheckpointError(key, "is missing")
    value = tensors[key]
    if shape is not None and tuple(value.shape) != tuple(shape):
        raise CheckpointError(key, f"must have shape {tuple(shape)}, got {tuple(value.shape)}")
    if dtype is not None and value.dtype != dtype:
        raise CheckpointError(key, f"must be {str(dtype).removeprefix('torch.')}, "
                                   f"got {str(value.dtype).removeprefix('torch.')}")
    if finite and value.is_floating_point() and not bool(torch.isfinite(value).all()):
        raise CheckpointError(key, "holds NaN or Inf")
    return value


def _words(words: torch.Tensor, key: str) -> None:
    """A Mersenne Twister state: int64 values of 32-bit words."""
    if not bool(((words >= 0) & (words < 2 ** 32)).all()):
        raise CheckpointError(key, "must hold 32-bit words (0..2**32-1)")


def _checked(directory: Path, meta: dict, tensors: dict[str, torch.Tensor], model: torch.nn.Module,
             optimizer: torch.optim.Optimizer, slot: str) -> Checkpoint:
    """The :class:`Checkpoint` of ``meta``, with every field and tensor checked against ``model``, ``optimizer``.

    Raises :class:`CheckpointError` naming the first field that is wrong, and
    ``ValueError`` for a checkpoint of another architecture.
    """
    for key in ("epoch", "step", "batch", "threads"):
        if key not in meta:
            raise CheckpointError(key, "is missing")
    epoch, step, batch = _int(meta["epoch"], "epoch"), _int(meta["step"], "step"), _int(meta["batch"], "batch")
    if epoch > step:
        raise CheckpointError("epoch", f"cannot exceed the steps taken ({step}), got {epoch}")
    if batch > step:
        raise CheckpointError("batch", f"cannot exceed the steps taken ({step}), got {batch}")
    config = _get(meta, "config", dict, "config")
    for section, table in config.items():
        if not isinstance(table, dict):
            raise CheckpointError(f"config.{section}", f"must be an object, got {type(table).__name__}")
    state = _get(meta, "state", dict, "state")
    threads = _int(meta["threads"], "threads", 1)
    _get(meta, "sha256", str, "sha256")
    unknown = sorted({key.partition("/")[0] for key in tensors} - {"model", "optimizer", "rng", "extra"})
    if unknown:
        raise CheckpointError(f"{unknown[0]}/", "is not a part of an lgn checkpoint")
    _check_model(directory, tensors, model)
    optimizer_steps = _check_optimizer(meta, tensors, optimizer, step)
    _check_rng(meta, tensors)
    return Checkpoint(epoch=epoch, step=step, config=config, batch=batch, state=state,
                      tensors={k[len("extra/"):]: v for k, v in tensors.items() if k.startswith("extra/")},
                      slot=slot, threads=threads, optimizer_steps=optimizer_steps)


def _check_model(directory: Path, tensors: dict[str, torch.Tensor], model: torch.nn.Module) -> None:
    """The model's tensors: exactly its keys and shapes (else ``ValueError``: another architecture), its
    dtypes, finite."""
    expected = model.state_dict()
    saved = {k[len("model/"):]: v for k, v in tensors.items() if k.startswith("model/")}
    bad = sorted(set(expected) ^ set(saved)) or sorted(k for k in expected if expected[k].shape != saved[k].shape)
    if bad:
        raise ValueError(f"the checkpoint in {directory} is of another architecture "
                         f"(mismatch in {', '.join(bad[:4])}{', ...' if len(bad) > 4 else ''})")
    for key, value in expected.items():
        check_tensor(tensors, f"model/{key}", value.shape, value.dtype)


def _check_rng(meta: dict, tensors: dict[str, torch.Tensor]) -> None:
    """The random number generators' states: torch's, CUDA's, numpy's and Python's; torch's is also
    restored into a scratch generator, which refuses a state it could not continue (``Invalid mt19937
    state``) here, with the other checks, rather than in :func:`_restore`."""
    torch_state = check_tensor(tensors, "rng/torch", torch.get_rng_state().shape, torch.uint8)
    try:
        torch.Generator().set_state(torch_state)
    except RuntimeError as e:
        raise CheckpointError("rng/torch", f"is not a state torch's generator takes ({e})") from None
    for key in tensors:
        if key.startswith("rng/") and key not in ("rng/torch", "rng/numpy", "rng/python"):
            index = key[len("rng/cuda/"):]
            if not key.startswith("rng/cuda/") or not index.isdigit():
                raise CheckpointError(key, "is not a random number generator lgn saves")
            check_tensor(tensors, key, None, torch.uint8)
    rng = _get(meta, "rng", dict, "rng")
    numpy_state = _get(rng, "numpy", list, "rng.numpy")
    if len(numpy_state) != 4 or numpy_state[0] != "MT19937":
        raise CheckpointError("rng.numpy", "must be ['MT19937', position, has_gauss, gauss]")
    _int(numpy_state[1], "rng.numpy position", 0, _RNG_WORDS)
    _int(numpy_state[2], "rng.numpy has_gauss", 0, 1)
    _number(numpy_state[3], "rng.numpy gauss")
    python_state = _get(rng, "python", list, "rng.python")
    if len(python_state) != 2:
        raise CheckpointError("rng.python", "must be [version, gauss]")
    _int(python_state[0], "rng.python version", 1, 3)
    _number(python_state[1], "rng.python gauss", none=True)
    _words(check_tensor(tensors, "rng/numpy", (_RNG_WORDS,), torch.int64), "rng/numpy")
    python_words = check_tensor(tensors, "rng/python", (_RNG_WORDS + 1,), torch.int64)
    _words(python_words[:-1], "rng/python")
    _int(int(python_words[-1]), "rng/python position", 0, _RNG_WORDS)


def _check_param_groups(groups: list, current: list[dict]) -> None:
    """The saved hyper-parameter groups against the optimiser's ``current`` ones, built from the run's own
    settings: the same keys, parameters and values (Adam's betas, eps, weight decay, every flag), but the
    learning rate, a finite number (the schedule places it again from the position). An edited value
    (``betas=[1, 1]``, ``amsgrad``, ``maximize``, ``eps=-1``) would change, or crash, Adam's arithmetic."""
    if len(groups) != len(current):
        raise CheckpointError("optimizer.param_groups", f"must hold {len(current)} groups, got {len(groups)}")
    for i, (group, now) in enumerate(zip(groups, current)):
        where = f"optimizer.param_groups[{i}]"
        if not isinstance(group, dict) or set(group) != set(now):
            raise CheckpointError(where, f"must have the keys {sorted(now)}")
        if group["params"] != now["params"]:
            raise CheckpointError(f"{where}.params", f"must be {now['params']}, got {group['params']!r}"[:200])
        for key, value in now.items():
            saved = group[key]
            if key == "params":
                continue
            if key == "lr":
                _number(saved, f"{where}.{key}")
                continue
            wanted = list(value) if isinstance(value, tuple) else value  # JSON turned tuples into lists
            if type(saved) is not type(wanted) or saved != wanted \
                    or isinstance(wanted, list) and any(type(a) is not type(b) for a, b in zip(saved, wanted)):
                raise CheckpointError(f"{where}.{key}", f"must be the run's own {wanted!r}, got {saved!r}"[:200])


def _held_state(rest: dict, tensors: dict, params: dict[int, torch.Tensor]) -> dict[int, set[str]]:
    """Per parameter index, the names of the optimiser state it holds (tensors and scalars), checked to
    name parameters of the optimiser and to agree with ``optimizer.state_keys``."""
    scalars = _get(rest, "scalars", dict, "optimizer.scalars")
    held: dict[int, set[str]] = {}
    for key in tensors:
        if key.startswith("optimizer/"):
            index, _, name = key[len("optimizer/"):].partition("/")
            if not index.isdigit() or int(index) not in params or not name:
                raise CheckpointError(key, f"does not name a parameter of this optimiser (0..{len(params) - 1})")
            held.setdefault(int(index), set()).add(name)
    for index, entry in scalars.items():
        if not index.isdigit() or int(index) not in params or not isinstance(entry, dict):
            raise CheckpointError(f"optimizer.scalars.{index}", "does not name a parameter of this optimiser")
        for name, value in entry.items():
            _number(value, f"optimizer.scalars.{index}.{name}")
            held.setdefault(int(index), set()).add(name)
    listed = _get(rest, "state_keys", dict, "optimizer.state_keys")
    if {k: sorted(v) if isinstance(v, list) else v for k, v in listed.items()} != \
            {str(i): sorted(names) for i, names in held.items()}:
        raise CheckpointError("optimizer/", "does not hold the state tensors optimizer.state_keys lists")
    trained = {i for i, p in params.items() if p.requires_grad}
    if held and set(held) != trained:
        raise CheckpointError("optimizer/", f"must hold state for every parameter (0..{len(params) - 1}) or none, "
                                            f"got {len(held)} of {len(trained)}")
    return held


def _check_optimizer(meta: dict, tensors: dict, optimizer: torch.optim.Optimizer, step: int) -> int | None:
    """The optimiser's groups, per-parameter state tensors and scalars against ``optimizer``.

    Returns the steps Adam's state has taken (the largest per-parameter count; 0
    without state), or None for another optimiser.
    """
    rest = _get(meta, "optimizer", dict, "optimizer")
    current = _param_groups(optimizer.state_dict())
    _check_param_groups(_get(rest, "param_groups", list, "optimizer.param_groups"), current)
    params = {index: p for group, now in zip(optimizer.param_groups, current)
              for index, p in zip(now["params"], group["params"])}
    wanted = _adam_state_names(optimizer)
    counts = set()
    for index, names in _held_state(rest, tensors, params).items():
        if wanted is not None and names != wanted:
            raise CheckpointError(f"optimizer/{index}", f"must hold {sorted(wanted)}, got {sorted(names)}")
        for name in names:
            key = f"optimizer/{index}/{name}"
            if key not in tensors:
                continue
            if name == "step":
                value = check_tensor(tensors, key, (), None)
                if value.is_complex() or not 0 <= float(value) <= step or float(value) != int(value):
                    raise CheckpointError(key, f"must be a whole number in 0..{step} (the steps taken), "
                                               f"got {float(value)}")
                counts.add(int(value))
            else:
                check_tensor(tensors, key, params[index].shape, params[index].dtype)
    if wanted is None:
        return None
    # Adam steps a parameter only while it has a gradient, so one that stopped getting one
    # (an annealed generator's logits once its choice is frozen) keeps a smaller count:
    # the largest count is the optimiser's.
    return max(counts, default=0)


def _adam_state_names(optimizer: torch.optim.Optimizer) -> set[str] | None:
    """The state tensors Adam keeps per parameter; None for another optimiser (not checked by name)."""
    if type(optimizer) is not torch.optim.Adam:
        return None
    amsgrad = any(group.get("amsgrad") for group in optimizer.param_groups)
    return {"step", "exp_avg", "exp_avg_sq"} | ({"max_exp_avg_sq"} if amsgrad else set())


def _restore(meta: dict, tensors: dict[str, torch.Tensor], model: torch.nn.Module,
             optimizer: torch.optim.Optimizer) -> None:
    """Load a checkpoint :func:`_checked` has passed into ``model``, ``optimizer`` and the RNGs."""
    groups: dict[str, dict[str, torch.Tensor]] = {}
    for key, value in tensors.items():
        kind, _, rest = key.partition("/")
        groups.setdefault(kind, {})[rest] = value
    device = next(iter(model.state_dict().values())).device
    state: dict[int, dict] = {}
    for key, value in groups.get("optimizer", {}).items():
        index, _, name = key.partition("/")
        state.setdefault(int(index), {})[name] = value.to(device)
    for index, scalars in meta["optimizer"]["scalars"].items():
        state.setdefault(int(index), {}).update(scalars)
    # JSON turned tuples (Adam's betas) into lists; every list but the parameter indices was a tuple
    groups_json = [{k: v if k == "params" or not isinstance(v, list) else tuple(v) for k, v in g.items()}
                   for g in meta["optimizer"]["param_groups"]]
    optimizer.load_state_dict({"state": state, "param_groups": groups_json})
    model.load_state_dict({k: v.to(device) for k, v in groups["model"].items()})
    rng = groups["rng"]
    torch.set_rng_state(rng["torch"])
    cuda = {int(k[len("cuda/"):]): v for k, v in rng.items() if k.startswith("cuda/")}
    cuda_states = [cuda[i] for i in sorted(cuda)]
    if cuda_states and torch.cuda.is_available() and len(cuda_states) == torch.cuda.device_count():
        torch.cuda.set_rng_state_all(cuda_states)
    kind, pos, has_gauss, gauss = meta["rng"]["numpy"]
    np.random.set_state((kind, rng["numpy"].numpy().astype(np.uint32), pos, has_gauss, gauss))
    version, gauss = meta["rng"]["python"]
    random.setstate((version, tuple(rng["python"].tolist()), gauss))
