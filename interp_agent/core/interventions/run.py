"""Run interventions with generated controls; choose strengths on calibration prompts, measure on held-out ones.

For each target feature:

1. Calibration statistics: the mean and spread (std) of its projection over calibration
   tokens (the first position excluded) set the scale of every edit.
2. Strength: for steer and clamp, each strength (in units of the feature's scale: a
   learned direction's own norm, else that std; negative steering removes the feature)
   is tried on calibration positives; the one with the largest effect in the expected
   direction whose KL divergence on calibration negatives stays within a budget is kept.
   Held-out prompts never influence this choice.
3. Evidence, on held-out prompts only: the behaviour score of each prompt with and
   without the edit (its change is the effect, with a Student-t interval). A removal
   (ablation, negative steering) is measured on held-out positives, where the criterion
   holds; an edit toward the criterion (positive steering, clamping up) on held-out
   negatives, where it does not hold yet and can rise (on positives it would mostly hit
   the ceiling). The other class gives the side effects: the KL divergence of next-token
   distributions and its score change. The same edit runs along generated controls:
   random directions of matched norm and random features of matched activation spread.
4. A verdict: causal, weak, no_effect or contradicts (the association).
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Protocol

import numpy as np
import torch

from interp_agent.core.errors import EvidenceError, ValidationError
from interp_agent.core.formats.interventions import InterventionRecord, effect_sign
from interp_agent.core.formats.prompts import ScoredPrompt
from interp_agent.core.ids import basis_feature_id, parse_hookpoint
from interp_agent.core.interventions.edits import MODES, RECORD_NAME, edit_fn, sae_edit_fn
from interp_agent.core.interventions.targets import Target
from interp_agent.core.models.harvest import harvest
from interp_agent.core.models.hooks import edit
from interp_agent.core.progress import Progress
from interp_agent.core.ranking.stats import t_interval

Verdict = str  # causal | weak | no_effect | contradicts


class Scorer(Protocol):
    """A behaviour scorer: higher means the criterion holds more."""

    def score(self, model: Any, tokenizer: Any, texts: list[str]) -> np.ndarray: ...


@dataclass(frozen=True, slots=True)
class InterveneConfig:
    """How interventions run."""

    mode: str = "steer"
    """ablate, mean_ablate, clamp, steer or patch."""
    strengths: tuple[float, ...] = (-1.0, -0.5, 0.5, 1.0)
    """Steer: amount added along the feature (negative: removed); clamp: level above the mean. In units of
    the feature's scale: a learned direction's own norm, else the feature's calibration std."""
    n_random_directions: int = 3
    """Random-direction controls (matched norm) per target."""
    n_matched_features: int = 2
    """Random-feature controls (matched activation spread) per target."""
    batch_size: int = 16
    """Prompts per forward pass."""
    kl_budget: float = 0.5
    """Largest mean KL (nats) on calibration negatives a chosen strength may cause."""
    seed: int = 0
    """Seed of the controls."""

    def __post_init__(self) -> None:
        if self.mode not in MODES:
            raise ValidationError(f"mode must be one of {MODES}, got {self.mode!r}")
        if not self.strengths or any(not np.isfinite(s) for s in self.strengths):
            raise ValidationError(f"strengths must be finite numbers, got {self.strengths!r}; e.g. 2,4,8")
        if self.n_random_directions < 1:
            raise ValidationError("n_random_directions must be at least 1: every run has controls")


@dataclass(slots=True)
class InterventionRun:
    """Intervention records (held-out evidence and controls) and a per-feature summary."""

    records: list[InterventionRecord] = field(default_factory=list)
    features: list[dict[str, Any]] = field(default_factory=list)


