"""``--method episodic``: the few-shot loss on a hand-built case, and recovery on a tiny planted set."""

import numpy as np
import pytest
import torch

from lgn.data.planted import planted_data, planted_generator
from lgn.discovery import EpisodicConfig, judge, learn_episodic
from lgn.discovery.episodic import episode_loss
from lgn.discovery.learn import basis_for
from lgn.discovery.score import alignment_per_group
from lgn.groups.cayley import CayleyCyclic


def test_episode_loss_is_lowest_for_the_map_that_carries_a_support_pose_to_the_query_poses():
    t, order = planted_generator("rot90", 4)
    rng = np.random.default_rng(0)
    temps = rng.standard_normal((3, 16))
    # support: each class in pose 0; queries: the same class in poses 1, 2, 3
    support = torch.from_numpy(temps[None, :, None])  # (1 episode, 3 classes, 1 shot, 16)
    query = torch.from_numpy(np.stack([[np.linalg.matrix_power(t, j) @ temps[c] for j in (1, 2, 3)]
                                       for c in range(3)])[None])  # (1, 3, 3, 16)
    right = CayleyCyclic(16, order, 1, anchor=torch.from_numpy(basis_for(t, order))[None])
    wrong = CayleyCyclic(16, order, 4, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        at_t = float(episode_loss(right, support, query, 0.1)[0])
        others = episode_loss(wrong, support, query, 0.1)
    # at T every query is its prototype moved exactly (cos 1 at some orbit power); random maps miss
    assert at_t < 0.05
    assert float(others.min()) > 2 * at_t + 0.1


def test_episodic_recovers_a_planted_shift_without_an_estimator():
    x_train, y_train, x_test, _, t, p = planted_data("shift-x", seed=0, kernel_size=4, n_classes=4, sigma=0.05,
                                                     n_train=400, n_test=50)
    x, xt = x_train.reshape(400, -1).double(), x_test.reshape(50, -1).double()
    mean, std = x.mean(), x.std()
    estimate, records = learn_episodic((x - mean) / std, y_train, p,
                                       EpisodicConfig(restarts=4, steps=150, points=200), seed=0)
    assert sum(r["chosen"] for r in records) == 1
    assert next(r for r in records if r["chosen"])["loss"] == min(r["loss"] for r in records)
    a = estimate.generator
    assert np.allclose(np.linalg.matrix_power(a, p), np.eye(16), atol=1e-8)
    assert alignment_per_group(np.stack([a] * 8), ((xt[:8] - mean) / std).numpy(), t, p).mean() > 0.9
    assert judge(estimate, 4).found


def test_episodic_needs_labels_and_enough_images():
    with pytest.raises(ValueError, match="labelled"):
        learn_episodic(torch.randn(10, 4), None, 2)
    with pytest.raises(ValueError, match="shots \\+ queries"):
        learn_episodic(torch.randn(10, 4), torch.arange(10) % 2, 2, EpisodicConfig(queries=16))
    with pytest.raises(ValueError, match="temperature"):
        EpisodicConfig(temperature=0)
