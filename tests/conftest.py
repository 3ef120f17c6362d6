"""Shared fixtures: a seeded RNG and a tolerance table per dtype."""

import random

import numpy as np
import pytest
import torch

# absolute tolerance for comparisons that should agree up to rounding
TOLERANCE = {torch.float32: 1e-5, torch.float64: 1e-10}


@pytest.fixture(autouse=True)
def seed():
    """Every test starts from the same seeds; returns the seed for tests that need it."""
    random.seed(0)
    np.random.seed(0)
    torch.manual_seed(0)
    return 0


@pytest.fixture
def tol():
    return TOLERANCE


def pytest_collection_modifyitems(config, items):
    if torch.cuda.is_available():
        return
    skip = pytest.mark.skip(reason="needs a CUDA device")
    for item in items:
        if "cuda" in item.keywords:
            item.add_marker(skip)
