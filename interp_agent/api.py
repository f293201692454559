"""The Python API: ``inspect``, ``intervene``, ``explain``, ``investigate``, ``calibrate``, ``train_sae``,
``match`` and ``convert``, the cross-model ``match_activations``, ``validate_matches``, ``finetune``,
``diff_models`` and ``train_crosscoder``, criterion authoring (``compile_criterion``, ``score_prompts``),
steering artifacts (``export_steering``, ``apply_steering``), imports (``import_interp_lab``,
``convert_hidden_dump``), ``feature_effects`` and ``capabilities``: thin wrappers over ``interp_agent.core``.

Each function imports the core modules it wraps when called, not when this module is
imported: the CLI imports this module for ``match`` and ``convert``, which need neither
the ranking code (scipy) nor pyarrow nor, for ``intervene`` and ``train_sae``, torch.
``inspect`` is ``interp_agent.core.inspection.inspect``, loaded on first access.
"""

from __future__ import annotations

import importlib
import os
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

from interp_agent.core.errors import InputFileError, ValidationError

if TYPE_CHECKING:
    from interp_agent.core.inspection import InspectionResult, inspect

__all__ = ["apply_steering", "calibrate", "capabilities", "compile_criterion", "convert", "convert_hidden_dump",
           "diff_models", "explain", "export_steering", "feature_effects", "finetune", "import_interp_lab", "inspect",
           "intervene", "investigate", "match", "match_activations", "score_prompts", "train_crosscoder", "train_sae",
           "validate_matches"]


def __getattr__(name: str) -> Any:
    """``inspect`` (and ``InspectionResult``) from ``interp_agent.core.inspection``, imported on first access."""
    if name not in ("inspect", "InspectionResult"):
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module("interp_agent.core.inspection"), name)
    globals()[name] = value
    return value


def _report_file(value: Any) -> Path | None:
    """The report.json a match side was read from, when it was given as a path or a result with paths."""
    if isinstance(value, (str, os.PathLike)):
        path = Path(value)
        return path / "report.json" if path.is_dir() else path
    paths = getattr(value, "paths", None)
    return Path(paths["json"]) if isinstance(paths, dict) and paths.get("json") else None


def _as_report(value: str | Path | dict[str, Any] | InspectionResult) -> dict[str, Any]:
    from interp_agent.core.matching import load_report

    if isinstance(value, dict):
        return value
    if isinstance(value, (str, os.PathLike)):
        path = Path(value)
        return load_report(path / "report.json" if path.is_dir() else path)
    # the only other type allowed, tested for last so that its module need not be imported
    return value.report


def match(
    left: str | Path | dict[str, Any] | InspectionResult,
    right: str | Path | dict[str, Any] | InspectionResult,
    *,
    out: str | Path | None = None,
    min_similarity: float = 0.3,
    weights: dict[str, float] | None = None,
    use_text: bool = True,
) -> dict[str, Any]:
    """Match the features of two inspection reports one to one.

    Args:
        left, right: report.json paths, report folders, report dicts or InspectionResults.
        out: where to write the matches JSON, e.g. ``x/left_vs_right.json``; the markdown is
            written beside it under the same name (``x/left_vs_right.md``). An existing folder
            means ``folder/matches.json`` and ``folder/matches.md``.
        min_similarity: smallest combined similarity kept as a match.
        weights: component weights (activation, decoder, text, causal).
        use_text: embed labels with all-MiniLM-L6-v2 (needs the ``embed`` extra); the model
            loads only when both reports have text not yet in the embedding cache.

    Returns:
        The matches document (as written to matches.json).
    """
    from interp_agent.core.matching import match_reports, write_matches

    result = match_reports(
        _as_report(left), _as_report(right), min_similarity=min_similarity, weights=weights, use_text=use_text
    )
    inputs = {side: _report_file(value) for side, value in (("left", left), ("right", right))}
    given: dict[str, str | Path | None] = {side: path for side, path in inputs.items() if path is not None}
    if given:  # where each side's report lives: validate_matches reads its directions from there
        from interp_agent.core.artifacts import run_provenance

        result["provenance"]["inputs"] = run_provenance(given)["inputs"]
    if out is not None:
        write_matches(result, out)
    return result


