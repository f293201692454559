"""Feature-on-feature effects: ablate an upstream feature A, measure the change of a downstream feature B.

For a report's top features (or given ones) on a live model, every pair (A, B) with B at a
strictly later layer than A:

1. The prompts are the report's own: its activation records' texts, split by the report's
   settings. The mean-ablation level of A (the mean of its projection over the tokens of the
   **training** prompts, first position left out) is set there; every effect is measured on
   the **held-out** prompts only.
2. A's ablation: ``mean`` (default) sets A's projection to that level at every position but
   the first; ``zero`` removes the projection. B's activation is read as the report's records
   read it: the pooled activation at B's hookpoint (the report's pooling) projected on B's
   unit direction (a basis dimension or neuron is its own component).
3. The effect on each held-out prompt is B(ablated) - B(clean); its mean has a percentile
   bootstrap 95% interval over prompts. Controls: the same ablation of ``n_controls`` random
   unit directions at A's hookpoint (one seed each; A's direction is a unit vector too, so
   they match its norm), each giving a control mean effect. The excess effect (effect minus
   the controls' mean, per prompt) has its own bootstrap interval; the effect's z score and
   empirical rank p-value against the control distribution are reported, and
   ``beats_controls`` holds when the excess interval excludes 0 and |effect| exceeds every
   control's.

Pairs at the same hookpoint (or layer) are left out: ablating A there changes B's reading
by the overlap of their directions (exactly ``-proj_A * <u_A, u_B>`` for zero ablation),
arithmetic rather than a causal path through the model. SAE latents are left out too (their
activation is not a projection; use ``intervene --sae`` for their effect on the criterion).
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from interp_agent.core.artifacts import atomic_open, run_provenance, schema_version, write_json
from interp_agent.core.errors import EvidenceError, ValidationError, arg
from interp_agent.core.graph_edges import FEATURE_EFFECTS_SCHEMA, SplitActivations, report_records, split_activations
from interp_agent.core.progress import Progress

AblationMode = Literal["mean", "zero"]
FEATURE_EFFECTS_FILE = "feature_effects.jsonl"
SUMMARY_FILE = "feature_effects_summary.json"
SAME_HOOKPOINT_REASON = (
    "same hookpoint (or layer): ablating A there changes B's projection by the overlap of their directions, "
    "arithmetic rather than a causal path through the model; only pairs with B at a strictly later layer are measured"
)
METHOD = (
    "A ablated at every position but the first (mean: its projection set to its mean over training-split tokens; "
    "zero: removed) on the report's held-out prompts; effect = B(ablated) - B(clean), B read as the report's "
    "records read it (pooled activation projected on B's unit direction); mean with a percentile bootstrap 95% "
    "interval over prompts; controls: the same ablation along random unit directions at A's hookpoint (one per "
    "seed); excess = effect - mean control effect (bootstrap interval); beats_controls: the excess interval "
    "excludes 0 and |effect| exceeds every control's"
)


@dataclass(frozen=True, slots=True)
class FeatureEffectsConfig:
    """How feature-on-feature effects are measured."""

    mode: AblationMode = "mean"
    """mean: set A's projection to its training-split mean; zero: remove it."""
    n_controls: int = 8
    """Random-direction controls at A's hookpoint (one seed each)."""
    bootstrap: int = 2000
    """Bootstrap resamples of the held-out prompts for the 95% intervals."""
    seed: int = 0
    """Seed of the controls and the bootstrap."""
    batch_size: int = 16
    """Prompts per forward pass."""

    def __post_init__(self) -> None:
        if self.mode not in ("mean", "zero"):
            raise ValidationError(f"mode must be 'mean' or 'zero', got {self.mode!r}")
        if isinstance(self.n_controls, bool) or not isinstance(self.n_controls, int) or self.n_controls < 2:
            raise ValidationError(f"n_controls must be a whole number >= 2 (a control distribution), got "
                                  f"{self.n_controls!r}; e.g. 8")
        if isinstance(self.bootstrap, bool) or not isinstance(self.bootstrap, int) or self.bootstrap < 100:
            raise ValidationError(f"bootstrap must be a whole number >= 100, got {self.bootstrap!r}; e.g. 2000")
        if isinstance(self.batch_size, bool) or not isinstance(self.batch_size, int) or self.batch_size < 1:
            raise ValidationError(f"batch_size must be a whole number >= 1, got {self.batch_size!r}")


