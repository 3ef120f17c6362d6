"""``--method learn``: recovery on tiny planted sets, labelled and not, the pick, the settings, the CLI."""

import dataclasses
import json

import numpy as np
import pytest
import torch

from lgn.cli import main
from lgn.data.planted import planted_data
from lgn.discovery import LearnConfig, judge, learn_generator
from lgn.discovery.learn import _ranking, norm_shells
from lgn.discovery.score import alignment_per_group

TINY = LearnConfig(restarts=8, steps=150, sample=48, points=200)


def _tiny(name, seed, classes, k=4):
    x_train, y_train, x_test, _, t, p = planted_data(name, seed=seed, kernel_size=k, n_classes=classes, sigma=0.05,
                                                     n_train=400, n_test=50)
    x, xt = x_train.reshape(400, -1).double(), x_test.reshape(50, -1).double()
    mean, std = x.mean(), x.std()
    return (x - mean) / std, y_train, (xt - mean) / std, t, p


@pytest.mark.parametrize("name, classes, labelled", [("perm4", 4, True), ("shift-x", 2, False)])
def test_learned_generator_recovers_a_planted_group_from_random_starts(name, classes, labelled):
    x, y, xt, t, p = _tiny(name, 0, classes)
    estimate, records = learn_generator(x, y if labelled else None, p, TINY, seed=0)
    a = estimate.generator
    assert np.allclose(np.linalg.matrix_power(a, p), np.eye(16), atol=1e-8)  # an exact group throughout
    assert len(records) == TINY.restarts and sum(r["chosen"] for r in records) == 1
    chosen = next(r for r in records if r["chosen"])
    assert chosen["loss"] == min(r["loss"] for r in records)  # the pick: the lowest loss on training data
    bases = xt[:8].numpy()  # held-out images as base filters
    assert alignment_per_group(np.stack([a] * 8), bases, t, p).mean() > 0.9
    # the verdict compares the learned map's residual with random generators' of the same order
    assert estimate.null.shape == (19,) and estimate.fit_residual < estimate.null.min()
    verdict = judge(estimate, 4)
    assert verdict.found and verdict.order == 4
    # and not because any generator of order 4 would do: a random one, same base filters
    q, _ = np.linalg.qr(np.random.default_rng(0).standard_normal((16, 16)))
    assert alignment_per_group(np.stack([q @ t @ q.T] * 8), bases, t, p).mean() < 0.5


def test_learn_refuses_bad_settings():
    with pytest.raises(ValueError, match="group size"):
        learn_generator(torch.randn(10, 4), torch.zeros(10, dtype=torch.int64), 1)
    with pytest.raises(ValueError, match="restarts"):
        LearnConfig(restarts=0)
    with pytest.raises(ValueError, match="lr"):
        LearnConfig(lr=float("nan"))
    with pytest.raises(ValueError, match="loss"):
        LearnConfig(loss="l2")
    with pytest.raises(ValueError, match="anneal"):
        LearnConfig(anneal=0.5)


