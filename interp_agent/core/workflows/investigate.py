"""``investigate``: one call for a whole investigation, within a budget, filed into a dossier.

From a model and a criterion (a pack, or a scored-prompts dataset) it runs, in order:

1. ``inspect`` on the live model (correlational evidence on training prompts, checked on held-out ones);
2. ``explain`` of the top features on a corpus (explanations scored on held-out contexts);
3. ``intervene`` on the top features with generated controls (causal evidence on held-out prompts);
4. the ranking again, from the first step's records with the interventions (no model pass), the
   explanations attached;

and files what each step measured into a dossier (``core.dossier``) as it goes, so an
investigation stopped by its budget still leaves its evidence. The budget (forward passes,
seconds or both; ``core.models.passes``) is shared by the steps in that order: a step that
finds it spent is skipped, one that spends it mid-way stops at its next batch; both are
recorded with the reason, and the plan of what evidence is still missing says what to run next.
The last step runs no model pass, so it always runs when an earlier step left evidence to rank.

:func:`investigate` (inspect, intervene, rank again, without budget or dossier) is the
smaller workflow the demo and train-then-test use.
"""

from __future__ import annotations

import time
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from interp_agent.core.artifacts import schema_version, write_json
from interp_agent.core.errors import ValidationError, arg
from interp_agent.core.inspection import InspectionResult, inspect
from interp_agent.core.live import InterveneResult, intervene
from interp_agent.core.models.passes import BudgetExhausted, budget, forward_passes
from interp_agent.core.progress import Progress
from interp_agent.core.ranking import RankingConfig


@dataclass(frozen=True, slots=True)
class Investigation:
    """What ``investigate`` returns."""

    first: InspectionResult
    """The ranking before any intervention (correlational evidence)."""
    intervention: InterveneResult
    """Interventions with controls on the first ranking's top features."""
    final: InspectionResult
    """The same ranking again, with the interventional evidence beside the correlational."""


def investigate(
    model: str,
    criterion: str | None,
    *,
    first_out: Path,
    intervene_out: Path,
    final_out: Path,
    inspect_options: dict[str, Any],
    intervene_options: dict[str, Any],
    progress: Any = None,
) -> Investigation:
    """Inspect ``model``, intervene on the report's top features, and inspect again with the interventions.

    Args:
        model: the model (a live model for ``intervene``).
        criterion: the criterion text; None or empty takes a pack's own.
        first_out, intervene_out, final_out: folders of the three steps.
        inspect_options: keyword arguments of ``inspect`` for both rankings (backend, records or pack, config …).
        intervene_options: keyword arguments of ``intervene`` (pack or dataset, top_k, mode, sae …).
        progress: passed to every step.
    """
    # both steps split prompts by the same hash (held-out fraction and salt): features are chosen on
    # training prompts, and their effects measured on held-out ones
    first = inspect(model, criterion or "", out=first_out, progress=progress, **inspect_options)
    inter = intervene(model, criterion, out=intervene_out, report=first.paths["json"], progress=progress,
                      **intervene_options)
    final = inspect(model, criterion or "", out=final_out, interventions=inter.paths["interventions"],
                    progress=progress, **inspect_options)
    return Investigation(first=first, intervention=inter, final=final)


# -- the one-call investigation ------------------------------------------------------------

INVESTIGATION_SCHEMA = schema_version("investigation")
STEPS: tuple[str, ...] = ("inspect", "explain", "intervene", "rank")
STEP_FOLDERS: dict[str, str] = {"inspect": "1-inspect", "explain": "2-explain", "intervene": "3-intervene",
                                "rank": "4-report"}
PHASES: dict[str, tuple[float, float]] = {"inspect": (0.0, 0.3), "explain": (0.3, 0.55), "intervene": (0.55, 0.95),
                                          "rank": (0.95, 1.0)}
"""Share (from, to) of an investigation each step covers, for progress."""
MAX_EXPLAIN_GROUPS = 2
"""Explain runs at most this many (hookpoint, kind) groups of top features: each is one corpus pass."""


@dataclass(frozen=True, slots=True)
class Budget:
    """What an investigation may spend: forward passes (sequences through the model), seconds, or both."""

    max_forward_passes: int | None = None
    max_seconds: float | None = None

    def __post_init__(self) -> None:
        for name, value in (("max_forward_passes", self.max_forward_passes), ("max_seconds", self.max_seconds)):
            if value is not None and not value > 0:
                raise ValidationError(f"{arg(name, value)}: a budget of zero (or less) leaves nothing to run",
                                      hint=f"give a positive {name}, or leave it out for no limit")

    def to_dict(self) -> dict[str, Any]:
        return {"max_forward_passes": self.max_forward_passes, "max_seconds": self.max_seconds}

    def describe(self) -> str:
        """``400 forward passes``, ``600 s``, both joined, or ``no limit``."""
        parts = ([f"{self.max_forward_passes:,} forward passes"] if self.max_forward_passes is not None else []) + (
            [f"{self.max_seconds:g} s"] if self.max_seconds is not None else [])
        return " and ".join(parts) or "no limit"


