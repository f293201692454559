"""Which features appear, vanish or change between two models, chosen on one half of the probes, shown on the other.

Both models read the same tokens, so activations come as two aligned arrays ``base_TF`` and
``tuned_TF`` (one row per token, one column per feature). Probe prompts are split by a salted
hash of their id (``core/ranking/splits.py``) into a *selection* half and a *held-out* half;
every threshold and every choice is made on selection tokens, and held-out tokens only
measure what was chosen.

- **fires**: ``|a| > tau``, with ``tau = fire_k * min(rms_base, rms_tuned)`` per feature on the
  selection tokens (for SAE latents, which are sparse and non-negative: ``a > 0``).
- **appears**: base firing rate <= ``rare_rate`` and tuned rate >= ``common_rate``; **vanishes**: the
  reverse. Effect: the tuned minus base firing rate.
- **changes** (the others): standardised mean shift ``d = (mean_t - mean_b) / sqrt((var_b + var_t) / 2)``
  with ``|d| >= min_shift``, or a per-token base<->tuned Pearson ``r`` at least ``min_corr_drop``
  below the median feature's ``r`` at that hookpoint (the typical drift there).

Held-out evidence: each statistic with a Poisson cluster-bootstrap 95% interval (every token of
a prompt shares the prompt's weight). A feature is *confirmed* when the interval excludes the
null in the direction chosen: rate difference 0, shift 0, or (correlation) the held-out median r.
All of it is ``correlational``: activations observed, nothing intervened on.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

import numpy as np

from interp_agent.core.criteria.scorers import auroc
from interp_agent.core.errors import ValidationError
from interp_agent.core.ranking.splits import poisson_bootstrap_weights

Kind = Literal["appear", "vanish", "change"]
KINDS: tuple[Kind, ...] = ("appear", "vanish", "change")


@dataclass(frozen=True, slots=True)
class DiffConfig:
    """Thresholds of the selection and the held-out bootstrap."""

    fire_k: float = 4.0
    """A basis feature fires where |activation| exceeds fire_k x the smaller of its two models' RMS."""
    rare_rate: float = 0.01
    """"~never": a firing rate at most this."""
    common_rate: float = 0.05
    """"fires": a firing rate at least this."""
    min_shift: float = 0.5
    """Smallest |standardised mean shift| that counts as a change."""
    min_corr_drop: float = 0.2
    """Smallest drop of base<->tuned r below the hookpoint's median r that counts as a change."""
    min_auroc_change: float = 0.1
    """Smallest |AUROC_tuned - AUROC_base| (calibration prompts) for a criterion mover."""
    top_k: int = 20
    """Features kept per kind (and criterion movers)."""
    held_out_fraction: float = 0.5
    """Share of probe prompts held out as evidence."""
    bootstrap: int = 200
    """Poisson bootstrap resamples of the held-out prompts."""
    seed: int = 0
    """Seed of the bootstrap weights."""

    def __post_init__(self) -> None:
        if not 0 <= self.rare_rate < self.common_rate <= 1:
            raise ValidationError(f"need 0 <= rare_rate < common_rate <= 1, got {self.rare_rate}, {self.common_rate}")
        if not 0.0 < self.held_out_fraction < 1.0:
            raise ValidationError(f"held_out_fraction must be in (0, 1), got {self.held_out_fraction}")
        if self.fire_k <= 0 or self.top_k < 1 or self.bootstrap < 20:
            raise ValidationError(f"fire_k must be > 0, top_k >= 1 and bootstrap >= 20; got {self.fire_k}, "
                                  f"{self.top_k}, {self.bootstrap}")


@dataclass(frozen=True, slots=True)
class Moments:
    """Per-feature statistics of two aligned activation arrays over (weighted) tokens; each [..., F]."""

    rate_base: np.ndarray
    rate_tuned: np.ndarray
    mean_base: np.ndarray
    mean_tuned: np.ndarray
    shift: np.ndarray
    """Standardised mean shift d."""
    corr: np.ndarray
    """Per-token Pearson r of base and tuned."""


CHUNK = 256
"""Features per block of the float64 statistics (bounds the memory of wide SAEs and many tokens)."""


def moments(base_TF: np.ndarray, tuned_TF: np.ndarray, tau_F: np.ndarray, weights_TR: np.ndarray | None = None,
            positive_only: bool = False) -> Moments:
    """Firing rates, means, shift and correlation; with ``weights_TR`` one row per resample ([R, F])."""
    blocks = [_moments(base_TF[:, i:i + CHUNK], tuned_TF[:, i:i + CHUNK], tau_F[i:i + CHUNK], weights_TR,
                       positive_only) for i in range(0, max(base_TF.shape[1], 1), CHUNK)]
    return Moments(*(np.concatenate([getattr(m, f) for m in blocks], axis=-1) for f in Moments.__slots__))


