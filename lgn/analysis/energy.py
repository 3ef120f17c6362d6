"""Which orbit powers carry a model's code: the share of the code's energy per power i of the generator.

An LGN layer's filters are the orbits {B, A·B, …, A**(p−1)·B}; the code's channel
i·K + g is the response to A**i·b_g. If training lets the powers i ≥ 1 die (A shrinks,
or A**i·b falls under the threshold), the group is not used, whatever A looks like.
"""

from __future__ import annotations

import numpy as np
import torch

from lgn.settings import check_positive_int

__all__ = ["code_energy", "run_code_energy", "describe_code_energy", "add_code_energy"]


@torch.no_grad()
def code_energy(model, x: torch.Tensor, *, batch_size: int = 250) -> np.ndarray:
    """Fractions ``(p,)`` of Σ code² over the images ``x`` ``(N, C, H, W)`` carried by each orbit power.

    The code is ``model.encode(x)`` ``(N, K·p, h, w)``, channel i·K + g for power i of group g
    (the final layer's code). All zeros when the code is zero everywhere.
    """
    c = model.config
    check_positive_int(batch_size, "batch_size")
    was_training = model.training
    model.eval()
    energy = torch.zeros(c.group_size, dtype=torch.float64)
    try:
        for lo in range(0, len(x), batch_size):
            code = model.encode(x[lo:lo + batch_size].to(model.encoder.thresholds[0].dtype))  # (b, K·p, h, w)
            per = code.double().reshape(code.shape[0], c.group_size, c.n_groups, -1)  # (b, p, K, h·w)
            energy += (per ** 2).sum(dim=(0, 2, 3)).cpu()
    finally:
        model.train(was_training)
    total = float(energy.sum())
    return (energy / total).numpy() if total > 0 else np.zeros(c.group_size)


def run_code_energy(run_dir, *, split: str = "test") -> dict:
    """:func:`code_energy` of a run folder's model on a split of its data, preprocessed as the run was.

    Returns ``{"split", "examples", "fractions"}`` (``fractions``: a list, one share per orbit power).
    """
    from lgn.runs import load_run_split

    run = load_run_split(run_dir, split=split)
    fractions = code_energy(run.model, run.x)
    return {"split": split, "examples": len(run.x), "fractions": [float(f) for f in fractions]}


def describe_code_energy(energy: dict) -> str:
    """``energy`` (:func:`run_code_energy`'s dict) as the one line ``lgn analyze`` prints and the report shows."""
    return (f"code energy per orbit power (final code, {energy['examples']} {energy['split']} images): "
            + ", ".join(f"A^{i}·B {f:.1%}" for i, f in enumerate(energy["fractions"])))


def add_code_energy(analysis: dict, run_dir, analysis_file) -> dict:
    """``analysis`` with the code energy of the run folder ``run_dir`` (its ``code_energy`` entry), written
    back to ``analysis_file``, where ``run_dir`` is a run of ``lgn train`` (its ``config.json`` names the data,
    its ``preprocess.safetensors`` holds the preprocessing); else ``analysis`` unchanged. What ``lgn analyze``
    and ``lgn report`` add to a run's analysis."""
    from pathlib import Path

    from lgn.files import write_json
    from lgn.runs import CONFIG_FILE, PREPROCESS_FILE

    run_dir = Path(run_dir)
    if not ((run_dir / CONFIG_FILE).is_file() and (run_dir / PREPROCESS_FILE).is_file()):
        return analysis
    analysis["code_energy"] = run_code_energy(run_dir)
    write_json(analysis, analysis_file)
    return analysis
