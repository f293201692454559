"""Validate feature matches with interventions: edit both features of a pair the same way, compare the effects.

A fingerprint match says two features look alike; this asks whether they *do* alike. For
each of the ``top`` matched pairs (``interp-agent.matches.v1``, from ``match`` or any matcher
that writes ``left_feature_id`` / ``right_feature_id`` / ``similarity``):

1. Every matched feature is resolved to an intervention target on its own side (residual
   dim, MLP neuron, SAE latent through that side's SAE, or a direction saved beside that
   side's report) before any model loads; a feature absent from its side's report, or not
   intervenable, is an error naming the side and the id.
2. One prompt set is split once (the ranking's hash split): strengths are chosen on the
   calibration prompts per side (``run_interventions``, as ``intervene`` does) and effects are
   measured on the *same* held-out prompts on both sides, each with its own controls. Steering
   strengths must be positive (amounts toward the criterion in the feature's expected
   direction), so both sides are measured on the held-out negatives; ablation on the held-out
   positives.
3. One behaviour scorer that means the same on both models (:data:`SCORER_RULE`).
4. Per pair: sign agreement, effect ratio right/left and difference with paired bootstrap
   intervals, controls on both sides, and a grade (``compare``).
5. Patch-across where it applies (``patch``): the right model steered along the left
   feature's direction mapped into its space, compared with its own matched feature.

Writes ``validation.json``, ``validation.md`` and each side's ``interventions.jsonl`` and
``summary.json`` (under ``left/`` and ``right/``) into ``out``, all at once (a finished
temporary folder renamed onto ``out``), so a failed run leaves nothing half-written.
"""

from __future__ import annotations

import json
import math
import tempfile
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from interp_agent.core.artifacts import replace_dir, run_provenance, schema_version, write_json, write_text
from interp_agent.core.crossmodel import compare as cmp
from interp_agent.core.errors import InputFileError, ValidationError, arg
from interp_agent.core.formats.interventions import effect_sign, write_interventions
from interp_agent.core.formats.prompts import ScoredPrompt
from interp_agent.core.ids import match_feature_id
from interp_agent.core.matching.match import MATCHES_SCHEMA, load_report
from interp_agent.core.progress import Progress
from interp_agent.core.ranking.config import HELD_OUT_FRACTION, SPLIT_SALT

VALIDATION_SCHEMA = schema_version("match_validation")
MODES: tuple[str, ...] = ("steer", "ablate")
SCORERS: tuple[str, ...] = ("auto", "target", "probe", "classifier")
DEFAULT_STRENGTHS: tuple[float, ...] = (0.5, 1.0, 2.0)
SCORER_RULE = (
    "the behaviour score must mean the same on both models: (1) target tokens given (or the pack's) and both "
    "sides read the same tokens -> 'target' (next-token mass on the same token ids); (2) else, both sides are "
    "one model -> 'probe' (one probe on that model's last-layer residual, fitted on the calibration prompts: "
    "the same scorer on both sides); (3) else -> 'classifier' (a text classifier fitted on the calibration "
    "prompts' text, so independent of either model, applied to each model's greedy continuations). A probe "
    "is refused across two models: each would read its own model's residual stream"
)
"""How ``scorer='auto'`` is decided (recorded in validation.json)."""


@dataclass(frozen=True, slots=True)
class Side:
    """One side of the validation: model, report, SAE and the matched features it intervenes on."""

    name: str
    """``left`` or ``right``."""
    model: str
    report: Path | None
    sae: str | Path | None
    features: tuple[str, ...]
    """Its matched feature ids, in pair order."""
    expected: dict[str, int]
    """Sign each feature is expected to move the criterion (from its report's ``direction``; default +1)."""
    directions: dict[str, tuple[str, np.ndarray]]
    """Directions saved beside its report."""


@dataclass(frozen=True, slots=True)
class _Plan:
    """Everything settled before any model loads."""

    matches_path: Path | None
    pairs: list[dict[str, Any]]
    left: Side
    right: Side
    criterion: str
    calibration: list[ScoredPrompt]
    held: list[ScoredPrompt]
    targets: list[str] | None
    """Target tokens given (or the pack's)."""


