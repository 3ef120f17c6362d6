"""Real full disks: a tiny run into tmpfs mounts of growing size, each then resumed on a roomy disk.

``python -m benchmarks.disk_full`` (as root: it mounts tmpfs) trains a 2-epoch
run of the tiny test model that checkpoints every step into tmpfs folders of
4 KiB, 12 KiB, … up to about three times the finished folder's size. For each
size whose disk fills up it checks that ``lgn train`` ended in one line naming
the file and exit code 2, moves the folder to a roomy disk, resumes it, and
compares the weights and metrics with an uninterrupted run's. Prints one line
per size and the totals.
"""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
import tempfile
from pathlib import Path

import torch
from safetensors.torch import load_file

from tests.train.helpers import TINY_SET, write_tiny_npz

STEP = 8192  # bytes between two sizes


def _lgn(*args: str) -> subprocess.CompletedProcess:
    return subprocess.run([sys.executable, "-m", "lgn", "train", *args], capture_output=True, text=True)


def _same(a: Path, b: Path) -> bool:
    wa, wb = load_file(a / "model.safetensors"), load_file(b / "model.safetensors")
    records = [[{k: v for k, v in json.loads(line).items() if not k.endswith("_seconds")}
                for line in (d / "metrics.jsonl").read_text().splitlines()] for d in (a, b)]
    return wa.keys() == wb.keys() and all(torch.equal(wa[k], wb[k]) for k in wa) and records[0] == records[1]


def main() -> None:
    root = Path(tempfile.mkdtemp())
    args = ["--dataset", f"npz:{write_tiny_npz(root / 'tiny.npz')}", "--epochs", "2", "--no-progress",
            "--checkpoint-every", "1", *TINY_SET]
    assert _lgn("--out", str(root / "full"), *args).returncode == 0
    size = sum(p.stat().st_size for p in (root / "full").iterdir())
    mount, moved = root / "disk", root / "moved"
    mount.mkdir()
    filled = survived = 0
    for limit in range(4096, 3 * size, STEP):
        subprocess.run(["mount", "-t", "tmpfs", "-o", f"size={limit}", "tmpfs", str(mount)], check=True)
        try:
            done = _lgn("--out", str(mount / "run"), *args)
            shutil.rmtree(moved, ignore_errors=True)
            if (mount / "run").exists():
                shutil.copytree(mount / "run", moved)
        finally:
            subprocess.run(["umount", str(mount)], check=True)
        if done.returncode == 0:
            print(f"{limit:>8} bytes: completed")
            continue
        filled += 1
        lines = done.stderr.strip().splitlines()
        one_line = done.returncode == 2 and len(lines) == 1 and f"cannot write {mount / 'run'}/" in lines[0]
        resumed = _lgn("--out", str(moved), "--resume", *args).returncode == 0 and _same(moved, root / "full")
        survived += one_line and resumed
        print(f"{limit:>8} bytes: {'one line' if one_line else 'NOT one line'}, "
              f"{'resumed bit-identical' if resumed else 'NOT resumed identically'}: {lines[0] if lines else ''}")
    print(f"run folder {size} bytes; {filled} sizes filled the disk, {survived} of them ended in one line "
          f"and resumed bit-identical")
    shutil.rmtree(root)


if __name__ == "__main__":
    main()
