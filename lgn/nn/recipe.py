"""The training recipe's two model-wide steps, for any ``nn.Module`` holding lgn layers.

With an ordinary optimiser, a model of your own design that contains
:class:`~lgn.nn.GroupConv2d`, :class:`~lgn.nn.GroupLinear` or lgn's unfolded
encoder trains as the paper's models do::

    loss = task_loss + lgn.nn.regularization(model, weight=1e-4)
    loss.backward()
    optimizer.step()
    lgn.nn.project_(model)

Both walk ``model.modules()`` and act on the filter banks (and the decoder's
dictionary) found there, each once, however deeply they are nested.
"""

from __future__ import annotations

import torch
from torch import nn

from lgn.nn.banks import FilterBank, OrbitBank
from lgn.nn.unfolded import Decoder

__all__ = ["project_", "regularization"]

_PROJECTED = (OrbitBank, FilterBank, Decoder)  # the modules whose weights the recipe keeps at unit norm


def project_(model: nn.Module) -> nn.Module:
    """Re-project every filter bank in ``model`` (unit-norm filters, each generator's constraint); returns it.

    Call it after every optimiser step. A module without lgn layers is left as it is.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"expected an nn.Module, got {type(model).__name__}")
    with torch.no_grad():
        for module in model.modules():
            if isinstance(module, _PROJECTED):
                module.project_()
    return model


def regularization(model: nn.Module, weight: float = 1.0) -> torch.Tensor:
    """``weight`` times the sum of the generators' invertibility terms over every orbit bank in ``model``.

    A scalar tensor to add to the loss; zero (on the model's device) when the
    model has no free generator.
    """
    if not isinstance(model, nn.Module):
        raise TypeError(f"expected an nn.Module, got {type(model).__name__}")
    terms = [m.regularization() for m in model.modules() if isinstance(m, OrbitBank)]
    if not terms:
        first = next(model.parameters(), None)
        return torch.zeros(()) if first is None else first.new_zeros(())
    return weight * sum(terms)