def load_matches(matches: str | Path | dict[str, Any]) -> tuple[dict[str, Any], Path | None]:
    """A matches document (a path or the dict) checked for the entry keys validation needs.

    Raises:
        InputFileError: a file that is missing, not JSON, or not a matches file (names the file and field).
        ValidationError: a dict that is not a matches document.
    """
    path = None
    if not isinstance(matches, dict):
        path = Path(matches)
        path = path / "matches.json" if path.is_dir() else path
        if not path.is_file():
            raise InputFileError(path, "no such file", hint="pass the matches JSON that interp-agent match wrote")
        try:
            matches = json.loads(path.read_text(encoding="utf-8"))
        except json.JSONDecodeError as exc:
            raise InputFileError(path, f"is not valid JSON: {exc.msg}", line=exc.lineno) from None
    where = str(path) if path else "matches"
    if not isinstance(matches, dict) or matches.get("schema_version") != MATCHES_SCHEMA:
        found = matches.get("schema_version") if isinstance(matches, dict) else type(matches).__name__
        msg, hint = f"expected schema_version '{MATCHES_SCHEMA}', found {found!r}", "pass what match wrote"
        raise InputFileError(path, msg, field="schema_version", hint=hint) if path else \
            ValidationError(f"{where}: {msg}", hint=hint)
    entries = matches.get("matches")
    for i, m in enumerate(entries if isinstance(entries, list) else [None]):
        for key in ("left_feature_id", "right_feature_id"):
            if not isinstance(m, dict) or not isinstance(m.get(key), str) or not m[key]:
                msg = f"matches[{i}] has no string '{key}'" if isinstance(entries, list) else "no 'matches' list"
                raise InputFileError(path, msg, field=f"matches[{i}].{key}") if path else \
                    ValidationError(f"{where}: {msg}", hint="each match needs left_feature_id and right_feature_id")
    return matches, path


def _report_path(given: str | Path | None, provenance: dict[str, Any], side: str) -> Path | None:
    """The side's report.json: as given, else the matches' ``provenance.inputs`` entry of role ``side``."""
    if given is None:
        given = next((i.get("path") for i in provenance.get("inputs") or [] if i.get("role") == side), None)
    if given is None:
        return None
    path = Path(given)
    return path / "report.json" if path.is_dir() else path


def _check_feature(side: str, fid: str, known: set[str] | None, directions: dict[str, Any],
                   sae: str | Path | None, report: Path | None) -> None:
    """ValidationError naming the side and the id unless ``fid`` is in the side's report and can be edited."""
    if known is not None and fid not in known and fid not in directions:
        raise ValidationError(f"{side} feature {fid!r} is not in the {side} report {report}",
                              hint=f"pass the {side} report the matches were made from ({arg(side + '_report')})")
    parsed = match_feature_id(fid)
    kind = parsed.kind if parsed is not None else None
    if kind == "direction":
        if fid not in directions:
            where = f"no {side} report given" if report is None else f"not in {report.parent / 'directions.json'}"
            raise ValidationError(f"{side} feature {fid!r} is a direction with no saved vector ({where})",
                                  hint=f"pass the {side} report of the hf inspect run that found it")
        return
    if kind == "sae" and parsed is not None and parsed.layer is not None:
        if sae is None:
            raise ValidationError(f"{side} feature {fid!r} is an SAE latent and no {side} SAE was given",
                                  hint=f"pass {arg(side + '_sae')}: the SAE folder the latent belongs to")
        return
    if kind == "neuron" or (kind == "dim" and parsed is not None and parsed.site == "hook_resid_post"):
        return
    raise ValidationError(f"{side} feature {fid!r} cannot be intervened on",
                          hint="validate matches of residual dims (L{l}:D{d}), MLP neurons (L{l}:N{i}), SAE latents "
                               "or saved directions")


