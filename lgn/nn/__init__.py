"""Layers: orbit filter banks, group convolutions, the unfolded FISTA encoder and its heads."""

from lgn.nn.banks import ACTIONS, FilterBank, OrbitBank, generator_choices
from lgn.nn.layers import GroupConv2d, GroupLinear
from lgn.nn.pool import ORBIT_POOLS, OrbitPool, orbit_pool
from lgn.nn.recipe import project_, regularization
from lgn.nn.unfolded import ClassifierHead, Decoder, UnfoldedEncoder

__all__ = ["ACTIONS", "FilterBank", "OrbitBank", "generator_choices", "GroupConv2d", "GroupLinear",
           "ClassifierHead", "Decoder", "UnfoldedEncoder", "project_", "regularization", "ORBIT_POOLS", "OrbitPool",
           "orbit_pool"]
