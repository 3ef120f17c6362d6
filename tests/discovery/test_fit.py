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
