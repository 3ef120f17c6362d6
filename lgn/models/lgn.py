"""The assembled Linear Group Network: unfolded encoder plus a classification or decoding head."""

from __future__ import annotations

import dataclasses

import torch
from torch import nn
from torch.utils._python_dispatch import TorchDispatchMode  # the hook torch's FakeTensor is built on
from torch.utils._pytree import tree_leaves
from torch.utils.weak import WeakIdKeyDictionary

from lgn.models.config import ModelConfig
from lgn.nn.checks import check_images
from lgn.nn.pool import orbit_pool
from lgn.nn.recipe import project_, regularization
from lgn.nn.unfolded import ClassifierHead, Decoder, UnfoldedEncoder, build_banks

__all__ = ["LGN", "build_model"]


class LGN(nn.Module):
    """A Linear Group Network built from a :class:`ModelConfig`.

    ``model(x)`` maps ``(batch, C, H, W)`` to logits ``(batch, classes)`` (task
    ``classify``) or to a reconstruction ``(batch, C, H, W)`` (``reconstruct``);
    ``model.encode(x)`` returns the code ``(batch, K·p, h_out, w_out)``.

    With ``config.orbit_pool`` the head reads the code pooled over each orbit
    ``(batch, K, h_out, w_out)``, the thresholds are shared within each orbit and there is
    no batch norm between layers: with an exact group acting on the image grid and
    ``pool_size=1`` the logits are invariant to it (docs/invariance.md).
    """

    def __init__(self, config: ModelConfig):
        super().__init__()
        self.config = config
        c = config
        banks = build_banks(c.n_layers, in_channels=c.in_channels, n_groups=c.n_groups,
                            group_size=c.group_size, kernel_size=c.kernel_size,
                            generator=c.generator, action=c.action, generator_options=c.generator_options())
        self.encoder = UnfoldedEncoder(banks, stride=c.stride, padding=c.padding, eta=c.eta,
                                       batch_norm=c.task == "classify" and c.orbit_pool is None,
                                       orbit_size=c.group_size if c.orbit_pool else 1)
        if c.task == "classify":
            self.head = ClassifierHead(c.n_groups if c.orbit_pool else c.n_filters, c.num_classes, c.pool_size)
        else:
            self.head = Decoder(c.n_filters, c.in_channels, c.kernel_size, c.stride, c.padding)

    def check_input(self, x: torch.Tensor) -> None:
        """Raise ``TypeError``/``ValueError`` unless ``x`` is a valid input batch."""
        c = self.config
        check_images(x, channels=c.in_channels, min_size=max(1, c.kernel_size - 2 * c.padding),
                     dtype=self.encoder.thresholds[0].dtype)

    def encode(self, x: torch.Tensor) -> torch.Tensor:
        """The sparse code ``(batch, K·p, h_out, w_out)`` of ``x`` ``(batch, C, H, W)``."""
        self.check_input(x)
        return self.encoder(x)

    def forward(self, x: torch.Tensor) -> torch.Tensor:
        code = self.encode(x)
        if self.config.orbit_pool:
            code = orbit_pool(code, self.config.n_groups, self.config.group_size, self.config.orbit_pool)  # (N, K, h, w)
        return self.head(code, (x.shape[-2], x.shape[-1]))

    def project_(self) -> None:
        """Re-project filters, generators and the dictionary; call after each optimiser step."""
        project_(self)

    def regularization(self) -> torch.Tensor:
        """μ times the generators' invertibility terms, summed over layers."""
        return regularization(self, self.config.reg_weight)

    def generators(self) -> torch.Tensor | None:
        """The learned generators ``(L, K, C', n, n)``, or None for independent filters."""
        layers = [bank.generators() for bank in self.encoder.banks]
        return None if any(a is None for a in layers) else torch.stack(layers)

    def export(self) -> "LGN":
        """A copy whose filter banks are plain tensors: same outputs, no generator work per call."""
        out = LGN(dataclasses.replace(self.config, generator="independent"))
        out.encoder = self.encoder.export()
        out.head.load_state_dict(self.head.state_dict())
        return out.to(self.encoder.thresholds[0]).train(self.training)


def build_model(config: ModelConfig | None = None, **overrides) -> nn.Module:
    """``build_model(ModelConfig(...))`` or ``build_model(task='reconstruct', ...)``.

    An :class:`LGN`, the CNN baseline of :mod:`lgn.models.cnn` for ``architecture='cnn'``, or the
    group MLP of :mod:`lgn.models.mlp` for ``architecture='mlp'``.
    Raises ``ValueError`` for a model too large for this machine's memory (:func:`check_model_fits`).
    """
    if config is None:
        config = ModelConfig(**overrides)
    elif overrides:
        config = dataclasses.replace(config, **overrides)
    check_model_fits(config)
    return _build(config)


