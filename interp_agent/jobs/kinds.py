"""The registry of job kinds, and the built-in kinds: ``inspect``, ``match``, ``intervene``, ``train_sae``,
``publish`` and ``sleep``.

A job kind is a function ``fn(params, ctx) -> dict``: it reads its JSON parameters,
writes its artifacts into ``ctx.run_dir``, reports through ``ctx.progress``/``ctx.log``
and returns a JSON-serialisable result. Register one with ``@register("name")``; the
worker imports the module that registered it, so a kind must live in an importable
module (not ``__main__``). Relative paths in params are resolved against the workspace
(the worker's working directory).

A kind that checkpoints into ``ctx.run_dir`` and, started again in the same run folder,
continues from its latest checkpoint registers with ``resumable=True``; a failed or
cancelled job of such a kind can then be resumed (``JobRunner.resume``). The job function
reads ``ctx.attempt`` (1 for the first run) to tell a resume from a first start.

Each kind declares what one of its jobs needs (``Resources``: CPUs, GPUs, memory); an executor
that schedules onto a cluster (``RayExecutor``) reserves that much per job. A job whose params
ask for ``device: "cuda"`` (the kinds that take a ``device`` param) needs one GPU more.
"""

from __future__ import annotations

import functools
import importlib
import time
from collections.abc import Callable
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from interp_agent.core.artifacts import write_text
from interp_agent.core.errors import ValidationError, arg
from interp_agent.core.inspect.request import InspectRequest
from interp_agent.core.inspect.request import param_names as inspect_param_names
from interp_agent.jobs.context import JobContext

JobFunction = Callable[[dict[str, Any], JobContext], dict[str, Any]]
ParamCheck = Callable[[dict[str, Any]], None]

JOB_KINDS: dict[str, JobFunction] = {}
"""Job kind name -> job function."""

PARAM_CHECKS: dict[str, ParamCheck] = {}
"""Job kind name -> parameter check run at submission (raises ValidationError)."""

RESUMABLE_KINDS: set[str] = set()
"""Names of the kinds that continue from their run folder's latest checkpoint when started again."""

GIB = 1024**3


@dataclass(frozen=True, slots=True)
class Resources:
    """What one job of a kind needs on the node that runs it (reserved by cluster executors such as Ray)."""

    cpus: float = 1.0
    """Logical CPUs."""
    gpus: float = 0.0
    """GPUs (a job whose params say ``device: "cuda"`` gets at least 1)."""
    memory_bytes: int = 0
    """Memory to reserve, in bytes (0: reserve none)."""

    def __post_init__(self) -> None:
        if not (self.cpus >= 0 and self.gpus >= 0 and self.memory_bytes >= 0):
            raise ValueError(f"resources must not be negative: {self}")


MODEL_JOB = Resources(cpus=1.0, memory_bytes=2 * GIB)
"""Needs of a job that loads one small model (SmolLM2-135M scale) and runs it: inspect, intervene, explain."""
TWO_MODEL_JOB = Resources(cpus=1.0, memory_bytes=3 * GIB)
"""Needs of a job that holds two models or a whole investigation: diff_models, validate_matches, investigate."""
TRAINING_JOB = Resources(cpus=2.0, memory_bytes=4 * GIB)
"""Needs of a training job (train_sae, train_crosscoder): activations in memory, two data-loading CPUs."""

KIND_RESOURCES: dict[str, Resources] = {}
"""Job kind name -> what one of its jobs needs (``register(..., resources=...)``)."""

__all__ = [
    "JOB_KINDS", "KIND_RESOURCES", "PARAM_CHECKS", "RESUMABLE_KINDS", "JobContext", "JobFunction", "Resources",
    "job_resources", "load_kind", "register",
]