@dataclass(slots=True)
class FeatureEffectsResult:
    """What :func:`feature_effects` wrote: one row per measured pair, and the summary."""

    rows: list[dict[str, Any]] = field(default_factory=list)
    summary: dict[str, Any] = field(default_factory=dict)
    paths: dict[str, Path] = field(default_factory=dict)


@dataclass(frozen=True, slots=True)
class _Plan:
    """What the report settles before the model loads."""

    report: dict[str, Any]
    report_path: Path
    records: Path
    features: list[str]
    skipped: dict[str, str]
    directions: dict[str, tuple[str, np.ndarray]]
    pooling: str
    held: SplitActivations
    train: SplitActivations


def _plan(report: str | Path, features: Sequence[str] | None, top_k: int, records: str | Path | None,
          pooling: str | None) -> _Plan:
    """Load the report, choose the features, and read the held-out (and training) prompts from its records."""
    from interp_agent.core.graphs import load_report_file
    from interp_agent.core.live import load_directions

    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 2:
        raise ValidationError(f"top_k must be a whole number >= 2 (pairs need two features), got {top_k!r}")
    doc, path = load_report_file(report)
    recs = Path(records) if records is not None else report_records(doc, path)
    directions = load_directions(path.parent)
    chosen = list(features) if features else [f["feature_id"] for f in doc["features"][:top_k]]
    skipped = {fid: why for fid in chosen if (why := _not_measurable(fid, directions)) is not None}
    usable = [fid for fid in chosen if fid not in skipped]
    settings = doc.get("settings") or {}
    frac, salt = settings.get("held_out_fraction", 0.3), settings.get("split_salt", "interp-agent")
    held = split_activations(recs, usable, held_out_fraction=frac, split_salt=salt, split="held_out")
    train = split_activations(recs, [], held_out_fraction=frac, split_salt=salt, split="train")
    if len(held.prompt_ids) < 3 or not train.prompt_ids:
        raise EvidenceError(f"{recs}: {len(held.prompt_ids)} held-out and {len(train.prompt_ids)} training prompts; "
                            "feature effects need at least 3 held-out prompts and some training prompts",
                            hint="inspect a larger prompt set")
    live_pooling = (doc.get("live") or {}).get("pooling")
    return _Plan(doc, path, recs, usable, skipped, directions, pooling or live_pooling or "last", held, train)


def _not_measurable(fid: str, directions: dict[str, tuple[str, np.ndarray]]) -> str | None:
    """Why a feature cannot be ablated and read as a projection here, or None when it can."""
    from interp_agent.core.ids import match_feature_id

    parsed = match_feature_id(fid)
    if parsed is None:
        return "not a feature id interp-agent can locate in the model"
    if parsed.kind == "sae":
        return "an SAE latent: its activation is not a projection (use intervene --sae for its criterion effect)"
    if parsed.kind == "direction":
        return None if fid in directions else "a direction without a saved vector (directions.npz beside the report)"
    if parsed.kind in ("dim", "neuron") and parsed.hookpoint is not None and parsed.index is not None:
        return None
    return f"a {parsed.kind} feature: only residual dimensions, MLP neurons and saved directions are measured"


