"""What a run measured, as claims and evidence: one reader per kind of run (inspect, intervene, explain, match,
validate_matches).

Each reader takes the run's own files, exactly as the step wrote them, and returns
:class:`RunFindings`: the claims the run bears on, one evidence item each, and a
:class:`RunRecord` of the run (its model(s), cost and the settings the plan reuses). The rules
that decide each stance are in ``docs/dossier.md``; in short:

- inspect (``report.json``, its top ``top`` features): a "tracks" claim with correlational
  evidence (training split; weak when its q-value is not below the report's alpha), held_out
  evidence (supports when the held-out 95% intervals exclude chance in the training direction,
  contradicts when they include chance or exclude it the other way, weak without an interval),
  causal evidence from the report's ``causal`` block (by its verdict), and imported evidence for
  imported cards and labels (plus a "means" claim at the imported rung for an imported label);
- intervene (``summary.json``): a "causes" claim per feature: verdict causal supports, weak
  supports weakly (not reaching the rung), no_effect and contradicts contradict;
- explain (``explanations.jsonl``, else ``explain.json``): a "means" claim per explanation, one
  explained item per score: supports when the margin over the random-explanation null has a 95%
  interval above 0 and the AUROC's interval is above 0.5 (weak when only the first holds),
  contradicts when the margin's interval reaches 0; without a null (no other explanation to draw
  one from), contradicts when the AUROC interval includes 0.5, else weak;
- match (``matches.json``): a "corresponds" claim per match: supports (weak when the two
  features' signed effects on the criterion disagree, or both reports are of one model);
- validate_matches (``validation.json``): interventional evidence on the same "corresponds"
  claim, at the same rung (transferred): grade equivalent or same_direction supports (weak when
  both sides are one model, as for match), similar supports weakly (an intervention showed no
  causal effect on a side, so it could not test the correspondence), opposite contradicts (both
  features causal, pushing the criterion opposite ways), which lowers the claim.

A synthetic report or match keeps ``synthetic`` provenance on everything it gives.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from interp_agent.core.dossier import costs
from interp_agent.core.dossier.model import (
    Claim,
    Evidence,
    Provenance,
    RunRecord,
    RunRef,
    Stance,
    Tool,
)
from interp_agent.core.errors import InputFileError, ValidationError

DEFAULT_TOP = 10
"""Features of an inspect report filed by default: its top 10 by rank."""
RUN_FILES: dict[str, tuple[str, ...]] = {
    "inspect": ("report.json",), "intervene": ("summary.json",),
    "explain": ("explanations.jsonl", "explain.json"), "match": ("matches.json",),
    "validate_matches": ("validation/validation.json", "validation.json"),  # a job's run folder; the CLI's out
}
"""The file(s) each kind of run is read from, first found first."""


@dataclass(frozen=True, slots=True)
class Finding:
    """One claim a run bears on, and the evidence it gives it."""

    claim: Claim
    """The claim, without evidence (its id says which one it is)."""
    evidence: Evidence


@dataclass(frozen=True, slots=True)
class RunFindings:
    """Everything one run gives a dossier."""

    record: RunRecord
    criterion: str | None
    """The criterion the run measured (None for explain and match, which measure none)."""
    findings: tuple[Finding, ...]
    warnings: tuple[str, ...] = ()


@dataclass(frozen=True, slots=True)
class _Got:
    """What one block of a run's file says about a claim at one rung."""

    stance: Stance
    weak: bool
    summary: str
    numbers: dict[str, Any]
    note: str = ""


@dataclass(frozen=True, slots=True)
class _Run:
    """What every reader needs: where the run is, how to cite it, when it is filed."""

    path: Path
    """The file read."""
    ref: RunRef
    filed_at: str
    elapsed_s: float | None


def sig(value: Any, digits: int = 6) -> Any:
    """A float rounded to ``digits`` significant digits (the file stays readable); anything else as it is."""
    if isinstance(value, float) and value == value and abs(value) != float("inf"):
        return float(f"{value:.{digits}g}")
    if isinstance(value, (list, tuple)):
        return [sig(v, digits) for v in value]
    return value


