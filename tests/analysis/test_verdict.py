"""The plain-words verdict of an analysis, against generators whose answer is known by construction."""

import numpy as np

from lgn.analysis.summary import Groups, analyze_groups
from lgn.analysis.verdict import verdict
from lgn.groups import operators


def _analysis(matrices: np.ndarray, order: int = 4) -> dict:
    """The analysis of generators ``(L, K, 36, 36)`` acting on one-channel 6×6 filters."""
    return analyze_groups(Groups(A=matrices[:, :, None], B=None, kernel_size=6, channels=1, order=order))


def test_exact_quarter_turns_are_a_known_finite_group():
    rot = operators.rotation(6, 90)  # a permutation with rot⁴ = I
    text = verdict(_analysis(np.broadcast_to(rot, (2, 3, 36, 36)).copy()))
    assert text == ("6 of 6 generators are close to a known operation (rotation 6; cosine similarity at least "
                    "0.5), and they form finite groups of order 4 (median order error 0.000).")


def test_random_matrices_are_no_known_group():
    a = np.random.default_rng(0).standard_normal((2, 3, 36, 36)) / 36  # ‖A‖_F = 1 on average
    analysis = _analysis(a)
    best = max(e["nearest_op"]["similarity"] for e in analysis["generators"])
    assert best < 0.5  # so none matches
    text = verdict(analysis)
    assert text.startswith("No known group was learned: none of the 6 generators is close to a known operation")
    assert f"the best cosine similarity is {best:.2f}, below 0.5" in text
    assert "they do not form finite groups of order 4" in text


def test_an_unknown_finite_group_is_named_as_such():
    rng = np.random.default_rng(1)
    q, _ = np.linalg.qr(rng.standard_normal((36, 36)))
    c, s = np.cos(np.pi / 2), np.sin(np.pi / 2)
    r = np.kron(np.eye(18), np.array([[c, -s], [s, c]]))  # 18 quarter turns of planes: order 4
    a = q @ r @ q.T
    assert np.allclose(np.linalg.matrix_power(a, 4), np.eye(36))
    text = verdict(_analysis(np.broadcast_to(a, (1, 2, 36, 36)).copy()))
    assert text.startswith("The generators form finite groups of order 4 (median order error 0.000), but no "
                           "known ones: none of the 2 generators")


def test_code_energy_says_whether_the_orbits_are_used():
    analysis = _analysis(np.broadcast_to(operators.rotation(6, 90), (1, 1, 36, 36)).copy())
    analysis["code_energy"] = {"split": "test", "examples": 10, "fractions": [0.97, 0.01, 0.01, 0.01]}
    assert verdict(analysis).endswith(" The network hardly uses the orbits: power 0 carries 97% of the code's "
                                      "energy.")
    analysis["code_energy"]["fractions"] = [0.4, 0.2, 0.2, 0.2]
    assert verdict(analysis).endswith(" The network uses the orbits: powers 1 to 3 carry 60% of the code's energy.")
