"""Assembled models and the config that builds them."""

from lgn.models.config import TASKS, ModelConfig
from lgn.models.io import RunModel, load_model, load_run, save_model
from lgn.models.lgn import LGN, build_model
from lgn.models.reference import load_reference_state_dict, to_reference_state_dict

__all__ = ["TASKS", "ModelConfig", "LGN", "build_model",
           "load_reference_state_dict", "to_reference_state_dict", "load_model", "load_run", "RunModel", "save_model"]
