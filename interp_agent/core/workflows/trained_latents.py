"""``train_then_test``: train an SAE, then rank its latents on training prompts and steer the best on held-out ones.

Also the progress of a training run as its adapters show it: ``TRAIN_PHASES`` and
``train_progress_fraction`` turn ``(phase, done, total)`` into a 0..1 fraction of the whole
run, and ``TrainProgress`` into ``emit(fraction, message)`` for a job or a terminal line.
"""

from __future__ import annotations

from collections.abc import Callable, Sequence
from dataclasses import replace
from pathlib import Path
from typing import Any

from interp_agent.core.artifacts import write_json
from interp_agent.core.errors import ValidationError, arg
from interp_agent.core.progress import Progress
from interp_agent.core.sae.train import TrainResult, TrainSettings, check_request, fit_sae, read_prompt_file
from interp_agent.core.sae.trainer import StepReport
from interp_agent.core.workflows.investigate import investigate

CAUSAL_NEEDS = (f"{arg('causal_out')} needs a model and scored prompts: {arg('pack')}, or {arg('dataset')} with "
                f"{arg('criterion')}")

TRAIN_PHASES: dict[str, tuple[float, float]] = {
    "load": (0.0, 0.0), "harvest": (0.0, 0.15), "read": (0.0, 0.15), "resume": (0.15, 0.85),
    "train": (0.15, 0.85), "evaluate": (0.85, 0.93), "records": (0.93, 0.95), "causal": (0.95, 1.0),
    "done": (1.0, 1.0),
}
"""Share (from, to) of a training run each phase covers; phases come in this order, so the fraction never goes back."""

_UNKNOWN_TOTAL_SCALE = 50_000
"""Rows at which a read of unknown length is shown half done (done / (done + scale))."""

_MESSAGES = {
    "records": "activation records of the trained latents",
    "causal": "ranking latents on the training split, steering the best on held-out prompts",
    "done": "done",
}
_EVALUATE = ("held-out reconstruction", "splicing the SAE into the model on held-out prompts")


def train_progress_fraction(phase: str, done: int, total: int | None) -> float:
    """The fraction 0..1 of a training run reached at ``done`` of ``total`` units in ``phase``."""
    start, end = TRAIN_PHASES.get(phase, (0.0, 1.0))
    within = done / total if total else done / (done + _UNKNOWN_TOTAL_SCALE)
    return start + (end - start) * min(1.0, max(0.0, within))


class TrainProgress:
    """A training run's ``progress(phase, done, total)`` as ``emit(fraction of the run, message)``.

    Pass it as ``progress`` and its ``point`` as ``on_point``: a ``train`` event's message then
    carries that step's loss, FVU and L0 (``step 120/300 loss 0.0112 fvu 0.037 l0 16.0``).
    """

    def __init__(self, emit: Callable[[float, str], None], *, model: str | None = None) -> None:
        """``emit`` gets each event; ``model``, the name of a model source, goes into the ``load`` message."""
        self.emit = emit
        self.model = model
        self.latest: dict[str, float] | None = None
        """The latest training point given to ``point``."""

    def point(self, point: dict[str, float]) -> None:
        """Keep ``point`` (step, loss, fvu, l0, …) for the ``train`` event of its step."""
        self.latest = point

    def __call__(self, phase: str, done: int, total: int | None) -> None:
        self.emit(train_progress_fraction(phase, done, total), self.message(phase, done, total))

    def message(self, phase: str, done: int, total: int | None) -> str:
        """What ``done`` of ``total`` in ``phase`` reads as."""
        if phase == "train":
            p = self.latest
            if p is not None and int(p["step"]) == done:
                return f"step {done}/{total} loss {p['loss']:.4g} fvu {p['fvu']:.3f} l0 {p['l0']:.1f}"
            return f"step {done}/{total}"
        if phase == "resume":
            return f"resuming from checkpoint at step {done}"
        if phase == "load":
            return f"loading {self.model or 'the model'}"
        if phase == "evaluate":
            return _EVALUATE[min(done, len(_EVALUATE) - 1)]
        return _MESSAGES.get(phase) or (f"{phase}: {done}/{total}" if total else f"{phase}: {done}")


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
    on_point: StepReport | None = None,
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
        raise ValidationError(CAUSAL_NEEDS)
    report: Progress = progress or (lambda phase, n, total: None)
    done: list[tuple[str, int, int | None]] = []

    def held_back(phase: str, n: int, total: int | None) -> None:
        if phase == "done":  # the run is done once its latents are tested
            done.append((phase, n, total))
        else:
            report(phase, n, total)

    trained = fit_sae(out=out, model=model, dataset=dataset, pack=pack, criterion=criterion, hookpoint=hookpoint,
                      activations=activations, records=records, settings=settings, progress=held_back,
                      on_point=on_point)
    if "records" not in trained.paths:
        raise ValidationError(CAUSAL_NEEDS)
    report("causal", 0, 1)
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
    on_point: StepReport | None = None,
) -> TrainResult:
    """Train an SAE and write it into ``out`` (the step ``sae.train.fit_sae``); with ``causal_out``, test its latents.

    The entry point of ``train-sae``, its job and ``interp_agent.train_sae``: without
    ``causal_out`` it is the training step alone, with it :func:`train_then_test`, which
    adds the phase ``causal`` (0 of 1) before ``done``. ``progress`` and ``on_point`` as in
    ``fit_sae``; a :class:`TrainProgress` takes both.
    """
    if causal_out is None:
        return fit_sae(out=out, model=model, dataset=dataset, pack=pack, criterion=criterion, hookpoint=hookpoint,
                       activations=activations, records=records, settings=settings, progress=progress,
                       on_point=on_point)
    return train_then_test(out=out, causal_out=causal_out, model=model, dataset=dataset, pack=pack,
                           criterion=criterion, hookpoint=hookpoint, activations=activations, records=records,
                           settings=settings, progress=progress, on_point=on_point)
