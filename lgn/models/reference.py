"""Import and export of the authors' checkpoint layout (docs/method.md §6).

The authors' classifier state dict has ``B.{l}`` (K, C, k, k), ``A.{l}`` (K, C, k², k²),
optional ``A_inv.{l}``, ``lmbd.{l}`` (1, K·p, 1, 1), ``bn.{l}.*`` for l < L−1, and
``fc.weight`` / ``fc.bias``; the reconstruction model has ``D`` (K·p, C, k, k) and no
``bn.*`` / ``fc.*``. Their forward pass is docs/method.md §4, which :class:`LGN` implements.
"""

from __future__ import annotations

import re
from collections.abc import Mapping

import torch

from lgn.models.config import ModelConfig
from lgn.models.lgn import LGN

__all__ = ["load_reference_state_dict", "to_reference_state_dict", "reference_key_map"]

_BN_FIELDS = ("weight", "bias", "running_mean", "running_var", "num_batches_tracked")


def _shape(sd: Mapping, key: str, expected: tuple[int, ...] | None = None, rank: int | None = None):
    if key not in sd:
        raise ValueError(f"reference state dict is missing key {key!r}")
    t = sd[key]
    if not isinstance(t, torch.Tensor):
        raise TypeError(f"{key!r} must be a tensor, got {type(t).__name__}")
    if rank is not None and t.dim() != rank:
        raise ValueError(f"{key!r} must have {rank} dimensions, got shape {tuple(t.shape)}")
    if expected is not None and tuple(t.shape) != tuple(expected):
        raise ValueError(f"{key!r} must have shape {tuple(expected)}, got {tuple(t.shape)}")
    return tuple(t.shape)


def reference_key_map(config: ModelConfig, aux_inverse: bool) -> dict[str, str]:
    """Authors' key → our key, for a model of ``config``."""
    m: dict[str, str] = {}
    for l in range(config.n_layers):
        m[f"B.{l}"] = f"encoder.banks.{l}.base"
        m[f"A.{l}"] = f"encoder.banks.{l}.generator.weight"
        if aux_inverse:
            m[f"A_inv.{l}"] = f"encoder.banks.{l}.generator.inverse"
        m[f"lmbd.{l}"] = f"encoder.thresholds.{l}"
        if config.task == "classify" and l < config.n_layers - 1:
            for f in _BN_FIELDS:
                m[f"bn.{l}.{f}"] = f"encoder.norms.{l}.{f}"
    if config.task == "classify":
        m["fc.weight"] = "head.fc.weight"
        m["fc.bias"] = "head.fc.bias"
    else:
        m["D"] = "head.dictionary"
    return m


def load_reference_state_dict(
    state_dict: Mapping[str, torch.Tensor], *, image_size: int, stride: int = 1, eta: float = 0.01
) -> LGN:
    """Build an :class:`LGN` from a state dict in the authors' layout.

    L, K, p, C, k, the class count, the action (per-channel or joint), the
    regulariser and the task are read from the tensor shapes. Returns the model
    in eval mode, in the dtype of the checkpoint. Missing, misshapen or
    unexpected keys raise ``ValueError`` naming the key.
    """
    if not isinstance(state_dict, Mapping):
        raise TypeError(f"expected a state dict (mapping), got {type(state_dict).__name__}")
    layers = sorted(int(m.group(1)) for k in state_dict if (m := re.fullmatch(r"B\.(\d+)", k)))
    if not layers:
        raise ValueError("reference state dict has no 'B.{l}' keys: not an LGN checkpoint")
    if layers != list(range(len(layers))):
        raise ValueError(f"'B.{{l}}' keys must be numbered 0..L-1, got {layers}")
    L = len(layers)
    K, C, k, k2 = _shape(state_dict, "B.0", rank=4)
    if k != k2:
        raise ValueError(f"'B.0' must hold square kernels, got shape {(K, C, k, k2)}")
    n = k * k
    a_shape = _shape(state_dict, "A.0", rank=4)
    if a_shape == (K, C, n, n):
        action = "channel"
    elif a_shape == (K, 1, C * n, C * n):
        action = "joint"
    else:
        raise ValueError(f"'A.0' must have shape {(K, C, n, n)} (per-channel) or "
                         f"{(K, 1, C * n, C * n)} (joint), got {a_shape}")
    kp = _shape(state_dict, "lmbd.0", rank=4)[1]
    if kp % K:
        raise ValueError(f"'lmbd.0' has {kp} channels, not a multiple of K={K}")
    p = kp // K
    if "fc.weight" in state_dict:
        task = "classify"
        num_classes, features = _shape(state_dict, "fc.weight", rank=2)
        pool = round((features / kp) ** 0.5)
        if pool * pool * kp != features:
            raise ValueError(f"'fc.weight' must have K·p·pool² columns (K·p={kp}), got {features}")
    elif "D" in state_dict:
        task, num_classes, pool = "reconstruct", 10, 4
    else:
        raise ValueError("reference state dict has neither 'fc.weight' (classifier) nor 'D' (reconstruction)")
    aux = "A_inv.0" in state_dict
    config = ModelConfig(task=task, in_channels=C, image_size=image_size, num_classes=num_classes,
                         n_layers=L, n_groups=K, group_size=p, kernel_size=k, stride=stride, eta=eta,
                         generator="free", action=action,
                         regularizer="aux-inverse" if aux else "none", pool_size=pool)
    dtype = state_dict["B.0"].dtype
    model = LGN(config).to(dtype)
    ours = model.state_dict()
    key_map = reference_key_map(config, aux)
    unexpected = sorted(set(state_dict) - set(key_map))
    if unexpected:
        raise ValueError(f"unexpected key(s) in reference state dict: {', '.join(unexpected)}")
    converted = {}
    for theirs, mine in key_map.items():
        _shape(state_dict, theirs, expected=tuple(ours[mine].shape))
        converted[mine] = state_dict[theirs]
    model.load_state_dict(converted, strict=True)
    return model.eval()


def to_reference_state_dict(model: LGN) -> dict[str, torch.Tensor]:
    """The state dict of ``model`` (free generators) in the authors' layout."""
    c = model.config
    if c.generator != "free":
        raise ValueError(f"the authors' layout holds free generators only, got generator={c.generator!r}")
    ours = model.state_dict()
    aux = c.regularizer == "aux-inverse"
    return {theirs: ours[mine].clone() for theirs, mine in reference_key_map(c, aux).items()}
