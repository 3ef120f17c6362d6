"""``lgn demo``: a short smoke job (replaced by the real demo once training lands)."""

from __future__ import annotations

import torch


def register(sub) -> None:
    p = sub.add_parser("demo", help="run a short demonstration job")
    p.set_defaults(func=run)


def run(args) -> int:
    import lgn
    torch.manual_seed(0)
    model = lgn.build_model()
    x = torch.randn(4, 1, 28, 28)
    print(f"logits {tuple(model(x).shape)}, code {tuple(model.encode(x).shape)}")
    return 0