def next_token_logprobs(loaded: Any, texts: Sequence[str], batch_size: int) -> torch.Tensor:
    """Log-probabilities of the next token after each text, [n, vocab] (right padding, last real token)."""
    tok, model = loaded.tokenizer, loaded.model
    out = []
    with torch.no_grad():
        for start in range(0, len(texts), batch_size):
            enc = tok(list(texts[start : start + batch_size]), return_tensors="pt", padding=True)
            enc = {k: v.to(model.device) for k, v in enc.items()}
            logits = model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"]).logits
            last = enc["attention_mask"].sum(1) - 1
            out.append(torch.log_softmax(logits[torch.arange(len(last)), last].float(), -1).cpu())
    return torch.cat(out)


def _kl(base_NV: torch.Tensor, edited_NV: torch.Tensor) -> np.ndarray:
    """KL(base || edited) per prompt, in nats."""
    return (base_NV.exp() * (base_NV - edited_NV)).sum(-1).clamp_min(0).numpy()


class _Evaluator:
    """Scores prompt sets with and without an edit, caching the unedited baselines."""

    def __init__(self, loaded: Any, scorer: Scorer, batch_size: int) -> None:
        self.loaded, self.scorer, self.batch_size = loaded, scorer, batch_size
        self._cache: dict[tuple[str, ...], Any] = {}

    def scores(self, texts: list[str], hook: str | None = None, fn: Callable | None = None) -> np.ndarray:
        if fn is None:
            key = ("score", *texts)
            if key not in self._cache:
                self._cache[key] = np.asarray(
                    self.scorer.score(self.loaded.model, self.loaded.tokenizer, texts), dtype=float
                )
            return self._cache[key]
        assert hook is not None, "an edit needs the hookpoint it applies at"
        with edit(self.loaded.model, hook, fn):
            return np.asarray(self.scorer.score(self.loaded.model, self.loaded.tokenizer, texts), dtype=float)

    def logprobs(self, texts: list[str], hook: str | None = None, fn: Callable | None = None) -> torch.Tensor:
        if fn is None:
            key = ("logprobs", *texts)
            if key not in self._cache:
                self._cache[key] = next_token_logprobs(self.loaded, texts, self.batch_size)
            return self._cache[key]
        assert hook is not None, "an edit needs the hookpoint it applies at"
        with edit(self.loaded.model, hook, fn):
            return next_token_logprobs(self.loaded, texts, self.batch_size)


def _split(prompts: Sequence[ScoredPrompt]) -> tuple[list[ScoredPrompt], list[ScoredPrompt]]:
    scores = np.array([p.criterion_score for p in prompts])
    mid = (scores.min() + scores.max()) / 2 if len(scores) else 0.5
    return [p for p in prompts if p.criterion_score > mid], [p for p in prompts if p.criterion_score <= mid]


@dataclass(frozen=True, slots=True)
class _Splits:
    """Calibration and held-out prompts, each split into positives (criterion holds) and negatives."""

    cal_pos: list[ScoredPrompt]
    cal_neg: list[ScoredPrompt]
    ho_pos: list[ScoredPrompt]
    ho_neg: list[ScoredPrompt]

    @classmethod
    def of(cls, calibration: Sequence[ScoredPrompt], held_out: Sequence[ScoredPrompt]) -> _Splits:
        """Split both prompt sets; raises EvidenceError unless each split has both classes."""
        (cal_pos, cal_neg), (ho_pos, ho_neg) = _split(calibration), _split(held_out)
        if len(cal_pos) < 2 or len(ho_pos) < 2 or not cal_neg or not ho_neg:
            raise EvidenceError(
                f"interventions need positive and negative prompts on both splits; got calibration "
                f"{len(cal_pos)}+/{len(cal_neg)}-, held-out {len(ho_pos)}+/{len(ho_neg)}-",
                hint="use a larger, balanced prompt set (>= 30 of each class)",
            )
        return cls(cal_pos, cal_neg, ho_pos, ho_neg)


@dataclass(frozen=True, slots=True)
class _Labels:
    """What every record of a run names: the criterion and the model."""

    criterion: str
    model_name: str


