"""The organism's causal feature, steered both ways on each model: beside prompting, and on the base model.

``intervene`` measures one edit per feature (the sign and strength chosen on calibration
prompts) with controls. For the comparisons of the check the same feature is also steered
the other way, on both models, at the same strength: ``on`` (toward the criterion) on
held-out prompts without the trigger, ``off`` on held-out trigger prompts. A direction is
each model's own (the one its inspect saved, so the base model's is learned on the base
model), scaled to the same multiple of its norm; a dimension gets the same value. These
are single edits without controls, labelled so.
"""

from __future__ import annotations

from collections.abc import Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from interp_agent.core.formats.prompts import ScoredPrompt
from interp_agent.core.organisms.measure import CHANGE, PROBABILITY, mean_interval, next_token_logprobs


def _unit_and_scale(fid: str, folder: Path, width: int) -> tuple[np.ndarray, float] | None:
    """A feature's unit vector in one model and its natural size (a direction's norm; 1 for a dimension)."""
    from interp_agent.core.ids import match_feature_id
    from interp_agent.core.live import load_directions

    directions = load_directions(folder)
    if fid in directions:
        vector = np.asarray(directions[fid][1], dtype=np.float64)
        norm = float(np.linalg.norm(vector))
        return (vector / norm, norm) if norm > 0 else None
    parsed = match_feature_id(fid)
    if parsed is None or parsed.kind != "dim" or parsed.index is None or parsed.index >= width:
        return None
    u = np.zeros(width)
    u[parsed.index] = 1.0
    return u, 1.0


def steer_change(loaded: Any, hook: str, unit: np.ndarray, value: float, texts: Sequence[str],
                 target_id: int) -> dict[str, Any]:
    """P(target) next after ``texts`` without and with ``value * unit`` added at ``hook`` (every position but the
    first), and the paired change."""
    from interp_agent.core.interventions.edits import edit_fn
    from interp_agent.core.models.hooks import edit

    plain = next_token_logprobs(loaded, texts)[:, target_id].exp().double().numpy()
    with edit(loaded.model, hook, edit_fn("steer", torch.tensor(unit, dtype=torch.float32), float(value))):
        edited = next_token_logprobs(loaded, texts)[:, target_id].exp().double().numpy()
    return {"value": float(value), "p_target_plain": mean_interval(plain, PROBABILITY),
            "p_target_steered": mean_interval(edited, PROBABILITY), "change": mean_interval(edited - plain, CHANGE)}


def steer_both_ways(
    best: dict[str, Any], folders: dict[str, Path], loaded: dict[str, Any], held: Sequence[ScoredPrompt],
    target_id: int,
) -> dict[str, Any]:
    """The organism's best causal feature ``best`` (a summary entry of intervene) steered on and off in each model.

    Args:
        best: the feature's entry in the organism's summary.json.
        folders: per model name, the folder of its first inspect (its saved directions).
        loaded: per model name, the loaded model.
        held: the held-out prompts.
    """
    fid, hook, value = best["feature_id"], best["hookpoint"], float(best["value"])
    # the sign that pushes toward the criterion: a removal (measured on positives) used the opposite one
    toward = np.sign(value) * (1 if best["effect"]["measured_on"] == "held_out_negatives" else -1)
    org = _unit_and_scale(fid, folders["organism"], loaded["organism"].d_model)
    multiple = abs(value) / org[1] if org else abs(value)
    out: dict[str, Any] = {"provenance": "interventional (single edits, no controls)", "feature_id": fid,
                           "hookpoint": hook, "strength_in_feature_units": multiple}
    positives = [p.text for p in held if p.criterion_score > 0.5]
    negatives = [p.text for p in held if p.criterion_score <= 0.5]
    for name, model in loaded.items():
        got = _unit_and_scale(fid, folders[name], model.d_model)
        if got is None:
            out[name] = {"note": f"{name}: no vector for {fid}"}
            continue
        unit, scale = got
        size = multiple * scale
        out[name] = {"on": steer_change(model, hook, unit, toward * size, negatives, target_id)
                     | {"measured_on": "held_out_negatives"},
                     "off": steer_change(model, hook, unit, -toward * size, positives, target_id)
                     | {"measured_on": "held_out_positives"}}
    return out