def _targets(loaded: Any, plan: _Plan) -> list[Any]:
    """The intervention target (unit direction at a hookpoint) of each planned feature."""
    from interp_agent.core.ids import match_feature_id
    from interp_agent.core.interventions.targets import parse_target
    from interp_agent.core.models import resolve_hookpoint

    width_of: dict[str, int] = {}
    for fid in plan.features:
        parsed = match_feature_id(fid)
        hook = plan.directions[fid][0] if fid in plan.directions else parsed.hookpoint.name  # type: ignore[union-attr]
        width_of[hook] = resolve_hookpoint(loaded.model, hook).width
    return [parse_target(fid, width_of, plan.directions) for fid in plan.features]


def _layer(hookpoint: str) -> int:
    from interp_agent.core.ids import parse_hookpoint

    return parse_hookpoint(hookpoint).layer


def _pairs(targets: list[Any]) -> tuple[list[tuple[int, int]], list[dict[str, str]]]:
    """Pairs (A, B) with B at a strictly later layer, and the pairs left out with their reason."""
    pairs: list[tuple[int, int]] = []
    excluded: list[dict[str, str]] = []
    for i, a in enumerate(targets):
        for j, b in enumerate(targets):
            if i == j:
                continue
            la, lb = _layer(a.hookpoint), _layer(b.hookpoint)
            if la < lb:
                pairs.append((i, j))
            elif la == lb and i < j:
                excluded.append({"source": a.feature_id, "target": b.feature_id, "reason": SAME_HOOKPOINT_REASON
                                 if a.hookpoint == b.hookpoint else SAME_HOOKPOINT_REASON.replace(
                                     "same hookpoint (or layer)", "same layer")})
    return pairs, excluded


def _readings(loaded: Any, texts: list[str], targets: list[Any], wanted: list[int], pooling: str,
              batch_size: int) -> dict[int, np.ndarray]:
    """Each wanted target's activation per text: the pooled activation at its hookpoint projected on its direction."""
    from interp_agent.core.models import harvest

    hooks = sorted({targets[j].hookpoint for j in wanted})
    got = harvest(loaded, texts, hooks, batch_size=batch_size, pooling=pooling)  # type: ignore[arg-type]
    return {j: got[targets[j].hookpoint].acts.astype(np.float64) @ targets[j].direction for j in wanted}


def _ablated_readings(loaded: Any, plan: _Plan, a: Any, downstream: list[int], targets: list[Any],
                      cfg: FeatureEffectsConfig) -> tuple[dict[int, np.ndarray], list[dict[int, np.ndarray]], float]:
    """Downstream readings with A ablated, with each random-direction control ablated, and A's ablation level."""
    import torch

    from interp_agent.core.interventions.controls import make_controls
    from interp_agent.core.interventions.edits import edit_fn
    from interp_agent.core.models import edit, harvest

    train_acts = harvest(loaded, plan.train.texts, [a.hookpoint], batch_size=cfg.batch_size,
                         pooling="token")[a.hookpoint].acts.astype(np.float64)
    rng = np.random.default_rng([cfg.seed, _layer(a.hookpoint), int(a.direction.argmax())])
    controls = make_controls(rng, a, train_acts, 1.0, n_random_directions=cfg.n_controls, n_matched_features=0)
    mode = "mean_ablate" if cfg.mode == "mean" else "ablate"
    level = float((train_acts @ a.direction).mean()) if cfg.mode == "mean" else 0.0
    out: list[dict[int, np.ndarray]] = []
    for vector, value in [(a.direction, level), *((c.vector, c.mean if cfg.mode == "mean" else 0.0)
                                                   for c in controls)]:
        fn = edit_fn(mode, torch.as_tensor(vector, dtype=torch.float32), value)
        with edit(loaded.model, a.hookpoint, fn):
            out.append(_readings(loaded, plan.held.texts, targets, downstream, plan.pooling, cfg.batch_size))
    return out[0], out[1:], level


def _bootstrap_ci(values: np.ndarray, rng: np.random.Generator, resamples: int) -> list[float]:
    """Percentile bootstrap 95% interval of the mean of ``values`` over its rows."""
    idx = rng.integers(0, len(values), size=(resamples, len(values)))
    means = values[idx].mean(1)
    return [float(np.percentile(means, 2.5)), float(np.percentile(means, 97.5))]