def fmt(value: Any, spec: str = ".3f") -> str:
    """A number for a summary line; ``n/a`` for a missing one."""
    if value is None or isinstance(value, bool) or not isinstance(value, (int, float)):
        return "n/a"
    return format(value, spec)


def interval(ci: Any, spec: str = ".3f") -> str:
    """``[lo, hi]`` for a summary line; ``[n/a]`` without one."""
    if not isinstance(ci, (list, tuple)) or len(ci) != 2:
        return "[n/a]"
    return f"[{fmt(ci[0], spec)}, {fmt(ci[1], spec)}]"


def load_json(path: Path) -> dict[str, Any]:
    """A run's JSON file as an object; InputFileError naming the file and line otherwise."""
    try:
        raw = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError) as exc:
        raise InputFileError(path, f"cannot be read: {exc}") from None
    except json.JSONDecodeError as exc:
        raise InputFileError(path, f"is not valid JSON: {exc.msg}", line=exc.lineno) from None
    if not isinstance(raw, dict):
        raise InputFileError(path, f"expected a JSON object, found {type(raw).__name__}")
    return raw


def obj(value: Any) -> dict[str, Any]:
    """``value`` when it is a JSON object, else an empty one (an absent or null block)."""
    return value if isinstance(value, dict) else {}


def _need(raw: dict[str, Any], key: str, path: Path, kind: type | tuple[type, ...], where: str = "") -> Any:
    value = raw.get(key)
    if not isinstance(value, kind):
        raise InputFileError(path, f"expected {getattr(kind, '__name__', kind)}, found {value!r}",
                             field=f"{where}{key}", hint="file the folder the step wrote, unedited")
    return value


# -- inspect -----------------------------------------------------------------------------------


def _prov(report: dict[str, Any], block: Any, default: Provenance) -> Provenance:
    if report.get("synthetic"):
        return "synthetic"
    value = block.get("provenance") if isinstance(block, dict) else None
    return value if value in ("correlational", "interventional", "synthetic", "imported") else default


def _train(f: dict[str, Any], alpha: float) -> _Got | None:
    assoc = f.get("association")
    train = assoc.get("train") if isinstance(assoc, dict) else None
    if not isinstance(train, dict):
        return None
    q = train.get("q_value")
    weak = not (isinstance(q, (int, float)) and q < alpha)
    numbers = {"pearson_r": train.get("pearson_r"), "auroc": train.get("auroc"), "p_value": train.get("p_value"),
               "q_value": q, "alpha": alpha, "n_prompts": train.get("n_prompts"), "rank": f.get("rank"),
               "importance": f.get("importance"), "direction": f.get("direction")}
    summary = (f"training split: r {fmt(train.get('pearson_r'), '+.3f')}, AUROC {fmt(train.get('auroc'))}, "
               f"q {fmt(q, '.2g')} on {train.get('n_prompts')} prompts (rank {f.get('rank')})")
    note = f"not significant on the training split (q {fmt(q, '.2g')} >= alpha {alpha:g})" if weak else ""
    return _Got("supports", weak, summary, numbers, note)