@pytest.mark.parametrize("labelled", [True, False])
def test_discover_method_learn_writes_the_usual_files(tmp_path, capsys, labelled):
    out = tmp_path / "run"
    if labelled:
        data = ["--dataset", "planted:flip", "--set", "data.options.kernel_size=2", "--set", "data.options.n_classes=2",
                "--set", "data.options.n_train=100", "--set", "data.options.n_test=20"]
    else:
        rng = np.random.default_rng(0)
        np.savez(tmp_path / "x.npz", x_train=rng.standard_normal((60, 2, 2)).astype(np.float32),
                 x_test=rng.standard_normal((20, 2, 2)).astype(np.float32))
        data = ["--dataset", f"npz:{tmp_path / 'x.npz'}"]
    code = main(["discover", *data, "--group-size", "2", "--out", str(out), "--method", "learn",
                 "--restarts", "1", "--steps", "3", "--epochs", "1", "--layers", "1", "--refine", "2",
                 "--refine-scale", "0.7", "--held-out", "0.25", *([] if labelled else ["--shells", "2"])])
    assert code == 0
    text = capsys.readouterr().out
    first = (out / "verdict.txt").read_text().splitlines()[0]
    assert first.startswith("group found: ") or first.startswith("no group of size 2 found: ")
    assert ("alignment with the planted group" in text) == labelled
    analysis = json.loads((out / "analysis.json").read_text())
    assert analysis["discovery"]["config"]["method"] == "learn"
    assert analysis["discovery"]["config"]["learn"]["restarts"] == 1
    assert analysis["discovery"]["verdict"]["measure"] == "distribution"
    learn = analysis["discovery"]["config"]["learn"]
    assert (learn["refine"], learn["refine_scale"], learn["refine_keep"], learn["held_out"]) == (2, 0.7, 1, 0.25)
    assert learn["shells"] == (0 if labelled else 2)
    with np.load(out / "groups.npz") as f:
        assert f["A"].shape[2:] == (1, 4, 4)
        assert np.allclose(np.linalg.matrix_power(f["A"][0, 0, 0], 2), np.eye(4), atol=1e-5)


def test_learn_leaves_the_callers_random_state_alone_and_is_deterministic():
    x, y = torch.randn(40, 4, dtype=torch.float64), torch.arange(40) % 2
    tiny = LearnConfig(restarts=2, steps=3, sample=4, points=8)
    torch.manual_seed(123)
    before = torch.get_rng_state()
    first, _ = learn_generator(x, y, 2, tiny, seed=5)
    assert torch.equal(torch.get_rng_state(), before)
    again, _ = learn_generator(x, y, 2, tiny, seed=5)
    assert np.array_equal(first.generator, again.generator)


def test_the_third_moment_term_joins_once_the_bandwidth_is_at_its_floor():
    x, y = torch.randn(80, 9, dtype=torch.float64), torch.arange(80) % 2
    plain = LearnConfig(restarts=2, steps=6, sample=8, points=8, anneal_until=0.5)
    third = LearnConfig(restarts=2, steps=6, sample=8, points=8, anneal_until=0.5, third_weight=1.0)
    early = LearnConfig(restarts=2, steps=3, sample=8, points=8, anneal_until=1.0, third_weight=1.0)
    a, _ = learn_generator(x, y, 3, plain, seed=1)
    b, _ = learn_generator(x, y, 3, third, seed=1)
    assert not np.allclose(a.generator, b.generator)  # the term moved A in the last 3 steps
    assert np.allclose(np.linalg.matrix_power(b.generator, 3), np.eye(9), atol=1e-8)
    c, _ = learn_generator(x, y, 3, dataclasses.replace(early, third_weight=0.0), seed=1)
    d, _ = learn_generator(x, y, 3, early, seed=1)
    assert np.array_equal(c.generator, d.generator)  # never at the floor while annealing: no term


def test_the_search_never_sees_the_held_out_images():
    from lgn.discovery.learn import _hold_out, _pools

    x, y, _, _, p = _tiny("shift-x", 0, 2)
    tiny = LearnConfig(restarts=2, steps=20, sample=16, points=32)
    _, held = _hold_out(_pools(y, len(x)), tiny.held_out, torch.Generator().manual_seed(3))
    held = torch.cat(held)
    assert len(held) == 2 * round(0.2 * 200)  # two classes of 200 in this tiny set
    changed = x.clone()
    changed[held] = torch.randn(len(held), 16, generator=torch.Generator().manual_seed(9), dtype=x.dtype)
    first, records = learn_generator(x, y, p, tiny, seed=3)
    second, again = learn_generator(changed, y, p, tiny, seed=3)
    assert np.array_equal(first.generator, second.generator) and records == again  # the same search
    assert first.fit_residual != second.fit_residual  # while the verdict's evidence is the held-out images