def convert(src: str | Path, out: str | Path) -> Path:
    """Convert activation records between JSONL and a Parquet dataset folder (direction from ``src``)."""
    from interp_agent.core.formats.parquet import (
        is_parquet_dataset,
        jsonl_to_parquet,
        parquet_to_jsonl,
    )

    src_path = Path(src)
    if is_parquet_dataset(src_path):
        if Path(out).suffix != ".jsonl":
            raise ValidationError(f"converting a Parquet dataset writes JSONL; name the output *.jsonl, got {out}")
        return parquet_to_jsonl(src_path, out)
    if src_path.is_file():
        if Path(out).suffix == ".jsonl":
            raise ValidationError(f"converting JSONL writes a Parquet dataset folder; {out} ends in .jsonl")
        return jsonl_to_parquet(src_path, out)
    raise InputFileError(src_path, "not found: expected a records JSONL file or a Parquet dataset folder")


def intervene(model: str, criterion: str | None = None, **kwargs: Any) -> Any:
    """Intervene on features of a live model with controls; see ``interp_agent.core.live.intervene``.

    Returns an ``InterveneResult`` (``summary`` as in summary.json, ``paths``).
    """
    from interp_agent.core.live import intervene as _intervene

    return _intervene(model, criterion, **kwargs)


def train_sae(
    *,
    out: str | Path,
    model: str | None = None,
    dataset: str | Path | None = None,
    pack: str | None = None,
    criterion: str | None = None,
    hookpoint: str | None = None,
    activations: Any = None,
    records: str | Path | None = None,
    causal_out: str | Path | None = None,
    progress: Any = None,
    **settings: Any,
) -> Any:
    """Train an SAE into ``out``; see ``interp_agent.core.workflows.trained_latents.train_sae``.

    ``settings`` are the fields of ``TrainSettings`` (preset, architecture, latent_dim,
    expansion_factor, k, batch_size, steps, lr, seed, device, max_records, …).
    Returns a ``TrainResult`` (``metrics`` as in metrics.json, ``paths``, ``causal``).
    """
    from interp_agent.core.sae.train import TrainSettings
    from interp_agent.core.workflows.trained_latents import train_sae as _train

    try:
        parsed = TrainSettings(**settings)
    except TypeError as exc:
        raise ValidationError(f"train_sae: {exc}", hint="settings are the fields of TrainSettings") from None
    return _train(out=out, model=model, dataset=dataset, pack=pack, criterion=criterion, hookpoint=hookpoint,
                  activations=activations, records=records, settings=parsed, causal_out=causal_out, progress=progress)