@dataclass(frozen=True, slots=True)
class _Edit:
    """The edit chosen for one target on calibration prompts, with the statistics that scale it."""

    target: Target
    acts: np.ndarray
    """Token activations at the target's hookpoint on calibration prompts [rows, width]."""
    sign: int
    """+1 when the feature is expected to promote the criterion, -1 to suppress it."""
    mean: float
    """Mean of the feature's projection on calibration tokens."""
    std: float
    """The feature's scale: a learned direction's own norm, else the projection's std."""
    value: float
    """The edit's value, chosen on calibration prompts."""
    sweep: dict[str, Any]
    """How the value was chosen (the strength sweep, or a note)."""


@dataclass(frozen=True, slots=True)
class _HeldOut:
    """The held-out prompts an edit is measured on, with their unedited scores."""

    prompts: list[ScoredPrompt]
    texts: list[str]
    base: np.ndarray
    measured_on: str
    """``held_out_negatives`` or ``held_out_positives``."""


@dataclass(frozen=True, slots=True)
class _Effect:
    """What the edit did: its record name, the edited scores, and its side effects on the other class."""

    name: str
    edited: np.ndarray
    kl: np.ndarray
    """KL(base || edited) of next-token distributions per prompt of the other class."""
    other_change: float
    """Mean score change on the other class."""


def run_interventions(
    loaded: Any,
    targets: Sequence[Target],
    scorer: Scorer,
    *,
    calibration: Sequence[ScoredPrompt],
    held_out: Sequence[ScoredPrompt],
    criterion: str,
    model_name: str,
    expected_sign: dict[str, int] | None = None,
    config: InterveneConfig | None = None,
    progress: Progress | None = None,
) -> InterventionRun:
    """Intervene on each target with controls; returns records and per-feature summaries.

    Args:
        expected_sign: +1 when the association says the feature promotes the criterion,
            -1 when it suppresses it (default +1); used to choose strengths and verdicts.
    """
    cfg = config or InterveneConfig()
    splits = _Splits.of(calibration, held_out)
    rng = np.random.default_rng(cfg.seed)
    ev = _Evaluator(loaded, scorer, cfg.batch_size)
    run = InterventionRun()
    labels = _Labels(criterion, model_name)
    stats = _calibration_acts(loaded, targets, [p.text for p in calibration], cfg.batch_size)
    for i, target in enumerate(targets):
        if progress:
            progress(f"intervening on {target.feature_id}", i, len(targets))
        sign = (expected_sign or {}).get(target.feature_id, 1)
        chosen = _choose_edit(ev, cfg, target, stats[target.hookpoint], sign, splits)
        records, summary = _intervene(ev, rng, cfg, chosen, splits, labels)
        run.records.extend(records)
        run.features.append(summary)
    if progress:
        progress("interventions done", len(targets), len(targets))
    return run


def _calibration_acts(
    loaded: Any, targets: Sequence[Target], cal_texts: list[str], batch_size: int
) -> dict[str, np.ndarray]:
    """Token activations on the calibration prompts per hookpoint of the targets, [rows, width] each."""
    stats: dict[str, np.ndarray] = {}
    for hook in sorted({t.hookpoint for t in targets}):
        stats[hook] = harvest(loaded, cal_texts, [hook], batch_size=batch_size,
                              pooling="token")[hook].acts.astype(np.float64)
    return stats


def _choose_edit(
    ev: _Evaluator, cfg: InterveneConfig, target: Target, acts: np.ndarray, sign: int, splits: _Splits
) -> _Edit:
    """The target's projection statistics on calibration tokens and the edit value chosen from them."""
    proj = target.sae.activation(acts) if target.sae is not None else acts @ target.direction
    mean = float(proj.mean())
    std = float(target.scale) if target.scale else (float(proj.std()) or 1.0)
    value, sweep = _choose_value(ev, cfg, target, mean, std, sign, splits.cal_pos, splits.cal_neg)
    return _Edit(target=target, acts=acts, sign=sign, mean=mean, std=std, value=value, sweep=sweep)


