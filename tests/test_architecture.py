"""The floors of docs/architecture.md hold: no import runs upward, no import cycle, light packages stay light.

The import graph is read from the source with ``ast``, not from what happens to be
imported: an import inside a function is an arrow too, and would run the day that
function is called.
"""

import ast
import subprocess
import sys
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent

# The floors of docs/architecture.md: a package imports the floors below it, and from its own floor only the
# packages SIDEWAYS names. ``lgn`` is the package's own __init__ (it resolves models' and nn's names, and every
# subpackage, on first use: importlib calls, not imports this test reads).
FLOORS = {
    "files": 0, "parsing": 0, "settings": 0, "limits": 0, "device": 0, "memory": 0,
    "groups": 1,
    "nn": 2, "data": 2,
    "models": 3, "testing": 3, "lgn": 3,
    "runs": 4,
    "train": 5, "analysis": 5, "discovery": 5,
    "reproduce": 6, "bench": 6,
    "cli": 7, "__main__": 7,
}
SIDEWAYS = {("files", "parsing"), ("limits", "settings"), ("lgn", "models"), ("discovery", "train"),
            ("discovery", "analysis"), ("__main__", "cli")}


def _modules() -> dict[str, Path]:
    """Every module of lgn by dotted name (a package by its own name, for its __init__)."""
    out = {}
    for path in (ROOT / "lgn").rglob("*.py"):
        parts = path.relative_to(ROOT).with_suffix("").parts
        out[".".join(parts[:-1] if parts[-1] == "__init__" else parts)] = path
    return out


MODULES = _modules()


def _target(name: str) -> str:
    """The module ``name`` is, or the innermost module that holds it."""
    while name not in MODULES:
        name = name.rpartition(".")[0]
    return name


def _imports(nodes) -> set[str]:
    """The lgn modules the import statements among ``nodes`` load (``from a import b``: ``a.b`` if a module)."""
    out = set()
    for node in nodes:
        if isinstance(node, ast.Import):
            out |= {_target(a.name) for a in node.names if a.name.split(".")[0] == "lgn"}
        elif isinstance(node, ast.ImportFrom):
            assert node.level == 0, "lgn imports absolutely"
            if node.module.split(".")[0] == "lgn":
                out |= {_target(f"{node.module}.{a.name}") for a in node.names}
    return out


def _at_import_time(tree: ast.Module):
    """The nodes that run when the module is imported: all but function bodies (class bodies run)."""
    todo = list(tree.body)
    while todo:
        node = todo.pop()
        if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef, ast.Lambda)):
            continue
        yield node
        todo.extend(ast.iter_child_nodes(node))


def _graph(module_level: bool) -> dict[str, set[str]]:
    """module → the lgn modules it imports (at import time, or anywhere in it)."""
    graph = {}
    for name, path in MODULES.items():
        tree = ast.parse(path.read_text(), str(path))
        graph[name] = _imports(_at_import_time(tree) if module_level else ast.walk(tree)) - {name}
    return graph


def _cycles(graph: dict[str, set[str]]) -> list[list[str]]:
    """The strongly connected components of more than one module (Tarjan's algorithm, iteratively)."""
    index, low, on_stack, stack, found, counter = {}, {}, set(), [], [], 0
    for root in graph:
        if root in index:
            continue
        work = [(root, iter(sorted(graph[root])))]
        index[root] = low[root] = counter
        counter += 1
        stack.append(root)
        on_stack.add(root)
        while work:
            node, children = work[-1]
            child = next(children, None)
            if child is not None:
                if child not in index:
                    index[child] = low[child] = counter
                    counter += 1
                    stack.append(child)
                    on_stack.add(child)
                    work.append((child, iter(sorted(graph[child]))))
                elif child in on_stack:
                    low[node] = min(low[node], index[child])
                continue
            work.pop()
            if work:
                low[work[-1][0]] = min(low[work[-1][0]], low[node])
            if low[node] == index[node]:
                component = []
                while True:
                    member = stack.pop()
                    on_stack.discard(member)
                    component.append(member)
                    if member == node:
                        break
                if len(component) > 1:
                    found.append(sorted(component))
    return found


def _package(module: str) -> str:
    """``lgn.train.loop`` → ``train``; ``lgn`` → ``lgn``."""
    return module.split(".")[1] if "." in module else module


def test_every_package_has_a_floor():
    assert {_package(m) for m in MODULES} == set(FLOORS)


def test_the_cycle_finder_finds_a_cycle():  # the tests below would pass vacuously otherwise
    assert _cycles({"a": {"b"}, "b": {"c"}, "c": {"a"}, "d": {"a"}}) == [["a", "b", "c"]]
    assert _cycles({"a": {"b"}, "b": set()}) == []


@pytest.mark.parametrize("module_level", [True, False], ids=["at-import-time", "anywhere"])
def test_no_import_cycle_between_lgn_modules(module_level):
    assert _cycles(_graph(module_level)) == []


def test_no_package_imports_a_higher_floor_or_its_own_floor_unless_listed():
    arrows = {(_package(m), _package(t)) for m, targets in _graph(module_level=False).items() for t in targets}
    upward = sorted(f"{a} imports {b}" for a, b in arrows if FLOORS[b] > FLOORS[a])
    sideways = sorted(f"{a} imports {b}" for a, b in arrows if a != b and FLOORS[b] == FLOORS[a])
    assert upward == []
    assert set(sideways) <= {f"{a} imports {b}" for a, b in SIDEWAYS}, sideways
    # the mathematics imports nothing of ours but the one argument check, lgn.settings (pydantic alone)
    assert {b for a, b in arrows if a == "groups"} <= {"groups", "settings"}


@pytest.mark.parametrize("module, absent", [
    ("lgn.analysis", "lgn.train"),   # reading a learned group needs no trainer
    ("lgn.runs", "lgn.train"),       # nor does reading a run folder
    ("lgn.models", "lgn.data"),      # a model is built and loaded without datasets
])
def test_importing_a_package_leaves_the_floors_above_it_alone(module, absent):
    code = (f"import sys, {module}\n"
            f"print(sorted(m for m in sys.modules if m == {absent!r} or m.startswith({absent + '.'!r})))")
    loaded = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert loaded.strip() == "[]", f"import {module} loaded {loaded.strip()}"
    # and the check can fail: importing the absent package itself is seen
    code = f"import sys, {absent}\nprint({absent!r} in sys.modules)"
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                          check=True).stdout.strip() == "True"
