"""Natural patches from scikit-learn's sample photographs."""

import numpy as np
import pytest

from lgn.data.patches import natural_patches, sample_images


def test_shapes_range_and_determinism():
    p = natural_patches(6, 50, seed=3)
    assert p.shape == (50, 3, 6, 6) and p.dtype == np.float32
    assert 0.0 <= p.min() and p.max() <= 1.0
    np.testing.assert_array_equal(p, natural_patches(6, 50, seed=3))
    assert not np.array_equal(p, natural_patches(6, 50, seed=4))
    assert natural_patches(5, 7, channels=1).shape == (7, 1, 5, 5)


def test_patches_are_crops_of_the_photographs():
    images = sample_images(1)
    p = natural_patches(4, 20, seed=0, channels=1)
    for patch in p[:5]:
        found = False
        for im in images:
            # a crop's top-left pixel matches somewhere, and then the whole patch does
            rows, cols = np.nonzero(im[0, :-3, :-3] == patch[0, 0, 0])
            found |= any(np.array_equal(im[0, r:r + 4, c:c + 4], patch[0]) for r, c in zip(rows, cols))
        assert found


def test_natural_patches_are_smooth():
    p = natural_patches(6, 500, seed=0, channels=1)[:, 0]
    neighbour = np.corrcoef(p[:, :, :-1].reshape(-1), p[:, :, 1:].reshape(-1))[0, 1]
    assert neighbour > 0.8  # natural images, not noise


@pytest.mark.parametrize("kwargs,match", [({"kernel_size": 0, "n": 3}, "kernel_size"),
                                          ({"kernel_size": 3, "n": 0}, "n must"),
                                          ({"kernel_size": 3, "n": 2, "channels": 2}, "channels"),
                                          ({"kernel_size": 1000, "n": 2}, "at most")])
def test_bad_arguments(kwargs, match):
    with pytest.raises(ValueError, match=match):
        natural_patches(**kwargs)