def _intervene(
    ev: _Evaluator, rng: np.random.Generator, cfg: InterveneConfig, chosen: _Edit, splits: _Splits, labels: _Labels
) -> tuple[list[InterventionRecord], dict[str, Any]]:
    """Measure the chosen edit and its controls on held-out prompts: the records and the feature's summary."""
    target = chosen.target
    toward = pushes_toward(cfg.mode, chosen.value, chosen.mean, chosen.sign)
    # an edit toward the criterion is measured where it does not hold yet, a removal where it holds;
    # the other class shows the side effects
    target_set, other_set = (splits.ho_neg, splits.ho_pos) if toward else (splits.ho_pos, splits.ho_neg)
    texts = [p.text for p in target_set]
    held = _HeldOut(prompts=target_set, texts=texts, base=ev.scores(texts),
                    measured_on="held_out_negatives" if toward else "held_out_positives")
    effect = _measure_edit(ev, cfg, chosen, held, [p.text for p in other_set])
    meta = {"mode": cfg.mode, "hookpoint": target.hookpoint, "value": chosen.value,
            "strength": chosen.sweep.get("chosen"), "split": "held_out", "measured_on": held.measured_on,
            "kl_on_other_class": float(effect.kl.mean()), "other_class_score_change": effect.other_change}
    # side_effect_score is in behaviour-score units (so it can be weighed against the effect); KL is metadata
    records = [
        InterventionRecord(
            feature_id=target.feature_id, intervention=effect.name, baseline_score=float(b),
            intervention_score=float(e), model=labels.model_name, criterion=labels.criterion, prompt_id=p.prompt_id,
            side_effect_score=abs(effect.other_change), metadata=dict(meta),
        )
        for p, b, e in zip(target_set, held.base, effect.edited, strict=True)
    ]
    control_records, control_effects = _run_controls(ev, rng, cfg, chosen, held, labels)
    return records + control_records, _summary(cfg, chosen, held, effect, control_effects)


def _measure_edit(
    ev: _Evaluator, cfg: InterveneConfig, chosen: _Edit, held: _HeldOut, other_texts: list[str]
) -> _Effect:
    """Score the held-out prompts under the edit, and its KL and score change on the other class."""
    hook = chosen.target.hookpoint
    base_other, base_lp_other = ev.scores(other_texts), ev.logprobs(other_texts)
    fn = make_edit(chosen.target, cfg.mode, chosen.value)
    name = record_name(cfg.mode, chosen.value)
    edited = ev.scores(held.texts, hook, fn)
    kl = _kl(base_lp_other, ev.logprobs(other_texts, hook, fn))
    other_change = float(np.mean(ev.scores(other_texts, hook, fn) - base_other))
    return _Effect(name=name, edited=edited, kl=kl, other_change=other_change)


def _run_controls(
    ev: _Evaluator, rng: np.random.Generator, cfg: InterveneConfig, chosen: _Edit, held: _HeldOut, labels: _Labels
) -> tuple[list[InterventionRecord], dict[str, list[float]]]:
    """Run the same edit along each generated control: its records, and the mean signed effects per control type."""
    target = chosen.target
    records: list[InterventionRecord] = []
    control_effects: dict[str, list[float]] = {}
    for control_type, control_id, cu, cvalue in _controls(
        rng, cfg, target, chosen.acts, chosen.value, chosen.mean, chosen.std
    ):
        cfn = edit_fn(cfg.mode, torch.tensor(cu, dtype=torch.float32), cvalue)
        cname = record_name(cfg.mode, cvalue)
        cscores = ev.scores(held.texts, target.hookpoint, cfn)
        for p, b, e in zip(held.prompts, held.base, cscores, strict=True):
            records.append(InterventionRecord(
                feature_id=control_id, intervention=cname, baseline_score=float(b),
                intervention_score=float(e), model=labels.model_name, criterion=labels.criterion,
                prompt_id=p.prompt_id,
                metadata={"control_type": control_type, "control_for": target.feature_id, "mode": cfg.mode,
                          "hookpoint": target.hookpoint, "value": cvalue, "split": "held_out",
                          "measured_on": held.measured_on},
            ))
        control_effects.setdefault(control_type, []).append(float(np.mean(effect_sign(cname) * (cscores - held.base))))
    return records, control_effects


