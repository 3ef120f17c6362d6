"""``--method learn``: its two losses against hand-built cases, and recovery on a tiny planted set."""

import json

import numpy as np
import pytest
import torch

from lgn.cli import main
from lgn.data.planted import planted_data, planted_generator
from lgn.discovery import LearnConfig, judge, learn_generator
from lgn.discovery.learn import class_moments, matching_loss, symmetry_loss
from lgn.discovery.score import alignment_per_group
from lgn.groups import operators

TINY = LearnConfig(restarts=4, warm_steps=150, match_steps=100, final_steps=200, reference=400, points=200)


def _random_orthogonal(n, seed):
    q, _ = np.linalg.qr(np.random.default_rng(seed).standard_normal((n, n)))
    return torch.from_numpy(q)


def test_symmetry_loss_vanishes_exactly_for_a_symmetry_of_the_class_moments():
    t, p = planted_generator("rot90", 4)
    rng = np.random.default_rng(0)
    images = []
    for c in range(3):  # each class holds every rotation of its template once: moments invariant under T
        temp = rng.standard_normal(16)
        images += [(np.linalg.matrix_power(t, j) @ temp, c) for j in range(p)]
    x = torch.tensor(np.stack([v for v, _ in images]))
    y = torch.tensor([c for _, c in images])
    moments = class_moments(x, y)
    assert moments.shape == (3, 16, 16)
    assert torch.allclose(moments.flatten(1).norm(dim=1), torch.ones(3, dtype=torch.float64))
    assert float(symmetry_loss(torch.from_numpy(t), moments)) < 1e-20
    assert float(symmetry_loss(torch.from_numpy(t @ t), moments)) < 1e-20  # powers of T too
    assert float(symmetry_loss(_random_orthogonal(16, 1), moments)) > 0.1


def test_matching_loss_is_zero_when_moved_images_land_on_images_of_their_class():
    t = torch.from_numpy(operators.flip(4, "x"))
    base = torch.randn(5, 16, dtype=torch.float64)
    x = torch.cat([base, base @ t.T])  # every image and its mirror image
    y = torch.arange(5).repeat(2)
    assert float(matching_loss(t, x, y, x, y)) < 1e-24
    # the mirror of an image of class 0 is no help to an image of class 1: the classes are kept apart
    assert float(matching_loss(t, x, y.roll(1), x, y)) > 0.1
    assert float(matching_loss(_random_orthogonal(16, 2), x, y, x, y)) > 0.3


def test_learned_generator_recovers_a_planted_permutation_from_random_starts():
    seed = 0
    x_train, y_train, _, _, t, p = planted_data("perm4", seed=seed, kernel_size=4, n_classes=2, sigma=0.05,
                                                n_train=400, n_test=1)
    x = x_train.reshape(400, -1).double()
    estimate, records = learn_generator((x - x.mean()) / x.std(), y_train, p, TINY, seed=seed)
    a = estimate.generator
    assert np.allclose(np.linalg.matrix_power(a, p), np.eye(16), atol=1e-8)  # an exact group throughout
    assert len(records) == TINY.restarts and sum(r.get("chosen", False) for r in records) == 1
    chosen = next(r for r in records if r.get("chosen"))
    assert chosen["matching"] == min(r["matching"] for r in records)
    scores = alignment_per_group(np.stack([a] * 8), estimate.centres[:8], t, p)
    assert scores.mean() > 0.9
    # the verdict compares the learned map's residual with random generators' of the same order
    assert estimate.null.shape == (19,) and estimate.fit_residual < estimate.null.min()
    verdict = judge(estimate, 4)
    assert verdict.found and verdict.p_value == pytest.approx(0.05)
    # and not because any generator of order 4 would do: a random one, same base filters
    q = _random_orthogonal(16, seed).numpy()
    random = q @ np.linalg.matrix_power(t, 1) @ q.T
    assert alignment_per_group(np.stack([random] * 8), estimate.centres[:8], t, p).mean() < 0.5


def test_learn_refuses_unlabelled_data_and_bad_settings():
    with pytest.raises(ValueError, match="labelled"):
        learn_generator(torch.randn(10, 4), None, 2)
    with pytest.raises(ValueError, match="group size"):
        learn_generator(torch.randn(10, 4), torch.zeros(10, dtype=torch.int64), 1)
    with pytest.raises(ValueError, match="restarts"):
        LearnConfig(restarts=0)
    with pytest.raises(ValueError, match="lr"):
        LearnConfig(lr=float("nan"))


def test_discover_method_learn_writes_the_usual_files(tmp_path, capsys):
    out = tmp_path / "run"
    code = main(["discover", "--dataset", "planted:flip", "--set", "data.options.kernel_size=2",
                 "--set", "data.options.n_classes=2", "--set", "data.options.n_train=100",
                 "--set", "data.options.n_test=20", "--group-size", "2", "--out", str(out),
                 "--method", "learn", "--restarts", "1", "--epochs", "1", "--layers", "1"])
    assert code == 0
    assert "alignment with the planted group" in capsys.readouterr().out
    analysis = json.loads((out / "analysis.json").read_text())
    assert analysis["discovery"]["config"]["method"] == "learn"
    assert analysis["discovery"]["config"]["learn"]["restarts"] == 1
    with np.load(out / "groups.npz") as f:
        assert f["A"].shape == (1, 2, 1, 4, 4)
        assert np.allclose(np.linalg.matrix_power(f["A"][0, 0, 0], 2), np.eye(4), atol=1e-5)
    assert (out / "verdict.txt").is_file()


def test_learn_leaves_the_callers_random_state_alone_and_is_deterministic():
    x, y = torch.randn(40, 4, dtype=torch.float64), torch.arange(40) % 2
    tiny = LearnConfig(restarts=1, warm_steps=2, match_steps=2, final_steps=2, batch_size=8, reference=16, points=8)
    torch.manual_seed(123)
    before = torch.get_rng_state()
    first, _ = learn_generator(x, y, 2, tiny, seed=5)
    assert torch.equal(torch.get_rng_state(), before)
    again, _ = learn_generator(x, y, 2, tiny, seed=5)
    assert np.array_equal(first.generator, again.generator)
