"""lgn: Linear Group Networks, networks that learn the linear group acting on their weights."""

from lgn.models import LGN, ModelConfig, build_model, load_reference_state_dict, to_reference_state_dict
from lgn.nn import GroupConv2d, GroupLinear

__version__ = "0.1.0"

__all__ = ["LGN", "ModelConfig", "build_model", "load_reference_state_dict", "to_reference_state_dict",
           "GroupConv2d", "GroupLinear", "__version__"]