def register(
    kind: str,
    *,
    check: ParamCheck | None = None,
    resumable: bool = False,
    files_evidence: str | None = None,
    resources: Resources | None = None,
) -> Callable[[JobFunction], JobFunction]:
    """Decorator: register ``fn(params, ctx) -> dict`` as the job kind ``kind``.

    Args:
        kind: the name callers submit.
        check: optional ``check(params)`` run by ``JobRunner.submit``; raises
            ValidationError so a bad call fails at once instead of as a failed job.
        resumable: the function checkpoints into ``ctx.run_dir`` and, run again in the
            same folder, continues from the latest checkpoint; failed or cancelled jobs
            of the kind may then be resumed.
        files_evidence: the kind of run (``core.dossier.file_run``: inspect, intervene, explain,
            match) the job writes; the job then takes an optional ``dossier`` param (a dossier
            file) and, once it has finished, files what it measured there (see :func:`filing`).
        resources: what one job of the kind needs (default ``Resources()``: 1 CPU, no GPU, no
            memory reserved); cluster executors reserve it per job.
    """

    def decorate(fn: JobFunction) -> JobFunction:
        job, job_check = (fn, check) if files_evidence is None else filing(files_evidence, fn, check)
        JOB_KINDS[kind] = job
        KIND_RESOURCES[kind] = resources or Resources()
        if job_check is not None:
            PARAM_CHECKS[kind] = job_check
        if resumable:
            RESUMABLE_KINDS.add(kind)
        else:
            RESUMABLE_KINDS.discard(kind)
        return job

    return decorate