def _moments(base_TF: np.ndarray, tuned_TF: np.ndarray, tau_F: np.ndarray, weights_TR: np.ndarray | None,
             positive_only: bool) -> Moments:
    b, t = base_TF.astype(np.float64), tuned_TF.astype(np.float64)
    w = np.ones((len(b), 1)) if weights_TR is None else weights_TR.astype(np.float64)
    n_R = w.sum(0)[:, None]
    fb = (b > tau_F) if positive_only else (np.abs(b) > tau_F)
    ft = (t > tau_F) if positive_only else (np.abs(t) > tau_F)

    def avg(x_TF: np.ndarray) -> np.ndarray:
        return (w.T @ x_TF) / np.maximum(n_R, 1e-12)

    mb, mt = avg(b), avg(t)
    vb, vt = np.maximum(avg(b * b) - mb ** 2, 0), np.maximum(avg(t * t) - mt ** 2, 0)
    cov = avg(b * t) - mb * mt
    with np.errstate(invalid="ignore", divide="ignore"):
        shift = np.where(vb + vt > 0, (mt - mb) / np.sqrt((vb + vt) / 2), 0.0)
        corr = np.where((vb > 0) & (vt > 0), cov / np.sqrt(vb * vt), np.where((vb == 0) & (vt == 0), 1.0, 0.0))
    m = Moments(avg(fb.astype(np.float64)), avg(ft.astype(np.float64)), mb, mt, shift, np.clip(corr, -1, 1))
    return m if weights_TR is not None else Moments(*(x[0] for x in (m.rate_base, m.rate_tuned, m.mean_base,
                                                                      m.mean_tuned, m.shift, m.corr)))


def fire_thresholds(base_TF: np.ndarray, tuned_TF: np.ndarray, fire_k: float, positive_only: bool) -> np.ndarray:
    """Per-feature firing threshold: 0 for SAE latents, else fire_k x min(rms_base, rms_tuned)."""
    if positive_only:
        return np.zeros(base_TF.shape[1])
    rms = [np.sqrt(np.mean(x.astype(np.float64) ** 2, axis=0)) for x in (base_TF, tuned_TF)]
    return fire_k * np.minimum(*rms)


def choose(m: Moments, config: DiffConfig) -> dict[Kind, np.ndarray]:
    """Feature indices chosen per kind (selection statistics), strongest first, at most top_k each."""
    appear = (m.rate_base <= config.rare_rate) & (m.rate_tuned >= config.common_rate)
    vanish = (m.rate_tuned <= config.rare_rate) & (m.rate_base >= config.common_rate)
    drop = np.median(m.corr) - m.corr
    change = ~appear & ~vanish & ((np.abs(m.shift) >= config.min_shift) | (drop >= config.min_corr_drop))
    gap = m.rate_tuned - m.rate_base
    change_score = np.maximum(np.abs(m.shift) / config.min_shift, drop / config.min_corr_drop)
    out: dict[Kind, np.ndarray] = {}
    picks: tuple[tuple[Kind, np.ndarray, np.ndarray], ...] = (
        ("appear", appear, gap), ("vanish", vanish, -gap), ("change", change, change_score))
    for kind, mask, score in picks:
        idx = np.flatnonzero(mask)
        out[kind] = idx[np.argsort(-score[idx], kind="stable")][: config.top_k]
    return out


def _ci(samples_R: np.ndarray) -> list[float]:
    return [float(np.quantile(samples_R, 0.025)), float(np.quantile(samples_R, 0.975))]


def held_out_evidence(
    base_TF: np.ndarray, tuned_TF: np.ndarray, row_prompt_T: np.ndarray, prompt_hashes_P: np.ndarray,
    chosen: dict[Kind, np.ndarray], selection: Moments, tau_F: np.ndarray, config: DiffConfig,
    positive_only: bool = False,
) -> dict[Kind, list[dict[str, Any]]]:
    """Held-out statistics of the chosen features, with bootstrap intervals and a confirmed flag each.

    ``base_TF``/``tuned_TF``/``row_prompt_T`` are the held-out tokens only; ``prompt_hashes_P`` is the
    hash of every probe prompt (indexed by ``row_prompt_T``).
    """
    cols = np.unique(np.concatenate([v for v in chosen.values()] + [np.zeros(0, np.int64)])).astype(np.int64)
    point_all = moments(base_TF, tuned_TF, tau_F, positive_only=positive_only)
    median_r = float(np.median(point_all.corr))
    w_TR = poisson_bootstrap_weights(prompt_hashes_P, config.bootstrap, config.seed)[row_prompt_T]
    boot = moments(base_TF[:, cols], tuned_TF[:, cols], tau_F[cols], w_TR, positive_only)
    where = {int(c): j for j, c in enumerate(cols)}
    out: dict[Kind, list[dict[str, Any]]] = {k: [] for k in KINDS}
    for kind in KINDS:
        for f in chosen[kind]:
            j, f = where[int(f)], int(f)
            out[kind].append(_feature_evidence(kind, f, j, point_all, boot, selection, median_r, tau_F))
    return out


