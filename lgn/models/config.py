"""The model configuration: one dataclass, defaults from the paper (docs/method.md §2, §5)."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from lgn.groups import REGULARIZERS, takes_option
from lgn.limits import check_float32
from lgn.nn.banks import ACTIONS, INDEPENDENT, check_generator
from lgn.nn.pool import ORBIT_POOLS

__all__ = ["ModelConfig", "TASKS", "ARCHITECTURES"]

TASKS = ("classify", "reconstruct")
ARCHITECTURES = ("lgn", "cnn", "mlp")  # the unfolded LGN, the plain CNN (lgn.models.cnn), the group MLP (lgn.models.mlp)


@dataclass
class ModelConfig:
    task: str = "classify"          # 'classify' (logits, cross-entropy) or 'reconstruct' (image, MSE)
    in_channels: int = 1            # C: 1 for MNIST, 3 for CIFAR-10
    image_size: int = 28            # H = W of the inputs the model is built for
    num_classes: int = 10           # classes of the classification head
    n_layers: int = 4               # L: unfolded FISTA layers, untied
    n_groups: int = 5               # K: groups per layer (one base filter and generator each)
    group_size: int = 4             # p: elements per group, powers 0..p-1
    kernel_size: int = 6            # k
    stride: int = 1                 # s, the convolution stride
    padding: int | None = None      # convolution padding; None: padding = stride (docs/method.md §4)
    eta: float = 0.01               # η, the unfolding step size
    generator: str = "free"         # a registered generator ('free', 'cyclic', 'select(-divisor)', 'permute',
    #                                 'fixed:NAME', 'file:PATH', a user's own) or 'independent' (K·p filters, no group)
    action: str = "channel"         # 'channel' (per-channel k²×k²) or 'joint' ((C·k²)×(C·k²))
    regularizer: str = "aux-inverse"  # 'aux-inverse', 'singular-values' or 'none': the option of generators
    #                                   that take one (free), see generator_options()
    reg_weight: float | None = None   # μ; None means 1e-4 (classify) or 1e-2 (reconstruct)
    pool_size: int = 4              # the classification head pools the code to pool_size²
    architecture: str = "lgn"       # 'lgn'; 'cnn': a plain K·p-channel CNN baseline (generator etc. unused);
    #                                 'mlp': a full-image group MLP (lgn.models.mlp)
    orbit_pool: str | None = None   # 'max' or 'mean': pool each orbit's p responses into one (classify; not cnn)

    def __post_init__(self) -> None:
        if self.task not in TASKS:
            raise ValueError(f"task must be one of {TASKS}, got {self.task!r}")
        for name in ("in_channels", "image_size", "num_classes", "n_layers", "n_groups",
                     "group_size", "kernel_size", "stride", "pool_size"):
            value = getattr(self, name)
            if not isinstance(value, int) or isinstance(value, bool) or value < 1:
                raise ValueError(f"{name} must be a positive integer, got {value!r}")
        if self.stride > self.kernel_size:
            raise ValueError(f"stride must be at most kernel_size={self.kernel_size}, got {self.stride}")
        if self.padding is None:
            self.padding = self.stride
        if not isinstance(self.padding, int) or isinstance(self.padding, bool) or self.padding < 0:
            raise ValueError(f"padding must be a non-negative integer, got {self.padding!r}")
        if self.image_size + 2 * self.padding < self.kernel_size:
            raise ValueError(
                f"image_size={self.image_size} is too small for kernel_size={self.kernel_size} "
                f"with padding={self.padding}"
            )
        # beyond the image size they add only zeros (or copies), and a huge one overflows torch's sizes
        for name in ("padding", "pool_size") if self.task == "classify" else ("padding",):
            if getattr(self, name) > self.image_size:
                raise ValueError(f"{name} must be at most image_size={self.image_size}, got {getattr(self, name)}")
        if isinstance(self.eta, bool) or not isinstance(self.eta, (int, float)) or not self.eta > 0:
            raise ValueError(f"eta must be a positive number, got {self.eta!r}")
        self.eta = float(check_float32(self.eta, "eta"))
        if self.architecture not in ARCHITECTURES:
            raise ValueError(f"architecture must be one of {ARCHITECTURES}, got {self.architecture!r}")
        check_generator(self.generator)
        if self.orbit_pool is not None:
            if self.orbit_pool not in ORBIT_POOLS:
                raise ValueError(f"orbit_pool must be one of {', '.join(ORBIT_POOLS)} or none, got {self.orbit_pool!r}")
            if self.architecture == "cnn" or self.task != "classify":
                raise ValueError(f"orbit_pool needs task 'classify' and architecture 'lgn' or 'mlp', got "
                                 f"{self.task!r} and {self.architecture!r}")
        if self.architecture == "mlp" and self.task != "classify":
            raise ValueError(f"architecture 'mlp' classifies only, got task {self.task!r}")
        if self.action not in ACTIONS:
            raise ValueError(f"action must be one of {ACTIONS}, got {self.action!r}")
        if self.regularizer not in REGULARIZERS:
            raise ValueError(f"regularizer must be one of {REGULARIZERS}, got {self.regularizer!r}")
        if self.reg_weight is None:
            self.reg_weight = 1e-4 if self.task == "classify" else 1e-2
        if isinstance(self.reg_weight, bool) or not isinstance(self.reg_weight, (int, float)) \
                or self.reg_weight < 0:
            raise ValueError(f"reg_weight must be a non-negative number, got {self.reg_weight!r}")
        self.reg_weight = float(check_float32(self.reg_weight, "reg_weight"))

    def generator_options(self) -> dict:
        """The options this config gives its generator's factory: ``regularizer``, where the generator takes one."""
        if self.generator != INDEPENDENT and takes_option(self.generator, "regularizer"):
            return {"regularizer": self.regularizer}
        return {}

    @property
    def n_filters(self) -> int:
        """Filters per layer, K·p."""
        return self.n_groups * self.group_size

    def to_dict(self) -> dict:
        return dataclasses.asdict(self)

    @classmethod
    def from_dict(cls, data: dict) -> "ModelConfig":
        """Build from a dict, refusing unknown keys by name."""
        if not isinstance(data, dict):
            raise TypeError(f"model config must be a mapping, got {type(data).__name__}")
        known = {f.name for f in dataclasses.fields(cls)}
        unknown = sorted(set(data) - known)
        if unknown:
            raise ValueError(f"unknown model config key(s): {', '.join(unknown)}; known: {', '.join(sorted(known))}")
        return cls(**data)