@dataclass(frozen=True, slots=True)
class InvestigateRequest:
    """Everything a one-call investigation needs; each field has the default a user would expect."""

    out: str
    """Run folder: one sub-folder per step, investigation.json."""
    model: str = "smollm2-135m"
    criterion: str | None = None
    """The criterion text (a pack brings its own)."""
    pack: str | None = None
    dataset: str | None = None
    """Scored prompts JSONL (criterion required)."""
    hookpoints: tuple[str, ...] | None = None
    top_k: int = 20
    """Features in the reports."""
    n_explain: int = 3
    """Top features to explain (0: skip the explain step)."""
    n_intervene: int = 3
    """Top features to test causally (the report's contrast direction comes with them)."""
    mode: str = "steer"
    strengths: tuple[float, ...] = (-1.0, -0.5, 0.5, 1.0)
    scorer: str = "auto"
    targets: tuple[str, ...] | None = None
    corpus: str = "builtin"
    max_contexts: int = 1024
    """Corpus contexts per explain pass."""
    budget: Budget = field(default_factory=Budget)
    dossier: str | None = None
    """Dossier file to file into; default ``<out>/dossier.json``."""
    run_id: str | None = None
    """The run id evidence is filed under (a job's); default the run folder's name."""


def check_investigate_request(req: InvestigateRequest) -> None:
    """Model-free checks of a request; ValidationError names the argument."""
    if req.pack is None and req.dataset is None:
        raise ValidationError(f"investigate needs prompts: {arg('pack')} or {arg('dataset')} (scored prompts JSONL), "
                              f"or {arg('positives')} and {arg('negatives')}")
    if req.pack is not None and req.dataset is not None:
        raise ValidationError(f"give {arg('pack')} or {arg('dataset')}, not both")
    if req.dataset is not None and not (req.criterion or "").strip():
        raise ValidationError(f"{arg('criterion')} is required with {arg('dataset')}")
    if not 0 <= req.n_explain <= 50:
        raise ValidationError(f"{arg('n_explain', req.n_explain)} must be from 0 to 50")
    if not 1 <= req.n_intervene <= 20:
        raise ValidationError(f"{arg('n_intervene', req.n_intervene)} must be from 1 to 20")
    if not 1 <= req.top_k <= 500:
        raise ValidationError(f"{arg('top_k', req.top_k)} must be from 1 to 500")


@dataclass(slots=True)
class StepRecord:
    """What one step did: its status, its folder, and what it spent."""

    name: str
    status: str = "pending"
    """completed, skipped (budget spent before it), stopped (budget spent during it), failed."""
    folder: str | None = None
    forward_passes: int = 0
    seconds: float = 0.0
    reason: str | None = None
    filed: dict[str, Any] | None = None
    """What was filed into the dossier from this step."""

    def to_dict(self) -> dict[str, Any]:
        return {"name": self.name, "status": self.status, "folder": self.folder, "forward_passes": self.forward_passes,
                "seconds": round(self.seconds, 3), "reason": self.reason, "filed": self.filed}


@dataclass(slots=True)
class InvestigationRun:
    """What a one-call investigation produced."""

    steps: list[StepRecord]
    summary: dict[str, Any]
    paths: dict[str, Path]
    """investigation.json, the dossier, and the final report (when ranked)."""


class _Spend:
    """The budget left to the steps, in passes and seconds, from one start."""

    def __init__(self, b: Budget) -> None:
        self.budget, self.t0, self.p0 = b, time.monotonic(), forward_passes()

    def left(self) -> tuple[int | None, float | None]:
        passes = None if self.budget.max_forward_passes is None else (
            self.budget.max_forward_passes - (forward_passes() - self.p0))
        seconds = None if self.budget.max_seconds is None else self.budget.max_seconds - (time.monotonic() - self.t0)
        return passes, seconds

    def spent_out(self) -> str | None:
        passes, seconds = self.left()
        if passes is not None and passes <= 0:
            return f"the budget ({self.budget.describe()}) was spent by earlier steps"
        if seconds is not None and seconds <= 0:
            return f"the budget ({self.budget.describe()}) was spent by earlier steps"
        return None


