"""``lgn bench`` from an installed wheel: everything it imports ships inside the package."""

import os
import shutil
import subprocess
import sys
import zipfile
from pathlib import Path

ROOT = Path(__file__).resolve().parents[2]

# run from the unpacked wheel, away from the source tree: the measurements must import and agree
PROBE = """
import sys
from pathlib import Path
import lgn, lgn.cli
assert Path(lgn.__file__).resolve().is_relative_to(Path(sys.argv[1]).resolve()), lgn.__file__
import torch
from lgn.bench.measure import build_pair, check_agreement
base, ours = build_pair(1, 12, torch.device("cpu"))
diff = check_agreement(base, ours, torch.randn(4, 1, 12, 12), torch.randint(0, 10, (4,)))
assert max(diff.values()) <= 1e-4, diff
try:
    import benchmarks
except ModuleNotFoundError:
    pass
else:
    raise AssertionError("the source checkout's benchmarks/ is importable: " + str(benchmarks.__path__))
sys.exit(lgn.cli.main(["bench", "--rounds", "0"]))
"""


def test_lgn_bench_runs_from_the_built_wheel(tmp_path):
    src = tmp_path / "src"
    src.mkdir()
    for name in ("pyproject.toml", "README.md", "LICENSE"):
        shutil.copy(ROOT / name, src / name)
    shutil.copytree(ROOT / "lgn", src / "lgn", ignore=shutil.ignore_patterns("__pycache__"))
    subprocess.run([sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--quiet",
                    "-w", str(tmp_path / "dist"), str(src)], check=True, capture_output=True, timeout=120)
    wheel, = (tmp_path / "dist").glob("lgn-*.whl")
    site = tmp_path / "site"
    with zipfile.ZipFile(wheel) as z:
        assert {"lgn/bench/baseline.py", "lgn/bench/measure.py", "lgn/bench/plain.py"} <= set(z.namelist())
        z.extractall(site)
    env = {**os.environ, "PYTHONPATH": str(site)}
    run = subprocess.run([sys.executable, "-c", PROBE, str(site)], cwd=tmp_path, env=env, capture_output=True,
                         text=True, timeout=120)
    assert run.returncode == 2, run.stderr  # --rounds 0 is refused, after everything above held
    assert "--rounds must be at least 1" in run.stderr.strip().splitlines()[-1], run.stderr