def explain(
    model: str = "smollm2-135m",
    *,
    out: str | Path,
    sae: str | Path | None = None,
    hookpoint: str | None = None,
    features: list[str] | None = None,
    n_features: int = 32,
    report: str | Path | None = None,
    top_k: int = 10,
    corpus: str | Path = "builtin",
    max_contexts: int | None = 2048,
    explainer: str = "local",
    scorers: tuple[str, ...] = ("embedding",),
    judge: str | None = None,
    explanations: str | Path | None = None,
    seed: int = 0,
    **options: Any,
) -> Any:
    """Explain features in words from corpus evidence and score the explanations on held-out contexts.

    Args:
        model: the live model (the embedded ``smollm2-135m`` by default).
        out: the run folder (``explain.json``, ``explanations.jsonl``, ``labels.parquet``,
            ``report.html``, ``evidence/``).
        sae: an SAE folder whose latents to explain; or ``hookpoint`` for its basis features.
        features: feature ids to explain; default ``n_features`` live ones drawn at random.
        report: an inspect report: explain its ``top_k`` features and write it again with them attached.
        corpus: ``builtin`` (generated general English), a file, a folder, or ``hf:DATASET``.
        explainer: ``local`` (offline token statistics), ``model`` (the embedded model), ``chat``, ``none``.
        scorers: some of ``embedding``, ``detection``, ``fuzzing`` (need ``judge``), ``output``.
        judge: ``model`` (a weak local judge) or ``chat``.
        explanations: a file of explanations to score as well.
        options: other ``ExplainRequest`` fields (``context_length``, ``batch_size``, ``device``, ...).

    Returns:
        An ``ExplainRun``: ``evidence``, ``explained`` (feature id -> ScoredExplanation), ``summary``, ``folder``.
    """
    from interp_agent.core.workflows.explain import ExplainRequest, run_explain

    req = ExplainRequest(out=str(out), model=model, sae=None if sae is None else str(sae), hookpoint=hookpoint,
                         feature_ids=tuple(features or ()), n_features=n_features,
                         report=None if report is None else str(report), top_k=top_k, corpus=str(corpus),
                         max_contexts=max_contexts, explainer=cast(Any, explainer), scorers=tuple(scorers),
                         judge=judge, explanations=None if explanations is None else str(explanations), seed=seed,
                         **options)
    return run_explain(req)


def investigate(
    model: str = "smollm2-135m",
    criterion: str | None = None,
    *,
    out: str | Path,
    pack: str | None = None,
    dataset: str | Path | None = None,
    max_forward_passes: int | None = None,
    max_seconds: float | None = None,
    dossier: str | Path | None = None,
    **options: Any,
) -> Any:
    """A whole investigation: inspect, explain the top features, intervene with controls, rank again, each
    step filed into a dossier (``out/dossier.json`` unless ``dossier`` names a file), within a budget.

    Args:
        model: the live model (the embedded ``smollm2-135m`` by default, a local folder, a hub id).
        criterion: the criterion (a ``pack`` brings its own; required with ``dataset``).
        max_forward_passes, max_seconds: the budget all steps share (None: no limit).
        options: other ``InvestigateRequest`` fields (``hookpoints``, ``n_explain``, ``n_intervene``, ``mode``,
            ``scorer``, ``targets``, ``corpus``, ``max_contexts``, ``top_k``).

    Returns:
        An ``InvestigationRun``: ``steps`` (status, passes, seconds, reason), ``summary`` (investigation.json),
        ``paths`` (investigation, dossier, report).
    """
    from interp_agent.core.workflows.investigate import Budget, InvestigateRequest, run_investigation

    for key in ("hookpoints", "targets", "strengths"):
        if options.get(key) is not None:
            options[key] = tuple(options[key])
    req = InvestigateRequest(out=str(out), model=model, criterion=criterion, pack=pack,
                             dataset=None if dataset is None else str(dataset),
                             budget=Budget(max_forward_passes=max_forward_passes, max_seconds=max_seconds),
                             dossier=None if dossier is None else str(dossier), **options)
    return run_investigation(req)


def calibrate(out: str | Path | None = None, *, seeds: int = 3, **options: Any) -> Any:
    """Does the pipeline find what is planted? Rank planted worlds (records form) over ``seeds`` seeds and
    report precision/recall at k, decoy shares and the rank correlation of causal effects against thresholds.

    Args:
        out: folder for calibration.json and calibration.md (None: nothing written).
        options: other ``CalibrationConfig`` fields (``levels``, ``ks``, ``n_prompts``, ...).

    Returns:
        A ``CalibrationResult``: ``passed``, ``failed``, ``checks``, ``levels``, ``paths``.
    """
    from interp_agent.core.calibrate import CalibrationConfig, run_calibration

    return run_calibration(CalibrationConfig(seeds=tuple(range(seeds)), **options), out=out)


