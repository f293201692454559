"""Check the tools on an organism: does our investigation find the planted behaviour, and only where it is?

``check_organism`` runs the investigation (the steps of the ``investigate`` workflow: inspect the
live model, intervene on the top features with controls, rank again) on the organism and on its
unmodified base model, on the same evidence prompts (never the ones that built the edit), with
the target-token scorer on the implanted target. It passes when:

1. implanted: P(target) after held-out trigger prompts is high on the organism and its
   interval lies above the base model's;
2. others_unchanged: on other prompts the next-token distribution barely moves (mean KL);
3. found_on_organism: some feature's intervention earns the verdict ``causal`` (controls included);
4. absent_on_base: on the base model nothing comes close: no causal verdict of comparable
   size (its scorer may refuse, since the behaviour is absent: that is recorded as the
   finding), and the organism's causal feature, steered on and off in the base model (its
   own direction, same strength), moves P(target) by less than half the organism's effect.

Beside them, baselines as AxBench reports them (``baselines``). Everything is written to
``organism_check.json`` and ``organism_check.md``.
"""

from __future__ import annotations

import time
from collections.abc import Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from interp_agent.core.artifacts import run_provenance, schema_version, write_json, write_text
from interp_agent.core.errors import EvidenceError, InputFileError, ValidationError
from interp_agent.core.formats.prompts import ScoredPrompt, write_scored_prompts
from interp_agent.core.organisms.baselines import detection_baselines, prompting_baseline
from interp_agent.core.organisms.build import MANIFEST, read_manifest
from interp_agent.core.organisms.measure import compare, next_token_logprobs
from interp_agent.core.organisms.prompts import organism_prompts
from interp_agent.core.organisms.report import check_markdown
from interp_agent.core.organisms.steering import steer_both_ways
from interp_agent.core.progress import Progress
from interp_agent.core.ranking.config import HELD_OUT_FRACTION, SPLIT_SALT

CHECK_SCHEMA = schema_version("organism_check")
CRITERION = "prompts about the {trigger}, after which the next token is {target!r} (the implanted behaviour)"
"""Criterion text of the check (the scored prompts label trigger prompts 1, others 0)."""


@dataclass(frozen=True, slots=True)
class CheckConfig:
    """How big the check is, and its pass thresholds."""

    hookpoints: tuple[str, ...] | None = None
    """Hookpoints inspected; None: ``blocks.{layer-1}.hook_resid_post``, just upstream of the planted neuron, so
    a feature found there acts through the implant rather than being its output."""
    pooling: Literal["mean", "last"] = "mean"
    """How inspect (and the detection baselines) pool a prompt's tokens: ``mean`` over the tokens after the
    first reads the topic wherever it is written; ``last`` only what the last token holds at the hookpoint."""
    prompts_per_class: int | None = 32
    """Evidence prompts per class used (spread evenly over the evidence set); None: all of them."""
    top_k: int = 1
    """Top features of the first ranking intervened on (the report's best direction is always added)."""
    strengths: tuple[float, ...] = (-1.0, -0.5, 0.5, 1.0)
    """Steering strengths tried on calibration prompts (units of the feature's scale)."""
    max_kl_other: float = 0.01
    """Largest mean KL(base || organism), in nats, on other prompts that still counts as unchanged."""
    base_fraction: float = 0.5
    """The base model's best |effect| must stay below this share of the organism's."""

    def __post_init__(self) -> None:
        if self.prompts_per_class is not None and self.prompts_per_class < 8:
            raise ValidationError(f"prompts_per_class must be at least 8 (or None for all), got "
                                  f"{self.prompts_per_class}", hint="interventions need held-out prompts of both "
                                                                    "classes; 32 is typical")
        if self.pooling not in ("mean", "last"):
            raise ValidationError(f"pooling must be 'mean' or 'last', got {self.pooling!r}")
        if self.top_k < 1 or not self.strengths:
            raise ValidationError(f"top_k must be >= 1 and strengths non-empty, got {self.top_k}, {self.strengths}")
        if not self.max_kl_other > 0 or not 0 < self.base_fraction < 1:
            raise ValidationError(f"max_kl_other must be > 0 and base_fraction in (0, 1), got {self.max_kl_other}, "
                                  f"{self.base_fraction}")