def pair_statistics(clean: np.ndarray, ablated: np.ndarray, controls: list[np.ndarray], *, resamples: int,
                    seed: int) -> dict[str, Any]:
    """The effect of one ablation on one feature, against its controls.

    Args:
        clean: B's activation per held-out prompt without any edit [n].
        ablated: B's activation per prompt with A ablated [n].
        controls: B's activation per prompt with each random direction ablated, one array [n] per control.
        resamples: bootstrap resamples.
        seed: bootstrap seed.
    """
    rng = np.random.default_rng(seed)
    delta = ablated - clean
    cdelta = np.stack([c - clean for c in controls])  # [controls, n]
    effect = float(delta.mean())
    c_effects = cdelta.mean(1)
    c_mean, c_sd = float(c_effects.mean()), float(c_effects.std(ddof=1))
    sd = float(clean.std(ddof=1))
    excess = delta - cdelta.mean(0)
    return {
        "n": len(delta), "baseline_mean": float(clean.mean()), "baseline_sd": sd,
        "mean_effect": effect, "ci95": _bootstrap_ci(delta, rng, resamples),
        "effect_sd": effect / sd if sd > 0 else None,
        "excess_effect": float(excess.mean()), "excess_ci95": _bootstrap_ci(excess, rng, resamples),
        "control": {"type": "random_direction", "n": len(controls), "effects": [float(x) for x in c_effects],
                    "mean": c_mean, "sd": c_sd, "max_abs": float(np.abs(c_effects).max())},
        "z_vs_controls": (effect - c_mean) / c_sd if c_sd > 0 else None,
        "p_vs_controls": float((1 + np.sum(np.abs(c_effects) >= abs(effect))) / (1 + len(controls))),
    }


def _beats(stats: dict[str, Any]) -> bool:
    lo, hi = stats["excess_ci95"]
    return bool((lo > 0 or hi < 0) and abs(stats["mean_effect"]) > stats["control"]["max_abs"])


def feature_effects(
    model: str,
    report: str | Path,
    *,
    out: str | Path,
    top_k: int = 5,
    features: Sequence[str] | None = None,
    records: str | Path | None = None,
    pooling: str | None = None,
    config: FeatureEffectsConfig | None = None,
    progress: Progress | None = None,
) -> FeatureEffectsResult:
    """Measure every downstream feature's change when each upstream one is ablated; write them into ``out``.

    Args:
        model: the model the report was made on (name or path, as ``load_model`` takes it).
        report: its report.json (or folder); directions saved beside it are used.
        out: folder for ``feature_effects.jsonl`` and ``feature_effects_summary.json``.
        top_k: how many of the report's top features take part (when ``features`` is not given).
        features: feature ids to use instead.
        records: the records to take prompts from (default: the report's own, checked by hash).
        pooling: how B is read (default: the report's live pooling, else ``last``).
        config: ablation mode, controls, bootstrap and batch size.
        progress: called with ("feature_effects", upstream features done, total).

    Raises:
        InputFileError: the report or its records are missing, malformed or changed.
        ValidationError: bad settings, or no pair with features at two different layers.
        EvidenceError: too few held-out or training prompts.
    """
    from interp_agent.core.models import load_model

    cfg = config or FeatureEffectsConfig()
    plan = _plan(report, features, top_k, records, pooling)
    loaded = load_model(model)
    targets = _targets(loaded, plan)
    pairs, excluded = _pairs(targets)
    if not pairs:
        layers = sorted({_layer(t.hookpoint) for t in targets})
        raise ValidationError(
            f"no pair of features at two different layers among {[t.feature_id for t in targets]} (layers {layers})",
            hint=f"raise {arg('top_k')} or name features at two layers with {arg('features')}")
    clean = _readings(loaded, plan.held.texts, targets, sorted({j for _, j in pairs}), plan.pooling, cfg.batch_size)
    rows: list[dict[str, Any]] = []
    upstream = sorted({i for i, _ in pairs})
    for done, i in enumerate(upstream):
        downstream = [j for a, j in pairs if a == i]
        ablated, controls, level = _ablated_readings(loaded, plan, targets[i], downstream, targets, cfg)
        for j in downstream:
            stats = pair_statistics(clean[j], ablated[j], [c[j] for c in controls], resamples=cfg.bootstrap,
                                    seed=cfg.seed)
            rows.append(_row(model, plan, targets[i], targets[j], cfg, level) | stats
                        | {"beats_controls": _beats(stats)})
        if progress is not None:
            progress("feature_effects", done + 1, len(upstream))
    return _write(Path(out), model, plan, cfg, rows, excluded, _agreement(plan, targets, clean))


