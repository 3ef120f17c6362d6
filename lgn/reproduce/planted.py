"""The planted-symmetry numbers of the reproduction: ``lgn bench-discovery``'s comparison, kept small in --quick."""

from __future__ import annotations

import json
import time
from pathlib import Path
from typing import Callable

import numpy as np

__all__ = ["QUICK_DISCOVERY", "FULL_DISCOVERY", "run_discovery", "DISCOVERY_FILE"]

DISCOVERY_FILE = "runs/discovery.json"
# --quick: one seed, 2,000 images, 5 epochs (under a minute on 2 cores); the full setting is bench-discovery's
QUICK_DISCOVERY = {"datasets": ["shift-x", "rot90", "flip", "perm4"], "seeds": [0], "epochs": 5, "sigma": 0.1,
                   "n_train": 2000, "n_test": 1000, "baseline": True}
FULL_DISCOVERY = {"datasets": ["shift-x", "rot90", "flip", "perm4"], "seeds": [0, 1, 2], "epochs": 10,
                  "sigma": 0.1, "n_train": 6000, "n_test": 2000, "baseline": True}


def _summary(rows: list[dict]) -> list[dict]:
    out = []
    for ds, method in dict.fromkeys((r["dataset"], r["method"]) for r in rows):
        sel = [r for r in rows if (r["dataset"], r["method"]) == (ds, method)]
        al, acc = np.array([r["alignment"] for r in sel]), np.array([r["accuracy"] for r in sel])
        out.append({"dataset": ds, "method": method, "seeds": len(sel),
                    "alignment_mean": float(al.mean()), "alignment_std": float(al.std()),
                    "accuracy_mean": float(acc.mean()), "accuracy_std": float(acc.std())})
    return out


def run_discovery(out: Path, settings: dict, log: Callable[[str], None] | None = print) -> dict:
    """The discovery recipe and the paper's recipe on every planted set and seed of ``settings``.

    Reads ``out/runs/discovery.json`` back when it was made with the same settings.
    """
    path = out / DISCOVERY_FILE
    if path.is_file():
        try:
            saved = json.loads(path.read_text())
            if saved.get("settings") == settings:
                return saved
        except (json.JSONDecodeError, UnicodeDecodeError):
            pass
    from lgn.discovery.benchmark import bench_one

    start = time.perf_counter()
    rows = []
    for name in settings["datasets"]:
        for seed in settings["seeds"]:
            methods = ("discover", "paper") if settings["baseline"] else ("discover",)
            new = bench_one(name, seed, epochs=settings["epochs"], sigma=settings["sigma"],
                            n_train=settings["n_train"], n_test=settings["n_test"], methods=methods)
            rows += new
            if log:
                log(f"planted {name} s{seed}: " + ", ".join(f"{r['method']} alignment {r['alignment']:.3f}"
                                                            for r in new))
    result = {"settings": settings, "rows": rows, "summary": _summary(rows),
              "seconds": time.perf_counter() - start}
    from lgn.files import write_json

    path.parent.mkdir(parents=True, exist_ok=True)
    write_json(result, path)
    return result