def _held_out(f: dict[str, Any]) -> _Got | None:
    assoc = obj(f.get("association"))
    held = assoc.get("held_out")
    if not isinstance(held, dict):
        return None
    train_r = obj(assoc.get("train")).get("pearson_r")
    r, excludes = held.get("pearson_r"), held.get("ci_excludes_chance")
    power = obj(assoc.get("held_out_power"))
    numbers = {"auroc": held.get("auroc"), "auroc_ci95": held.get("auroc_ci95"), "pearson_r": r,
               "pearson_r_ci95": held.get("pearson_r_ci95"), "q_value": held.get("q_value"),
               "n_prompts": held.get("n_prompts"), "ci_excludes_chance": excludes,
               "held_out_supported": assoc.get("held_out_supported"),
               "prompts_needed": power.get("prompts_needed_at_train_r")}
    summary = (f"held-out: AUROC {fmt(held.get('auroc'))} {interval(held.get('auroc_ci95'))}, r {fmt(r, '+.3f')} "
               f"{interval(held.get('pearson_r_ci95'), '+.3f')} on {held.get('n_prompts')} prompts")
    same_sign = isinstance(r, (int, float)) and isinstance(train_r, (int, float)) and (r > 0) == (train_r > 0)
    if excludes is None:
        return _Got("supports", True, summary, numbers, "no held-out interval (3 or fewer held-out prompts): not "
                    "tested")
    if excludes and not same_sign:
        return _Got("contradicts", False, summary, numbers, "the held-out association excludes chance in the "
                    "direction opposite to the training split's")
    if not excludes:
        need = power.get("prompts_needed_at_train_r")
        more = f"; a test at the training r needs about {need} held-out prompts" if need else ""
        return _Got("contradicts", False, summary, numbers, f"the held-out intervals include chance{more}")
    return _Got("supports", False, summary, numbers)


CAUSAL_STANCE: dict[str, tuple[Stance, bool]] = {
    "causal": ("supports", False), "weak": ("supports", True),
    "no_effect": ("contradicts", False), "contradicts": ("contradicts", False),
}
"""An intervention verdict as (stance, weak): causal supports; weak supports without reaching the causal rung;
no_effect and contradicts (an effect against the expected direction) contradict."""


def _report_causal(f: dict[str, Any]) -> _Got | None:
    causal = f.get("causal")
    if not isinstance(causal, dict):
        return None
    verdict = causal.get("verdict")
    numbers = {"verdict": verdict, "mean_effect": causal.get("mean_effect"), "ci95": causal.get("ci95"),
               "n": causal.get("n"), "control_effect": causal.get("control_effect"),
               "n_controls": causal.get("n_controls"), "side_effect": causal.get("side_effect"),
               "strong_causal_score": causal.get("strong_causal_score"),
               "agrees_with_association": causal.get("agrees_with_association")}
    summary = (f"intervention records: verdict {verdict or 'none'}, effect {fmt(causal.get('mean_effect'), '+.3f')} "
               f"{interval(causal.get('ci95'), '+.3f')} on {causal.get('n')} prompts vs control "
               f"{fmt(causal.get('control_effect'), '+.3f')} ({causal.get('n_controls')} controls)")
    if verdict not in CAUSAL_STANCE:
        return _Got("supports", True, summary, numbers, "the report gives no verdict: interval and controls not "
                    "checked")
    stance, weak = CAUSAL_STANCE[verdict]
    reason = str(causal.get("verdict_reason") or "") if stance != "supports" or weak else ""
    return _Got(stance, weak, summary, numbers, reason)


def _imported(f: dict[str, Any]) -> _Got | None:
    prov, card = obj(f.get("provenance")), obj(f.get("card"))
    if prov.get("imported") != "imported" and not card:
        return None
    semantic = obj(obj(f.get("importance_components")).get("semantic")).get("value")
    source = obj(card.get("source")).get("kind") or f.get("source")
    numbers = {"source": source, "label": f.get("label"), "semantic_similarity": semantic,
               "imported_criterion_effect": obj(obj(f.get("imported")).get("causal_effects")).get("criterion"),
               "density": card.get("density"), "rank": f.get("rank")}
    summary = f"imported from {source or 'a feature file'}: label {json.dumps(f.get('label'))}, semantic " \
              f"similarity to the criterion {fmt(semantic)}"
    note = str(prov.get("criterion_association") or "")
    return _Got("supports", False, summary, numbers, note)


