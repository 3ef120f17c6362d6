"""The model configuration: one dataclass, defaults from the paper (docs/method.md §2, §5).

Each field's type and range is a pydantic constraint (:mod:`lgn.settings`); the
checks that compare fields, or read the generator registry, are in ``__post_init__``.
"""

from __future__ import annotations

import dataclasses
import re
from typing import Annotated

from lgn.groups import REGULARIZERS, takes_option
from lgn.limits import check_float32
from lgn.nn.banks import ACTIONS, INDEPENDENT, check_generator
from lgn.nn.pool import ORBIT_POOLS
from lgn.settings import kind, section

__all__ = ["ModelConfig", "TASKS", "ARCHITECTURES"]

TASKS = ("classify", "reconstruct")
ARCHITECTURES = ("lgn", "cnn", "mlp")  # the unfolded LGN, the plain CNN (lgn.models.cnn), the group MLP (lgn.models.mlp)


def _one_of(choices: tuple[str, ...], words: str | None = None):
    """The constraint of a string field that takes one of ``choices``; its error lists them (or says ``words``)."""
    return kind(words or f"one of {choices}", pattern=f"^({'|'.join(map(re.escape, choices))})$")


_POSITIVE = kind("a positive integer", ge=1)


@section("model")
class ModelConfig:
    task: Annotated[str, _one_of(TASKS)] = "classify"
    # ^ 'classify' (logits, cross-entropy) or 'reconstruct' (image, MSE)
    in_channels: Annotated[int, _POSITIVE] = 1    # C: 1 for MNIST, 3 for CIFAR-10
    image_size: Annotated[int, _POSITIVE] = 28    # H = W of the inputs the model is built for
    num_classes: Annotated[int, _POSITIVE] = 10   # classes of the classification head
    n_layers: Annotated[int, _POSITIVE] = 4       # L: unfolded FISTA layers, untied
    n_groups: Annotated[int, _POSITIVE] = 5       # K: groups per layer (one base filter and generator each)
    group_size: Annotated[int, _POSITIVE] = 4     # p: elements per group, powers 0..p-1
    kernel_size: Annotated[int, _POSITIVE] = 6    # k
    stride: Annotated[int, _POSITIVE] = 1         # s, the convolution stride
    padding: Annotated[int | None, kind("a non-negative integer", ge=0)] = None
    # ^ convolution padding; None: padding = stride (docs/method.md §4)
    eta: Annotated[float, kind("a positive number", gt=0)] = 0.01  # η, the unfolding step size
    generator: str = "free"         # a registered generator ('free', 'cyclic', 'select(-divisor)', 'permute',
    #                                 'fixed:NAME', 'file:PATH', a user's own) or 'independent' (K·p filters, no group)
    action: Annotated[str, _one_of(ACTIONS)] = "channel"
    # ^ 'channel' (per-channel k²×k²) or 'joint' ((C·k²)×(C·k²))
    regularizer: Annotated[str, _one_of(REGULARIZERS)] = "aux-inverse"
    # ^ 'aux-inverse', 'singular-values' or 'none': the option of generators that take one (free), see
    #   generator_options()
    reg_weight: Annotated[float | None, kind("a non-negative number", ge=0)] = None
    # ^ μ; None means 1e-4 (classify) or 1e-2 (reconstruct)
    pool_size: Annotated[int, _POSITIVE] = 4      # the classification head pools the code to pool_size²
    architecture: Annotated[str, _one_of(ARCHITECTURES)] = "lgn"
    # ^ 'lgn'; 'cnn': a plain K·p-channel CNN baseline (generator etc. unused); 'mlp': a full-image group MLP
    #   (lgn.models.mlp)
    orbit_pool: Annotated[str | None, _one_of(ORBIT_POOLS, f"one of {', '.join(ORBIT_POOLS)} or none")] = None
    # ^ 'max' or 'mean': pool each orbit's p responses into one (classify; not cnn)

    def __post_init__(self) -> None:
        if self.stride > self.kernel_size:
            raise ValueError(f"stride must be at most kernel_size={self.kernel_size}, got {self.stride}")
        if self.padding is None:
            self.padding = self.stride
        if self.image_size + 2 * self.padding < self.kernel_size:
            raise ValueError(
                f"image_size={self.image_size} is too small for kernel_size={self.kernel_size} "
                f"with padding={self.padding}"
            )
        # beyond the image size they add only zeros (or copies), and a huge one overflows torch's sizes
        for name in ("padding", "pool_size") if self.task == "classify" else ("padding",):
            if getattr(self, name) > self.image_size:
                raise ValueError(f"{name} must be at most image_size={self.image_size}, got {getattr(self, name)}")
        self.eta = float(check_float32(self.eta, "eta"))
        check_generator(self.generator)
        if self.orbit_pool is not None and (self.architecture == "cnn" or self.task != "classify"):
            raise ValueError(f"orbit_pool needs task 'classify' and architecture 'lgn' or 'mlp', got "
                             f"{self.task!r} and {self.architecture!r}")
        if self.architecture == "mlp" and self.task != "classify":
            raise ValueError(f"architecture 'mlp' classifies only, got task {self.task!r}")
        if self.reg_weight is None:
            self.reg_weight = 1e-4 if self.task == "classify" else 1e-2
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
