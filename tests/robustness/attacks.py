"""Helpers for the attacks on run folders: a real ``lgn`` process, its one-line error, edited checkpoints.

The checkpoint digests are computed here from the format's description
(docs/robustness.md), not with lgn's own functions, so an edit that keeps
its digests matching is one an outsider can make.
"""

from __future__ import annotations

import os
import subprocess
import sys
from pathlib import Path

DIGITS_1 = ["--dataset", "digits", "--epochs", "1", "--no-progress"]  # the run: digits, one epoch


def lgn(*argv: str | bytes | os.PathLike, timeout: float = 300, preexec_fn=None,
        cwd: str | os.PathLike | None = None) -> subprocess.CompletedProcess:
    """``python -m lgn argv`` in a real process (bytes arguments reach it as they are); text output."""
    env = {k: v for k, v in os.environ.items() if k != "LGN_DEBUG"}
    proc = subprocess.run([sys.executable, "-m", "lgn", *argv], capture_output=True, timeout=timeout,
                          env=env, preexec_fn=preexec_fn, cwd=cwd)
    proc.stdout = proc.stdout.decode(errors="replace")
    proc.stderr = proc.stderr.decode(errors="replace")
    return proc


def lines(text: str) -> list[str]:
    return [line for line in text.splitlines() if line.strip()]


def assert_one_line_error(proc: subprocess.CompletedProcess, command: str, *names: str) -> str:
    """Exit code 2 and exactly one line on stderr, ``lgn COMMAND: error: ...`` naming each of ``names``."""
    err = lines(proc.stderr)
    assert proc.returncode == 2, f"exit code {proc.returncode}, stderr: {proc.stderr[-2000:]}"
    assert "Traceback" not in proc.stderr and len(err) == 1, f"expected one line, got:\n{proc.stderr[-2000:]}"
    assert err[0].startswith(f"lgn {command}: error: "), err[0]
    for name in names:
        assert name in err[0], f"the error does not name {name!r}: {err[0]}"
    return err[0]


def files_under(root: Path) -> dict[str, bytes]:
    """Every regular file under ``root`` (links not followed): relative path -> content."""
    return {str(p.relative_to(root)): p.read_bytes() for p in sorted(root.rglob("*"))
            if p.is_file() and not p.is_symlink()}
