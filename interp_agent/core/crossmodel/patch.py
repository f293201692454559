"""Patch-across: the left feature's direction carried into the right model's space, to steer the right model.

Where the two sides read the same tokens (their tokenizers give identical ids on the
calibration prompts: the same model, or a fine-tune of it), their activations pair up token
by token. A ridge least-squares map ``W_LR`` from the left hookpoint to the right one is fitted
on those paired, centred activations of the *calibration* prompts' tokens only (never the
held-out prompts the effects are measured on)::

    W_LR = (X^T X + lam I)^-1 X^T Y,    lam = ridge * trace(X^T X) / d_left

and the left feature's unit direction ``u_L`` becomes ``u_L @ W_LR`` (normalised): the change
in the right activations that moving the left ones along ``u_L`` predicts. A map is fitted even
between models of one architecture and width (a base and its fine-tune): the data decide
whether the map is near the identity, instead of assuming it. When both sides are one model at
one hookpoint the map is the identity, exactly.

It does not apply when the tokenizers differ (no token-to-token pairing exists), and the
output says so.
"""

from __future__ import annotations

from typing import Any

import numpy as np

from interp_agent.core.interventions.targets import Target

RIDGE = 1e-2
"""Ridge strength, relative to the mean eigenvalue of the left activations' covariance."""
MAX_LENGTH = 64
"""Tokens kept per calibration prompt when fitting the map."""


def same_tokens(left: Any, right: Any, texts: list[str]) -> bool:
    """Whether both tokenizers give identical token ids on ``texts`` (so activations pair token by token)."""
    if left is right:
        return True
    for text in texts:
        a = left.tokenizer(text, truncation=True, max_length=MAX_LENGTH)["input_ids"]
        b = right.tokenizer(text, truncation=True, max_length=MAX_LENGTH)["input_ids"]
        if list(a) != list(b):
            return False
    return True


def fit_map(X_ND: np.ndarray, Y_NE: np.ndarray, ridge: float = RIDGE) -> tuple[np.ndarray, float]:
    """Ridge map from centred ``X`` to centred ``Y``, and its R^2 on the rows it was fitted on.

    Returns:
        (W_DE, r2): ``Y - mean ≈ (X - mean) @ W_DE``; r2 is in-sample (calibration tokens).
    """
    X = X_ND - X_ND.mean(0)
    Y = Y_NE - Y_NE.mean(0)
    gram_DD = X.T @ X
    lam = ridge * float(np.trace(gram_DD)) / X.shape[1]
    W_DE = np.linalg.solve(gram_DD + lam * np.eye(X.shape[1]), X.T @ Y)
    resid = Y - X @ W_DE
    r2 = 1.0 - float((resid**2).sum()) / (float((Y**2).sum()) or 1.0)
    return W_DE, r2


def across_id(left_feature_id: str, right_hookpoint: str) -> str:
    """The id of the patched direction: ``direction:across_<left id>@<right hookpoint>``."""
    name = "across_" + "".join(c if c.isalnum() else "_" for c in left_feature_id)
    return f"direction:{name}@{right_hookpoint}"


def _acts(loaded: Any, texts: list[str], hooks: list[str]) -> dict[str, np.ndarray]:
    from interp_agent.core.models.harvest import harvest

    got = harvest(loaded, texts, sorted(set(hooks)), pooling="token", max_length=MAX_LENGTH)
    return {h: v.acts.astype(np.float64) for h, v in got.items()}


def patch_targets(
    left_loaded: Any, right_loaded: Any, pairs: list[tuple[Target, Target]], calibration_texts: list[str]
) -> tuple[list[Target], dict[str, dict[str, Any]], str | None]:
    """The patched targets on the right model, one per pair, and how each was mapped.

    Args:
        pairs: (left target, right target) of each matched pair.

    Returns:
        (targets, info by right-side patched id, reason it does not apply or None).
    """
    if not same_tokens(left_loaded, right_loaded, calibration_texts):
        return [], {}, ("not applied: the two tokenizers give different tokens on the calibration prompts, so "
                        "no token-to-token pairing of activations exists to fit a map on")
    left_hooks, right_hooks = [lt.hookpoint for lt, _ in pairs], [rt.hookpoint for _, rt in pairs]
    if left_loaded is right_loaded:
        left_acts = right_acts = _acts(left_loaded, calibration_texts, left_hooks + right_hooks)
    else:
        left_acts = _acts(left_loaded, calibration_texts, left_hooks)
        right_acts = _acts(right_loaded, calibration_texts, right_hooks)
    maps: dict[tuple[str, str], tuple[np.ndarray | None, float]] = {}
    targets: list[Target] = []
    info: dict[str, dict[str, Any]] = {}
    for lt, rt in pairs:
        key = (lt.hookpoint, rt.hookpoint)
        if key not in maps:
            identity = left_loaded is right_loaded and lt.hookpoint == rt.hookpoint
            maps[key] = (None, 1.0) if identity else fit_map(left_acts[lt.hookpoint], right_acts[rt.hookpoint])
        W, r2 = maps[key]
        v = lt.direction if W is None else lt.direction @ W
        norm = float(np.linalg.norm(v))
        if not np.isfinite(norm) or norm == 0:
            continue
        fid = across_id(lt.feature_id, rt.hookpoint)
        targets.append(Target(fid, rt.hookpoint, v / norm, "direction"))
        info[fid] = {"left_feature_id": lt.feature_id, "right_feature_id": rt.feature_id,
                     "from": lt.hookpoint, "to": rt.hookpoint,
                     "map": "identity (one model, one hookpoint)" if W is None else "ridge least squares",
                     "map_r2_calibration_in_sample": r2, "n_calibration_tokens": int(len(left_acts[lt.hookpoint])),
                     "cosine_with_right_feature": float(v @ rt.direction / norm)}
    return targets, info, None
