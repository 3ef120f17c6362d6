"""Discovering a planted symmetry: estimate the group from the data, train an LGN on it, score the recovery.

- :mod:`~lgn.discovery.score`: the recovery score :func:`alignment` (numpy only).
- :mod:`~lgn.discovery.estimate`: the group estimate from cluster centres (no prior on the group).
- :mod:`~lgn.discovery.losses`: symmetry losses (second and third moments, MMD, entropic OT, matching).
- :mod:`~lgn.discovery.search`: what the two generator searches share: the Adam step, the distribution
  distance, the verdict's held-out evidence.
- :mod:`~lgn.discovery.episodic`: the group learned on few-shot episodes with an orbit-pooled readout.
- :mod:`~lgn.discovery.learn`: the group learned by gradient descent on a distribution loss.
- :mod:`~lgn.discovery.fit`: the discovery LGN, the paper-recipe baseline and their training loop.
- :mod:`~lgn.discovery.verdict`: found or not, the order, the nearest known operation.
- :mod:`~lgn.discovery.benchmark`: both recipes on one planted set (``lgn bench-discovery``, ``lgn reproduce``).
"""

from lgn.discovery.estimate import GroupEstimate, estimate_group
from lgn.discovery.episodic import EpisodicConfig, learn_episodic
from lgn.discovery.learn import LearnConfig, learn_generator
from lgn.discovery.fit import DiscoveryConfig, DiscoveryResult, discover, paper_recipe_model, train_classifier
from lgn.discovery.score import alignment, alignment_floor, alignment_per_group, collapse, orbit_alignment
from lgn.discovery.verdict import Verdict, judge

__all__ = ["GroupEstimate", "estimate_group", "EpisodicConfig", "learn_episodic", "LearnConfig", "learn_generator", "DiscoveryConfig",
           "DiscoveryResult", "discover", "paper_recipe_model", "train_classifier", "alignment", "alignment_floor",
           "alignment_per_group", "collapse", "orbit_alignment", "Verdict", "judge"]