def _build(config: ModelConfig) -> nn.Module:
    if config.architecture == "cnn":
        from lgn.models.cnn import CNN

        return CNN(config)
    if config.architecture == "mlp":
        from lgn.models.mlp import GroupMLP

        return GroupMLP(config)
    return LGN(config)


_SIZE_KEYS = ("n_layers", "n_groups", "group_size", "kernel_size", "in_channels", "num_classes")


def model_size(config: ModelConfig) -> int:
    """The number of values in the parameters and buffers of the model ``config`` describes, without allocating.

    Built on the meta device with 2 and 3 layers (every layer after the first
    is alike), so a config of 10**30 layers costs no more than one of 3.
    """
    def count(n_layers: int) -> int:
        with torch.device("meta"):
            model = _build(dataclasses.replace(config, n_layers=n_layers))
        return sum(t.numel() for t in (*model.parameters(), *model.buffers()))

    if config.n_layers <= 3:
        return count(config.n_layers)
    two, three = count(2), count(3)
    return two + (config.n_layers - 2) * (three - two)


def check_model_fits(config: ModelConfig, copies: int = 1, batch: int | None = None) -> None:
    """Raise ``ValueError`` if ``copies`` float32 copies of the model's values, and with ``batch`` a training
    step's tensors for that many images (:func:`step_bytes`), exceed the memory this process may use.

    The message names the size settings above their defaults (or all of them).
    """
    from lgn.limits import check_fits

    defaults = ModelConfig()
    keys = [k for k in _SIZE_KEYS if getattr(config, k) > getattr(defaults, k)] or list(_SIZE_KEYS)
    named = f"the model of {', '.join(f'model.{k}={getattr(config, k)}' for k in keys)}"
    size = model_size(config)
    weights = f"{size:.3g} values{f' × {copies} to train' if copies > 1 else ''}"
    check_fits(4 * copies * size, f"{named} ({weights})")
    if batch is not None:
        step = step_bytes(config, batch)
        check_fits(4 * copies * size + step, f"{named} ({weights}, and {step / 1e6:.3g} MB of one training "
                                             f"step's tensors for a batch of {batch})")


def step_bytes(config: ModelConfig, batch: int) -> int:
    """The most bytes one training step of ``batch`` images holds at once in tensors it creates (forward,
    loss and backward: activations, saved tensors, gradients), counted on the meta device without
    allocating; layers 4 onward extrapolated as in :func:`model_size`. A generator whose filters need
    values (an annealed choice reads its logits) is counted as a free one: the codes, not the k×k filters,
    take the memory."""
    def peak(n_layers: int) -> int:
        for generator in (config.generator, "free"):
            try:
                return _peak(dataclasses.replace(config, n_layers=n_layers, generator=generator))
            except RuntimeError:  # "Tensor.item() cannot be called on meta tensors"
                continue
        return 0  # no operation of a model lgn builds is missing on the meta device; if one were, no estimate

    def _peak(c: ModelConfig) -> int:
        with torch.device("meta"):
            model = _build(c).train()
            x = torch.empty(batch, c.in_channels, c.image_size, c.image_size)
            with _PeakBytes() as counter:
                loss = model(x).float().square().mean()
                if hasattr(model, "regularization"):
                    loss = loss + model.regularization()
                loss.backward()
        return counter.peak

    if config.n_layers <= 3:
        return peak(config.n_layers)
    two, three = peak(2), peak(3)
    return two + (config.n_layers - 2) * (three - two)


class _PeakBytes(TorchDispatchMode):
    """Counts the bytes of the storages every operation creates while they live; ``peak``: the most at once.

    A storage lives while anything holds it (autograd's saved tensors included), so its weak reference
    says when it is freed.
    """

    def __init__(self):
        super().__init__()
        self.live, self.peak = WeakIdKeyDictionary(), 0

    def __torch_dispatch__(self, func, types, args=(), kwargs=None):
        out = func(*args, **(kwargs or {}))
        for t in tree_leaves(out):
            if isinstance(t, torch.Tensor):
                storage = t.untyped_storage()
                self.live[storage] = storage.nbytes()
        self.peak = max(self.peak, sum(self.live.values()))
        return out
