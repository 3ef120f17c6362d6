"""The discovery settings ([learn], [episodic], [discovery]): their ranges, and one line naming what failed."""

import dataclasses
import typing

import pytest

from lgn.discovery import DiscoveryConfig, EpisodicConfig, LearnConfig
from lgn.settings import SettingTypeError

NAN, INF = float("nan"), float("inf")


@pytest.mark.parametrize("cls, given, error, message", [
    (LearnConfig, {"sample": 1}, ValueError, "learn.sample must be at least 2, got 1"),
    (LearnConfig, {"steps": -1}, ValueError, "learn.steps must be at least 0, got -1"),
    (LearnConfig, {"restarts": True}, SettingTypeError, "learn.restarts must be an integer, got True"),
    (LearnConfig, {"shells": 2.0}, SettingTypeError, "learn.shells must be an integer, got 2.0"),
    (LearnConfig, {"anneal": 0.5}, ValueError, "learn.anneal must be at least 1, got 0.5"),
    (LearnConfig, {"anneal_until": 1.5}, ValueError, "learn.anneal_until must be in [0, 1], got 1.5"),
    (LearnConfig, {"refine_scale": 0.0}, ValueError, "learn.refine_scale must be in (0, 1], got 0.0"),
    (LearnConfig, {"held_out": 1.0}, ValueError, "learn.held_out must be in [0, 1), got 1.0"),
    (LearnConfig, {"lr": NAN}, ValueError, "learn.lr must be non-negative, got nan"),
    (LearnConfig, {"third_weight": INF}, ValueError, "learn.third_weight must be non-negative, got inf"),
    (LearnConfig, {"lr": "0.1"}, SettingTypeError, "learn.lr must be a number, got '0.1'"),
    (LearnConfig, {"loss": "l2"}, ValueError, "learn.loss must be one of mmd, sinkhorn, got 'l2'"),
    (LearnConfig, {"start": "warm"}, ValueError,
     "learn.start must be one of random, estimate, coarse, episodic, got 'warm'"),
    (EpisodicConfig, {"temperature": 0}, ValueError, "episodic.temperature must be positive, got 0"),
    (EpisodicConfig, {"lr": INF}, ValueError, "episodic.lr must be positive, got inf"),
    (EpisodicConfig, {"shots": 0}, ValueError, "episodic.shots must be at least 1, got 0"),
    (EpisodicConfig, {"reanchor": -1}, ValueError, "episodic.reanchor must be at least 0, got -1"),
    (EpisodicConfig, {"queries": "16"}, SettingTypeError, "episodic.queries must be an integer, got '16'"),
    (DiscoveryConfig, {"epochs": 0}, ValueError, "discovery.epochs must be at least 1, got 0"),
    (DiscoveryConfig, {"n_groups": 0}, ValueError, "discovery.n_groups must be at least 1 or none, got 0"),
    (DiscoveryConfig, {"n_clusters": 4.0}, SettingTypeError,
     "discovery.n_clusters must be an integer or none, got 4.0"),
    (DiscoveryConfig, {"anchor_weight": -1.0}, ValueError, "discovery.anchor_weight must be non-negative, got -1.0"),
    (DiscoveryConfig, {"seed": False}, SettingTypeError, "discovery.seed must be an integer, got False"),
    (DiscoveryConfig, {"seed": -1}, ValueError, "discovery.seed must be in 0..2**64-1 (torch's seed range), got -1"),
    (DiscoveryConfig, {"lr": 0}, ValueError, "discovery.lr must be positive, got 0"),  # as train.lr
    (DiscoveryConfig, {"method": "guess"}, ValueError,
     "discovery.method must be one of estimate, learn, episodic, got 'guess'"),
    (DiscoveryConfig, {"orbit_pool": "sum"}, ValueError,
     "discovery.orbit_pool must be one of max, mean or none, got 'sum'"),
    (DiscoveryConfig, {"orbit_pool": 1}, SettingTypeError, "discovery.orbit_pool must be a string or none, got 1"),
    (DiscoveryConfig, {"learn": {"restarts": 2}}, SettingTypeError,
     "discovery.learn must be a LearnConfig, got {'restarts': 2}"),
    (DiscoveryConfig, {"episodic": None}, SettingTypeError, "discovery.episodic must be an EpisodicConfig, got None"),
    (DiscoveryConfig, {"restarts": 2}, ValueError,
     "unknown config key discovery.restarts; known in [discovery]: n_layers, n_groups, epochs, batch_size, lr, "
     "anchor_weight, beam_width, n_clusters, seed, method, orbit_pool, learn, episodic"),
])
def test_a_bad_setting_is_refused_in_one_line_naming_it(cls, given, error, message):
    with pytest.raises(error) as raised:
        cls(**given)
    assert str(raised.value) == message and type(raised.value) is error


@pytest.mark.parametrize("cls, edges", [
    (LearnConfig, {"sample": 2, "steps": 0, "reanchor": 0, "refine": 0, "shells": 0, "anneal": 1, "anneal_until": 0,
                   "refine_scale": 1, "held_out": 0, "lr": 0, "third_weight": 0}),
    (LearnConfig, {"anneal_until": 1.0, "refine_scale": 1e-9, "held_out": 0.999, "loss": "sinkhorn",
                   "start": "episodic"}),
    (EpisodicConfig, {"steps": 0, "reanchor": 0, "shots": 1, "lr": 1e-12, "temperature": 1e-12}),
    (DiscoveryConfig, {"lr": 1e-12, "anchor_weight": 0, "n_groups": 1, "n_clusters": 1, "method": "episodic",
                       "orbit_pool": "mean"}),
])
def test_the_edges_of_each_range_pass_and_numbers_become_floats(cls, edges):
    config = cls(**edges)
    hints = typing.get_type_hints(cls)
    for name, value in edges.items():
        assert getattr(config, name) == value
        if hints[name] is float:
            assert type(getattr(config, name)) is float  # an int given for a number is kept as a float


def test_the_nested_sections_are_fresh_per_config_and_replace_checks_again():
    one, two = DiscoveryConfig(), DiscoveryConfig()
    assert one.learn == LearnConfig() and one.episodic == EpisodicConfig()
    assert one.learn is not two.learn and one.episodic is not two.episodic  # default_factory, not one shared default
    learn = LearnConfig(restarts=3)
    assert DiscoveryConfig(learn=learn).learn is learn
    changed = dataclasses.replace(one, method="learn", learn=learn)
    assert (changed.method, changed.learn.restarts, one.method) == ("learn", 3, "estimate")
    assert dataclasses.asdict(changed)["learn"] == {**dataclasses.asdict(LearnConfig()), "restarts": 3}
    assert learn.to_dict() == dataclasses.asdict(learn) and EpisodicConfig().to_dict()["temperature"] == 0.1
    with pytest.raises(ValueError, match=r"^learn\.refine_keep must be at least 1, got 0$"):
        dataclasses.replace(learn, refine_keep=0)
    with pytest.raises(SettingTypeError, match=r"^discovery\.learn must be a LearnConfig, got EpisodicConfig\("):
        dataclasses.replace(one, learn=EpisodicConfig())
