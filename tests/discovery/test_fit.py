"""Discovery as training: a tiny planted set is recovered, and the trained layer keeps the group."""

import numpy as np
import pytest
import torch

from lgn.data.planted import planted_dataset
from lgn.discovery import DiscoveryConfig, alignment, discover


def test_discover_tiny_perm4_recovers_and_trains():
    x_train, y_train, x_test, y_test, t, p = planted_dataset("perm4", n_classes=3, n_train=300, n_test=100, seed=0)
    config = DiscoveryConfig(n_layers=2, epochs=3, seed=0)
    result = discover(x_train, y_train, x_test, y_test, p, config)
    assert result.generators.shape == (2, 3, 1, 36, 36)
    assert result.bases.shape == (2, 3, 1, 6, 6)
    a = result.generators[0, 0, 0]
    assert np.allclose(np.linalg.matrix_power(a, p), np.eye(36), atol=1e-5)  # an exact group
    assert alignment(result.generators, result.bases, t, p) > 0.95
    assert 0.0 <= result.test_accuracy <= 1.0 and len(result.history) == 3


def test_an_orbit_pooled_discovery_lgn_is_invariant_to_the_group_it_found():
    x_train, y_train, x_test, y_test, t, p = planted_dataset("perm4", n_classes=3, n_train=300, n_test=100, seed=0)
    result = discover(x_train, y_train, x_test, y_test, p, DiscoveryConfig(n_layers=2, epochs=2, seed=0,
                                                                          orbit_pool="max"))
    a = torch.from_numpy(result.generators[0, 0, 0]).float()  # (36, 36), the found map, every layer's
    x = (x_test - x_train.mean()) / x_train.std()
    moved = (x.reshape(100, 36) @ a.T).reshape(x.shape)
    model = result.model.eval()
    with torch.no_grad():
        logits, moved_logits = model(x), model(moved)
    assert torch.allclose(logits, moved_logits, atol=1e-4)  # invariant to the group
    assert not torch.allclose(logits, model(x.flip(-1)), atol=1e-2)  # and not to everything
    plain = discover(x_train, y_train, x_test, y_test, p, DiscoveryConfig(n_layers=2, epochs=2, seed=0)).model.eval()
    with torch.no_grad():
        assert not torch.allclose(plain(x), plain(moved), atol=1e-2)  # the default head reads every power
    with pytest.raises(ValueError, match="orbit_pool"):
        DiscoveryConfig(orbit_pool="sum")


def test_discover_unlabelled_needs_cluster_count_and_returns_estimate():
    x_train, _, x_test, _, t, p = planted_dataset("flip", n_classes=2, n_train=200, n_test=10, seed=1)
    with pytest.raises(ValueError, match="clusters"):
        discover(x_train, None, x_test, None, p)
    result = discover(x_train, None, x_test, None, p, DiscoveryConfig(n_clusters=4, n_layers=1))
    assert result.model is None and result.test_accuracy is None
    assert alignment(result.generators, result.bases, t, p) > 0.95


def test_config_rejects_bad_values():
    with pytest.raises(ValueError, match="epochs"):
        DiscoveryConfig(epochs=0)
    with pytest.raises(ValueError, match="anchor_weight"):
        DiscoveryConfig(anchor_weight=-1.0)
    with pytest.raises(ValueError, match="square"):
        discover(torch.zeros(4, 1, 3, 5), torch.zeros(4, dtype=torch.long), torch.zeros(2, 1, 3, 5),
                 torch.zeros(2, dtype=torch.long), 2)
