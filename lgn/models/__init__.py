"""Assembled models and the config that builds them."""

from lgn.models.config import TASKS, ModelConfig
from lgn.models.io import load_model, save_model
from lgn.models.lgn import LGN, build_model
from lgn.models.reference import load_reference_state_dict, to_reference_state_dict

__all__ = ["TASKS", "ModelConfig", "LGN", "build_model",
           "load_reference_state_dict", "to_reference_state_dict", "load_model", "save_model"]
