"""What a user installing lgn relies on: the licence as declared, every imported package declared, typed."""

import re
import tomllib
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
PYPROJECT = tomllib.loads((ROOT / "pyproject.toml").read_text())
# import name → distribution name, where they differ
DISTRIBUTIONS = {"sklearn": "scikit-learn"}
STDLIB_EXTRA = {"__future__"}


def _names(requirements):
    return {re.split(r"[<>=!\[; ]", r, maxsplit=1)[0].lower() for r in requirements}


def test_licence_is_an_spdx_string_matching_the_licence_file():
    assert PYPROJECT["project"]["license"] == "MIT"
    assert (ROOT / "LICENSE").read_text().startswith("MIT License")
    assert "arXiv:2305.18552" in (ROOT / "CITATION.cff").read_text()
    assert (ROOT / "lgn" / "py.typed").is_file()
    assert "py.typed" in PYPROJECT["tool"]["setuptools"]["package-data"]["lgn"]


def test_every_imported_package_is_declared():
    import sys

    imported = set()
    for path in (ROOT / "lgn").rglob("*.py"):
        imported |= set(re.findall(r"^\s*(?:import|from) ([A-Za-z_]\w*)", path.read_text(), re.MULTILINE))
    third_party = {DISTRIBUTIONS.get(n, n).lower() for n in imported
                   if n != "lgn" and n not in sys.stdlib_module_names and n not in STDLIB_EXTRA}
    declared = _names(PYPROJECT["project"]["dependencies"])
    for extra in PYPROJECT["project"]["optional-dependencies"].values():
        declared |= _names(extra)
    assert third_party and third_party <= declared, sorted(third_party - declared)


def test_metadata_names_the_authors_the_paper_and_the_python_versions():
    project = PYPROJECT["project"]
    cff = (ROOT / "CITATION.cff").read_text()
    software_authors = cff.split("authors:", 1)[1].split("abstract:", 1)[0]  # the software's, before the paper's
    assert [a["name"] for a in project["authors"]] == re.findall(r'- name: "([^"]+)"', software_authors)
    assert project["urls"]["Paper"] in cff
    classifiers = project["classifiers"]
    assert not [c for c in classifiers if c.startswith("License ::")]  # PEP 639: the SPDX expression only
    minimum = tuple(int(x) for x in project["requires-python"].removeprefix(">=").split("."))
    versions = [tuple(int(x) for x in c.rsplit(" ", 1)[1].split(".")) for c in classifiers
                if re.fullmatch(r"Programming Language :: Python :: 3\.\d+", c)]
    assert versions and min(versions) == minimum