def _row(model: str, plan: _Plan, a: Any, b: Any, cfg: FeatureEffectsConfig, level: float) -> dict[str, Any]:
    """The identifying fields of one pair's row."""
    return {
        "schema_version": FEATURE_EFFECTS_SCHEMA, "model": model, "criterion": plan.report.get("criterion"),
        "source": a.feature_id, "target": b.feature_id, "source_hookpoint": a.hookpoint,
        "target_hookpoint": b.hookpoint, "source_layer": _layer(a.hookpoint), "target_layer": _layer(b.hookpoint),
        "mode": "mean_ablate" if cfg.mode == "mean" else "ablate", "ablation_level": level, "split": "held_out",
        "pooling": plan.pooling, "seed": cfg.seed, "provenance": "interventional", "synthetic": False,
    }


def _agreement(plan: _Plan, targets: list[Any], clean: dict[int, np.ndarray]) -> dict[str, float]:
    """Largest |clean reading - records value| per feature read: how well B's reading reproduces the records."""
    return {targets[j].feature_id: float(np.abs(values - plan.held.acts[:, j]).max()) for j, values in clean.items()}


def _write(out: Path, model: str, plan: _Plan, cfg: FeatureEffectsConfig, rows: list[dict[str, Any]],
           excluded: list[dict[str, str]], agreement: dict[str, float]) -> FeatureEffectsResult:
    """Write the rows (JSON lines) and the summary atomically."""
    import json

    from interp_agent.core.artifacts import clean_json

    out.mkdir(parents=True, exist_ok=True)
    with atomic_open(out / FEATURE_EFFECTS_FILE) as fh:
        fh.writelines(json.dumps(clean_json(r), allow_nan=False) + "\n" for r in rows)
    warnings = []
    if plan.report.get("model") not in (None, model):
        warnings.append(f"the report was made on {plan.report.get('model')!r}, the effects measured on {model!r}")
    summary = {
        "schema_version": schema_version("feature_effects_summary"), "model": model,
        "criterion": plan.report.get("criterion"),
        "provenance": run_provenance({"report": plan.report_path, "records": plan.records}),
        "settings": {"mode": cfg.mode, "n_controls": cfg.n_controls, "bootstrap": cfg.bootstrap, "seed": cfg.seed,
                     "pooling": plan.pooling, "n_held_out": len(plan.held.prompt_ids),
                     "n_train": len(plan.train.prompt_ids)},
        "features": plan.features, "skipped_features": plan.skipped, "excluded_pairs": excluded,
        "n_pairs": len(rows), "n_beating_controls": sum(r["beats_controls"] for r in rows),
        "reading_vs_records_max_abs": agreement, "warnings": warnings, "method": METHOD,
    }
    paths = {"feature_effects": out / FEATURE_EFFECTS_FILE, "summary": write_json(out / SUMMARY_FILE, summary)}
    return FeatureEffectsResult(rows=rows, summary=summary, paths=paths)


__all__ = ["FEATURE_EFFECTS_FILE", "METHOD", "SAME_HOOKPOINT_REASON", "SUMMARY_FILE", "AblationMode",
           "FeatureEffectsConfig", "FeatureEffectsResult", "feature_effects", "pair_statistics"]