def make_edit(target: Target, mode: str, value: float) -> Callable[[torch.Tensor], torch.Tensor]:
    """The edit for a target: along its unit direction, or through the SAE for an SAE latent."""
    if target.sae is not None:
        return sae_edit_fn(mode, target.sae, value)
    return edit_fn(mode, torch.tensor(target.direction, dtype=torch.float32), value)


def pushes_toward(mode: str, value: float, mean: float, sign: int) -> bool:
    """Whether the edit moves the feature in the direction that promotes the criterion."""
    if mode in ("ablate", "mean_ablate"):
        return False
    level = value if mode == "steer" else value - mean
    return sign * level > 0


def _choose_value(
    ev: _Evaluator, cfg: InterveneConfig, target: Target, mean: float, std: float, sign: int,
    cal_pos: list[ScoredPrompt], cal_neg: list[ScoredPrompt],
) -> tuple[float, dict[str, Any]]:
    """The edit's value, chosen on calibration prompts only."""
    if cfg.mode == "ablate":
        return 0.0, {"chosen": None, "note": "projection removed"}
    if cfg.mode == "mean_ablate":
        return mean, {"chosen": None, "note": "projection set to its calibration mean"}
    if cfg.mode == "patch":
        # source prompt: the calibration positive where the feature is largest (calibration only)
        texts = [p.text for p in cal_pos]
        acts = harvest(ev.loaded, texts, [target.hookpoint], batch_size=cfg.batch_size,
                       pooling="mean")[target.hookpoint].acts
        values = target.sae.activation(acts) if target.sae is not None else acts @ target.direction
        best = int(np.argmax(values * sign))
        return float(values[best]), {"chosen": None, "source_prompt": cal_pos[best].prompt_id}
    rows = []
    for strength in cfg.strengths:
        value = sign * strength * std if cfg.mode == "steer" else mean + sign * strength * std
        toward = pushes_toward(cfg.mode, value, mean, sign)
        on, other = ([p.text for p in cal_neg], [p.text for p in cal_pos]) if toward else (
            [p.text for p in cal_pos], [p.text for p in cal_neg])
        fn = make_edit(target, cfg.mode, value)
        change = ev.scores(on, target.hookpoint, fn) - ev.scores(on)
        signed = float(np.mean(effect_sign(record_name(cfg.mode, value)) * change))
        kl = float(_kl(ev.logprobs(other), ev.logprobs(other, target.hookpoint, fn)).mean())
        rows.append({"strength": strength, "value": value, "calibration_signed_effect": signed, "calibration_kl": kl,
                     "within_kl_budget": kl <= cfg.kl_budget})
    allowed = [r for r in rows if r["within_kl_budget"]] or [min(rows, key=lambda r: r["calibration_kl"])]
    best = max(allowed, key=lambda r: sign * r["calibration_signed_effect"])
    return best["value"], {"chosen": best["strength"], "rule": f"largest effect in the expected direction with "
                           f"calibration KL <= {cfg.kl_budget} nats", "sweep": rows}


def record_name(mode: str, value: float) -> str:
    """The record's intervention name; steering with a negative amount removes the feature ('suppress')."""
    if mode == "steer" and value < 0:
        return "suppress"
    return RECORD_NAME[mode]


