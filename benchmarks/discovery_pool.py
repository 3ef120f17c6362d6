"""Does a found group pay in test accuracy once the LGN is invariant to it?

One search per planted set and seed (``lgn discover --method learn --refine 500 --refine-keep 4``), then four
LGNs of the same architecture trained on the same data by the same loop (docs/discovery.md):

- ``learn``: the discovery LGN on the learned generator (fixed), the head reading every orbit response;
- ``learn-max``: the same with each orbit max-pooled (``--orbit-pool max``), invariant to the learned group;
- ``paper``: the paper's recipe (free generators, auxiliary inverse), every orbit response;
- ``paper-max``: the paper's recipe with the same max-pooled head;
- ``learn-k40``, ``learn-max-k40``, ``paper-k40``: ``learn``, ``learn-max`` and ``paper`` with 40 base filters
  instead of one per class (``learn`` keeps far fewer parameters than ``paper``, whose free 256×256
  generators, one a base filter and layer, dominate its count).

    python -m benchmarks.discovery_pool digits-rot90 0,1,2 [OUT.jsonl [MODEL,MODEL,...]]

(OUT defaults to results/discovery-accuracy/pool.jsonl, the models to all of them.)

One JSONL row per (set, seed, model); finished rows are skipped, so a cut run resumes.
"""

from __future__ import annotations

import json
import sys
import time
from pathlib import Path

from lgn.data.planted import DIGIT_NAMES, planted_data
from lgn.discovery.fit import (DiscoveryConfig, find_group, model_groups, standardise, train_discovery,
                               train_paper_recipe)
from lgn.discovery.learn import LearnConfig
from lgn.discovery.score import alignment
from lgn.discovery.verdict import judge

OUT = Path("results/discovery-accuracy/pool.jsonl")
# name → (orbit_pool, base filters; None: one a class)
MODELS = {"learn": (None, None), "learn-max": ("max", None), "paper": (None, None), "paper-max": ("max", None),
          "learn-k40": (None, 40), "learn-max-k40": ("max", 40), "paper-k40": (None, 40)}
SEARCH = LearnConfig(refine=500, refine_keep=4)


def run(name: str, seed: int, out: Path, models: list[str] = list(MODELS)) -> None:
    done = set()
    if out.exists():
        done = {(r["dataset"], r["seed"], r["model"]) for r in map(json.loads, out.read_text().splitlines())}
    todo = [m for m in models if (name, seed, m) not in done]
    if not todo:
        return
    options = {} if name in DIGIT_NAMES else {"sigma": 0.1}
    x_train, y_train, x_test, y_test, planted, order = planted_data(name, seed=seed, **options)
    x_train, x_test = standardise(x_train, x_test)
    estimate, found = None, None
    search_seconds = 0.0
    for model_name in todo:
        pool, groups = MODELS[model_name]
        config = DiscoveryConfig(seed=seed, method="learn", learn=SEARCH, orbit_pool=pool, n_groups=groups)
        start = time.time()
        if model_name.startswith("learn"):
            if estimate is None:
                estimate = find_group(x_train, y_train, order, config)
                search_seconds = time.time() - start
                found = judge(estimate, x_train.shape[-1], x_train.shape[1]).found
                start = time.time()
            result = train_discovery(estimate, x_train, y_train, x_test, y_test, config)
            a, b, acc, model = result.generators, result.bases, result.test_accuracy, result.model
        else:
            model, acc = train_paper_recipe(x_train, y_train, x_test, y_test, order, config,
                                            groups or min(int(y_train.max()) + 1, 16))
            a, b = model_groups(model)
        row = {"dataset": name, "seed": seed, "model": model_name, "orbit_pool": pool, "n_groups": a.shape[1],
               "parameters": sum(t.numel() for t in model.parameters() if t.requires_grad),
               "alignment": alignment(a, b, planted, order), "accuracy": acc,
               "found": found if model_name.startswith("learn") else None,
               "train_seconds": round(time.time() - start, 1),
               "search_seconds": round(search_seconds, 1) if model_name.startswith("learn") else None}
        out.parent.mkdir(parents=True, exist_ok=True)
        with out.open("a") as f:
            f.write(json.dumps(row) + "\n")
        print(f"{name} seed {seed} {model_name}: accuracy {acc:.4f}, alignment {row['alignment']:.3f}", flush=True)


def main(argv: list[str]) -> None:
    if len(argv) < 2:
        sys.exit(__doc__)
    out = Path(argv[2]) if len(argv) > 2 else OUT
    models = argv[3].split(",") if len(argv) > 3 else list(MODELS)
    unknown = [m for m in models if m not in MODELS]
    if unknown:
        sys.exit(f"unknown model(s) {', '.join(unknown)}; expected {', '.join(MODELS)}")
    for seed in (int(s) for s in argv[1].split(",")):
        run(argv[0], seed, out, models)


if __name__ == "__main__":
    main(sys.argv[1:])
