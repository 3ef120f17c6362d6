"""``lgn bench``: training and exported-inference speed against the straightforward baseline.

The measurements are :mod:`lgn.bench.measure`'s; this module parses the arguments and prints.
"""

from __future__ import annotations


def register(sub) -> None:
    p = sub.add_parser("bench", help="time training and exported inference against the baseline",
                       description="Check that our model and the straightforward baseline agree, then time "
                                   "training steps (alternating the two on the same weights and batches), "
                                   "peak step memory, exported inference against a plain conv net, and "
                                   "GFLOP/s against a GEMM, on MNIST- and CIFAR-shaped batches of 128.")
    p.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="where to run (default: cpu)")
    p.add_argument("--json", metavar="FILE", help="also write the full results as JSON to FILE")
    p.add_argument("--rounds", type=int, default=10, help="timed rounds per measurement (default: 10)")
    p.add_argument("--profile", action="store_true",
                   help="also list the operations our training step spends its time in (torch.profiler)")
    p.set_defaults(func=run)


def run(args) -> int:
    if args.rounds < 1:
        raise ValueError(f"--rounds must be at least 1, got {args.rounds}")
    from lgn.bench.measure import format_report, run_bench
    from lgn.files import write_json

    report = run_bench(args.device, rounds=args.rounds, profile=args.profile)
    print(format_report(report))
    if args.json:
        write_json(report, args.json)
        print(f"wrote {args.json}")
    return 0