def filing(run_kind: str, fn: JobFunction, check: ParamCheck | None) -> tuple[JobFunction, ParamCheck]:
    """``fn`` and ``check`` taking an optional ``dossier`` param: checked at submission, filed into at the end.

    The dossier is opened (created if new) before the job runs, so a bad dossier file fails the
    call at once; filing happens under the dossier's lock, so jobs finishing together never
    lose each other's evidence.
    """

    def checked(params: dict[str, Any]) -> None:
        rest = {k: v for k, v in params.items() if k != "dossier"}
        if check is not None:
            check(rest)
        if params.get("dossier") is not None:
            from interp_agent.core.dossier import DossierStore

            DossierStore.check_path(Path(params["dossier"]))

    @functools.wraps(fn)
    def job(params: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
        rest = {k: v for k, v in params.items() if k != "dossier"}
        started = time.monotonic()
        result = fn(rest, ctx)
        if params.get("dossier") is not None:
            from interp_agent.core.dossier import DossierStore, file_run

            store = DossierStore.open(Path(params["dossier"]))
            filed = file_run(store, run_kind, ctx.run_dir, run_id=ctx.run_dir.name,
                             elapsed_s=time.monotonic() - started)
            result["dossier"] = {"path": str(store.path), **filed.to_dict()}
            ctx.log(f"filed into dossier {store.path}: {filed.to_dict()}")
        return result

    return job, checked


def load_kind(kind: str, module: str | None) -> JobFunction:
    """The function of ``kind``, importing ``module`` (the module that registers it) first.

    Raises:
        LookupError: the kind is not registered, even after importing ``module``.
    """
    if kind not in JOB_KINDS and module and module != "__main__":
        importlib.import_module(module)
    if kind not in JOB_KINDS:
        raise LookupError(f"job kind {kind!r} is not registered in this process (module {module!r})")
    return JOB_KINDS[kind]


def job_resources(kind: str, params: dict[str, Any]) -> Resources:
    """What a job of ``kind`` with ``params`` needs: the kind's ``Resources``, one GPU at least when it asks for
    ``device: "cuda"`` (or ``"cuda:N"``), and no GPU when it asks for ``device: "cpu"``."""
    needs = KIND_RESOURCES.get(kind, Resources())
    device = params.get("device")
    if isinstance(device, str) and device.startswith("cuda"):
        return replace(needs, gpus=max(needs.gpus, 1.0))
    if device == "cpu":
        return replace(needs, gpus=0.0)
    return needs


def check_keys(kind: str, params: dict[str, Any], allowed: tuple[str, ...], required: tuple[str, ...]) -> None:
    unknown = sorted(set(params) - set(allowed))
    if unknown:
        raise ValidationError(f"{kind} job: unknown parameter(s) {unknown}; allowed: {', '.join(allowed)}")
    missing = [k for k in required if params.get(k) in (None, "")]
    if missing:
        raise ValidationError(f"{kind} job: missing parameter(s) {missing}")


# -- inspect -------------------------------------------------------------------------

INSPECT_PARAMS: tuple[str, ...] = inspect_param_names()
"""The fields of ``InspectRequest``: one definition of the inspect parameters."""

_PHASES: dict[str, tuple[float, float]] = {
    "harvesting": (0.0, 0.5), "association pass": (0.0, 0.45), "candidate pass": (0.45, 0.9),
}
# an hf job harvests first; progress never goes back, so it holds at 0.5 until the
# candidate pass overtakes it
"""Share of an inspect job each ranking pass covers; the rest is analysis and report writing."""

_UNKNOWN_TOTAL_SCALE = 50_000
"""Rows at which a pass of unknown length is shown half done (done / (done + scale))."""

def _inspect_request(params: dict[str, Any]) -> InspectRequest:
    """The request of an inspect job; every check is the request's own."""
    check_keys("inspect", params, INSPECT_PARAMS, ("model",) if params.get("pack") else ("model", "criterion"))
    try:
        return InspectRequest.from_params(params)
    except ValidationError as exc:
        raise ValidationError(f"inspect: {exc.message}", hint=exc.hint) from None


def _inspect_check(params: dict[str, Any]) -> None:
    from interp_agent.core.preflight import check_inspect_inputs

    check_inspect_inputs(_inspect_request(params))


def inspect_progress_fraction(phase: str, done: int, total: int | None) -> float:
    """Map the core progress callback (phase, rows done, rows total or None) to 0..1."""
    start, end = _PHASES.get(phase, (0.0, 1.0))
    within = done / total if total else done / (done + _UNKNOWN_TOTAL_SCALE)
    return start + (end - start) * min(1.0, max(0.0, within))


def compact_feature(row: dict[str, Any]) -> dict[str, Any]:
    """A report feature row reduced to the fields an agent reads first (``core.reports.compact``)."""
    # imported here: the worker calls it, the server importing this module does not
    from interp_agent.core.reports.compact import compact_feature as compact

    return compact(row)


@register("inspect", check=_inspect_check, files_evidence="inspect", resources=MODEL_JOB)
def inspect_job(params: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    """Rank features against a criterion (``interp_agent.core.inspection.inspect``) into the run folder.

    Params: the fields of ``InspectRequest`` (``config`` as an object of RankingConfig
    fields). Result: paths of report.json/.html/.md
    (``report``, ``html``, ``md``) and features.csv (``csv``), ``synthetic``, the ``summary``, the ``warnings`` and
    ``top``: compact rows of the first 10 features.
    """
    from interp_agent.core.inspection import inspect_request

    request = _inspect_request(params)

    def on_progress(phase: str, done: int, total: int | None) -> None:
        rows = f"{done:,}/{total:,} rows" if total else f"{done:,} rows"
        ctx.progress(inspect_progress_fraction(phase, done, total), f"{phase}: {rows}")

    ctx.progress(0.0, f"inspect {params['model']} against {params.get('criterion') or params.get('pack')!r}")
    result = inspect_request(request, out=ctx.run_dir, progress=on_progress)
    report = result.report
    from interp_agent.core.reports.csv import write_features_csv

    table = write_features_csv(report, Path(ctx.run_dir) / "features.csv")
    ctx.progress(1.0, f"report written: {len(report['features'])} features")
    return {
        "report": str(result.paths["json"]),
        "csv": str(table),
        "html": str(result.paths["html"]),
        "md": str(result.paths["md"]),
        "synthetic": bool(report["synthetic"]),
        "summary": report["summary"],
        "warnings": report["warnings"],
        "top": [compact_feature(f) for f in report["features"][:10]],
        "directions": _directions(ctx.run_dir, report),
    }


def _directions(run_dir: Any, report: dict[str, Any]) -> list[dict[str, Any]]:
    """The contrast directions a live inspect saved (ids to pass to intervene), with their rank in the report."""
    import json
    from pathlib import Path

    index = Path(run_dir) / "directions.json"
    if not index.is_file():
        return []
    ranks = {f["feature_id"]: f.get("rank") for f in report["features"]}
    saved = json.loads(index.read_text(encoding="utf-8")).get("directions", {})
    return [{"feature_id": fid, "hookpoint": d.get("hookpoint"), "rank": ranks.get(fid)} for fid, d in saved.items()]


# -- match ---------------------------------------------------------------------------

MATCH_PARAMS: tuple[str, ...] = ("left", "right", "min_similarity", "use_text", "method", "left_side", "right_side",
                                 "probes", "pooling", "max_prompts")
_ACTIVATION_PARAMS = ("left_side", "right_side", "probes", "pooling", "max_prompts")


def _match_check(params: dict[str, Any]) -> None:
    if params.get("method", "fingerprint") == "fingerprint":
        check_keys("match", params, tuple(k for k in MATCH_PARAMS if k not in _ACTIVATION_PARAMS), ("left", "right"))
        return
    if params["method"] != "activations":
        raise ValidationError(f"match job: method {params['method']!r}", hint="use 'fingerprint' or 'activations'")
    check_keys("match", params, tuple(k for k in MATCH_PARAMS if k not in ("left", "right", "use_text")),
               ("left_side", "right_side"))
    from interp_agent.core.crossmodel.sides import side_from_dict

    side_from_dict(params["left_side"], "left")
    side_from_dict(params["right_side"], "right")


def _activation_match(params: dict[str, Any], out: Path, ctx: JobContext) -> dict[str, Any]:
    """``core.crossmodel.activations.match_sides`` on the two sides, written as matches.json and .md."""
    from interp_agent.core.crossmodel.activations import match_sides
    from interp_agent.core.crossmodel.sides import side_from_dict
    from interp_agent.core.diffing.named import resolve_model_name
    from interp_agent.core.matching import write_matches

    def on_progress(phase: str, done: int, total: int | None) -> None:
        ctx.progress(min(0.99, done / total) if total else 0.0, phase)

    sides = [dict(params[k]) for k in ("left_side", "right_side")]
    for side in sides:
        side["model"] = resolve_model_name(side.get("model") or "smollm2-135m", progress=on_progress)
    doc = match_sides(side_from_dict(sides[0], "left"), side_from_dict(sides[1], "right"),
                      params.get("probes") or "builtin", pooling=params.get("pooling") or "token",
                      max_prompts=int(params.get("max_prompts") or 200),
                      min_correlation=float(params.get("min_similarity", 0.0)), progress=on_progress)
    write_matches(doc, out)
    return doc


@register("match", check=_match_check, files_evidence="match", resources=MODEL_JOB)
def match_job(params: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    """Match the features of two reports (``interp_agent.api.match``) into the run folder.

    Params, method ``fingerprint`` (default): left, right (report.json paths or report
    folders), min_similarity (default 0.3), use_text (default true; needs the ``embed``
    extra). Method ``activations`` (``core.crossmodel.activations.match_sides``): left_side,
    right_side (side dicts: model, hookpoint, features, sae, feature_ids), probes, pooling,
    max_prompts, min_similarity (the smallest correlation kept). Result: ``matches_json``,
    ``matches_md`` (paths), ``synthetic``, the ``summary``, the ``notes`` (dropped
    components) and ``matches``: the first 10 matches.
    """
    from interp_agent.api import match
    from interp_agent.core.matching import matches_paths

    _match_check(params)
    out, md = matches_paths(ctx.run_dir / "matches.json")
    if params.get("method") == "activations":
        ctx.progress(0.0, "harvesting both sides on the probes")
        doc = _activation_match(params, out, ctx)
    else:
        ctx.progress(0.0, f"matching {params['left']} with {params['right']}")
        doc = match(
            params["left"], params["right"], out=out,
            min_similarity=float(params.get("min_similarity", 0.3)), use_text=bool(params.get("use_text", True)),
        )
    ctx.progress(1.0, f"{doc['summary']['n_matches']} matches written")
    return {
        "matches_json": str(out),
        "matches_md": str(md),
        "synthetic": bool(doc["provenance"].get("synthetic", False)),
        "summary": doc["summary"],
        "notes": doc["notes"],
        "matches": doc["matches"][:10],
    }


# -- intervene -----------------------------------------------------------------------

INTERVENE_PARAMS: tuple[str, ...] = (
    "model", "criterion", "dataset", "pack", "report", "features", "top_k", "mode", "strengths", "targets",
    "scorer", "sae",
)


def _intervene_check(params: dict[str, Any]) -> None:
    check_keys("intervene", params, INTERVENE_PARAMS, ("model",))
    if not params.get("dataset") and not params.get("pack"):
        raise ValidationError(f"intervene needs prompts: {arg('dataset')} (scored prompts JSONL), {arg('pack')}, "
                              f"or {arg('positives')} and {arg('negatives')}",
                              hint="give the prompts the report was made from")
    if not params.get("report") and not params.get("features"):
        raise ValidationError(f"intervene needs {arg('report')} (an hf inspect run) or {arg('features')} (ids)",
                              hint=f"give {arg('report')}: the run_id of an hf inspect job")
    from interp_agent.core.preflight import check_intervene_inputs

    check_intervene_inputs(params)


@register("intervene", check=_intervene_check, files_evidence="intervene", resources=MODEL_JOB)
def intervene_job(params: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    """Intervene on features of a live model with controls (``interp_agent.core.live.intervene``).

    Result: paths of interventions.jsonl and summary.json, the scorer report and one row
    per feature (effect with its interval, control effect, side effect, verdict).
    """
    from interp_agent.core.live import intervene

    _intervene_check(params)
    ctx.progress(0.0, f"intervene on {params['model']}")

    def on_progress(phase: str, done: int, total: int | None) -> None:
        ctx.progress(min(0.99, done / total) if total else 0.0, phase)

    kwargs = {k: v for k, v in params.items() if v is not None}
    if "strengths" in kwargs:
        kwargs["strengths"] = tuple(float(x) for x in kwargs["strengths"])
    result = intervene(
        kwargs.pop("model"), kwargs.pop("criterion", None), out=ctx.run_dir, progress=on_progress, **kwargs
    )
    summary = result.summary
    ctx.progress(1.0, f"{len(summary['features'])} features tested")
    return {
        "interventions": str(result.paths["interventions"]),
        "summary_json": str(result.paths["summary"]),
        "scorer": summary["scorer"],
        "warnings": summary.get("warnings", []),
        "features": [
            {"feature_id": f["feature_id"], "verdict": f["verdict"], "effect": f["effect"]["mean"],
             "ci95": f["effect"]["ci95"], "control_effect": f["control_effect"]["mean"],
             "kl_on_other_class": f["side_effect"]["kl_on_other_class"], "strength": f["strength"],
             "measured_on": f["effect"]["measured_on"], "verdict_reason": f.get("verdict_reason"),
             "confidence": f.get("confidence"), "stability": (f.get("stability") or {}).get("share"),
             "note": f.get("note")}
            for f in summary["features"]
        ],
    }


# -- train_sae -------------------------------------------------------------------------

TRAIN_SAE_PARAMS: tuple[str, ...] = (
    "model", "dataset", "pack", "criterion", "hookpoint", "activations", "records", "causal", "preset", "architecture",
    "latent_dim", "expansion_factor", "k", "batch_size", "steps", "epochs", "lr", "sparsity_coefficient",
    "aux_coefficient", "dead_after_tokens", "b_dec_init", "seed", "device", "dtype", "max_records", "max_length",
    "held_out_fraction", "checkpoint_every", "top_latents", "keep_activations",
)
_TRAIN_SOURCE = ("model", "activations", "records")


def _train_sae_check(params: dict[str, Any]) -> None:
    from interp_agent.core.sae.train import TrainSettings

    check_keys("train_sae", params, TRAIN_SAE_PARAMS, ())
    given = [key for key in _TRAIN_SOURCE if params.get(key)]
    if len(given) != 1:
        raise ValidationError(
            f"train_sae job: give exactly one source of {', '.join(_TRAIN_SOURCE)}, got {given or 'none'}"
        )
    if params.get("model") and not params.get("hookpoint"):
        raise ValidationError("train_sae job: a model source needs a hookpoint, e.g. blocks.15.hook_resid_post")
    if params.get("model") and not (params.get("dataset") or params.get("pack")):
        raise ValidationError("train_sae job: a model source needs prompts: dataset or pack")
    settings = {k: v for k, v in params.items() if k in TrainSettings.__dataclass_fields__ and v is not None}
    try:
        TrainSettings(**settings).resolved()
    except TypeError as exc:
        raise ValidationError(f"train_sae job: bad settings: {exc}") from None


@register("train_sae", check=_train_sae_check, resumable=True, resources=TRAINING_JOB)
def train_sae_job(params: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    """Train an SAE into the run folder (``interp_agent.core.workflows.trained_latents.train_sae``).

    Checkpoints go to ``checkpoints/`` in the run folder; started again there (a resume), the
    job reuses the cached activations and continues from the newest checkpoint. Result:
    the held-out and splice metrics, the SAE's shape, and the paths of cfg.json,
    sae_weights.safetensors, metrics.json and, when written, records.jsonl and the causal summary.
    """
    from interp_agent.core.sae.train import TrainSettings
    from interp_agent.core.workflows.trained_latents import TrainProgress, train_sae

    _train_sae_check(params)
    if ctx.attempt > 1:
        ctx.log(f"attempt {ctx.attempt}: reusing cached activations and the newest checkpoint in {ctx.run_dir}")
    settings = TrainSettings(
        **{k: v for k, v in params.items() if k in TrainSettings.__dataclass_fields__ and v is not None}
    )
    # phases -> fraction of the run (TRAIN_PHASES), below 1 until the result is in; messages carry each step's metrics
    progress = TrainProgress(lambda fraction, message: ctx.progress(min(fraction, 0.99), message),
                             model=params.get("model"))
    result = train_sae(
        out=ctx.run_dir, model=params.get("model"), dataset=params.get("dataset"), pack=params.get("pack"),
        criterion=params.get("criterion"), hookpoint=params.get("hookpoint"), activations=params.get("activations"),
        records=params.get("records"), settings=settings,
        causal_out=ctx.run_dir / "causal" if params.get("causal") else None,
        progress=progress, on_point=progress.point,
    )
    m = result.metrics
    ctx.progress(1.0, f"held-out FVU {m['held_out']['fvu']:.3f}, L0 {m['held_out']['l0']:.1f}")
    return {
        "sae": m["sae"], "held_out": m["held_out"], "splice": m["splice"],
        "training": {k: m["training"][k] for k in ("steps", "tokens", "resumed_from_step",
                                                   "tokens_per_s_this_run", "final")},
        "causal": result.causal,
        "paths": {name: str(path) for name, path in result.paths.items()},
    }


# -- publish ---------------------------------------------------------------------------

PUBLISH_PARAMS: tuple[str, ...] = ("path", "repo_id", "repo_type", "dry_run", "private", "commit_message")
PUBLISH_CARD_PREVIEW = 1500
"""Characters of the generated card in a publish job's result (the whole card is card.md in the run folder)."""


def _publish_check(params: dict[str, Any]) -> None:
    from interp_agent.core.bridges.hf_hub import check_repo

    check_keys("publish", params, PUBLISH_PARAMS, ("path", "repo_id"))
    check_repo(params["repo_id"], params.get("repo_type", "model"))
    for key in ("dry_run", "private"):
        if not isinstance(params.get(key, True), bool):
            raise ValidationError(f"publish job: {key} must be true or false, got {params[key]!r}")


@register("publish", check=_publish_check, resources=Resources(cpus=0.5, memory_bytes=GIB // 2))
def publish_job(params: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    """Publish a run folder to the Hub (``interp_agent.core.bridges.hf_hub.publish``); a dry run by default.

    Writes the generated card (card.md) and the plan (publish.json, without the card) into
    the job's run folder. The token is read by the worker from HF_TOKEN in its environment,
    never from params. Result: the plan (files with bytes, skipped files with reasons),
    ``uploaded``, ``repo_url``, ``commit_url``, ``card`` (path of card.md) and
    ``card_preview`` (its first PUBLISH_CARD_PREVIEW characters).
    """
    from interp_agent.core.artifacts import write_json
    from interp_agent.core.bridges.hf_hub import publish

    _publish_check(params)
    dry_run = bool(params.get("dry_run", True))
    ctx.progress(0.0, f"{'planning' if dry_run else 'publishing'} {params['path']} -> {params['repo_id']}")
    result = publish(params["path"], params["repo_id"], repo_type=params.get("repo_type", "model"), dry_run=dry_run,
                     private=bool(params.get("private", True)), commit_message=params.get("commit_message"))
    card = result.pop("card")
    card_path = write_text(ctx.run_dir / "card.md", card)
    write_json(ctx.run_dir / "publish.json", result)
    ctx.log(result["message"])
    ctx.progress(1.0, result["message"])
    return result | {"card": str(card_path), "card_preview": card[:PUBLISH_CARD_PREVIEW]}



# -- explain ---------------------------------------------------------------------------

EXPLAIN_PARAMS: tuple[str, ...] = (
    "model", "sae", "hookpoint", "feature_ids", "n_features", "report", "top_k", "corpus", "text_field",
    "max_contexts", "context_length", "explainer", "scorers", "judge", "explanations", "seed", "batch_size", "device",
)


def _explain_request(params: dict[str, Any], out: str) -> Any:
    from interp_agent.core.workflows.explain import ExplainRequest

    kwargs = {k: v for k, v in params.items() if v is not None}
    for key in ("feature_ids", "scorers"):
        if key in kwargs:
            kwargs[key] = tuple(kwargs[key])
    return ExplainRequest(out=out, **kwargs)


def _explain_check(params: dict[str, Any]) -> None:
    from interp_agent.core.workflows.explain import check_request

    check_keys("explain", params, EXPLAIN_PARAMS, ())
    check_request(_explain_request(params, "."))


EXPLAIN_PHASES: dict[str, tuple[float, float]] = {
    "harvesting": (0.05, 0.75), "explaining": (0.75, 0.85), "scoring": (0.85, 1.0)}
"""Share (from, to) of an explain run each phase covers."""


@register("explain", check=_explain_check, files_evidence="explain", resources=MODEL_JOB)
def explain_job(params: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    """Harvest corpus evidence, explain features and score the explanations (``core.workflows.explain``).

    Result: the compact summary (distribution of embedding AUROC against the nulls, one row per
    feature) and the paths of explain.json, explanations.jsonl, labels.parquet, report.html, evidence/.
    """
    from interp_agent.core.workflows.explain import compact_summary, run_explain

    _explain_check(params)
    ctx.progress(0.0, f"loading {params.get('model', 'smollm2-135m')} and the corpus")

    def on_progress(phase: str, done: int, total: int | None) -> None:
        start, end = EXPLAIN_PHASES.get(phase, (0.0, 1.0))
        ctx.progress(start + (end - start) * (done / total if total else 0.0), f"{phase} {done}/{total}")

    run = run_explain(_explain_request(params, str(ctx.run_dir)), progress=on_progress)
    ctx.progress(1.0, f"{len(run.explained)} explanations scored")
    files = {name: str(ctx.run_dir / name) for name in
             ("explain.json", "explanations.jsonl", "labels.parquet", "report.html", "evidence")}
    if params.get("report"):
        files["report.json"] = str(ctx.run_dir / "report.json")
    return {"summary": compact_summary(run.summary), "files": files}


# -- investigate -----------------------------------------------------------------------

INVESTIGATE_PARAMS: tuple[str, ...] = (
    "model", "criterion", "pack", "dataset", "hookpoints", "top_k", "n_explain", "n_intervene", "mode", "strengths",
    "scorer", "targets", "corpus", "max_contexts", "max_forward_passes", "max_seconds", "dossier",
)


def _investigate_request(params: dict[str, Any], out: str, run_id: str | None = None) -> Any:
    from interp_agent.core.workflows.investigate import Budget, InvestigateRequest

    check_keys("investigate", params, INVESTIGATE_PARAMS, ("model",))
    kwargs = {k: v for k, v in params.items() if v is not None and k not in ("max_forward_passes", "max_seconds")}
    for key in ("hookpoints", "targets"):
        if key in kwargs:
            kwargs[key] = tuple(kwargs[key])
    if "strengths" in kwargs:
        kwargs["strengths"] = tuple(float(x) for x in kwargs["strengths"])
    budget = Budget(max_forward_passes=params.get("max_forward_passes"), max_seconds=params.get("max_seconds"))
    return InvestigateRequest(out=out, budget=budget, run_id=run_id, **kwargs)


def _investigate_check(params: dict[str, Any]) -> None:
    from interp_agent.core.workflows.investigate import check_investigate_request

    check_investigate_request(_investigate_request(params, "."))
    if params.get("dossier") is not None:
        from interp_agent.core.dossier import DossierStore

        DossierStore.check_path(Path(params["dossier"]))


@register("investigate", check=_investigate_check, resources=TWO_MODEL_JOB)
def investigate_job(params: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    """A whole investigation in one job (``core.workflows.investigate.run_investigation``): inspect, explain,
    intervene with controls, rank again, each step filed into the dossier, within the budget.

    Result: the steps (status, forward passes, seconds, reason), the verdicts, the dossier's claims with
    their grades, the plan of what evidence is still missing, and the paths.
    """
    from interp_agent.core.workflows.investigate import run_investigation

    request = _investigate_request(params, str(ctx.run_dir), run_id=ctx.run_dir.name)
    ctx.progress(0.0, f"investigate {request.model} against {request.criterion or request.pack!r}")

    def on_progress(phase: str, done: int, total: int | None) -> None:
        ctx.progress(done / total if total else 0.0, phase)

    run = run_investigation(request, progress=on_progress)
    done = sum(s.status == "completed" for s in run.steps)
    ctx.progress(1.0, f"{done}/{len(run.steps)} steps completed; {len(run.summary['claims'])} claims in the dossier")
    return run.summary | {"paths": {k: str(v) for k, v in run.paths.items()}}


# -- sleep (diagnostic) ----------------------------------------------------------------

SLEEP_PARAMS: tuple[str, ...] = ("seconds", "steps", "fail", "checkpoint")

SLEEP_CHECKPOINT = "sleep.checkpoint"
"""File in the run folder where a ``checkpoint`` sleep job records how many steps it has done."""


def _sleep_check(params: dict[str, Any]) -> None:
    check_keys("sleep", params, SLEEP_PARAMS, ())
    seconds, steps = params.get("seconds", 1.0), params.get("steps", 10)
    if not isinstance(seconds, (int, float)) or isinstance(seconds, bool) or not 0 <= seconds <= 86_400:
        raise ValidationError(f"sleep job: seconds must be a number in [0, 86400], got {seconds!r}")
    if not isinstance(steps, int) or isinstance(steps, bool) or not 1 <= steps <= 100_000:
        raise ValidationError(f"sleep job: steps must be an integer in [1, 100000], got {steps!r}")
    if not isinstance(params.get("checkpoint", False), bool):
        raise ValidationError(f"sleep job: checkpoint must be true or false, got {params['checkpoint']!r}")


def _sleep_steps_done(path: Path, steps: int) -> int:
    """Steps a checkpointing sleep job recorded in ``path`` (0 when there is no checkpoint yet)."""
    try:
        text = path.read_text(encoding="utf-8").strip()
    except FileNotFoundError:
        return 0
    if not text.isdigit():
        raise ValueError(f"{path}: expected a step count, found {text[:40]!r}; delete the file to start over")
    return min(int(text), steps)


@register("sleep", check=_sleep_check, resumable=True, resources=Resources(cpus=0.25))
def sleep_job(params: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    """Diagnostic kind: sleep ``seconds`` in ``steps`` equal steps, reporting progress; raise if ``fail``.

    Use it to check that jobs start, report progress, finish, fail, cancel and resume in
    a workspace without loading any model. Params: seconds (default 1.0), steps (default
    10), fail (default false: when true, raise RuntimeError after sleeping), checkpoint
    (default false). With checkpoint true it behaves like a kind that checkpoints: after
    each step it writes the number of steps done to ``sleep.checkpoint`` in the run
    folder, and a run that finds that file skips those steps; the result then also has
    ``resumed_from_step``. Without it a resumed sleep job starts over.
    """
    _sleep_check(params)
    seconds, steps = float(params.get("seconds", 1.0)), int(params.get("steps", 10))
    checkpoint = ctx.run_dir / SLEEP_CHECKPOINT if params.get("checkpoint") else None
    done = _sleep_steps_done(checkpoint, steps) if checkpoint is not None else 0
    if ctx.attempt > 1:
        ctx.log(f"attempt {ctx.attempt}: " + (
            f"resuming from checkpoint at step {done}/{steps}" if checkpoint is not None
            else "no checkpoint; starting over"
        ))
    if done:
        ctx.progress(done / steps, f"resumed after step {done}/{steps}")
    for step in range(done, steps):
        time.sleep(seconds / steps)
        if checkpoint is not None:
            write_text(checkpoint, f"{step + 1}\n")
        ctx.progress((step + 1) / steps, f"slept step {step + 1}/{steps}")
    if params.get("fail"):
        raise RuntimeError(f"sleep job asked to fail (fail=true) after {seconds:g} s")
    ctx.log(f"slept {seconds:g} s in {steps} steps")
    write_text(ctx.run_dir / "sleep.txt", f"slept {seconds:g} s\n")
    result: dict[str, Any] = {"seconds": seconds, "steps": steps}
    if checkpoint is not None:
        result["resumed_from_step"] = done
    return result