def match_activations(left: dict[str, Any], right: dict[str, Any], *, out: str | Path | None = None,
                      probes: str = "builtin", **options: Any) -> dict[str, Any]:
    """Match the features of two sides by their activations on one probe set.

    Args:
        left, right: sides, e.g. ``{"model": "smollm2-135m", "hookpoint": "blocks.15.hook_resid_post",
            "features": "sae", "sae": "sae/"}`` (keys: model, hookpoint, features (dims, neurons, sae,
            direction), sae, directions, feature_ids, label); ``finetune:default`` names the built-in fine-tune.
        out: where to write the matches JSON (and the markdown beside it), as for :func:`match`.
        probes: ``builtin`` (the general English corpus), a pack name or a scored-prompts / corpus file.
        options: ``match_sides`` options: ``pooling`` (token, mean, max), ``max_length``, ``max_prompts``,
            ``null_permutations``, ``seed``, ``min_correlation``.

    Returns:
        The ``interp-agent.matches.v1`` document, with ``method: activations``.
    """
    from interp_agent.core.crossmodel.activations import match_sides
    from interp_agent.core.crossmodel.sides import side_from_dict
    from interp_agent.core.diffing.named import resolve_model_name
    from interp_agent.core.matching import write_matches

    sides = [dict(s) | {"model": resolve_model_name(str(s.get("model") or "smollm2-135m"))} for s in (left, right)]
    doc = match_sides(side_from_dict(sides[0], "left"), side_from_dict(sides[1], "right"), probes, **options)
    if out is not None:
        write_matches(doc, out)
    return doc


def validate_matches(matches: str | Path | dict[str, Any], *, out: str | Path, **options: Any) -> dict[str, Any]:
    """Validate matched pairs with the same intervention on each side; see ``core.crossmodel.validate``.

    Args:
        matches: a matches JSON (fingerprint or activation matches), its folder, or the dict.
        out: folder for validation.json, validation.md and each side's intervention records.
        options: ``left_model``, ``right_model``, ``left_report``, ``right_report``, ``left_sae``, ``right_sae``,
            the prompts (``criterion``, ``dataset``, ``pack``), ``mode`` (steer, ablate), ``top``, ``strengths``,
            ``scorer``, ``targets``, ``patch_across``.

    Returns:
        The validation document: ``pairs`` (grade per pair with its numbers), ``summary`` (pairs per grade).
    """
    from interp_agent.core.crossmodel.validate import validate_matches as run
    from interp_agent.core.diffing.named import resolve_model_name

    for side in ("left_model", "right_model"):
        if options.get(side):
            options[side] = resolve_model_name(options[side])
    return run(matches, out=out, **options)


def finetune(out: str | Path | None = None, **spec: Any) -> Path:
    """The built-in CPU fine-tune of SmolLM2-135M (negative reviews), built once and reused; its folder.

    Args:
        out: where to build it; None: the fine-tune cache (``finetune:default`` names it elsewhere).
        spec: ``FinetuneSpec`` fields (``steps``, ``lr``, ``layers``, ``seed``, ...).
    """
    from interp_agent.core.diffing.finetune import ensure_finetuned

    return ensure_finetuned(spec or None, folder=out)


def diff_models(base: str, tuned: str, *, hookpoints: list[str], out: str | Path | None = None,
                **options: Any) -> dict[str, Any]:
    """Diff a fine-tuned model against its base: features that appear, vanish or change, with held-out evidence.

    Args:
        base, tuned: model names or folders sharing one tokenizer (``finetune:default``: the built-in fine-tune).
        hookpoints: where to compare, e.g. ``["blocks.18.mlp.hook_post"]``.
        out: folder for diff.json and diff.md (None: nothing written).
        options: ``features`` (neurons, dims), ``probes``, ``n_probes``, ``pack`` / ``criterion`` + ``dataset``.
    """
    from interp_agent.core.diffing.diff import diff_models as run
    from interp_agent.core.diffing.named import resolve_model_name

    return run(resolve_model_name(base), resolve_model_name(tuned), hookpoints=hookpoints, out=out, **options)