def _side(name: str, model: str | None, report: Path | None, sae: str | Path | None, features: list[str],
          matches: dict[str, Any]) -> Side:
    """One side, every feature checked against its report (if any) and for an intervention target."""
    from interp_agent.core.live import load_directions
    from interp_agent.core.preflight import check_sae_folder

    prov = matches.get("provenance") or {}
    model = model or prov.get(f"{name}_model")
    side_spec = prov.get(name)
    if sae is None and isinstance(side_spec, dict):
        sae = side_spec.get("sae")  # an activation match names each side's SAE
    if not isinstance(model, str) or not model:
        raise ValidationError(f"no {name} model: the matches' provenance names none",
                              hint=f"pass {arg(name + '_model')}")
    check_sae_folder(sae, f"{name}_sae")
    known, expected, directions = None, {}, {}
    if report is not None:
        data = load_report(report)
        known = {f["feature_id"] for f in data.get("features") or []}
        expected = {f["feature_id"]: -1 if f.get("direction") == "suppresses" else 1 for f in data["features"]}
        directions = load_directions(report.parent)
    for fid in features:
        _check_feature(name, fid, known, directions, sae, report)
    return Side(name, model, report, sae, tuple(features), {f: expected.get(f, 1) for f in features}, directions)


def _check_settings(mode: str, top: int, strengths: Sequence[float], scorer: str, max_widening: float) -> None:
    if mode not in MODES:
        raise ValidationError(f"{arg('mode', mode)} is not a validation mode", hint=f"use one of {list(MODES)}")
    if isinstance(top, bool) or not isinstance(top, int) or top < 1:
        raise ValidationError(f"{arg('top', top)}: give a whole number of pairs >= 1")
    if not strengths or any(isinstance(s, bool) or not isinstance(s, (int, float)) or not math.isfinite(s)
                            or (mode == "steer" and s <= 0) for s in strengths):
        raise ValidationError(f"{arg('strengths', list(strengths))}: give finite strengths > 0",
                              hint="steering strengths are amounts toward the criterion in the feature's expected "
                                   "direction, in units of the feature's scale; both sides then share held-out "
                                   "prompts")
    if scorer not in SCORERS:
        raise ValidationError(f"{arg('scorer', scorer)} is not a scorer", hint=f"use one of {list(SCORERS)}")
    if isinstance(max_widening, bool) or not isinstance(max_widening, (int, float)) or not max_widening >= 1:
        raise ValidationError(f"{arg('max_widening', max_widening)}: give a number >= 1 (1: never widen)")


def _plan(matches: str | Path | dict[str, Any], *, left_model: str | None, right_model: str | None,
          left_report: str | Path | None, right_report: str | Path | None, left_sae: str | Path | None,
          right_sae: str | Path | None, criterion: str | None, dataset: str | Path | None, pack: str | None,
          top: int, targets: Sequence[str] | None, held_out_fraction: float, split_salt: str) -> _Plan:
    """Read and check every input (matches, reports, features, SAEs, prompts), split the prompts; no model."""
    from interp_agent.core.live import load_criterion_set, split_prompts
    from interp_agent.core.preflight import check_prompts

    doc, path = load_matches(matches)
    pairs = list(doc["matches"])[:top]
    if not pairs:
        raise ValidationError(f"{path or 'matches'} holds no matches to validate",
                              hint="match two reports with a lower min_similarity, or check the reports")
    prov = doc.get("provenance") or {}
    left = _side("left", left_model, _report_path(left_report, prov, "left"), left_sae,
                 [m["left_feature_id"] for m in pairs], doc)
    right = _side("right", right_model, _report_path(right_report, prov, "right"), right_sae,
                  [m["right_feature_id"] for m in pairs], doc)
    if dataset is None and pack is None:
        raise ValidationError(f"validation needs prompts: {arg('pack')} or {arg('dataset')} (scored prompts JSONL)")
    check_prompts(dataset, pack)
    criterion = criterion or (prov.get("left_criterion") if dataset is not None else None)
    criterion, prompts, pack_targets = load_criterion_set(criterion, dataset, pack)
    calibration, held = split_prompts(criterion, prompts, held_out_fraction=held_out_fraction, salt=split_salt)
    return _Plan(path, pairs, left, right, criterion, calibration, held, list(targets or pack_targets or []) or None)


def resolve_scorer(scorer: str, *, same_model: bool, same_tokens: bool, targets: list[str] | None
                   ) -> tuple[str, str]:
    """The scorer both sides use, and why (:data:`SCORER_RULE`)."""
    if scorer == "probe" and not same_model:
        raise ValidationError("scorer 'probe' across two models: each probe would read its own model's residual "
                              "stream, so the two effects would not be on one scale",
                              hint="use scorer 'classifier' (or 'target' with target tokens, one tokenizer)")
    if scorer == "target" and not (targets and same_tokens):
        raise ValidationError("scorer 'target' needs target tokens and one tokenizer on both sides",
                              hint="give targets, or use scorer 'classifier'")
    if scorer != "auto":
        return scorer, "requested"
    if targets and same_tokens:
        return "target", "auto (1): target tokens, and both sides read the same tokens"
    if same_model:
        return "probe", "auto (2): both sides are one model: one probe serves both"
    return "classifier", "auto (3): two models without shared target tokens: a model-independent text classifier"


