"""Running the grid: one ``train()`` run folder per :class:`RunSpec`, skipped once finished, resumed when partial.

A finished run holds ``reproduce.json`` (:func:`lgn.runs.read_record`): the record that goes
into ``results.json`` (metric, parameter counts, seconds, the analysis summary of an LGN run)
together with the settings it was trained with. A run folder without it is continued with
``train(..., resume=True)``.
"""

from __future__ import annotations

import time
from pathlib import Path
from typing import Callable

import torch

from lgn.reproduce.grid import LGN_MODELS, RunSpec
from lgn.runs import ANALYSIS_DIR, MachineNote, cpu_model, read_record, trained_on, write_record
from lgn.settings import check_positive_int

__all__ = ["run_spec", "run_all", "format_line", "threads_per_run"]


def _count(model) -> int:
    return sum(p.numel() for p in model.parameters() if p.requires_grad)


def _train(spec: RunSpec, run_dir: Path, device: str, force: bool, progress: bool, log):
    from lgn.train import train

    settings = {**spec.settings, "train": {**spec.settings["train"], "device": device, "progress": progress}}
    try:
        return train(settings, run_dir, resume=True, log=log, on_epoch_end=MachineNote(run_dir))
    except ValueError as e:
        if force and str(e).startswith("cannot resume"):  # a partial run of other settings: start it afresh
            return train(settings, run_dir, force=True, log=log, on_epoch_end=MachineNote(run_dir))
        raise


def _finished(spec: RunSpec, run_dir: Path) -> dict | None:
    """The record of ``spec``'s run if it finished with ``spec``'s settings, else None."""
    record = read_record(run_dir)
    return record if record is not None and record.get("settings") == spec.settings else None


def run_spec(spec: RunSpec, run_dir: Path, *, device: str = "cpu", force: bool = False,
             analyse: bool = True, progress: bool = True,
             log: Callable[[str], None] | None = None) -> tuple[dict, bool]:
    """Train (or finish, or reuse) one run; returns its record and whether it was reused as it was.

    An LGN run is analysed (groups, distance moved, code energy) unless ``analyse`` is false;
    ``progress`` shows training's progress bar (on a terminal); ``log`` receives training's line per epoch."""
    record = _finished(spec, run_dir)
    if record is not None:
        return record, True
    from lgn.models import load_model

    start = time.perf_counter()
    result = _train(spec, run_dir, device, force, progress, log)
    metrics = result.metrics
    last = metrics[-1]
    metric_name = "test_acc" if spec.task == "classify" else "test_psnr"
    model = load_model(run_dir)
    record = {
        "name": spec.name, "dataset": spec.dataset, "task": spec.task, "model": spec.model, "seed": spec.seed,
        "metric_name": metric_name, "metric": last[metric_name],
        "params": _count(model),                # trainable parameters, auxiliary inverses included
        "params_export": _count(model.export()),  # parameters of the exported plain network
        "train_seconds": sum(r["train_seconds"] for r in metrics),
        "eval_seconds": sum(r.get("eval_seconds", 0.0) for r in metrics),
        "epochs": last["epoch"], "n_train": spec.n_train, "n_test": spec.n_test,
        "test_loss": last["test_loss"], "device": str(result.config.train.device),
        "run_dir": run_dir.name, "analysis": None, "settings": spec.settings,
        "threads": torch.get_num_threads(),     # this process's: a worker's under --jobs
        "cpu": cpu_model(),                     # a grid may be trained in pieces on different machines
        "trained_on": trained_on(run_dir, last["epoch"]),  # and so may one run
    }
    if spec.model in LGN_MODELS and analyse:
        from lgn.analysis.energy import run_code_energy
        from lgn.analysis.summary import ANALYSIS_FILE, GROUPS_FILE, groups_from_model, write_analysis

        groups = groups_from_model(model, source=str(run_dir))
        analysis = write_analysis(groups, run_dir / ANALYSIS_DIR, figures=False, save_arrays=True)
        record["analysis"] = {"summary": analysis["summary"], "file": f"{ANALYSIS_DIR}/{ANALYSIS_FILE}",
                              "groups": f"{ANALYSIS_DIR}/{GROUPS_FILE}",
                              "moved_from_init": _moved_from_init(model, spec.seed, groups),
                              "code_energy": run_code_energy(run_dir)["fractions"],
                              "layer0_similarity": [g["nearest_op"]["similarity"] for g in analysis["generators"]
                                                    if g["layer"] == 0]}
    record["wall_seconds"] = time.perf_counter() - start
    write_record(run_dir, record)  # a run without it is unfinished
    return record, False


def _moved_from_init(model, seed: int, trained) -> float:
    """The run distance between ``trained`` groups and the ones training started from (rebuilt as train() does)."""
    from lgn.analysis.distance import group_distance
    from lgn.analysis.summary import groups_from_model
    from lgn.models import build_model

    torch.manual_seed(seed)
    start = groups_from_model(build_model(model.config))
    return group_distance(start.A, trained.A, trained.kernel_size)


