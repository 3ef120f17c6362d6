"""``import lgn`` is cheap: subpackages and the top-level names load on first use, and the command line
answers ``--help`` and argument errors without importing torch or numpy (their time is
benchmarks/cli_startup.py's to measure)."""

import json
import subprocess
import sys

import pytest

import lgn


def _fresh(code: str) -> dict:
    """What ``code`` prints as JSON, run in a fresh interpreter."""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    return json.loads(out.splitlines()[-1])


def test_import_lgn_loads_no_subpackage_and_no_torch():
    loaded = _fresh("import sys, json, lgn; print(json.dumps(sorted(m for m in sys.modules "
                    "if m.split('.')[0] in ('lgn', 'torch', 'numpy'))))")
    assert loaded == ["lgn"]


@pytest.mark.parametrize("name", lgn.SUBPACKAGES)
def test_every_subpackage_is_an_attribute_after_import_lgn(name):
    code = (f"import json, sys, lgn; m = lgn.{name}; "
            f"print(json.dumps([m.__name__, m is sys.modules['lgn.{name}']]))")
    assert _fresh(code) == [f"lgn.{name}", True]


def test_the_readme_lines_work_after_import_lgn_alone():
    code = ("import json, lgn; print(json.dumps([callable(lgn.train.train), callable(lgn.analysis.code_energy), "
            "callable(lgn.testing.assert_conv_equivariant), callable(lgn.discovery.discover), "
            "lgn.build_model.__module__, lgn.GroupConv2d.__module__]))")
    assert _fresh(code) == [True, True, True, True, "lgn.models.lgn", "lgn.nn.layers"]


def test_top_level_names_are_the_subpackages_objects():
    from lgn.models import LGN, build_model
    from lgn.nn import GroupConv2d

    assert lgn.LGN is LGN and lgn.build_model is build_model and lgn.GroupConv2d is GroupConv2d
    assert {"train", "analysis", "build_model", "__version__"} <= set(dir(lgn))


def test_an_unknown_name_is_an_attribute_error():
    with pytest.raises(AttributeError, match="module 'lgn' has no attribute 'trian'"):
        lgn.trian  # noqa: B018


def _commands() -> list[str]:
    from lgn.cli import build_parser

    parser = build_parser()
    return sorted(next(a for a in parser._actions if a.dest == "command").choices)


@pytest.mark.parametrize("argv", [["--help"], ["--version"], ["train", "--out"], ["discover", "--bogus"],
                                  ["eval", "run", "--threads", "0"], ["analyze", "--order", "x"],
                                  *([command, "--help"] for command in _commands())])
def test_help_and_argument_errors_import_no_torch(argv):
    code = (f"import json, sys\nfrom lgn.cli import main\ntry:\n    main({argv!r})\nexcept SystemExit:\n    pass\n"
            "print(json.dumps(sorted({m.split('.')[0] for m in sys.modules} & {'torch', 'numpy'})))")
    assert _fresh(code) == []
