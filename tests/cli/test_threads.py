"""``--threads``: every command has it; it sets torch's threads and BLAS's; the default is one thread."""

import json
import os
import subprocess
import sys

import pytest

from lgn.cli import build_parser, default_threads
from tests.train.helpers import TINY_SET, write_tiny_npz


def test_set_threads_limits_blas_and_torch():
    code = ("import json, torch; from threadpoolctl import threadpool_info; from lgn.limits import set_threads; "
            "set_threads(1); print(json.dumps([torch.get_num_threads(), "
            "[p['num_threads'] for p in threadpool_info() if p['user_api'] == 'blas']]))")
    torch_threads, blas = json.loads(subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                                    check=True).stdout)
    assert torch_threads == 1
    assert blas and set(blas) == {1}


def test_every_command_takes_threads():
    parser = build_parser()
    commands = next(a.choices for a in parser._actions if a.dest == "command")
    assert len(commands) >= 10
    for name, command in commands.items():
        assert any("--threads" in a.option_strings for a in command._actions), name


@pytest.mark.parametrize("env, expected", [({}, 1), ({"OMP_NUM_THREADS": "3"}, 3), ({"OMP_NUM_THREADS": "0"}, 1),
                                           ({"OMP_NUM_THREADS": "many"}, 1)])
def test_the_default_is_omp_num_threads_else_one(monkeypatch, env, expected):
    monkeypatch.delenv("OMP_NUM_THREADS", raising=False)
    for key, value in env.items():
        monkeypatch.setenv(key, value)
    assert default_threads() == expected


def test_a_refused_thread_count_is_an_argument_error(capsys):
    with pytest.raises(SystemExit) as e:
        build_parser().parse_args(["eval", "run", "--threads", "0"])
    assert e.value.code == 2
    assert "--threads: expected a positive integer, got '0'" in capsys.readouterr().err


def _run(tmp_path, *extra, env_threads=None):
    env = {k: v for k, v in os.environ.items() if k not in ("OMP_NUM_THREADS", "MKL_NUM_THREADS",
                                                            "OPENBLAS_NUM_THREADS")}
    if env_threads is not None:
        env["OMP_NUM_THREADS"] = env_threads
    npz = write_tiny_npz(tmp_path / "tiny.npz")
    out = tmp_path / "run"
    result = subprocess.run([sys.executable, "-m", "lgn", "train", "--dataset", f"npz:{npz}", "--out", str(out),
                             "--epochs", "1", "--no-progress", *TINY_SET, *extra],
                            capture_output=True, text=True, env=env, timeout=300)
    assert result.returncode == 0, result.stderr
    # the checkpoint records torch.get_num_threads() of the process that trained
    threads = json.loads((out / "checkpoint-0.json").read_text())["threads"]
    return result.stdout, threads


def test_train_uses_and_reports_the_threads_given(tmp_path):
    stdout, threads = _run(tmp_path, "--threads", "2")
    assert threads == 2
    assert stdout.splitlines()[0] == f"lgn train: {tmp_path / 'run'}, 2 CPU threads (--threads)"


def test_train_defaults_to_one_thread_without_omp_num_threads(tmp_path):
    stdout, threads = _run(tmp_path)
    assert threads == 1
    assert "1 CPU thread (--threads)" in stdout.splitlines()[0]