def _inspect(run: _Run, report: dict[str, Any], top: int) -> RunFindings:
    path = run.path
    model = _need(report, "model", path, str)
    criterion = _need(report, "criterion", path, str)
    features = _need(report, "features", path, list)
    alpha = float((report.get("settings") or {}).get("alpha") or 0.05)
    findings: list[Finding] = []
    for i, f in enumerate(features[:top]):
        fid = _need(f, "feature_id", path, str, f"features[{i}].") if isinstance(f, dict) else None
        if fid is None:
            raise InputFileError(path, f"expected an object, found {f!r}", field=f"features[{i}]")
        tracks = Claim.new("tracks", model, fid, criterion=criterion)
        for rung, got, block in (("imported", _imported(f), f.get("card") or f.get("imported")),
                                 ("correlational", _train(f, alpha), f.get("association")),
                                 ("held_out", _held_out(f), f.get("association")),
                                 ("causal", _report_causal(f), f.get("causal"))):
            if got is not None:
                default: Provenance = "imported" if rung == "imported" else \
                    "interventional" if rung == "causal" else "correlational"
                findings.append(_finding(tracks, rung, got, run, _prov(report, block, default), "inspect"))
        findings += _imported_label(f, model, run, report)
    return RunFindings(_inspect_record(run, report, model), criterion, tuple(findings),
                       tuple(str(w) for w in report.get("warnings") or ())[:3])


def _imported_label(f: dict[str, Any], model: str, run: _Run, report: dict[str, Any]) -> list[Finding]:
    """A "means" claim at the imported rung for an imported feature's label: a hypothesis to score."""
    got = _imported(f)
    text = f.get("explanation") or f.get("label")
    if got is None or not isinstance(text, str) or not text.strip():
        return []
    from interp_agent.core.explain.explanations import check_explanation_text

    try:
        text = check_explanation_text(text)
    except ValidationError:
        return []
    means = Claim.new("means", model, f["feature_id"], explanation=text)
    numbers = {k: got.numbers[k] for k in ("source", "label", "rank")}
    summary = f"imported label from {numbers['source'] or 'a feature file'}, not scored here"
    return [_finding(means, "imported", _Got("supports", False, summary, numbers), run,
                     _prov(report, None, "imported"), "inspect")]


def _inspect_record(run: _Run, report: dict[str, Any], model: str) -> RunRecord:
    summary = report.get("summary") or {}
    live = report.get("live") or {}
    backend = report.get("backend") if isinstance(report.get("backend"), str) else None
    n_prompts = int(summary.get("n_prompts") or 0)
    numbers = {"n_prompts": n_prompts, "n_held_out_prompts": summary.get("n_held_out_prompts"),
               "held_out_fraction": (report.get("settings") or {}).get("held_out_fraction"),
               "top_k": (report.get("settings") or {}).get("top_k"), "hookpoints": list(live.get("hookpoints") or []),
               "synthetic": bool(report.get("synthetic")), "n_features": len(report.get("features") or [])}
    return RunRecord(run.ref, "inspect", (model,), run.filed_at, backend, run.elapsed_s,
                     costs.inspect_passes(backend, n_prompts), numbers)


def _finding(claim: Claim, rung: Any, got: _Got, run: _Run,
             provenance: Provenance, tool: Tool) -> Finding:
    ev = Evidence.new(rung, got.stance, got.summary, {k: sig(v) for k, v in got.numbers.items()}, run.ref,
                      provenance=provenance, tool=tool, weak=got.weak, note=got.note, filed_at=run.filed_at)
    return Finding(claim, ev)


# -- intervene ---------------------------------------------------------------------------------


