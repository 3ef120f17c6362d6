"""The measurement code behind ``lgn bench`` (timings themselves are never asserted)."""

import json

import pytest
import torch

from lgn.bench.measure import (BATCH, alternate, build_pair, check_agreement, format_profile, format_report,
                              make_batches, profile_step, run_bench, train_step, training_flops)
from lgn.bench.plain import PlainConvNet
from lgn.cli import main


@pytest.mark.parametrize("channels,size", [(1, 28), (3, 32)])
def test_check_agreement_is_within_tolerance(channels, size):
    base, ours = build_pair(channels, size, torch.device("cpu"))
    x, y = torch.randn(32, channels, size, size), torch.randint(0, 10, (32,))
    before = {k: v.clone() for k, v in ours.state_dict().items()}
    diff = check_agreement(base, ours, x, y)
    assert set(diff) == {"output", "gradient"}
    assert max(diff.values()) <= 1e-4
    for k, v in ours.state_dict().items():  # the check works on copies
        torch.testing.assert_close(v, before[k], rtol=0, atol=0)


@pytest.mark.parametrize("channels,size,stride", [(1, 28, 1), (3, 32, 1), (1, 27, 2)])
def test_plain_conv_net_matches_exported_model(channels, size, stride):
    base, _ = build_pair(channels, size, torch.device("cpu"))
    from lgn import load_reference_state_dict
    ours = load_reference_state_dict(base.double().state_dict(), image_size=size, stride=stride)
    exported = ours.export().eval()
    x = torch.randn(4, channels, size, size, dtype=torch.float64)
    with torch.no_grad():
        torch.testing.assert_close(PlainConvNet(exported, size)(x), exported(x), rtol=0, atol=1e-10)


def test_training_flops_counts_twenty_convolutions_for_four_layers():
    _, ours = build_pair(1, 28, torch.device("cpu"))
    assert training_flops(ours, 28) == 20 * 2 * BATCH * 20 * 1 * 36 * 25 * 25


def test_alternate_flips_the_order_each_round():
    calls = []
    alternate({"a": lambda i: calls.append("a"), "b": lambda i: calls.append("b")}, 3,
              torch.device("cpu"), warmup=0)
    assert calls == ["a", "b", "b", "a", "a", "b"]


def test_cli_rejects_bad_arguments(capsys):
    assert main(["bench", "--rounds", "0"]) == 2
    assert "--rounds" in capsys.readouterr().err


@pytest.mark.slow
def test_run_bench_reports_the_issue_keys(tmp_path):
    report = run_bench("cpu", rounds=1, shapes=("mnist",))
    for key in ("train_speedup_mnist", "export_overhead", "gflops_fraction_of_gemm", "gemm_gflops"):
        assert report[key] > 0
    assert report["mnist"]["check_max_abs_diff"]["gradient"] <= 1e-4
    json.dumps(report)
    assert "train speedup" in format_report(report)


def test_profile_names_the_convolutions_of_a_step():
    _, ours = build_pair(1, 28, torch.device("cpu"))
    optimizer = torch.optim.Adam(ours.parameters(), lr=0.01)
    batches = make_batches(1, 28, torch.device("cpu"), n=1)
    train_step(ours, optimizer, *batches[0])  # warm-up
    rows = profile_step(ours, optimizer, batches, torch.device("cpu"), steps=1, top=30)
    assert rows == sorted(rows, key=lambda row: -row["ms_per_step"])
    assert 0 < sum(row["share"] for row in rows) <= 1 + 1e-9
    assert any("conv" in row["op"] for row in rows[:5]), [row["op"] for row in rows]
    table = format_profile("mnist", rows).splitlines()
    assert len(table) == len(rows) + 1 and rows[0]["op"][:48] in table[1]
