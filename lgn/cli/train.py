"""``lgn train``: train a Linear Group Network into a run folder."""

from __future__ import annotations

import argparse
import dataclasses
import os



@dataclasses.dataclass(frozen=True)
class Flag:
    """One ``lgn train`` flag: its argparse options and, for a setting, the config key it sets."""

    name: str                       # the option, without its leading dashes
    options: dict                   # argparse keyword arguments (dest is derived from name unless given)
    key: tuple[str, str] | None = None  # (section, key) it sets; a flag given wins over --set and --config
    group: str | None = None        # flags of one group are mutually exclusive

    @property
    def dest(self) -> str:
        return self.options.get("dest", self.name.replace("-", "_"))

    def argv(self, value) -> list[str]:
        """The command-line words that give ``value`` again (none for a value the flag would not set)."""
        action = self.options.get("action")
        if action == "append":
            return [w for v in value for w in (f"--{self.name}", str(v))]
        if action in ("store_true", "store_false"):
            return [f"--{self.name}"] if value is (action == "store_true") else []
        return [] if value is None else [f"--{self.name}", str(value)]


# Every flag of lgn train but --nproc, once: the parser, the settings and the relaunch under torchrun read it
FLAGS = (
    Flag("dataset", dict(metavar="NAME", help="mnist5k, fashion-mnist, mnist, digits, cifar10, patches, "
                                              "npz:PATH or planted:NAME"), ("data", "name")),
    Flag("task", dict(choices=("classify", "reconstruct"), help="what the model learns (default classify)"),
         ("model", "task")),
    Flag("out", dict(required=True, metavar="DIR", help="the run folder to write")),
    Flag("epochs", dict(type=int, metavar="N", help="passes over the training set (default 100)"),
         ("train", "epochs")),
    Flag("config", dict(metavar="FILE.toml", help="a TOML file with [model], [train] and [data] tables")),
    Flag("set", dict(action="append", default=[], metavar="SECTION.KEY=VALUE",
                     help="override one config key, e.g. --set model.n_groups=8 (repeatable)")),
    Flag("seed", dict(type=int, metavar="S", help="seed of initialisation and data order (default 0)"),
         ("train", "seed")),
    Flag("data-dir", dict(metavar="DIR", help="folder of a file-based dataset (fashion-mnist, mnist, cifar10)"),
         ("data", "data_dir")),
    Flag("device", dict(metavar="cpu|cuda", help="where to train (default cpu)"), ("train", "device")),
    Flag("resume", dict(action="store_true",
                        help="continue the run in DIR exactly from its newest intact checkpoint, even mid-epoch "
                             "(start afresh if it has none; an error if every checkpoint is damaged); with "
                             "--epochs above its own, extend it: the new epochs train at the final rate of its "
                             "schedule"),
         group="mode"),
    Flag("force", dict(action="store_true", help="overwrite the run files of a non-empty DIR"), group="mode"),
    Flag("init-from", dict(metavar="RUN",
                           help="start from the model weights of the run folder RUN (its last epoch), with a fresh "
                                "optimiser and schedule; the architecture must match"), ("train", "init_from")),
    Flag("checkpoint-every", dict(type=int, metavar="N",
                                  help="also checkpoint every N optimiser steps (default: at epoch ends only)"),
         ("train", "checkpoint_every")),
    Flag("on-nan", dict(choices=("stop", "skip"),
                        help="a non-finite loss or gradient: stop the run (default; the last good checkpoint "
                             "stays) or skip the batch (10 skipped in a row still stop; a non-finite parameter "
                             "always stops)"), ("train", "on_nan")),
    Flag("tensorboard", dict(action="store_true", default=None,
                             help="also write TensorBoard event files to DIR/tensorboard: every step's loss, each "
                                  "epoch's metrics, generator images, singular-value and eigenvalue-angle "
                                  "histograms (needs lgn[tensorboard])"),
         ("train", "tensorboard")),
    Flag("no-progress", dict(dest="progress", action="store_false", default=None,
                             help="no progress: neither the bar on a terminal nor, away from one, the line to "
                                  "stderr every 30 s (step, images/s, time left)"), ("train", "progress")),
)