def _controls(
    rng: np.random.Generator, cfg: InterveneConfig, target: Target, acts: np.ndarray, value: float,
    mean: float, std: float,
) -> list[tuple[str, str, np.ndarray, float]]:
    """Random directions of matched norm, and random features of matched activation spread."""
    width = len(target.direction)
    point = parse_hookpoint(target.hookpoint)
    # an SAE latent writes value * decoder row: a random direction of matched norm gets value * |row|
    norm = float(np.linalg.norm(target.sae.decoder)) if target.sae is not None else 1.0
    out: list[tuple[str, str, np.ndarray, float]] = []
    for k in range(cfg.n_random_directions):
        v = rng.normal(size=width)
        v /= np.linalg.norm(v)
        p = acts @ v
        if cfg.mode == "steer":
            cvalue = value * norm
        elif cfg.mode == "ablate":
            cvalue = 0.0
        else:
            cvalue = float(p.mean()) + (value - mean) / std * float(p.std() or 1.0)
        out.append(("random_direction", f"control:random_direction:{target.feature_id}:{k}", v, cvalue))
    stds = acts.std(0)
    spread = std * norm if target.sae is not None else std
    order = np.argsort(np.abs(stds - spread))
    candidates = [int(j) for j in order if target.kind == "sae" or target.index is None or int(j) != target.index]
    candidates = candidates[: max(8, cfg.n_matched_features * 4)]
    # basis features of the hookpoint with the closest activation spread (for an SAE latent: random
    # residual features, since the latents' own frequencies are not at hand)
    control_type = "random_feature" if target.kind == "sae" else "matched_frequency"
    for j in rng.choice(candidates, size=min(cfg.n_matched_features, len(candidates)), replace=False):
        e = np.zeros(width)
        e[j] = 1.0
        jm, js = float(acts[:, j].mean()), float(acts[:, j].std() or 1.0)
        cvalue = {"steer": value / std * js, "ablate": 0.0, "mean_ablate": jm}.get(
            cfg.mode, jm + (value - mean) / std * js
        )
        out.append((control_type, basis_feature_id(point, int(j)), e, cvalue))
    return out


def _summary(
    cfg: InterveneConfig, chosen: _Edit, held: _HeldOut, effect: _Effect, control_effects: dict[str, list[float]]
) -> dict[str, Any]:
    """The feature's summary: its effect with a t interval, the controls' effects, side effects and a verdict."""
    target, name, sign, sweep = chosen.target, effect.name, chosen.sign, chosen.sweep
    base, edited = held.base, effect.edited
    signed = effect_sign(name) * (edited - base)  # > 0: the feature promotes the criterion
    mean = float(signed.mean())
    ci = t_interval(mean, float(signed.std(ddof=1)) if len(signed) > 1 else 0.0, len(signed))
    all_controls = [e for effects in control_effects.values() for e in effects]
    control_mean = float(np.mean(all_controls)) if all_controls else 0.0
    control_bound = float(np.max(np.abs(all_controls))) if all_controls else 0.0
    aligned = sign * mean
    excludes_zero = ci is not None and (ci[0] > 0 or ci[1] < 0)
    if excludes_zero and aligned < 0:
        verdict = "contradicts"
    elif excludes_zero and aligned > control_bound:
        verdict = "causal"
    elif aligned > control_bound or excludes_zero:
        verdict = "weak"
    else:
        verdict = "no_effect"
    return {
        "feature_id": target.feature_id,
        "hookpoint": target.hookpoint,
        "mode": cfg.mode,
        "intervention": name,
        "value": chosen.value,
        "strength": sweep.get("chosen"),
        "calibration": sweep,
        "expected_direction": "promotes" if sign > 0 else "suppresses",
        "effect": {"provenance": "interventional", "mean": mean, "ci95": list(ci) if ci else None, "n": len(signed),
                   "mean_score_change": float((edited - base).mean()), "measured_on": held.measured_on},
        "control_effect": {"provenance": "interventional", "mean": control_mean, "max_abs": control_bound,
                           "by_type": {k: float(np.mean(v)) for k, v in control_effects.items()}},
        "side_effect": {"provenance": "interventional", "kl_on_other_class": float(effect.kl.mean()),
                        "other_class_score_change": effect.other_change},
        "verdict": verdict,
    }