def _per_prompt(records: Sequence[Any]) -> dict[str, dict[str, float]]:
    """Per feature (controls left out), each held-out prompt's signed effect (> 0: the edit promotes)."""
    out: dict[str, dict[str, float]] = {}
    for r in records:
        if r.control_type is None and r.prompt_id is not None:
            out.setdefault(r.feature_id, {})[r.prompt_id] = \
                effect_sign(r.intervention) * (r.intervention_score - r.baseline_score)
    return out


def _paired(a: dict[str, float], b: dict[str, float]) -> tuple[np.ndarray, np.ndarray]:
    shared = [p for p in a if p in b]
    return np.array([a[p] for p in shared]), np.array([b[p] for p in shared])


def _patch_row(pid: str | None, info: dict[str, Any], left: cmp.SideEffect, right: cmp.SideEffect,
               summaries: dict[str, dict[str, Any]], per_prompt: dict[str, dict[str, float]]) -> dict[str, Any] | None:
    """The patch-across result of one pair: the patched effect on the right model against the right feature's own."""
    if pid is None or pid not in summaries:
        return None
    patched = cmp.SideEffect.of(summaries[pid])
    c = cmp.compare(right, patched, *_paired(per_prompt[right.feature_id], per_prompt[pid]))
    return info[pid] | {
        "feature_id": pid, "effect": patched.mean, "ci95": list(patched.ci95) if patched.ci95 else None,
        "verdict": patched.verdict, "causal": patched.causal,
        "sign_agrees_with_left": bool(np.sign(patched.mean) == np.sign(left.mean)) if patched.mean else None,
        "vs_right_feature": {k: c[k] for k in ("ratio", "ratio_ci95", "sign_agree", "grade")},
        "provenance": "interventional",
    }


def _rows(plan: _Plan, runs: dict[str, Any], patch_info: dict[str, dict[str, Any]]) -> list[dict[str, Any]]:
    """One validation row per pair."""
    summaries = {s: {f["feature_id"]: f for f in runs[s].features} for s in ("left", "right")}
    per_prompt = {s: _per_prompt(runs[s].records) for s in ("left", "right")}
    patched_of = {v["left_feature_id"]: k for k, v in patch_info.items()}
    rows = []
    for k, m in enumerate(plan.pairs):
        lf, rf = m["left_feature_id"], m["right_feature_id"]
        left, right = cmp.SideEffect.of(summaries["left"][lf]), cmp.SideEffect.of(summaries["right"][rf])
        left_P, right_P = _paired(per_prompt["left"][lf], per_prompt["right"][rf])
        row = {"rank": k + 1, "left_feature_id": lf, "right_feature_id": rf, "similarity": m.get("similarity"),
               "left_label": m.get("left_label"), "right_label": m.get("right_label"),
               "n_shared_prompts": len(left_P), **cmp.compare(left, right, left_P, right_P)}
        if left.measured_on != right.measured_on:  # cannot happen with positive strengths; kept as a guard
            row["note"] = f"measured on different prompts: left {left.measured_on}, right {right.measured_on}"
        row["patch_across"] = _patch_row(patched_of.get(lf), patch_info, left, right, summaries["right"],
                                         per_prompt["right"])
        rows.append(row)
    return rows


def _check_out(out: Path) -> None:
    """``out`` is a new folder, or the folder of an earlier validation (replaced); never another folder."""
    if out.exists() and not out.is_dir():
        raise ValidationError(f"{arg('out', str(out))} is a file", hint="name a folder for the validation")
    if out.is_dir() and any(out.iterdir()) and not (out / "validation.json").is_file():
        raise ValidationError(f"{arg('out', str(out))} is a folder with other files in it",
                              hint="name a new folder (or an earlier validation's, which is replaced)")