def _config_keys() -> str:
    """Every config key with its default, section by section, and the generators to choose from: what
    ``--list-keys`` prints (it imports the library, so ``--help`` only points to it)."""
    import textwrap

    from lgn.nn.banks import generator_choices
    from lgn.train.config import SECTIONS

    derived = {"in_channels", "image_size", "num_classes"}
    lines = ["config keys (--set section.key=value, or [section] tables in --config), with defaults:"]
    for section, cls in SECTIONS.items():
        items = []
        for f in dataclasses.fields(cls):
            default = f.default if f.default is not dataclasses.MISSING else f.default_factory()
            shown = "(from data)" if section == "model" and f.name in derived else \
                "none" if default is None else repr(default)
            items.append(f"{f.name}={shown}")
        lines.append(f"  [{section}] " + ", ".join(items))
    lines += textwrap.wrap(f"model.generator: {', '.join(generator_choices())}.", width=100,
                           subsequent_indent="  ", break_on_hyphens=False)
    lines.append(_PRECEDENCE)
    return "\n".join(lines)


_PRECEDENCE = "precedence: defaults < --config < --set < the flags above."
# the help's epilog: the table of keys needs the library (torch, pydantic), which --help does not load
_EPILOG = ("every setting has a key: --set section.key=value, or [section] tables in --config (sections model, "
           "train, data);\n--list-keys prints every key with its default, and the generators to choose from.\n"
           + _PRECEDENCE)


class _ListKeys(argparse.Action):
    """``--list-keys``: print :func:`_config_keys` and exit, as ``--help`` prints the help."""

    def __init__(self, option_strings, dest, **kwargs):
        super().__init__(option_strings, dest, nargs=0, default=argparse.SUPPRESS, **kwargs)

    def __call__(self, parser, namespace, values, option_string=None):
        print(_config_keys())
        parser.exit(0)


def register(sub) -> None:
    p = sub.add_parser(
        "train", help="train a model into a run folder",
        description="Train a Linear Group Network with the paper's recipe (Adam lr 0.01, the rate halved at "
                    "1/2, 3/4 and 7/8 of the epochs but not within the first epoch, gradient clipping 2.0, batch 128, "
                    "100 epochs, re-projection after every step). DIR receives config.json, metrics.jsonl, "
                    "model.safetensors + model.json (the last epoch), model-best.safetensors (the epoch of the "
                    "best test accuracy, or PSNR), run.json (the best epoch, the run it started from, its "
                    "extensions), preprocess.safetensors and two checkpoint slots "
                    "(checkpoint-0/1.safetensors + .json: at every epoch end, and every N steps with "
                    "--checkpoint-every N).",
        epilog=_EPILOG, formatter_class=argparse.RawDescriptionHelpFormatter)
    groups = {}
    for flag in FLAGS:
        if flag.group is not None and flag.group not in groups:
            groups[flag.group] = p.add_mutually_exclusive_group()
        (p if flag.group is None else groups[flag.group]).add_argument(f"--{flag.name}", **flag.options)
    p.add_argument("--list-keys", action=_ListKeys,
                   help="print every config key with its default, and the generators to choose from, and exit")
    p.add_argument("--nproc", type=int, metavar="N",
                   help="train data-parallel on N processes of this machine, through torchrun (gloo on CPU, "
                        "NCCL on CUDA); for several machines run torchrun yourself, see the README")
    p.set_defaults(func=run)


def settings_from_args(args) -> dict:
    """The nested settings dict of ``--config``, ``--set`` and the flags, each value checked."""
    from lgn.train.config import apply_overrides, load_toml, set_value

    settings = load_toml(args.config) if args.config else {}
    settings = apply_overrides(settings, args.set)
    for flag in FLAGS:
        value = getattr(args, flag.dest, None)
        if flag.key is not None and value is not None:
            set_value(settings, *flag.key, value)
    return settings


def _relaunch_argv(args) -> list[str]:
    """The ``lgn train`` arguments of ``args`` without ``--nproc``, for each process torchrun starts."""
    threads = [] if args.threads is None else ["--threads", str(args.threads)]
    return [word for flag in FLAGS for word in flag.argv(getattr(args, flag.dest))] + threads