def _feature_evidence(kind: Kind, f: int, j: int, point: Moments, boot: Moments, selection: Moments,
                      median_r: float, tau_F: np.ndarray) -> dict[str, Any]:
    """One chosen feature's held-out block."""
    gap_ci = _ci(boot.rate_tuned[:, j] - boot.rate_base[:, j])
    shift_ci, corr_ci = _ci(boot.shift[:, j]), _ci(boot.corr[:, j])
    if kind == "appear":
        confirmed = gap_ci[0] > 0
    elif kind == "vanish":
        confirmed = gap_ci[1] < 0
    else:
        by_shift = shift_ci[0] > 0 if selection.shift[f] > 0 else shift_ci[1] < 0
        by_corr = (median_r - selection.corr[f] > 0) and corr_ci[1] < median_r
        confirmed = bool(by_shift or by_corr)
    return {
        "index": f, "kind": kind, "fire_threshold": float(tau_F[f]),
        "selection": {"rate_base": float(selection.rate_base[f]), "rate_tuned": float(selection.rate_tuned[f]),
                      "shift": float(selection.shift[f]), "corr": float(selection.corr[f])},
        "held_out": {
            "rate_base": float(point.rate_base[f]), "rate_tuned": float(point.rate_tuned[f]),
            "rate_change": {"mean": float(point.rate_tuned[f] - point.rate_base[f]), "ci95": gap_ci},
            "mean_base": float(point.mean_base[f]), "mean_tuned": float(point.mean_tuned[f]),
            "shift": {"mean": float(point.shift[f]), "ci95": shift_ci},
            "corr": {"mean": float(point.corr[f]), "ci95": corr_ci, "median_feature_corr": median_r},
        },
        "confirmed": bool(confirmed),
    }


def weighted_auroc(pos_F: np.ndarray, neg_F: np.ndarray, w_pos_R: np.ndarray, w_neg_R: np.ndarray) -> np.ndarray:
    """[R] weighted AUROC of one feature (ties count half) under each resample's prompt weights."""
    cmp = (pos_F[:, None] > neg_F[None, :]) + 0.5 * (pos_F[:, None] == neg_F[None, :])
    num = np.einsum("rp,pn,rn->r", w_pos_R, cmp.astype(np.float64), w_neg_R)
    den = w_pos_R.sum(1) * w_neg_R.sum(1)
    with np.errstate(invalid="ignore", divide="ignore"):
        return np.where(den > 0, num / den, np.nan)


def criterion_movers(
    base_PF: np.ndarray, tuned_PF: np.ndarray, labels_P: np.ndarray, held_out_P: np.ndarray,
    hashes_P: np.ndarray, config: DiffConfig, feature_ids: Sequence[str],
) -> list[dict[str, Any]]:
    """Features whose AUROC for the criterion moved most between models (calibration prompts), shown on held-out."""
    cal, ho = ~held_out_P, held_out_P
    auc = {side: np.array([auroc(x[cal, f], labels_P[cal]) for f in range(x.shape[1])])
           for side, x in (("base", base_PF), ("tuned", tuned_PF))}
    delta = np.nan_to_num(auc["tuned"] - auc["base"])
    idx = np.flatnonzero(np.abs(delta) >= config.min_auroc_change)
    idx = idx[np.argsort(-np.abs(delta[idx]), kind="stable")][: config.top_k]
    w_R = poisson_bootstrap_weights(hashes_P[ho], config.bootstrap, config.seed).T  # [R, n held-out]
    pos, neg = labels_P[ho], ~labels_P[ho]
    out = []
    for f in idx:
        xb, xt = base_PF[ho, f], tuned_PF[ho, f]
        boot_b = weighted_auroc(xb[pos], xb[neg], w_R[:, pos], w_R[:, neg])
        boot_t = weighted_auroc(xt[pos], xt[neg], w_R[:, pos], w_R[:, neg])
        held = {"auroc_base": auroc(xb, pos), "auroc_tuned": auroc(xt, pos)}
        change = held["auroc_tuned"] - held["auroc_base"]
        ci = _ci(np.nan_to_num(boot_t - boot_b))
        out.append({"feature_id": feature_ids[int(f)], "index": int(f),
                    "calibration": {"auroc_base": float(auc["base"][f]), "auroc_tuned": float(auc["tuned"][f])},
                    "held_out": held | {"auroc_change": {"mean": float(change), "ci95": ci},
                                        "n_positive": int(pos.sum()), "n_negative": int(neg.sum())},
                    "confirmed": bool(ci[0] > 0 if delta[f] > 0 else ci[1] < 0)})
    return out
