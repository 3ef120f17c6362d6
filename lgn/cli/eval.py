"""``lgn eval``: re-evaluate a saved run."""

from __future__ import annotations

import json


def register(sub) -> None:
    p = sub.add_parser("eval", help="re-evaluate a saved run folder",
                       description="Evaluate the model of a run folder (written by lgn train) on the test split "
                                   "of its own dataset, or of another one with the same image format. The run's "
                                   "preprocessing is applied.")
    p.add_argument("run", metavar="DIR", help="the run folder")
    p.add_argument("--dataset", metavar="NAME", help="evaluate on this dataset instead of the run's own")
    p.add_argument("--data-dir", metavar="DIR", help="folder of a file-based dataset")
    p.add_argument("--split", choices=("test", "train"), default="test", help="which split (default test)")
    p.add_argument("--device", default="cpu", metavar="cpu|cuda", help="where to evaluate (default cpu)")
    p.add_argument("--batch-size", type=int, metavar="N", help="examples per forward pass (default: the run's)")
    p.add_argument("--best", action="store_true",
                   help="the best epoch's weights (model-best.safetensors) instead of the last epoch's")
    p.add_argument("--json", action="store_true", help="print the result as one JSON object")
    p.set_defaults(func=run)


def run(args) -> int:
    from lgn.train.evaluate import evaluate_run

    if args.batch_size is not None and args.batch_size < 1:
        raise ValueError(f"--batch-size must be at least 1, got {args.batch_size}")
    result = evaluate_run(args.run, dataset=args.dataset, data_dir=args.data_dir, split=args.split,
                          device=args.device, batch_size=args.batch_size, which="best" if args.best else "last")
    if args.json:
        print(json.dumps(result))
    else:
        split = result["split"]
        score = (f"{split}_acc {result['acc']:.4f}" if "acc" in result
                 else f"{split}_psnr {result['psnr']:.2f} dB")
        print(f"{score}  {split}_loss {result['loss']:.4f}  ({result['examples']} {split} examples of "
              f"{result['dataset']})")
    return 0
