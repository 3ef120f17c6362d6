"""The training package stays readable: no function takes more than 8 parameters or runs over 60 lines."""

import ast
from pathlib import Path

import pytest

import lgn.train

MAX_PARAMETERS, MAX_LINES = 8, 60


def functions(package: Path):
    """``(where, parameters, lines)`` of every function and method under ``package``.

    Parameters count every argument but a method's ``self`` or ``cls`` (keyword-only
    ones and ``*args``/``**kwargs`` included); lines run from ``def`` to the last line
    of the body, docstring included.
    """
    for path in sorted(package.rglob("*.py")):
        for node in ast.walk(ast.parse(path.read_text(encoding="utf-8"))):
            if isinstance(node, (ast.FunctionDef, ast.AsyncFunctionDef)):
                a = node.args
                names = [x.arg for x in (*a.posonlyargs, *a.args, *a.kwonlyargs)]
                names += [x.arg for x in (a.vararg, a.kwarg) if x is not None]
                if names[:1] in (["self"], ["cls"]):
                    names = names[1:]
                yield f"{path.relative_to(package.parent)}:{node.lineno} {node.name}", len(names), \
                    node.end_lineno - node.lineno + 1


def test_the_counts_are_those_of_the_source(tmp_path):
    source = ('def f(a, b=1, *c, d, **e):\n    """doc"""\n    return a\n\n\n'
              'class C:\n    def m(self, x):\n        pass\n')
    (tmp_path / "probe.py").write_text(source)
    assert [(name.split()[-1], n, lines) for name, n, lines in functions(tmp_path)] == [("f", 5, 3), ("m", 1, 2)]


@pytest.mark.parametrize("limit", ["parameters", "lines"])
def test_no_function_in_train_is_too_long_or_takes_too_many_parameters(limit):
    found = list(functions(Path(lgn.train.__file__).parent))
    assert len(found) > 50  # the package was read
    index, most = (1, MAX_PARAMETERS) if limit == "parameters" else (2, MAX_LINES)
    over = [f"{row[0]}: {row[index]} {limit}" for row in found if row[index] > most]
    assert not over, over