def run_investigation(req: InvestigateRequest, *, progress: Progress | None = None) -> InvestigationRun:
    """Run the steps of the module docstring within ``req.budget``, filing each into the dossier."""
    from interp_agent.core.dossier import DossierStore

    check_investigate_request(req)
    out = Path(req.out)
    out.mkdir(parents=True, exist_ok=True)
    store = DossierStore.open(Path(req.dossier) if req.dossier else out / "dossier.json",
                              model=req.model, criterion=req.criterion or None)  # a pack's text comes with its run
    ctx = _Context(req, out, store, _Spend(req.budget), progress)
    steps = [ctx.run_step(name) for name in STEPS]
    return _finish(ctx, steps)


class _Context:
    """What the steps share: the request, the dossier, the budget and the outputs so far."""

    def __init__(self, req: InvestigateRequest, out: Path, store: Any, spend: _Spend,
                 progress: Progress | None) -> None:
        self.req, self.out, self.store, self.spend, self.progress = req, out, store, spend, progress
        self.first: InspectionResult | None = None
        self.explained: list[tuple[Path, dict[str, Any]]] = []
        self.intervention: InterveneResult | None = None
        self.final: Path | None = None
        self.step_started = time.monotonic()

    def step_progress(self, name: str) -> Progress:
        start, end = PHASES[name]

        def report(phase: str, done: int, total: int | None) -> None:
            if self.progress is not None:
                within = min(1.0, done / total) if total else 0.0
                self.progress(f"{name}: {phase}", int(1000 * (start + (end - start) * within)), 1000)

        return report

    def run_step(self, name: str) -> StepRecord:
        folder = self.out / STEP_FOLDERS[name]
        record = StepRecord(name, folder=str(folder))
        # the ranking runs no model pass (it reads the first step's records), so a spent budget never skips it
        reason = _needs(self, name) or (None if name == "rank" else self.spend.spent_out())
        if reason is not None:
            record.status, record.reason = "skipped", reason
            return record
        passes, seconds = self.spend.left()
        t0, p0 = time.monotonic(), forward_passes()
        self.step_started = t0
        try:
            with budget(passes, seconds):
                record.filed = _STEP_FUNCTIONS[name](self, folder)
            record.status = "completed"
        except BudgetExhausted:
            left = f"{passes:,} forward passes" if passes is not None else f"{seconds:.0f} s"
            record.status = "stopped"
            record.reason = (f"the budget ({self.req.budget.describe()}) was spent during this step, which had {left} "
                             "of it left; what the step had finished and filed is kept, the rest was not run")
        record.forward_passes, record.seconds = forward_passes() - p0, time.monotonic() - t0
        return record

    def file(self, kind: str, folder: Path) -> dict[str, Any]:
        """File one finished step's run folder into the dossier; returns what was filed."""
        from interp_agent.core.dossier import file_run

        run_id = self.req.run_id or self.out.name
        return file_run(self.store, kind, folder, run_id=f"{run_id}/{folder.name}",
                        elapsed_s=time.monotonic() - self.step_started).to_dict()


def _needs(ctx: _Context, name: str) -> str | None:
    """Why step ``name`` cannot run yet (an earlier step it needs did not finish), or None."""
    if name == "explain" and ctx.req.n_explain == 0:
        return "n_explain is 0"
    if name != "inspect" and ctx.first is None:
        return "the inspect step did not finish"
    if name == "rank" and ctx.intervention is None and not ctx.explained:
        return "neither explain nor intervene finished: the first report stands"
    return None


def _inspect_options(req: InvestigateRequest) -> dict[str, Any]:
    return {"backend": "hf", "pack": req.pack, "dataset": req.dataset,
            "hookpoints": list(req.hookpoints) if req.hookpoints else None,
            "config": RankingConfig(top_k=req.top_k)}


def _step_inspect(ctx: _Context, folder: Path) -> dict[str, Any]:
    req = ctx.req
    ctx.first = inspect(req.model, req.criterion or "", out=folder, progress=ctx.step_progress("inspect"),
                        **_inspect_options(req))
    return ctx.file("inspect", folder)


def _step_explain(ctx: _Context, folder: Path) -> dict[str, Any]:
    from interp_agent.core.workflows.explain import ExplainRequest, run_explain

    assert ctx.first is not None, "explain runs after inspect"
    filed: dict[str, Any] = {"groups": []}
    for i, (hook, ids, directions) in enumerate(explain_groups(ctx.first.paths["json"], ctx.req.n_explain)):
        sub = folder / f"{i + 1}-{hook}"
        run = run_explain(ExplainRequest(out=str(sub), model=ctx.req.model, hookpoint=hook, feature_ids=tuple(ids),
                                         directions=directions, corpus=ctx.req.corpus,
                                         max_contexts=ctx.req.max_contexts),
                          progress=ctx.step_progress("explain"))
        ctx.explained.append((sub, run.explained))
        filed["groups"].append(ctx.file("explain", sub))
    return filed


