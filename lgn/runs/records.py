"""The records a run folder keeps: its settings, its metrics, the machines that trained it, its reproduce record.

- ``config.json``: the resolved settings the run was trained with (:func:`read_config`,
  :func:`write_config`);
- ``metrics.jsonl``: one JSON object per epoch, appended as the run goes
  (:func:`read_metrics`, :func:`write_metrics`, :func:`append_metrics`);
- ``run.json``: what the run is besides its settings (:func:`read_run_record`,
  :func:`write_run_record`): ``init_from`` (the run whose weights it started
  from, and the SHA-256 of that weights file), ``extended`` (each extension:
  ``from_epochs``, ``to_epochs``, ``step``) and ``best`` (the epoch of the best
  validation metric, its name, split and value, whose weights are
  ``model-best.safetensors``);
- ``machines.jsonl``: the CPU and threads each invocation of ``lgn reproduce``
  trained the run on, from its first epoch on (:class:`MachineNote`,
  :func:`trained_on`);
- ``reproduce.json``: the record of a finished ``lgn reproduce`` run
  (:func:`read_record`, :func:`write_record`).

Whole files are written atomically; the JSON-lines files are appended to,
and a reader of a run still being written may skip a torn last line.
"""

from __future__ import annotations

import json
import os
import platform
from pathlib import Path

import torch

from lgn.files import MAX_JSON_BYTES, append_text, atomic_write, read_file, read_json_lines, write_json
from lgn.parsing import load_json
from lgn.runs.layout import CONFIG_FILE, MACHINES_FILE, METRICS_FILE, RECORD_FILE, RUN_RECORD_FILE

__all__ = ["read_config", "write_config", "read_metrics", "write_metrics", "append_metrics", "read_run_record",
           "write_run_record",
           "MachineNote", "trained_on", "cpu_model", "read_record", "write_record"]


def _read_object(path: Path) -> dict:
    """The JSON object in the file ``path``; ``ValueError`` naming it if it is not valid JSON or not an object."""
    try:
        value = load_json(read_file(path, MAX_JSON_BYTES), str(path))
    except (json.JSONDecodeError, UnicodeDecodeError) as e:
        raise ValueError(f"{path} is not valid JSON: {e}") from None
    if not isinstance(value, dict):
        raise ValueError(f"{path} must hold a JSON object, got {type(value).__name__}")
    return value


def read_config(out: str | os.PathLike) -> dict | None:
    """The ``config.json`` of a run folder, or None if it has none."""
    path = Path(out) / CONFIG_FILE
    return _read_object(path) if path.is_file() else None


def write_config(out: Path, config: dict) -> None:
    write_json(config, out / CONFIG_FILE)


def read_run_record(out: str | os.PathLike) -> dict:
    """The ``run.json`` of a run folder (``{}`` if it has none: a run trained before the file existed)."""
    path = Path(out) / RUN_RECORD_FILE
    return _read_object(path) if path.is_file() else {}


def write_run_record(out: Path, record: dict) -> None:
    write_json(record, Path(out) / RUN_RECORD_FILE)


def read_metrics(out: str | os.PathLike, *, skip_damaged: bool = False) -> list[dict]:
    """The records of a run folder's ``metrics.jsonl`` (none without the file), one per epoch.

    A line that is not a JSON object raises ``ValueError`` naming the file, or,
    with ``skip_damaged`` (for a report of a run still being written), is left out.
    """
    return read_json_lines(Path(out) / METRICS_FILE, skip_damaged=skip_damaged)


def write_metrics(out: Path, records: list[dict]) -> None:
    atomic_write(out / METRICS_FILE, "".join(json.dumps(r, allow_nan=False) + "\n" for r in records).encode())


def append_metrics(out: Path, record: dict) -> None:
    append_text(out / METRICS_FILE, json.dumps(record, allow_nan=False) + "\n")  # strict JSON: a NaN is refused


class MachineNote:
    """Appends ``{"from_epoch", "cpu", "threads"}`` to the run's ``machines.jsonl`` at the first epoch this
    process finishes: a long run resumed in pieces may span machines, and its record says which trained what.

    Pass it as the ``on_epoch_end`` callback of :func:`lgn.train.train`; it is called with the epoch's record.
    """

    def __init__(self, run_dir: Path):
        self.path, self.noted = Path(run_dir) / MACHINES_FILE, False

    def __call__(self, record: dict) -> None:
        if not self.noted:
            before = self.path.read_text() if self.path.is_file() else ""
            torn = bool(before) and not before.endswith("\n")  # a line cut short: the new one starts apart
            note = {"from_epoch": record["epoch"], "cpu": cpu_model(), "threads": torch.get_num_threads()}
            append_text(self.path, "\n" * torn + json.dumps(note) + "\n")
            self.noted = True


def trained_on(run_dir: Path, epochs: int) -> list[dict]:
    """``[{"cpu", "threads", "epochs": [first, last]}, ...]``: which machine trained epochs 1 to ``epochs`` of a
    run, from its ``machines.jsonl``. An epoch belongs to the file's last line that starts at or before it (a
    run restarted from scratch appends a line from epoch 1); epochs no line covers (trained before the file
    existed) have ``cpu`` and ``threads`` None."""
    notes = read_json_lines(Path(run_dir) / MACHINES_FILE, skip_damaged=True)  # a torn last line is left out
    segments: list[dict] = []
    for epoch in range(1, epochs + 1):
        owner = next((n for n in reversed(notes) if n.get("from_epoch", epoch + 1) <= epoch), {})
        machine = {"cpu": owner.get("cpu"), "threads": owner.get("threads")}
        if segments and {k: segments[-1][k] for k in machine} == machine:
            segments[-1]["epochs"][1] = epoch
        else:
            segments.append({**machine, "epochs": [epoch, epoch]})
    return segments


def cpu_model() -> str:
    """This machine's CPU as /proc/cpuinfo names it (``AMD EPYC 7B13``), else what ``platform`` says."""
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def read_record(run_dir: Path) -> dict | None:
    """The ``reproduce.json`` of a finished run, or None."""
    path = Path(run_dir) / RECORD_FILE
    if not path.is_file():
        return None
    try:
        record = json.loads(path.read_text())
    except (json.JSONDecodeError, UnicodeDecodeError):
        return None  # damaged: the run is finished again from its checkpoint
    return record if isinstance(record, dict) else None


def write_record(run_dir: Path, record: dict) -> None:
    """Write ``reproduce.json``: the run counts as finished from then on (atomically: never half-finished)."""
    write_json(record, Path(run_dir) / RECORD_FILE)