def _intervention(f: dict[str, Any], summary: dict[str, Any]) -> _Got:
    effect, control = f.get("effect") or {}, f.get("control_effect") or {}
    side, stability = f.get("side_effect") or {}, f.get("stability") or {}
    verdict = f.get("verdict")
    numbers = {"verdict": verdict, "effect": effect.get("mean"), "effect_ci95": effect.get("ci95"),
               "n": effect.get("n"), "measured_on": effect.get("measured_on"), "control_mean": control.get("mean"),
               "control_max_abs": control.get("max_abs"), "control_rms": control.get("rms"),
               "kl_on_other_class": side.get("kl_on_other_class"),
               "other_class_score_change": side.get("other_class_score_change"), "mode": f.get("mode"),
               "intervention": f.get("intervention"), "strength": f.get("strength"), "hookpoint": f.get("hookpoint"),
               "expected_direction": f.get("expected_direction"), "stability_share": stability.get("share"),
               "scorer": (summary.get("scorer") or {}).get("kind"),
               "scorer_auroc": (summary.get("scorer") or {}).get("auroc")}
    line = (f"{f.get('mode')} at strength {fmt(f.get('strength'), 'g')}: verdict {verdict}, effect "
            f"{fmt(effect.get('mean'), '+.3f')} {interval(effect.get('ci95'), '+.3f')} on {effect.get('n')} held-out "
            f"prompts vs control max |{fmt(control.get('max_abs'))}|, KL {fmt(side.get('kl_on_other_class'))}")
    stance, weak = CAUSAL_STANCE[str(verdict)]
    note = "; ".join([str(f.get("verdict_reason") or "")] * (stance != "supports" or weak)
                     + [str(w) for w in summary.get("warnings") or ()])
    return _Got(stance, weak, line, numbers, note)


def _intervene(run: _Run, summary: dict[str, Any]) -> RunFindings:
    path = run.path
    model = _need(summary, "model", path, str)
    criterion = _need(summary, "criterion", path, str)
    features = _need(summary, "features", path, list)
    findings: list[Finding] = []
    for i, f in enumerate(features):
        where = f"features[{i}]."
        fid = _need(f, "feature_id", path, str, where)
        if f.get("verdict") not in CAUSAL_STANCE:
            raise InputFileError(path, f"unknown verdict {f.get('verdict')!r}; expected one of {list(CAUSAL_STANCE)}",
                                 field=f"{where}verdict")
        claim = Claim.new("causes", model, fid, criterion=criterion)
        findings.append(_finding(claim, "causal", _intervention(f, summary), run, "interventional", "intervene"))
    settings = summary.get("settings") or {}
    n_cal, n_held = int(settings.get("n_calibration") or 0), int(settings.get("n_held_out") or 0)
    n_strengths = len(settings.get("strengths") or ()) or 4
    numbers = {"mode": settings.get("mode"), "n_strengths": n_strengths, "n_calibration": n_cal, "n_held_out": n_held,
               "n_features": len(features), "scorer": settings.get("scorer")}
    passes = costs.intervene_passes(len(features), n_cal, n_held, n_strengths, scorer=settings.get("scorer"))
    record = RunRecord(run.ref, "intervene", (model,), run.filed_at, None, run.elapsed_s, passes, numbers)
    return RunFindings(record, criterion, tuple(findings), tuple(str(w) for w in summary.get("warnings") or ()))


# -- explain -----------------------------------------------------------------------------------


def _score(item: Any, score: Any, summary: dict[str, Any]) -> _Got:
    auroc, null, margin = score.auroc, score.null_random_explanation, score.margin_over_random
    corpus = summary.get("corpus") or {}
    numbers = {"method": score.method, "auroc": auroc.value, "auroc_ci95": auroc.ci95,
               "null_random_explanation": null.value, "null_random_explanation_ci95": null.ci95,
               "null_shuffled_labels": score.null_shuffled_labels.value, "margin_over_random": margin.value,
               "margin_ci95": margin.ci95, "balanced_accuracy": score.balanced_accuracy.value, "f1": score.f1.value,
               "n_positive": score.n_positive, "n_negative": score.n_negative, "judge": score.judge,
               "score_provenance": score.provenance, "author": item.explanation.author.kind,
               "corpus": corpus.get("name"), "corpus_synthetic": corpus.get("synthetic")}
    line = (f"{score.method} score: AUROC {fmt(auroc.value)} {interval(auroc.ci95)} vs random-explanation null "
            f"{fmt(null.value)}, margin {fmt(margin.value, '+.3f')} {interval(margin.ci95, '+.3f')} "
            f"({score.n_positive}+{score.n_negative} held-out items)")
    if margin.ci95 is None:
        if auroc.ci95 is not None and auroc.ci95[0] <= 0.5:
            return _Got("contradicts", False, line, numbers, "no random-explanation null could be drawn, and the "
                        "AUROC interval includes chance (0.5): it does not beat chance")
        return _Got("supports", True, line, numbers, "no random-explanation null (no other explanation in the run "
                    "to draw one from): not tested against its null")
    if score.beats_random and auroc.ci95 is not None and auroc.ci95[0] <= 0.5:
        return _Got("supports", True, line, numbers, "beats the random-explanation null, but its own AUROC "
                    "interval includes chance (0.5)")
    if score.beats_random:
        return _Got("supports", False, line, numbers)
    return _Got("contradicts", False, line, numbers, "the margin over the random-explanation null has a 95% "
                "interval reaching 0 or below: the explanation does not beat a random one")


