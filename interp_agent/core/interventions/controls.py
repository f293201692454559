"""Generated controls of an intervention: random directions of matched norm, random features of matched spread.

Each control is edited by the same amount as its target, in its own units: a random
direction is steered by the target's norm, a basis feature by its own activation spread,
and a clamp level is set the same number of spreads above the control's mean.
"""

from __future__ import annotations

from dataclasses import dataclass

import numpy as np

from interp_agent.core.ids import basis_feature_id, parse_hookpoint
from interp_agent.core.interventions.targets import Target


@dataclass(frozen=True, slots=True)
class Control:
    """A generated control: a random direction of matched norm or a random feature of matched spread."""

    control_type: str
    """random_direction, matched_frequency or random_feature (``metadata.control_type`` of its records)."""
    feature_id: str
    """The id its records carry."""
    vector: np.ndarray
    """Unit vector at the target's hookpoint."""
    mean: float
    """Mean of its projection on calibration tokens."""
    std: float
    """Spread of its projection on calibration tokens (1 when constant)."""
    is_direction: bool
    """A random direction (steered by the target's norm) rather than a basis feature (by its own spread)."""


def control_value(mode: str, ctl: Control, value: float, target: Target, mean: float, std: float) -> float:
    """The control's edit value matching the target's ``value``: the same size in the control's own units."""
    if mode == "steer":
        # an SAE latent writes value * decoder row: a random direction of matched norm gets value * |row|
        norm = float(np.linalg.norm(target.sae.decoder)) if target.sae is not None else 1.0
        return value * norm if ctl.is_direction else value / std * ctl.std
    if mode == "ablate":
        return 0.0
    return ctl.mean + (value - mean) / std * ctl.std


def make_controls(
    rng: np.random.Generator, target: Target, acts: np.ndarray, std: float, *, n_random_directions: int,
    n_matched_features: int,
) -> list[Control]:
    """Random directions of matched norm, and random features of matched activation spread."""
    width = len(target.direction)
    point = parse_hookpoint(target.hookpoint)
    norm = float(np.linalg.norm(target.sae.decoder)) if target.sae is not None else 1.0
    out: list[Control] = []
    for k in range(n_random_directions):
        v = rng.normal(size=width)
        v /= np.linalg.norm(v)
        p = acts @ v
        out.append(Control("random_direction", f"control:random_direction:{target.feature_id}:{k}", v,
                           float(p.mean()), float(p.std() or 1.0), is_direction=True))
    stds = acts.std(0)
    spread = std * norm if target.sae is not None else std
    order = np.argsort(np.abs(stds - spread))
    candidates = [int(j) for j in order if target.kind == "sae" or target.index is None or int(j) != target.index]
    candidates = candidates[: max(8, n_matched_features * 4)]
    # basis features of the hookpoint with the closest activation spread (for an SAE latent: random
    # residual features, since the latents' own frequencies are not at hand)
    control_type = "random_feature" if target.kind == "sae" else "matched_frequency"
    for j in rng.choice(candidates, size=min(n_matched_features, len(candidates)), replace=False):
        e = np.zeros(width)
        e[j] = 1.0
        out.append(Control(control_type, basis_feature_id(point, int(j)), e, float(acts[:, j].mean()),
                           float(acts[:, j].std() or 1.0), is_direction=False))
    return out