def _write(out: Path, result: dict[str, Any], runs: dict[str, Any], side_summaries: dict[str, dict[str, Any]]
           ) -> dict[str, str]:
    """Write every file into a temporary folder beside ``out``, then rename it onto ``out``."""
    import shutil

    from interp_agent.core.crossmodel.render import render_markdown

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    paths = {"json": str(out / "validation.json"), "md": str(out / "validation.md")}
    try:
        for side, run in runs.items():
            write_interventions(tmp / side / "interventions.jsonl", run.records)
            write_json(tmp / side / "summary.json", side_summaries[side])
            paths[f"{side}_interventions"] = str(out / side / "interventions.jsonl")
            paths[f"{side}_summary"] = str(out / side / "summary.json")
        result["paths"] = paths
        write_json(tmp / "validation.json", result)
        write_text(tmp / "validation.md", render_markdown(result))
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    replace_dir(tmp, out)
    return paths


METHOD = (
    "each matched feature is edited on its own model with the same mode and strengths (units of the feature's "
    "scale); the strength is chosen per side on calibration prompts (intervene's rule: the largest effect in the "
    "expected direction within the KL budget); effects are measured on the same held-out prompts on both sides "
    "(steering toward the criterion: held-out negatives; ablation: held-out positives), each side with its own "
    "controls (random directions of matched norm, random features of matched spread); the ratio right/left and "
    "the difference right - left of the mean signed effects get 95% paired-bootstrap intervals over the shared "
    "prompts"
)
"""The ``method`` text of validation.json."""


@dataclass(frozen=True, slots=True)
class _Runner:
    """What the intervention phase needs besides the plan."""

    mode: str
    strengths: tuple[float, ...]
    scorer: str
    min_scorer_auroc: float
    max_new_tokens: int
    patch_across: bool
    max_widening: float
    progress: Progress | None


def _fit_scorers(kind: str, loaded: dict[str, Any], plan: _Plan, edited: list[str], r: _Runner
                 ) -> dict[str, tuple[Any, Any]]:
    """The behaviour scorer of each side, fitted and validated on calibration prompts (one, shared, for one model)."""
    from interp_agent.core.live import _behaviour_scorer

    def fit(side: str) -> tuple[Any, Any]:
        return _behaviour_scorer(kind, loaded[side], plan.calibration, plan.held, targets=plan.targets,
                                 min_auroc=r.min_scorer_auroc, max_new_tokens=r.max_new_tokens,
                                 edited_hookpoints=edited)

    left = fit("left")
    return {"left": left, "right": left if loaded["right"] is loaded["left"] else fit("right")}


def _run_sides(plan: _Plan, r: _Runner) -> tuple[dict[str, Any], dict[str, Any], dict[str, Any]]:
    """Load the models, resolve targets, fit the scorer, run every intervention; (runs, scorer info, patch info)."""
    from interp_agent.core.crossmodel.patch import patch_targets, same_tokens
    from interp_agent.core.interventions import InterveneConfig, run_interventions
    from interp_agent.core.live import _targets
    from interp_agent.core.models import load_model

    left_loaded = load_model(plan.left.model)
    loaded = {"left": left_loaded,
              "right": left_loaded if plan.right.model == plan.left.model else load_model(plan.right.model)}
    targets = {s.name: _targets(loaded[s.name], list(s.features), s.directions, s.sae) for s in (plan.left, plan.right)}
    cal_texts = [p.text for p in plan.calibration]
    shared_tokens = same_tokens(loaded["left"], loaded["right"], cal_texts)
    kind, why = resolve_scorer(r.scorer, same_model=loaded["left"] is loaded["right"], same_tokens=shared_tokens,
                               targets=plan.targets)
    patch: dict[str, Any] = {"applies": False, "note": "not asked (patch_across=False)", "targets": {}}
    extra: list[Any] = []
    if r.patch_across:
        extra, info, reason = patch_targets(loaded["left"], loaded["right"],
                                            list(zip(targets["left"], targets["right"], strict=True)), cal_texts)
        patch = {"applies": reason is None, "note": reason or _PATCH_NOTE, "targets": info}
    edited = [t.hookpoint for ts in targets.values() for t in ts]
    scorers = _fit_scorers(kind, loaded, plan, edited, r)
    # stability (intervene's report-only sweep of other strengths) is left out: pairs are compared at the chosen
    # strength, and it would double the held-out passes
    cfg = InterveneConfig(mode=r.mode, strengths=r.strengths, max_widening=r.max_widening, measure_stability=False)
    runs = {}
    for side, sd in (("left", plan.left), ("right", plan.right)):
        expected = dict(sd.expected) | ({t.feature_id: plan.left.expected[patch["targets"][t.feature_id]
                                          ["left_feature_id"]] for t in extra} if side == "right" else {})
        runs[side] = run_interventions(loaded[side], targets[side] + (extra if side == "right" else []),
                                       scorers[side][0], calibration=plan.calibration, held_out=plan.held,
                                       criterion=plan.criterion, model_name=sd.model, expected_sign=expected,
                                       config=cfg, progress=_prefixed(r.progress, side))
    scorer = {"kind": kind, "why": why, "rule": SCORER_RULE, "same_tokens": shared_tokens,
              "left": scorers["left"][1].to_json(), "right": scorers["right"][1].to_json()}
    return runs, scorer, patch