def _explain_items(run: _Run, summary: dict[str, Any]) -> list[Any]:
    from interp_agent.core.explain.explanations import from_json, iter_explanations

    if run.path.name == "explanations.jsonl":
        return list(iter_explanations(run.path))
    features = _need(summary, "features", run.path, list)
    return [from_json(raw, path=run.path) for raw in features]


def _explain(run: _Run, summary: dict[str, Any], folder: Path) -> RunFindings:
    model = _need(summary, "model", folder / "explain.json", str)
    findings: list[Finding] = []
    for item in _explain_items(run, summary):
        claim = Claim.new("means", model, item.explanation.feature_id, explanation=item.explanation.text)
        for score in item.scores:
            tool: Tool = "judge_explanation" if score.judge == "agent" else \
                "score_explanation" if item.explanation.author.kind == "agent" else "explain"
            prov: Provenance = "interventional" if score.provenance == "interventional" else "correlational"
            findings.append(_finding(claim, "explained", _score(item, score, summary), run, prov, tool))
    timings = summary.get("timings") or {}
    seconds = run.elapsed_s if run.elapsed_s is not None else \
        (float(sum(v for v in timings.values() if isinstance(v, (int, float)))) or None)
    n_contexts = int(summary.get("n_contexts") or 0)
    numbers = {"n_contexts": n_contexts, "context_length": summary.get("context_length"),
               "hookpoint": summary.get("hookpoint"), "n_explained": len(summary.get("features") or []),
               "harvest_s": timings.get("harvest_s"),
               "explain_and_score_s_per_feature": (summary.get("seconds_per_feature") or {}).get("explain_and_score")}
    record = RunRecord(run.ref, "explain", (model,), run.filed_at, None, sig(seconds),
                       costs.explain_passes(n_contexts), {k: sig(v) for k, v in numbers.items()})
    return RunFindings(record, None, tuple(findings), tuple(str(w) for w in summary.get("warnings") or ())[:3])


# -- match -------------------------------------------------------------------------------------


def _pair(m: dict[str, Any], left: str, right: str) -> _Got:
    comps = m.get("components") or {}
    agree = m.get("signed_effects_agree")
    numbers = {"similarity": m.get("similarity"), **{f"{c}_similarity": v for c, v in comps.items()},
               "components_used": list(m.get("components_used") or []), "mutual_nearest": m.get("mutual_nearest"),
               "signed_effects_agree": agree, "signed_effects_basis": m.get("signed_effects_basis")}
    used = ", ".join(f"{c} {fmt(comps.get(c))}" for c in m.get("components_used") or []) or "no component"
    line = (f"matched to {m.get('right_feature_id')} in {right}: similarity {fmt(m.get('similarity'))} ({used}); "
            f"mutual nearest {'yes' if m.get('mutual_nearest') else 'no'}; signed effects agree "
            f"{'unknown' if agree is None else 'yes' if agree else 'no'}")
    notes = (["the two features' signed effects on the criterion disagree"] if agree is False else []) + \
        (["both reports are of one model: not a transfer across models"] if left == right else [])
    return _Got("supports", bool(notes), line, numbers, "; ".join(notes))