def format_line(i: int, n: int, record: dict, reused: bool) -> str:
    """``[12/54] fashion-mnist classify lgn-free s1: test_acc 0.861, 12,345 params, 41 s``."""
    score = (f"test_acc {record['metric']:.3f}" if record["metric_name"] == "test_acc"
             else f"test_psnr {record['metric']:.2f} dB")
    when = "done earlier" if reused else f"{record['wall_seconds']:.0f} s"
    size = f" n={record['n_train']:,}" if record["name"].endswith(f"-n{record['n_train']}") else ""
    return (f"[{i}/{n}] {record['dataset']} {record['task']}{size} {record['model']} s{record['seed']}: "
            f"{score}, {record['params']:,} params, {when}")


def run_all(specs: list[RunSpec], runs_dir: Path, *, device: str = "cpu", force: bool = False,
            log: Callable[[str], None] | None = print, limit: int | None = None,
            analyse: bool = True, jobs: int = 1, threads: int | None = None) -> tuple[list[dict], list[bool]]:
    """Every spec (at most ``limit`` trained in this call, the first unfinished ones in order; finished runs
    past it are still read back); returns the records, in the order of ``specs``, and which were reused.

    With ``jobs`` > 1 that many runs train at once, each in a worker process of its own using ``threads``
    CPU threads (default: this machine's cores shared out among the jobs). On an error in any run the others
    are stopped (each resumes from its last checkpoint on the next call) and the error is raised here.
    """
    check_positive_int(jobs, "--jobs")
    done: dict[int, tuple[dict, bool]] = {}
    todo: list[int] = []
    for i, spec in enumerate(specs):
        record = _finished(spec, runs_dir / spec.name)
        if record is not None:
            done[i] = record, True
            if log:
                log(format_line(i + 1, len(specs), record, True))
        elif limit is None or len(todo) < limit:
            todo.append(i)
    options = {"device": device, "force": force, "analyse": analyse}
    trained = (_one(i, specs, runs_dir, options, log) for i in todo) \
        if jobs == 1 or len(todo) <= 1 else _in_workers(specs, todo, runs_dir, options, jobs, threads,
                                                        announce=log is not None)
    for i, result in trained:  # in the grid's order, or under --jobs as each finishes
        done[i] = result
        if log:
            log(format_line(i + 1, len(specs), *result))
    order = sorted(done)
    return [done[i][0] for i in order], [done[i][1] for i in order]


def _one(i: int, specs: list[RunSpec], runs_dir: Path, options: dict, log) -> tuple[int, tuple[dict, bool]]:
    """``(i, run_spec(specs[i], ...))`` in this process; with ``log``, its epoch lines printed as a worker prints
    them (the first, then one a minute), so that a run away from a terminal, where the progress bar is not
    drawn, is not silent for hours."""
    spec = specs[i]
    return i, run_spec(spec, runs_dir / spec.name, **options, log=_EpochLines(spec.name) if log else None)


def _in_workers(specs: list[RunSpec], todo: list[int], runs_dir: Path, options: dict, jobs: int,
                threads: int | None, announce: bool):
    """``(i, run_spec(specs[i], ...))`` for each ``i`` of ``todo``, trained ``jobs`` at a time in worker
    processes, as each finishes. Workers are spawned (a fork of a process whose OpenMP threads already ran
    can hang) and set their own threads. Progress bars would interleave: with ``announce`` each worker prints
    its run's epoch lines instead, at most one a minute (and the first), each naming the run."""
    import multiprocessing

    threads = threads_per_run(jobs, threads)  # before jobs is cut to the runs left: as machine_info reports it
    jobs = min(jobs, len(todo))
    pool = multiprocessing.get_context("spawn").Pool(jobs, initializer=_worker_start, initargs=(threads,))
    try:
        tasks = [(i, specs[i], runs_dir / specs[i].name, options, announce) for i in todo]
        yield from pool.imap_unordered(_worker_run, tasks)
    except BaseException:
        pool.terminate()  # an error, ^C or the caller stopping early: the running runs stop here
        raise
    else:
        pool.close()  # the workers leave on their own (killing idle ones leaked their semaphores)
    finally:
        pool.join()


def threads_per_run(jobs: int, threads: int | None) -> int:
    """The CPU threads each run trains on when ``jobs`` train at once: ``threads`` if given; else, for one job,
    this process's torch threads, and for several, this machine's cores shared out among them."""
    import os

    if threads is not None:
        return threads
    return torch.get_num_threads() if jobs == 1 else max(1, (os.cpu_count() or 1) // jobs)


def _worker_start(threads: int) -> None:
    from lgn.limits import set_threads

    set_threads(threads)  # the worker is this command's own process


def _worker_run(task: tuple) -> tuple[int, tuple[dict, bool]]:
    i, spec, run_dir, options, announce = task
    return i, run_spec(spec, run_dir, **options, progress=False, log=_EpochLines(spec.name) if announce else None)


class _EpochLines:
    """Prints a worker's epoch lines, ``  <run>: epoch 3/100 … (1.4 s, 2.3 min left)``: the first, then at most
    one every ``every`` seconds (a 250-image curve run has 128 epochs of a fraction of a second)."""

    def __init__(self, name: str, every: float = 60.0):
        self.name, self.every, self.last = name, every, None

    def __call__(self, line: str) -> None:
        now = time.monotonic()
        if self.last is None or now - self.last >= self.every:
            self.last = now
            print(f"  {self.name}: {line}", flush=True)