LAUNCHED = "LGN_LAUNCHED"  # set for the ranks lgn train --nproc starts: the launcher reports for them
LEFT_BY_A_PEER = 3  # the exit code of a rank whose collective failed because another rank died


def _launch(nproc: int, argv: list[str]) -> int:
    """``torchrun --standalone --nproc_per_node=nproc -m lgn train argv``, in this process.

    In-process so that the job ends in one line, like every other error
    (torchrun's own ``main`` prints a traceback and exits 1): a rank that exits
    with 2 has printed its error already (the others stopped because of it);
    one that exits with :data:`LEFT_BY_A_PEER` lost another rank, and that
    one's death is reported; a signal to the launcher (SIGINT,
    SIGTERM) ends it as an interrupted single process does. The ranks, told
    by :data:`LAUNCHED`, stay quiet when interrupted or left by a peer.
    """
    import logging

    from torch.distributed.elastic.multiprocessing.api import SignalException
    from torch.distributed.elastic.multiprocessing.errors import ChildFailedError
    from torch.distributed.run import parse_args
    from torch.distributed.run import run as torchrun

    from lgn.cli import Interrupted

    for name in list(logging.root.manager.loggerDict):  # its banner and stop notices, each logger set its own level
        if name.startswith("torch.distributed"):
            logging.getLogger(name).setLevel(logging.CRITICAL)
    os.environ[LAUNCHED] = "1"
    try:
        torchrun(parse_args(["--standalone", f"--nproc_per_node={nproc}", "-m", "lgn", "train", *argv]))
    except SignalException as e:
        raise Interrupted(int(e.sigval)) from None
    except ChildFailedError as e:
        failures = sorted(e.failures.items(), key=lambda item: item[1].timestamp)
        if any(failure.exitcode == 2 for _, failure in failures):  # its error is printed; the rest followed it
            return 2
        rank, failure = next((f for f in failures if f[1].exitcode != LEFT_BY_A_PEER), failures[0])
        how = (f"was killed by signal {failure.signal_name()}" if failure.exitcode < 0
               else f"exited with code {failure.exitcode}")
        raise ValueError(f"rank {rank} {how}; the run folder keeps its last checkpoint") from None
    return 0


def run(args) -> int:
    import torch

    from lgn.cli import UsageError
    from lgn.runs import read_config, read_run_record
    from lgn.train import train
    from lgn.train.distributed import CollectiveError, PeerError

    if args.nproc is not None:
        if args.nproc < 1:
            raise ValueError(f"--nproc must be at least 1, got {args.nproc}")
        if "WORLD_SIZE" in os.environ:
            raise ValueError("--nproc is for launching; under torchrun give the process count to torchrun")
        if args.nproc > 1:
            return _launch(args.nproc, _relaunch_argv(args))
    settings = settings_from_args(args)
    if args.resume and not settings.get("data", {}).get("name") and read_config(args.out) is None:
        raise UsageError(f"nothing to resume: {args.out} holds no run (no config.json); "
                         f"give --dataset NAME to start one there")
    if int(os.environ.get("RANK", "0")) == 0:
        threads = torch.get_num_threads()
        print(f"lgn train: {args.out}, {threads} CPU thread{'s' if threads > 1 else ''} (--threads)",
              flush=True)
    try:
        result = train(settings, args.out, resume=args.resume, force=args.force, extend=args.resume)
    except PeerError:  # rank 0 stopped and prints the error
        return 2
    except CollectiveError:  # another rank died: the launcher says which
        return LEFT_BY_A_PEER
    except KeyboardInterrupt:
        if os.environ.get(LAUNCHED):  # the launcher prints the one line
            return 130
        raise
    if int(os.environ.get("RANK", "0")) != 0:
        return 0
    last = result.metrics[-1] if result.metrics else {}
    score = next((f"{k} {last[k]:.4f}" for k in ("test_acc", "test_psnr") if k in last), "")
    best = read_run_record(result.out).get("best")
    print(f"done: {result.out} (config.json, metrics.jsonl, model.safetensors, run.json)"
          + (f"; epoch {last['epoch']}: {score}" if last else "")
          + (f"; best: epoch {best['epoch']}, {best['metric']} {best['value']:.4f} (model-best.safetensors)"
             if best else ""))
    return 0
