"""``lgn report`` reads and writes only inside its folders, whatever ``analysis.json`` says (issue 41, item 2).

The figures an analysis lists are file names in its folder; an entry that
leads anywhere else (a parent folder, an absolute path, a symbolic link) is
refused with one line naming it, and nothing from outside reaches the report.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest

from tests.robustness.attacks import assert_one_line_error, files_under, lgn

SECRET = b"the user's secret\n"


def _analysis(root: Path, source: Path, figures: dict) -> Path:
    """A copy of ``source`` (an analysis folder) in ``root/a/b/analysis`` whose analysis.json lists ``figures``."""
    folder = Path(shutil.copytree(source, root / "a" / "b" / "analysis"))
    analysis = json.loads((folder / "analysis.json").read_text())
    analysis["figures"] = figures
    (folder / "analysis.json").write_text(json.dumps(analysis))
    (root / "secret.txt").write_bytes(SECRET)
    return folder


def _leaked(root: Path) -> list[str]:
    return [name for name, content in files_under(root).items() if SECRET in content and name != "secret.txt"]


@pytest.mark.parametrize("figure", ["../../../secret.txt", "ABSOLUTE", "link.png"])
def test_a_figure_outside_the_analysis_folder_is_refused(tmp_path, digits_analysis, figure):
    """``{"figures": {"training": "../../secret.txt"}}`` (here three levels up), an absolute path, a link out."""
    name = str(tmp_path / "secret.txt") if figure == "ABSOLUTE" else figure
    folder = _analysis(tmp_path, digits_analysis, {"training": name})
    if figure == "link.png":
        (folder / "link.png").symlink_to(tmp_path / "secret.txt")
    proc = lgn("report", folder)
    assert not _leaked(tmp_path), f"the secret was copied to {_leaked(tmp_path)}"
    assert_one_line_error(proc, "report", "figures.training")


def test_a_figure_name_cannot_write_outside_the_report_folder(tmp_path, digits_analysis):
    """The copy's name comes from the same entry: ``sub/../../x.png`` would land beside the report folder."""
    folder = _analysis(tmp_path, digits_analysis, {"dft": "../x.png"})
    (folder.parent / "x.png").write_bytes(b"\x89PNG a figure one level up")
    proc = lgn("report", folder)
    assert not (folder / "x.png").exists()
    assert_one_line_error(proc, "report", "figures.dft")


def test_a_link_in_the_report_folder_is_not_written_through(tmp_path, digits_analysis):
    folder = _analysis(tmp_path, digits_analysis, {})
    (folder / "report").mkdir()
    victim = tmp_path / "victim"
    victim.write_bytes(SECRET)
    (folder / "report" / "index.html").symlink_to(victim)
    proc = lgn("report", folder)
    assert victim.read_bytes() == SECRET
    assert proc.returncode == 0 and (folder / "report" / "index.html").is_file(), proc.stderr
    assert not (folder / "report" / "index.html").is_symlink()


def test_figures_inside_the_folder_are_still_copied(tmp_path, digits_analysis):
    folder = _analysis(tmp_path, digits_analysis, {"dft": "dft.png"})
    (folder / "dft.png").write_bytes(b"\x89PNG not really")
    proc = lgn("report", folder)
    assert proc.returncode == 0, proc.stderr
    assert (folder / "report" / "dft.png").read_bytes() == b"\x89PNG not really"
    assert 'src="dft.png"' in (folder / "report" / "index.html").read_text()
