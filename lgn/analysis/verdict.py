"""What an analysis found, in one or two plain sentences: the opening of ``lgn analyze`` and of the report.

The numbers behind it are :func:`lgn.analysis.summary.analyze_groups`'s (and the run's code energy,
:mod:`lgn.analysis.energy`); this module only reads them against three thresholds:

- a generator *matches* a known operation when its cosine similarity to it is at least
  :data:`lgn.analysis.summary.MATCH_THRESHOLD` (0.5);
- the generators *form finite groups* of order p when the median finite-order error
  min_c ‖(cA)^p − I‖/‖I‖ is below :data:`ORDER_TOLERANCE`;
- they are *nearly singular* when the median condition number σ_max/σ_min exceeds
  :data:`SINGULAR_CONDITION`, and the orbits are *unused* when power 0 carries more than
  :data:`UNUSED_ENERGY` of the code's energy.
"""

from __future__ import annotations

from lgn.analysis.summary import MATCH_THRESHOLD

__all__ = ["verdict", "ORDER_TOLERANCE", "SINGULAR_CONDITION", "UNUSED_ENERGY"]

ORDER_TOLERANCE = 0.1      # median ‖(cA)^p − I‖/‖I‖ below this: the generators are finite groups of order p
SINGULAR_CONDITION = 1e3   # median σ_max/σ_min above this: the generators are nearly singular
UNUSED_ENERGY = 0.9        # power 0 carrying more than this share of the code's energy: the orbits are unused


_WORDS = {"rot": "rotation", "pool": "pooling", "pool+rot": "pooling then rotation"}  # families, in words


def _matched(analysis: dict) -> tuple[int, dict[str, int]]:
    """How many generators match a known operation, and how many of them per family, most first."""
    from lgn.groups import operators

    families: dict[str, int] = {}
    for e in analysis["generators"]:
        if e["nearest_op"]["similarity"] >= MATCH_THRESHOLD:
            family = operators.family(e["nearest_op"]["name"])
            family = _WORDS.get(family, family)
            families[family] = families.get(family, 0) + 1
    return sum(families.values()), dict(sorted(families.items(), key=lambda item: -item[1]))


def verdict(analysis: dict) -> str:
    """One or two sentences saying whether ``analysis`` (an ``analysis.json`` dict) found a known group.

    The first says what the generators are closest to (or that nothing known is close) and whether
    they form finite groups of the analysis's order; the second, where ``analysis`` has a
    ``code_energy`` entry, whether the network uses the orbits.
    """
    n, p = len(analysis["generators"]), analysis["order"]
    matched, families = _matched(analysis)
    best = max(e["nearest_op"]["similarity"] for e in analysis["generators"])
    errors = analysis["summary"]["group_error"]
    order_error, cond = errors["finite_order"], errors["cond"]
    is_group = order_error < ORDER_TOLERANCE
    singular = cond is None or cond > SINGULAR_CONDITION
    group = (f"finite groups of order {p} (median order error {order_error:.3f})" if is_group else
             f"finite groups of order {p} (median order error {order_error:.2f}"
             + ("; nearly singular, median condition number " + ("inf" if cond is None else f"{cond:.0e}")
                if singular else "") + ")")
    unknown = (f"none of the {n} generators is close to a known operation (shift, rotation, flip, transpose, "
               f"pooling; the best cosine similarity is {best:.2f}, below {MATCH_THRESHOLD})")
    known = (f"{matched} of {n} generators {'is' if matched == 1 else 'are'} close to a known operation ("
             + ", ".join(f"{family} {count}" for family, count in families.items())
             + f"; cosine similarity at least {MATCH_THRESHOLD})")
    if matched == 0:
        text = (f"The generators form {group}, but no known ones: {unknown}." if is_group else
                f"No known group was learned: {unknown}, and they do not form {group}.")
    else:
        text = (f"{known[0].upper()}{known[1:]}, and they form {group}." if is_group else
                f"{known[0].upper()}{known[1:]}, but as a whole they do not form {group}.")
    energy = analysis.get("code_energy")
    if energy is not None and len(energy["fractions"]) > 1:
        first = energy["fractions"][0]
        text += (f" The network hardly uses the orbits: power 0 carries {first:.0%} of the code's energy."
                 if first > UNUSED_ENERGY else
                 f" The network uses the orbits: powers 1 to {len(energy['fractions']) - 1} carry {1 - first:.0%} "
                 f"of the code's energy.")
    return text
