"""The sparse library path of the verdict and the analysis gives what the dense library gives."""

import numpy as np

from lgn.analysis.matching import nearest_operations, similarity_matrix
from lgn.discovery.verdict import action_similarity, library_similarities
from lgn.groups import operators


def test_verdict_library_similarities_match_the_dense_loop():
    k = 5
    rng = np.random.default_rng(0)
    names, rows = operators.library_matrix(k)
    lib = operators.library(k)
    a = operators.rotation(k, 90) + 0.05 * rng.standard_normal((k * k, k * k))
    points = rng.standard_normal((7, k * k))
    dense = np.array([action_similarity(a, lib[name], points) for name in names])
    assert np.allclose(library_similarities(a, rows, points, chunk=17), dense, atol=1e-12)


def test_analysis_matching_sparse_equals_dense():
    k = 5
    rng = np.random.default_rng(1)
    names, rows = operators.library_matrix(k)
    lib = operators.library(k)
    gens = np.stack([operators.shift(k, 1, 0), operators.flip(k), rng.standard_normal((k * k, k * k))])
    dense = similarity_matrix(gens, np.stack([lib[name] for name in names]))
    assert np.allclose(similarity_matrix(gens, rows), dense, atol=1e-12)
    joint = np.kron(np.eye(2), gens[1])[None]  # two channels, the same operation on each
    assert np.allclose(similarity_matrix(joint, rows), similarity_matrix(joint, np.stack(list(lib.values()))))
    assert [m[0].name for m in nearest_operations(gens[:2], k)] == ["cyclic-shift(1,0)", "flip-x"]