def _match(run: _Run, result: dict[str, Any]) -> RunFindings:
    path = run.path
    prov = _need(result, "provenance", path, dict)
    left, right = _need(prov, "left_model", path, str, "provenance."), _need(prov, "right_model", path, str,
                                                                             "provenance.")
    synthetic = bool(prov.get("synthetic"))
    findings: list[Finding] = []
    for i, m in enumerate(_need(result, "matches", path, list)):
        lf = _need(m, "left_feature_id", path, str, f"matches[{i}].")
        rf = _need(m, "right_feature_id", path, str, f"matches[{i}].")
        claim = Claim.new("corresponds", left, lf, other_model=right, other_feature_id=rf)
        kinds = set((m.get("provenance") or {}).values())
        provenance: Provenance = "synthetic" if synthetic else "imported" if "imported" in kinds else "correlational"
        findings.append(_finding(claim, "transferred", _pair(m, left, right), run, provenance, "match"))
    numbers = {"n_matches": len(findings), "min_similarity": (result.get("settings") or {}).get("min_similarity"),
               "synthetic": synthetic}
    models = (left,) if left == right else (left, right)
    record = RunRecord(run.ref, "match", models, run.filed_at, None, run.elapsed_s, 0, numbers)
    return RunFindings(record, None, tuple(findings), tuple(str(n) for n in result.get("notes") or ())[:3])


# -- validate_matches --------------------------------------------------------------------------

_VALIDATION_STANCE: dict[str, Stance] = {"equivalent": "supports", "same_direction": "supports",
                                         "similar": "supports", "opposite": "contradicts"}


def _validated_pair(row: dict[str, Any], left: str, right: str) -> _Got:
    lside, rside = obj(row.get("left")), obj(row.get("right"))
    grade = row.get("grade")
    numbers = {"grade": grade, "left_effect": lside.get("effect"), "left_effect_ci95": lside.get("ci95"),
               "left_verdict": lside.get("verdict"), "right_effect": rside.get("effect"),
               "right_effect_ci95": rside.get("ci95"), "right_verdict": rside.get("verdict"),
               "sign_agree": row.get("sign_agree"), "ratio": row.get("ratio"), "ratio_ci95": row.get("ratio_ci95"),
               "n_shared_prompts": row.get("n_shared_prompts"), "measured_on": lside.get("measured_on")}
    line = (f"validated against {row.get('right_feature_id')} in {right} by intervention: grade {grade}; effects "
            f"left {fmt(lside.get('effect'), '+.3f')} {interval(lside.get('ci95'), '+.3f')} "
            f"({lside.get('verdict')}), right {fmt(rside.get('effect'), '+.3f')} "
            f"{interval(rside.get('ci95'), '+.3f')} ({rside.get('verdict')}); ratio {fmt(row.get('ratio'))} "
            f"{interval(row.get('ratio_ci95'))} on {row.get('n_shared_prompts')} shared held-out prompts")
    notes = ([f"similar only: {row.get('grade_reason')}"] if grade == "similar" else []) + \
        (["both sides are one model: not a transfer across models"] if left == right else [])
    stance = _VALIDATION_STANCE[str(grade)]
    return _Got(stance, stance == "supports" and bool(notes), line, numbers, "; ".join(notes))