def test_the_refine_stage_continues_the_best_starts_at_a_narrower_kernel():
    x, y, _, _, p = _tiny("perm4", 0, 4)
    base = LearnConfig(restarts=4, steps=30, sample=16, points=32)
    plain, first = learn_generator(x, y, p, base, seed=2)
    refined, records = learn_generator(x, y, p, dataclasses.replace(base, refine=10, refine_keep=2), seed=2)
    assert [r["loss"] for r in records] == [r["loss"] for r in first]  # the same search up to the pick
    kept = sorted(records, key=lambda r: r["loss"])[:2]  # the two lowest losses at the pick are continued
    assert all("refined" in r for r in kept) and sum("refined" in r for r in records) == 2
    chosen = next(r for r in records if r["chosen"])
    assert chosen in kept and chosen["refined"] == min(r["refined"] for r in kept)
    assert not np.allclose(plain.generator, refined.generator)
    assert np.allclose(np.linalg.matrix_power(refined.generator, p), np.eye(16), atol=1e-8)
    with pytest.raises(ValueError, match="refine_scale"):
        LearnConfig(refine_scale=0.0)
    with pytest.raises(ValueError, match="held_out"):
        LearnConfig(held_out=1.0)


def test_an_episodic_start_joins_the_random_starts_and_needs_labels():
    x, y, xt, t, p = _tiny("shift-x", 0, 4)
    config = LearnConfig(restarts=2, steps=150, sample=16, points=64, start="episodic")
    estimate, records = learn_generator(x, y, p, config, seed=0)
    assert len(records) == 3  # the two random starts and the episodic one
    assert sum(r["chosen"] for r in records) == 1
    assert np.allclose(np.linalg.matrix_power(estimate.generator, p), np.eye(16), atol=1e-8)
    assert alignment_per_group(np.stack([estimate.generator] * 8), xt[:8].numpy(), t, p).mean() > 0.9
    with pytest.raises(ValueError, match="labelled"):
        learn_generator(x, None, p, config, seed=0)


def test_norm_shells_are_kept_by_every_orthogonal_map_and_pool_unlabelled_data():
    x, _, xt, t, p = _tiny("shift-x", 0, 2)
    q = torch.linalg.qr(torch.randn(16, 16, generator=torch.Generator().manual_seed(0), dtype=x.dtype))[0]
    shells = norm_shells(x, 4)
    assert torch.equal(torch.bincount(shells), torch.full((4,), 100))  # equal counts
    assert torch.equal(norm_shells(x @ q.T, 4), shells)  # an orthogonal map moves no image to another shell
    tiny = dataclasses.replace(TINY, restarts=4, sample=16, shells=2)
    estimate, records = learn_generator(x, None, p, tiny, seed=0)
    assert alignment_per_group(np.stack([estimate.generator] * 8), xt[:8].numpy(), t, p).mean() > 0.9
    assert len(estimate.clusters) == 2  # the verdict, too, compares shell by shell
    with pytest.raises(ValueError, match="shells"):
        LearnConfig(shells=-1)


def test_the_pick_passes_over_starts_that_barely_move_the_data():
    loss, still = torch.tensor([0.001, 0.010, 0.004]), torch.tensor([0.95, 0.20, 0.30])
    assert int(torch.argmin(_ranking(loss, still, LearnConfig()))) == 2  # the lowest loss among moving starts
    assert int(torch.argmin(_ranking(loss, still, LearnConfig(still=1.0)))) == 0  # 1: the plain lowest loss
    assert torch.equal(_ranking(loss, torch.full((3,), 0.99), LearnConfig()), loss)  # all still: the plain losses
    x, y, _, _, p = _tiny("perm4", 0, 4)
    _, records = learn_generator(x, y, p, dataclasses.replace(TINY, restarts=2, steps=5), seed=0)
    chosen = next(r for r in records if r["chosen"])
    assert all(-1.0 <= r["stillness"] <= 1.0 for r in records)
    assert chosen["stillness"] < 0.9 or all(r["stillness"] >= 0.9 for r in records)