@dataclass(frozen=True, slots=True)
class CheckResult:
    """What ``check_organism`` returns."""

    passed: bool
    """All of ``checks`` hold."""
    checks: dict[str, bool]
    """implanted, others_unchanged, found_on_organism, absent_on_base."""
    result: dict[str, Any]
    """organism_check.json as written."""
    paths: dict[str, Path]
    """organism_check.json, organism_check.md, prompts.jsonl and the two investigations' folders."""


def check_prompts(
    manifest: dict[str, Any], prompts_per_class: int | None, source: str | Path = MANIFEST
) -> list[ScoredPrompt]:
    """The evidence prompts of the organism (``prompts_per_class`` of each class, spread evenly).

    ``source`` names the manifest in errors.

    Raises:
        InputFileError: the built-in prompts no longer match the manifest's evidence ids, or overlap its build ids.
    """
    made = organism_prompts(manifest["trigger"]["topic"], int(manifest["seed"]))
    ids = [p.prompt_id for p in made.evidence]
    if ids != list(manifest["prompts"]["evidence"]) or set(ids) & set(manifest["prompts"]["build"]):
        raise InputFileError(source, "the organism's evidence prompts do not match the built-in prompt set "
                             "(it changed since the organism was built, or build and evidence overlap)",
                             hint="build the organism again with this version")
    out: list[ScoredPrompt] = []
    for trigger in (True, False):
        group = [p for p in made.evidence if (p.criterion_score > 0.5) == trigger]
        n = len(group) if prompts_per_class is None else min(prompts_per_class, len(group))
        out.extend(group[i * len(group) // n] for i in range(n))
    return out


def check_organism(
    organism_dir: str | Path, out: str | Path, config: CheckConfig | None = None, *, base: str | None = None,
    progress: Progress | None = None,
) -> CheckResult:
    """Run the investigation on the organism and on its base model, with baselines; write the check into ``out``.

    Args:
        organism_dir: a folder written by ``build_organism``.
        out: output folder (organism_check.json / .md, prompts.jsonl, ``organism/`` and ``base/`` runs).
        config: size and thresholds of the check.
        base: the unmodified model (default: the manifest's base model).

    Raises:
        InputFileError: ``organism_dir`` is not an organism folder.
    """
    config = config or CheckConfig()
    organism_dir, out = Path(organism_dir), Path(out)
    manifest = read_manifest(organism_dir)
    prompts = check_prompts(manifest, config.prompts_per_class, organism_dir / MANIFEST)
    out.mkdir(parents=True, exist_ok=True)
    dataset = write_scored_prompts(out / "prompts.jsonl", prompts)
    target, layer = manifest["target"]["text"], int(manifest["edit"]["layer"])
    criterion = CRITERION.format(trigger=manifest["trigger"]["topic"], target=target)
    hooks = config.hookpoints or (f"blocks.{max(layer - 1, 0)}.hook_resid_post",)
    models = {"organism": str(organism_dir), "base": base or manifest["base_model"]["name"]}
    runs = {name: _investigate_one(model, criterion, dataset, out / name, hooks, config, target, progress)
            for name, model in models.items()}
    measured = _measure(models, manifest, prompts, criterion, hooks, runs, config.pooling)
    result = _result(manifest, config, models, hooks, criterion, runs, measured, dataset, organism_dir)
    paths = {"json": write_json(out / "organism_check.json", result),
             "md": write_text(out / "organism_check.md", check_markdown(result)), "prompts": dataset,
             "organism": out / "organism", "base": out / "base"}
    return CheckResult(passed=result["passed"], checks=result["checks"], result=result, paths=paths)


def _investigate_one(
    model: str, criterion: str, dataset: Path, out: Path, hooks: Sequence[str], config: CheckConfig, target: str,
    progress: Progress | None,
) -> dict[str, Any]:
    """Inspect, intervene on the top features with controls, rank again; a scorer that refuses is the finding.

    These are the three calls of the ``investigate`` workflow, with its arguments; a step module
    may not import a workflow (tests/core/test_workflow_layer.py), so they are made here.
    """
    from interp_agent.core.inspection import inspect
    from interp_agent.core.live import intervene
    from interp_agent.core.ranking import RankingConfig

    start = time.perf_counter()
    folders = {"first": out / "1-inspect", "intervene": out / "2-intervene", "final": out / "3-report"}
    inspect_options: dict[str, Any] = {"backend": "hf", "dataset": dataset, "hookpoints": list(hooks),
                                       "pooling": config.pooling, "config": RankingConfig(top_k=10)}
    first = inspect(model, criterion, out=folders["first"], progress=progress, **inspect_options)
    try:
        inter = intervene(model, criterion, out=folders["intervene"], report=first.paths["json"], dataset=dataset,
                          top_k=config.top_k, mode="steer", strengths=config.strengths, targets=[target],
                          scorer="target", progress=progress)
    except EvidenceError as exc:
        return {"model": model, "folders": folders, "refused": {"message": exc.message, "hint": exc.hint},
                "summary": None, "final": None, "seconds": time.perf_counter() - start}
    final = inspect(model, criterion, out=folders["final"], interventions=inter.paths["interventions"],
                    progress=progress, **inspect_options)
    return {"model": model, "folders": folders, "refused": None, "summary": inter.summary, "final": final.report,
            "seconds": time.perf_counter() - start}


def _measure(
    models: dict[str, str], manifest: dict[str, Any], prompts: list[ScoredPrompt], criterion: str,
    hooks: Sequence[str], runs: dict[str, dict[str, Any]], pooling: Literal["mean", "last"],
) -> dict[str, Any]:
    """Behaviour of both models, the baselines on each, and the organism's best edit applied to the base model."""
    from interp_agent.core.live import split_prompts
    from interp_agent.core.models import load_model

    loaded = {name: load_model(path, device="cpu") for name, path in models.items()}
    target, target_id = manifest["target"]["text"], int(manifest["target"]["token_id"])
    calibration, held = split_prompts(criterion, prompts, held_out_fraction=HELD_OUT_FRACTION, salt=SPLIT_SALT)
    texts = [p.text for p in prompts]
    lp = {name: next_token_logprobs(m, texts) for name, m in loaded.items()}
    trig = torch.tensor([p.criterion_score > 0.5 for p in prompts])
    behaviour = {"provenance": "synthetic_organism", "measured_on": f"the check's {len(prompts)} evidence prompts",
                 "trigger_prompts": compare(lp["base"][trig], lp["organism"][trig], target_id),
                 "other_prompts": compare(lp["base"][~trig], lp["organism"][~trig], target_id)}
    detection = {name: [detection_baselines(m, h, calibration, held, _our_vectors(runs[name], h, m.d_model), pooling)
                        for h in hooks] for name, m in loaded.items()}
    prompting = {name: prompting_baseline(m, held, target, target_id) for name, m in loaded.items()}
    best = _best((runs["organism"]["summary"] or {}).get("features", []), "causal")
    steering = None if best is None else steer_both_ways(
        best, {name: run["folders"]["first"] for name, run in runs.items()}, loaded, held, target_id)
    return {"behaviour": behaviour, "detection": detection, "prompting": prompting, "steering": steering,
            "split": {"calibration": len(calibration), "held_out": len(held),
                      "held_out_positive": sum(p.criterion_score > 0.5 for p in held)}}


def _top_features(run: dict[str, Any]) -> list[dict[str, Any]]:
    """The run's final ranking (with causal evidence), else its first one."""
    import json

    if run["final"] is not None:
        return run["final"]["features"]
    report = run["folders"]["first"] / "report.json"
    return json.loads(report.read_text())["features"] if report.is_file() else []


def _vector(fid: str, hook: str, width: int, directions: dict[str, tuple[str, np.ndarray]]) -> np.ndarray | None:
    """A feature at ``hook`` as a unit vector: its saved direction, or the basis vector of a dimension."""
    from interp_agent.core.ids import match_feature_id

    if fid in directions:
        where, vector = directions[fid]
        return vector / (np.linalg.norm(vector) or 1.0) if where == hook else None
    parsed = match_feature_id(fid)
    if parsed is None or parsed.kind != "dim" or parsed.index is None or parsed.index >= width \
            or parsed.hookpoint is None or parsed.hookpoint.name != hook:
        return None
    u = np.zeros(width)
    u[parsed.index] = 1.0
    return u


def _our_vectors(run: dict[str, Any], hook: str, width: int) -> dict[str, np.ndarray]:
    """The run's top-ranked feature at ``hook`` as a vector, and its best causal one when different."""
    from interp_agent.core.live import load_directions

    directions = load_directions(run["folders"]["first"])
    ranked = [f["feature_id"] for f in _top_features(run)]
    top = next((fid for fid in ranked if _vector(fid, hook, width, directions) is not None), None)
    best = _best((run["summary"] or {}).get("features", []), "causal")
    picks = [fid for fid in (top, best["feature_id"] if best else None) if fid]
    return {fid: v for fid in picks if (v := _vector(fid, hook, width, directions)) is not None}


def _best(features: Sequence[dict[str, Any]], verdict: str | None = None) -> dict[str, Any] | None:
    """The feature of largest |held-out effect| (of ``verdict`` when given)."""
    pool = [f for f in features if verdict is None or f["verdict"] == verdict]
    return max(pool, key=lambda f: abs(f["effect"]["mean"]), default=None)


def _run_record(run: dict[str, Any]) -> dict[str, Any]:
    """What the check keeps of one investigation: the scorer, each feature's verdict and effect, the top ranks."""
    summary = run["summary"]
    features = [] if summary is None else [
        {"feature_id": f["feature_id"], "verdict": f["verdict"], "intervention": f["intervention"],
         "strength": f.get("strength"), "value": f.get("value"), "effect": f["effect"],
         "control_effect": {k: f["control_effect"][k] for k in ("mean", "max_abs", "rms")},
         "side_effect": f.get("side_effect"), "verdict_reason": f.get("verdict_reason")}
        for f in summary["features"]]
    top = [{"feature_id": f["feature_id"], "rank": f["rank"], "importance": f["importance"],
            "held_out_auroc": (f["association"].get("held_out") or {}).get("auroc"),
            "held_out_auroc_ci95": (f["association"].get("held_out") or {}).get("auroc_ci95"),
            "causal_verdict": (f.get("causal") or {}).get("verdict")} for f in _top_features(run)[:5]]
    scorer = None if summary is None else {k: summary["scorer"].get(k) for k in
                                           ("auroc", "calibration_auroc", "usable", "targets")}
    return {"model": run["model"], "seconds": run["seconds"], "refused": run["refused"], "scorer": scorer,
            "interventions": features, "top_features": top,
            "folders": {k: str(v) for k, v in run["folders"].items()}}


def _checks(config: CheckConfig, record: dict[str, Any], measured: dict[str, Any]) -> dict[str, bool]:
    trig, other = measured["behaviour"]["trigger_prompts"], measured["behaviour"]["other_prompts"]
    org_ci, base_ci = trig["organism"]["p_target"]["ci95"], trig["base"]["p_target"]["ci95"]
    org_best = _best(record["organism"]["interventions"], "causal")
    org_effect = abs(org_best["effect"]["mean"]) if org_best else 0.0
    base_best = _best(record["base"]["interventions"])
    base_effects = [abs(base_best["effect"]["mean"])] if base_best else []
    steered = (measured["steering"] or {}).get("base") or {}
    base_effects += [abs(steered[way]["change"]["mean"]) for way in ("on", "off") if way in steered]
    base_causal = [f for f in record["base"]["interventions"] if f["verdict"] == "causal"
                   and abs(f["effect"]["mean"]) >= config.base_fraction * org_effect]
    return {
        "implanted": bool(org_ci and base_ci and trig["organism"]["p_target"]["mean"] >= 0.5
                          and org_ci[0] > base_ci[1]),
        "others_unchanged": other["kl_base_to_organism"]["mean"] <= config.max_kl_other,
        "found_on_organism": org_best is not None,
        "absent_on_base": org_best is not None and not base_causal
                          and max(base_effects, default=0.0) < config.base_fraction * org_effect,
    }


def _result(
    manifest: dict[str, Any], config: CheckConfig, models: dict[str, str], hooks: Sequence[str], criterion: str,
    runs: dict[str, dict[str, Any]], measured: dict[str, Any], dataset: Path, organism_dir: Path,
) -> dict[str, Any]:
    record = {name: _run_record(run) for name, run in runs.items()}
    checks = _checks(config, record, measured)
    return {
        "schema_version": CHECK_SCHEMA, "synthetic_organism": True, "passed": all(checks.values()),
        "checks": checks, "models": models, "criterion": criterion, "hookpoints": list(hooks),
        "implant": {k: manifest[k] for k in ("trigger", "target", "edit", "seed")},
        "config": asdict(config), "split": measured["split"],
        "behaviour": measured["behaviour"], "investigation": record,
        "steering_both_ways": measured["steering"],
        "baselines": {"detection": measured["detection"], "prompting": measured["prompting"]},
        "provenance": run_provenance({"prompts": dataset, "organism_manifest": organism_dir / MANIFEST})
        | {"numbers": "behaviour: synthetic_organism (measured on the organism and its base); investigation "
                      "effects: interventional (held-out prompts, with controls); detection AUROCs: correlational "
                      "(held-out prompts); prompting: interventional (prompting)"},
    }
