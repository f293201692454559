"""``train_then_test``: train an SAE, then rank its latents on training prompts and steer the best on held-out ones."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from interp_agent.core.artifacts import write_json
from interp_agent.core.errors import ValidationError
from interp_agent.core.sae.train import Progress, TrainResult, TrainSettings, check_request, fit_sae, read_prompt_file
from interp_agent.core.workflows.investigate import investigate

CAUSAL_NEEDS = "--causal-out needs a model and scored prompts: --pack, or --dataset with --criterion"


def train_then_test(
    *,
    out: str | Path,
    causal_out: str | Path,
    model: str | None = None,
    dataset: str | Path | None = None,
    pack: str | None = None,
    criterion: str | None = None,
    hookpoint: str | None = None,
    activations: str | Path | Sequence[str | Path] | None = None,
    records: str | Path | None = None,
    settings: TrainSettings | None = None,
    progress: Progress | None = None,
) -> TrainResult:
    """``fit_sae`` into ``out``, then test the latents causally into ``causal_out``.

    The latents are ranked on the training split of their records (``causal_out/ranking``),
    the top 3 steered with controls on held-out prompts (``causal_out/summary.json``), and
    ranked again with that evidence (``causal_out/report``); metrics.json gets a ``causal`` block.

    Raises:
        ValidationError: no model, or prompts without criterion scores; and as ``fit_sae``.
    """
    check_request(settings, model, activations, records)
    if not (model and (pack or (dataset and criterion))):
        raise ValidationError(CAUSAL_NEEDS)
    if dataset is not None and not pack and not read_prompt_file(dataset)[1]:
        raise ValidationError("--causal-out needs a model and scored prompts (a pack or a scored dataset)")
    report: Progress = progress or (lambda phase, frac, msg: None)
    done: list[tuple[str, float, str]] = []

    def held_back(phase: str, frac: float, msg: str) -> None:
        if phase == "done":  # the run is done once its latents are tested
            done.append((phase, frac, msg))
        else:
            report(phase, frac, msg)

    trained = fit_sae(out=out, model=model, dataset=dataset, pack=pack, criterion=criterion, hookpoint=hookpoint,
                      activations=activations, records=records, settings=settings, progress=held_back)
    if "records" not in trained.paths:
        raise ValidationError("--causal-out needs a model and scored prompts (a pack or a scored dataset)")
    report("causal", 0.95, "ranking latents on the training split, steering the best on held-out prompts")
    causal = steer_latents(model, criterion or _pack_criterion(pack), dataset, pack, Path(out), Path(causal_out),
                          trained.paths["records"])
    paths = {k: v for k, v in trained.paths.items() if k != "metrics"}
    paths["causal_summary"] = Path(causal_out) / "summary.json"
    metrics = trained.metrics | {"causal": {"summary": str(paths["causal_summary"]), "features": causal["features"]}}
    paths["metrics"] = write_json(Path(out) / "metrics.json", metrics)
    for event in done:
        report(*event)
    return replace(trained, metrics=metrics, paths=paths, causal=causal)


def _pack_criterion(pack: str | None) -> str | None:
    if pack is None:
        return None
    from interp_agent.core.criteria import load_pack

    return load_pack(pack).criterion


def steer_latents(
    model: str, criterion: str | None, dataset: Any, pack: str | None, sae_dir: Path, causal_out: Path, records: Path
) -> dict[str, Any]:
    """Rank the latents on the training split, then steer the top ones with controls (held-out evidence)."""
    run = investigate(
        model, criterion, first_out=causal_out / "ranking", intervene_out=causal_out, final_out=causal_out / "report",
        inspect_options={"backend": "records", "records": records},
        intervene_options={"dataset": dataset, "pack": pack, "top_k": 3, "mode": "steer", "sae": sae_dir},
    )
    return {"features": [{"feature_id": f["feature_id"], "verdict": f["verdict"], "effect": f["effect"]["mean"],
                          "ci95": f["effect"]["ci95"], "control_effect": f["control_effect"]["mean"]}
                         for f in run.intervention.summary["features"]]}


def train_sae(
    *,
    out: str | Path,
    model: str | None = None,
    dataset: str | Path | None = None,
    pack: str | None = None,
    criterion: str | None = None,
    hookpoint: str | None = None,
    activations: str | Path | Sequence[str | Path] | None = None,
    records: str | Path | None = None,
    settings: TrainSettings | None = None,
    causal_out: str | Path | None = None,
    progress: Progress | None = None,
) -> TrainResult:
    """Train an SAE and write it into ``out`` (the step ``sae.train.fit_sae``); with ``causal_out``, test its latents.

    The entry point of ``train-sae``, its job and ``interp_agent.train_sae``: without
    ``causal_out`` it is the training step alone, with it :func:`train_then_test`.
    """
    if causal_out is None:
        return fit_sae(out=out, model=model, dataset=dataset, pack=pack, criterion=criterion, hookpoint=hookpoint,
                       activations=activations, records=records, settings=settings, progress=progress)
    return train_then_test(out=out, causal_out=causal_out, model=model, dataset=dataset, pack=pack,
                           criterion=criterion, hookpoint=hookpoint, activations=activations, records=records,
                           settings=settings, progress=progress)