def train_crosscoder(*, out: str | Path, models: list[str], hookpoints: list[str], **options: Any) -> dict[str, Any]:
    """Train a BatchTopK crosscoder on paired activations, check its latents' exclusivity, and rank them.

    Args:
        out: the crosscoder folder (dictionary_learning layout: ae.pt, config.json; metrics and exclusivity).
        models: two or more models at one hookpoint, or one model at several hookpoints.
        hookpoints: the hookpoint(s).
        options: ``corpus``, ``pack`` (rank the latents), ``latent_dim``, ``k``, ``steps``, ``seed``, ...
    """
    from interp_agent.core.crosscoder import train_crosscoder as run
    from interp_agent.core.diffing.named import resolve_model_name

    return run(out=out, models=[resolve_model_name(m) for m in models], hookpoints=hookpoints, **options)


def compile_criterion(criterion: str, **options: Any) -> Any:
    """A criterion in words → a scored, balanced prompt set that passed every gate; see
    ``interp_agent.core.criteria.authoring.compile_criterion``.

    Args:
        criterion: what should hold, in words.
        options: ``positives``/``negatives`` (the agent's prompts), ``prompts`` (a scored-prompts file),
            ``source`` (agent, model or template), ``template``, ``n_per_class``, ``seed``, ``out``,
            ``allow_failures``.
    """
    from interp_agent.core.criteria.authoring import compile_criterion as run

    return run(criterion, **options)


def score_prompts(prompts_file: str | Path, criterion: str | None = None, **options: Any) -> Any:
    """Score every prompt of a file against a criterion with a classifier, reporting its held-out accuracy; see
    ``interp_agent.core.criteria.authoring.score_prompts`` (``scorer``, ``train``, ``binarize``, ``out``)."""
    from interp_agent.core.criteria.authoring import score_prompts as run

    return run(prompts_file, criterion, **options)


def export_steering(*, interventions: str | Path, feature: str, out: str | Path, **options: Any) -> Any:
    """The steering edit ``intervene`` chose for a feature, as a file (safetensors, or a llama.cpp control-vector
    GGUF by ``out``'s suffix or ``format``); see ``interp_agent.core.steering.export_steering``."""
    from interp_agent.core.steering import export_steering as run

    return run(interventions=interventions, feature=feature, out=out, **options)


def apply_steering(model: Any, vector: Any, prompts: list[str], **options: Any) -> dict[str, Any]:
    """Greedy continuations with and without a saved steering vector, side by side, with the KL of the next-token
    distributions; see ``interp_agent.core.steering.apply_steering`` (``scale``, ``max_new_tokens``, ...)."""
    from interp_agent.core.steering import apply_steering as run

    return run(model, vector, prompts, **options)


def import_interp_lab(path: str | Path, out: str | Path) -> dict[str, Any]:
    """An interp-lab report, match report or run config, converted into ours and written into ``out``; see
    ``interp_agent.core.migrate.interp_lab.import_interp_lab``."""
    from interp_agent.core.migrate.interp_lab import import_interp_lab as run

    return run(path, out)


def convert_hidden_dump(src: str | Path, *, out: str | Path, **options: Any) -> dict[str, Any]:
    """Hidden states dumped by any runtime → activation records or a train-sae training set; see
    ``interp_agent.core.formats.hidden_dump.convert_hidden_dump`` (``to``, ``manifest``, ``hookpoint``, ``pooling``)."""
    from interp_agent.core.formats.hidden_dump import convert_hidden_dump as run

    return run(src, out=out, **options)


def feature_effects(model: str, report: str | Path, *, out: str | Path, **options: Any) -> Any:
    """Ablate each upstream top feature of a report on its held-out prompts and measure every feature at a later
    layer against random-direction controls; see ``interp_agent.core.feature_effects``."""
    from interp_agent.core.feature_effects import feature_effects as run

    return run(model, report, out=out, **options)


def capabilities(**options: Any) -> dict[str, Any]:
    """What this installation can do, in one call (backends, extras, GPU, credentials present, executors);
    see ``interp_agent.core.capabilities.capabilities``."""
    from interp_agent.core.capabilities import capabilities as run

    return run(**options)