def _prefixed(progress: Progress | None, side: str) -> Progress | None:
    """``progress`` with each phase prefixed by the side (``left: intervening on L10:D3``)."""
    if progress is None:
        return None
    return lambda phase, done, total: progress(f"{side}: {phase}", done, total)


_PATCH_NOTE = ("the right model steered along the left feature's direction mapped into its space (ridge least "
               "squares on paired calibration-token activations; identity for one model at one hookpoint), "
               "compared with steering along the right feature itself")


def validate_matches(
    matches: str | Path | dict[str, Any], *, out: str | Path,
    left_model: str | None = None, right_model: str | None = None,
    left_report: str | Path | None = None, right_report: str | Path | None = None,
    left_sae: str | Path | None = None, right_sae: str | Path | None = None,
    criterion: str | None = None, dataset: str | Path | None = None, pack: str | None = None,
    mode: str = "steer", top: int = 5, strengths: Sequence[float] = DEFAULT_STRENGTHS,
    targets: Sequence[str] | None = None, scorer: str = "auto", patch_across: bool = True,
    max_widening: float = 64.0, held_out_fraction: float = HELD_OUT_FRACTION, split_salt: str = SPLIT_SALT,
    min_scorer_auroc: float = 0.6, max_new_tokens: int = 12, progress: Progress | None = None,
) -> dict[str, Any]:
    """Validate the ``top`` matched pairs with the same intervention on each side; write the results into ``out``.

    Args:
        matches: a matches JSON (``interp-agent.matches.v1``; a path or its folder) or the dict.
        out: folder for validation.json, validation.md and left/ and right/ intervention records (replaced
            when it holds an earlier validation).
        left_model, right_model: model names; default the matches' ``provenance.left_model`` / ``right_model``.
        left_report, right_report: each side's report.json (or folder); default the matches'
            ``provenance.inputs`` of role left / right. Checks each feature is in it; gives its direction
            vectors and expected signs. Without one, only basis features and SAE latents can be validated.
        left_sae, right_sae: SAE folders, for matched SAE latents.
        criterion, dataset, pack: the prompts, as ``intervene`` takes them.
        mode: ``steer`` or ``ablate``.
        top: the first ``top`` matches (the file's order: similarity, highest first).
        strengths: steering strengths, > 0, in units of each feature's scale.
        targets: target tokens for the target scorer (default the pack's).
        scorer: ``auto`` (:data:`SCORER_RULE`), ``target``, ``probe`` (one model only) or ``classifier``.
        patch_across: also steer the right model along the left feature's mapped direction (where it applies).
        max_widening: how far intervene's rule may widen the strength grid on calibration prompts (a multiple of
            the largest strength; 1: never).
        min_scorer_auroc: the scorer must beat this AUROC on calibration and held-out prompts.
        max_new_tokens: continuation length for the classifier scorer.

    Returns:
        The validation document (as written to validation.json).

    Raises:
        ValidationError: a bad setting; a matched feature absent from its side's report or not intervenable (the
            message names the side and the id); a probe across two models. All raised before any model loads.
        InputFileError: a malformed matches file, report or dataset.
        EvidenceError: the scorer is near chance, or a split lacks a class.
    """
    _check_settings(mode, top, strengths, scorer, max_widening)
    out = Path(out)
    _check_out(out)
    plan = _plan(matches, left_model=left_model, right_model=right_model, left_report=left_report,
                 right_report=right_report, left_sae=left_sae, right_sae=right_sae, criterion=criterion,
                 dataset=dataset, pack=pack, top=top, targets=targets, held_out_fraction=held_out_fraction,
                 split_salt=split_salt)
    runner = _Runner(mode, tuple(float(s) for s in strengths), scorer, min_scorer_auroc, max_new_tokens,
                     patch_across and mode == "steer", max_widening, progress)
    settings = _settings(plan, runner, top=top, pack=pack, dataset=dataset, held_out_fraction=held_out_fraction,
                         split_salt=split_salt)
    runs, scorer_info, patch = _run_sides(plan, runner)
    if patch_across and mode != "steer":
        patch["note"] = "not applied: patch-across steers along a mapped direction (mode steer only)"
    result = _result(plan, settings, runs, scorer_info, patch, dataset)
    _write(out, result, runs, {s: _side_summary(plan, result, runs[s], s) for s in ("left", "right")})
    return result