def _validation(run: _Run, result: dict[str, Any]) -> RunFindings:
    path = run.path
    prov = _need(result, "provenance", path, dict)
    left, right = _need(prov, "left_model", path, str, "provenance."), _need(prov, "right_model", path, str,
                                                                             "provenance.")
    criterion = _need(result, "criterion", path, str)
    provenance: Provenance = "synthetic" if prov.get("synthetic") else "interventional"
    findings: list[Finding] = []
    for i, row in enumerate(_need(result, "pairs", path, list)):
        lf = _need(row, "left_feature_id", path, str, f"pairs[{i}].")
        rf = _need(row, "right_feature_id", path, str, f"pairs[{i}].")
        if row.get("grade") not in _VALIDATION_STANCE:
            raise InputFileError(path, f"unknown grade {row.get('grade')!r}; expected one of "
                                 f"{list(_VALIDATION_STANCE)}", field=f"pairs[{i}].grade")
        claim = Claim.new("corresponds", left, lf, other_model=right, other_feature_id=rf)
        findings.append(_finding(claim, "transferred", _validated_pair(row, left, right), run, provenance,
                                 "validate_matches"))
    settings = obj(result.get("settings"))
    n_cal, n_held = int(settings.get("n_calibration") or 0), int(settings.get("n_held_out") or 0)
    n_strengths = len(settings.get("strengths") or ()) or 3
    scorer = obj(result.get("scorer")).get("kind")
    numbers = {"mode": settings.get("mode"), "n_pairs": len(findings), "n_calibration": n_cal,
               "n_held_out": n_held, "scorer": scorer, **{k: v for k, v in obj(result.get("summary")).items()
                                                           if isinstance(v, int)}}
    passes = 2 * costs.intervene_passes(len(findings), n_cal, n_held, n_strengths, scorer=scorer)
    models = (left,) if left == right else (left, right)
    record = RunRecord(run.ref, "validate_matches", models, run.filed_at, None, run.elapsed_s, passes, numbers)
    return RunFindings(record, criterion, tuple(findings))


# -- entry point -------------------------------------------------------------------------------


def run_file(kind: str, run_dir: str | Path) -> Path:
    """The file a run of ``kind`` is read from: ``run_dir`` itself when it is a file, else the first found of
    :data:`RUN_FILES` in it.

    Raises:
        ValidationError: ``kind`` is not a kind of run.
        InputFileError: the folder does not exist, or holds none of the kind's files.
    """
    if kind not in RUN_FILES:
        raise ValidationError(f"kind {kind!r} is not a kind of run", hint=f"use one of {list(RUN_FILES)}")
    path = Path(run_dir)
    if path.is_file():
        return path
    if not path.is_dir():
        raise InputFileError(path, "run folder not found", hint="file a run folder that exists: the out folder of "
                             f"interp-agent {kind}, or runs/<run_id> of its job")
    for name in RUN_FILES[kind]:
        if (path / name).is_file():
            return path / name
    raise InputFileError(path, f"holds no {' or '.join(RUN_FILES[kind])}: is it the folder of a {kind} run?",
                         hint=f"interp-agent {kind} writes {RUN_FILES[kind][-1]} into its out folder")


def read_run(kind: str, run_dir: str | Path, *, folder_as: Callable[[Path], str] | None = None,
             run_id: str | None = None, top: int = DEFAULT_TOP, elapsed_s: float | None = None,
             filed_at: str) -> RunFindings:
    """What the run of ``kind`` in ``run_dir`` measured (rules in the module docstring).

    Args:
        folder_as: how the folder is cited (the store's ``folder_of``: relative to the workspace); default absolute.
        run_id: the job's run id, when the run was a job.
        top: inspect only: the report's top features to file.
        elapsed_s: the run's wall-clock seconds, when the caller timed it.
        filed_at: the time of filing, the same for every item of the run.
    """
    if not isinstance(top, int) or isinstance(top, bool) or top < 1:
        raise ValidationError(f"top = {top!r}: give a whole number of features >= 1")
    path = run_file(kind, run_dir).absolute()
    folder = path.parent
    ref = RunRef((folder_as or (lambda p: p.as_posix()))(folder), path.name, run_id)
    run = _Run(path, ref, filed_at, None if elapsed_s is None else sig(float(elapsed_s)))
    if kind == "explain":
        summary = load_json(folder / "explain.json")
        return _explain(run, summary, folder)
    raw = load_json(path)
    if kind == "inspect":
        return _inspect(run, raw, top)
    if kind == "intervene":
        return _intervene(run, raw)
    if kind == "validate_matches":
        return _validation(run, raw)
    return _match(run, raw)