def explain_groups(report_json: Path, n: int) -> list[tuple[str, list[str], dict[str, Any]]]:
    """The report's top ``n`` explainable features as (hookpoint, ids, directions) groups, best group first.

    One explain pass harvests one kind of feature at one hookpoint (a saved direction or a basis
    feature), so the top features are grouped by both, in rank order; at most MAX_EXPLAIN_GROUPS
    groups are kept, each one corpus pass.
    """
    from interp_agent.core.graphs import load_report_file
    from interp_agent.core.ids import match_feature_id
    from interp_agent.core.live import load_directions

    report, _ = load_report_file(report_json)
    directions = load_directions(Path(report_json).parent)
    groups: dict[tuple[str, str], list[str]] = {}
    for f in report.get("features", [])[:n]:
        fid = f["feature_id"]
        parsed = match_feature_id(fid)
        if fid in directions:
            key = (directions[fid][0], "direction")
        elif parsed is not None and parsed.kind in ("dim", "neuron") and parsed.hookpoint is not None:
            key = (parsed.hookpoint.name, parsed.kind)
        else:
            continue  # SAE latents need their SAE; imported features have no hookpoint here
        groups.setdefault(key, []).append(fid)
    return [(hook, ids, {f: directions[f][1] for f in ids if f in directions})
            for (hook, _), ids in list(groups.items())[:MAX_EXPLAIN_GROUPS]]


def _step_intervene(ctx: _Context, folder: Path) -> dict[str, Any]:
    req = ctx.req
    assert ctx.first is not None, "intervene runs after inspect"
    ctx.intervention = intervene(
        req.model, req.criterion, out=folder, pack=req.pack, dataset=req.dataset, report=ctx.first.paths["json"],
        top_k=req.n_intervene, mode=req.mode, strengths=req.strengths, scorer=req.scorer,
        targets=list(req.targets) if req.targets else None, progress=ctx.step_progress("intervene"))
    return ctx.file("intervene", folder)


def _step_rank(ctx: _Context, folder: Path) -> dict[str, Any]:
    """Rank again from the first step's records (no model pass) with the interventions; attach explanations."""
    from interp_agent.core.workflows.explain import attach_to_report

    req = ctx.req
    assert ctx.first is not None, "rank runs after inspect"
    records = Path(ctx.first.paths["json"]).parent / "records"
    interventions = None if ctx.intervention is None else ctx.intervention.paths["interventions"]
    final = inspect(req.model, ctx.first.report["criterion"], backend="records", records=records,
                    interventions=interventions, out=folder, config=RankingConfig(top_k=req.top_k),
                    progress=ctx.step_progress("rank"))
    path = Path(final.paths["json"])
    for _, explained in ctx.explained:
        path = attach_to_report(path, explained, folder)
    ctx.final = path
    return ctx.file("inspect", folder)


_STEP_FUNCTIONS: dict[str, Callable[[_Context, Path], dict[str, Any]]] = {
    "inspect": _step_inspect, "explain": _step_explain, "intervene": _step_intervene, "rank": _step_rank}


def _finish(ctx: _Context, steps: list[StepRecord]) -> InvestigationRun:
    """Write investigation.json: the steps, what they spent, the verdicts, the dossier's grades and its plan."""
    from interp_agent.core.dossier import grade_claim, plan_evidence

    dossier = ctx.store.read()
    plan = plan_evidence(dossier)
    verdicts = {} if ctx.intervention is None else {
        f["feature_id"]: f["verdict"] for f in ctx.intervention.summary["features"]}
    summary = {
        "schema_version": INVESTIGATION_SCHEMA, "model": ctx.req.model,
        "criterion": ctx.first.report["criterion"] if ctx.first else (ctx.req.criterion or ctx.req.pack),
        "budget": ctx.req.budget.to_dict(), "steps": [s.to_dict() for s in steps],
        "spent": {"forward_passes": sum(s.forward_passes for s in steps),
                  "seconds": round(sum(s.seconds for s in steps), 3)},
        "verdicts": verdicts, "dossier": str(ctx.store.path),
        "claims": [{"id": c.id, "kind": c.kind, "feature_id": c.feature_id, "grade": grade_claim(c).rung,
                    "reason": grade_claim(c).reason} for c in dossier.claims],
        "plan": plan.to_dict(),
        "final_report": None if ctx.final is None else str(ctx.final),
    }
    path = write_json(ctx.out / "investigation.json", summary)
    paths = {"investigation": path, "dossier": Path(ctx.store.path)}
    if ctx.final is not None:
        paths["report"] = ctx.final
    return InvestigationRun(steps, summary, paths)