def _settings(plan: _Plan, runner: _Runner, *, top: int, pack: str | None, dataset: str | Path | None,
              held_out_fraction: float, split_salt: str) -> dict[str, Any]:
    """The ``settings`` block of validation.json."""
    return {"mode": runner.mode, "strengths": list(runner.strengths), "max_widening": runner.max_widening,
            "top": top, "pack": pack, "dataset": None if dataset is None else str(dataset),
            "held_out_fraction": held_out_fraction, "split_salt": split_salt,
            "n_calibration": len(plan.calibration), "n_held_out": len(plan.held),
            "left_sae": None if plan.left.sae is None else str(plan.left.sae),
            "right_sae": None if plan.right.sae is None else str(plan.right.sae), "n_bootstrap": cmp.N_BOOTSTRAP}


def check_validation(matches: str | Path | dict[str, Any], *, mode: str = "steer", top: int = 5,
                     strengths: Sequence[float] = DEFAULT_STRENGTHS, scorer: str = "auto", max_widening: float = 64.0,
                     held_out_fraction: float = HELD_OUT_FRACTION, split_salt: str = SPLIT_SALT,
                     **inputs: Any) -> None:
    """Every check :func:`validate_matches` makes before a model loads (settings, matches, reports, features,
    SAEs, prompts), for a job to fail at submission; ``inputs`` are its other keyword arguments."""
    _check_settings(mode, top, strengths, scorer, max_widening)
    keys = ("left_model", "right_model", "left_report", "right_report", "left_sae", "right_sae", "criterion",
            "dataset", "pack", "targets")
    _plan(matches, top=top, held_out_fraction=held_out_fraction, split_salt=split_salt,
          **{k: inputs.get(k) for k in keys})


def _result(plan: _Plan, settings: dict[str, Any], runs: dict[str, Any], scorer_info: dict[str, Any],
            patch: dict[str, Any], dataset: str | Path | None) -> dict[str, Any]:
    """The validation document: provenance, settings, scorer, rules, summary counts and one row per pair."""
    rows = _rows(plan, runs, patch["targets"])
    inputs = {"matches": plan.matches_path, "left_report": plan.left.report, "right_report": plan.right.report,
              "dataset": dataset}
    return {
        "schema_version": VALIDATION_SCHEMA,
        "provenance": run_provenance(inputs) | {"kind": "interventional", "left_model": plan.left.model,
                                                "right_model": plan.right.model, "synthetic": False},
        "criterion": plan.criterion,
        "settings": settings,
        "scorer": scorer_info, "method": METHOD, "grade_rule": cmp.GRADE_RULE,
        "summary": cmp.grade_counts(rows),
        "patch_across": {k: patch[k] for k in ("applies", "note")},
        "pairs": rows,
    }


def _side_summary(plan: _Plan, result: dict[str, Any], run: Any, side: str) -> dict[str, Any]:
    """One side's summary.json, in intervene's layout (so it can be filed as an intervene run of that model)."""
    return {"schema_version": schema_version("intervention_summary"), "model": getattr(plan, side).model,
            "criterion": plan.criterion, "provenance": result["provenance"],
            "settings": result["settings"] | {"scorer": result["scorer"]["kind"]}, "features": run.features,
            "method": METHOD, "verdict_rule": run.verdict_rule}
