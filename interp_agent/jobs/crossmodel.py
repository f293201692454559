"""The cross-model job kinds: ``validate_matches``, ``diff_models`` and ``train_crosscoder``.

Each reads JSON parameters, writes its artifacts into ``ctx.run_dir`` and returns a compact
result; the work is in ``core.crossmodel.validate``, ``core.diffing`` and ``core.crosscoder``.
A model named ``finetune:default`` (``core.diffing.named``) is the built-in fine-tune of SmolLM2-135M, built once
(a few minutes on a CPU) and reused.
"""

from __future__ import annotations

from typing import Any

from interp_agent.core.errors import ValidationError
from interp_agent.jobs.context import JobContext
from interp_agent.jobs.kinds import TRAINING_JOB, TWO_MODEL_JOB, check_keys, register


def _fraction_progress(ctx: JobContext) -> Any:
    def on_progress(phase: str, done: int, total: int | None) -> None:
        ctx.progress(min(0.99, done / total) if total else 0.0, phase)

    return on_progress


def _models(names: list[str], ctx: JobContext) -> list[str]:
    """Model names with ``finetune:default`` replaced by the built-in fine-tune's folder (built if missing)."""
    from interp_agent.core.diffing.named import resolve_model_name  # the package pulls in torch: not at import

    return [resolve_model_name(n, progress=_fraction_progress(ctx)) for n in names]


# -- validate_matches ----------------------------------------------------------------

VALIDATE_PARAMS: tuple[str, ...] = (
    "matches", "left_model", "right_model", "left_report", "right_report", "left_sae", "right_sae", "criterion",
    "dataset", "pack", "mode", "top", "strengths", "targets", "scorer", "patch_across",
)


def _validate_check(params: dict[str, Any]) -> None:
    check_keys("validate_matches", params, VALIDATE_PARAMS, ("matches",))
    if not params.get("dataset") and not params.get("pack"):
        raise ValidationError("validate_matches needs prompts: dataset (scored prompts JSONL), pack, or positives "
                              "and negatives", hint="give the prompts the matched features were ranked on")
    from interp_agent.core.crossmodel.validate import check_validation

    kwargs = {k: v for k, v in params.items() if v is not None and k not in ("matches", "patch_across")}
    check_validation(params["matches"], **kwargs)  # bad matches, reports, features or prompts fail the call


@register("validate_matches", check=_validate_check, files_evidence="validate_matches",
          resources=TWO_MODEL_JOB)
def validate_matches_job(params: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    """Validate matched pairs with the same intervention on both sides (``core.crossmodel.validate``).

    Result: the summary (pairs per grade), the pairs, the scorer, and the paths of validation.json and .md
    (in the run folder's ``validation/``, with each side's intervention records under ``left/`` and ``right/``).
    """
    from interp_agent.core.crossmodel.validate import validate_matches

    _validate_check(params)
    ctx.progress(0.0, f"validating matches of {params['matches']}")
    kwargs = {k: v for k, v in params.items() if v is not None and k != "matches"}
    for side in ("left_model", "right_model"):
        if side in kwargs:
            kwargs[side] = _models([kwargs[side]], ctx)[0]
    if "strengths" in kwargs:
        kwargs["strengths"] = tuple(float(x) for x in kwargs["strengths"])
    out = ctx.run_dir / "validation"  # written whole and renamed into place, beside job.log
    doc = validate_matches(params["matches"], out=out, progress=_fraction_progress(ctx), **kwargs)
    ctx.progress(1.0, f"{len(doc['pairs'])} pairs validated")
    return {"summary": doc["summary"], "pairs": doc["pairs"][:20], "scorer": doc["scorer"],
            "validation_json": str(out / "validation.json"), "validation_md": str(out / "validation.md")}


# -- diff_models -----------------------------------------------------------------------

DIFF_PARAMS: tuple[str, ...] = ("base", "tuned", "hookpoints", "features", "probes", "n_probes", "criterion", "pack",
                                "dataset")


def _diff_check(params: dict[str, Any]) -> None:
    check_keys("diff_models", params, DIFF_PARAMS, ("tuned", "hookpoints"))
    if params.get("dataset") and not params.get("criterion"):
        raise ValidationError("diff_models: a dataset needs its criterion", hint="give criterion, or a pack instead")


@register("diff_models", check=_diff_check, resources=TWO_MODEL_JOB)
def diff_models_job(params: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    """Diff a fine-tuned model against its base (``core.diffing.diff_models``) into the run folder."""
    from interp_agent.core.diffing.diff import diff_models, summarise

    _diff_check(params)
    base, tuned = _models([params.get("base") or "smollm2-135m", params["tuned"]], ctx)
    ctx.progress(0.0, f"diffing {tuned} against {base}")
    kwargs = {k: params[k] for k in ("features", "probes", "n_probes", "criterion", "pack", "dataset")
              if params.get(k) is not None}
    result = diff_models(base, tuned, hookpoints=list(params["hookpoints"]), out=ctx.run_dir,
                         progress=_fraction_progress(ctx), **kwargs)
    ctx.progress(1.0, "diff written")
    return {"summary": summarise(result), "diff_json": str(ctx.run_dir / "diff.json"),
            "diff_md": str(ctx.run_dir / "diff.md")}


# -- train_crosscoder ------------------------------------------------------------------

CROSSCODER_PARAMS: tuple[str, ...] = ("models", "hookpoints", "corpus", "pack", "latent_dim", "k", "steps", "seed",
                                      "max_texts")


def _crosscoder_check(params: dict[str, Any]) -> None:
    check_keys("train_crosscoder", params, CROSSCODER_PARAMS, ("models", "hookpoints"))
    models, hooks = list(params["models"]), list(params["hookpoints"])
    if len(models) * len(hooks) < 2 or (len(models) > 1 and len(hooks) > 1):
        raise ValidationError(f"train_crosscoder needs two or more sources: several models at one hookpoint, or one "
                              f"model at several hookpoints; got {len(models)} model(s) and {len(hooks)} hookpoint(s)",
                              hint="e.g. models=['smollm2-135m', 'finetune:default'], "
                                   "hookpoints=['blocks.15.hook_resid_post']")


@register("train_crosscoder", check=_crosscoder_check, resources=TRAINING_JOB)
def train_crosscoder_job(params: dict[str, Any], ctx: JobContext) -> dict[str, Any]:
    """Train a BatchTopK crosscoder (``core.crosscoder.train_crosscoder``) into the run folder."""
    from interp_agent.core.crosscoder import train_crosscoder

    _crosscoder_check(params)
    models = _models(list(params["models"]), ctx)
    ctx.progress(0.0, f"crosscoder on {', '.join(models)} at {', '.join(params['hookpoints'])}")
    kwargs = {k: params[k] for k in ("corpus", "pack", "latent_dim", "k", "steps", "seed", "max_texts")
              if params.get(k) is not None}
    summary = train_crosscoder(out=ctx.run_dir, models=models, hookpoints=list(params["hookpoints"]),
                               progress=_fraction_progress(ctx), **kwargs)
    ctx.progress(1.0, "crosscoder saved")
    return {"summary": summary, "crosscoder": str(ctx.run_dir / "config.json")}
