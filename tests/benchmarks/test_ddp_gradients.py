"""benchmarks/ddp_gradients.py compares like with like: DDP's summed gradients are lgn's, bit for bit (not timed)."""

import os
import subprocess
import sys
from pathlib import Path

import pytest
import torch.distributed as dist


@pytest.mark.skipif(not dist.is_available() or not dist.is_gloo_available(), reason="needs torch.distributed gloo")
def test_ddp_with_a_summing_hook_gives_the_hand_written_gradients():
    env = {**os.environ, "OMP_NUM_THREADS": "1", "PYTHONWARNINGS": "ignore"}
    root = Path(__file__).resolve().parents[2]
    proc = subprocess.run([sys.executable, "-m", "torch.distributed.run", "--standalone", "--nproc_per_node=2",
                           "-m", "benchmarks.ddp_gradients", "--shape", "tiny", "--rounds", "1", "--steps", "1"],
                          env=env, cwd=root, capture_output=True, text=True, timeout=300)
    assert proc.returncode == 0, proc.stderr[-2000:]
    out = proc.stdout
    assert "gradients of ddp: bit-identical to hand True" in out
    assert "gradients of ddp-find-unused: bit-identical to hand True" in out
    assert "ddp with a frozen 'select' generator: step 2 fails: Expected to have finished reduction" in out
