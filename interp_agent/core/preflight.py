"""Checks of a call's arguments that need no model: run when a job is submitted, so mistakes come back at once.

A job that fails after minutes, on an argument that could have been read in a
millisecond, wastes the caller's time; these checks read what the arguments name (files
exist and parse, prompt sets have both classes, ids and hookpoints follow the grammar,
SAE folders hold an SAE) and raise the error the job would have raised, naming the
argument. What only a loaded model can tell (a hookpoint beyond its last layer, a width)
is left to the job, whose failure carries the same ``{code, message, hint}``.
"""

from __future__ import annotations

import json
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from interp_agent.core.errors import InputFileError, ValidationError, arg
from interp_agent.core.ids import FEATURE_ID_FORMS, match_feature_id, match_hookpoint, parse_hookpoint

MAX_LISTED_IDS = 12
"""Ids of a report listed in an error about an id it does not have."""


def check_path(value: str | Path | None, name: str, *, folder: bool | None = None) -> Path | None:
    """The path an argument names, refused when it does not exist (or is not a folder / a file as asked)."""
    if value is None:
        return None
    path = Path(value)
    if not path.exists():
        raise ValidationError(f"{arg(name)}: {str(value)!r} does not exist",
                              hint=f"give the path of an existing {'folder' if folder else 'file'}")
    if folder is True and not path.is_dir():
        raise ValidationError(f"{arg(name)}: {str(value)!r} is a file, not a folder", hint="give the folder")
    if folder is False and path.is_dir():
        raise ValidationError(f"{arg(name)}: {str(value)!r} is a folder, not a file", hint="give the file")
    return path


def check_prompts(dataset: str | Path | None, pack: str | None) -> None:
    """A dataset that reads as scored prompts of both classes, or a built-in pack that exists."""
    if pack is not None:
        from interp_agent.core.criteria import list_packs

        if pack not in list_packs():
            raise ValidationError(f"unknown {arg('pack', pack)}", hint=f"use one of {', '.join(list_packs())}")
    path = check_path(dataset, "dataset", folder=False)
    if path is None:
        return
    from interp_agent.core.formats.prompts import read_scored_prompts

    prompts = read_scored_prompts(path)
    scores = [p.criterion_score for p in prompts]
    if not prompts or min(scores) == max(scores):
        raise InputFileError(
            path, f"{len(prompts)} prompt(s), all with criterion_score {scores[0] if scores else None}: a ranking "
            "needs prompts where the criterion holds and prompts where it does not",
            hint="add prompts of the other class (criterion_score 1 where it holds, 0 where not)")


def check_hookpoints(hookpoints: Sequence[str] | None, name: str = "hookpoints") -> None:
    """Each hookpoint follows the TransformerLens grammar (``blocks.{L}.hook_resid_post`` …)."""
    for i, hook in enumerate(hookpoints or ()):
        try:
            parse_hookpoint(hook)
        except ValidationError as exc:
            raise ValidationError(f"{arg(name)}[{i}]: {exc.message}", hint=exc.hint) from None


def check_sae_folder(value: str | Path | None, name: str = "sae") -> None:
    """A folder in the SAE Lens layout (cfg.json + sae_weights.safetensors) or sparsify's (+ sae.safetensors)."""
    path = check_path(value, name, folder=True)
    if path is None:
        return
    lens = (path / "sae_weights.safetensors").is_file() and (path / "cfg.json").is_file()
    sparsify = (path / "sae.safetensors").is_file() or any((p / "sae.safetensors").is_file() for p in path.iterdir())
    if not (lens or sparsify):
        raise ValidationError(
            f"{arg(name)}: {str(value)!r} holds no SAE",
            hint="give an SAE Lens folder (cfg.json + sae_weights.safetensors, e.g. a train_sae run folder) or a "
                 "sparsify folder (cfg.json + sae.safetensors)")


def check_inspect_inputs(request: Any) -> None:
    """Every file, prompt set, hookpoint and SAE an ``InspectRequest`` names, read without a model."""
    check_path(request.records, "records")
    check_path(request.features, "features", folder=False)
    for path in request.interventions or ():
        from interp_agent.core.formats.interventions import read_interventions

        read_interventions(check_path(path, "interventions", folder=False))  # type: ignore[arg-type]  # checked
    check_prompts(request.dataset, request.pack)
    check_hookpoints(request.hookpoints)
    check_sae_folder(request.sae)


def suggest_feature_id(text: str) -> str | None:
    """The well-formed id a malformed one most likely meant (``contrast@blocks.15`` -> a direction id), or None."""
    for candidate in (text, f"direction:{text}"):
        name, at, hook = candidate.rpartition("@")
        if at and match_hookpoint(hook) is None:
            for site in ("hook_resid_post", ""):
                fixed = f"{name}@{hook}.{site}" if site else f"{name}@{hook}"
                if match_feature_id(fixed) is not None and match_hookpoint(fixed.rpartition("@")[2]) is not None:
                    return fixed if fixed.startswith("direction:") else f"direction:{fixed}"
        elif candidate != text and match_feature_id(candidate) is not None:
            return candidate
    return None


def report_ids(report: Path) -> tuple[list[str], list[str]]:
    """The feature ids of a report.json, and the direction ids saved beside it (directions.json)."""
    try:
        features = [f["feature_id"] for f in json.loads(report.read_text(encoding="utf-8"))["features"]]
    except (OSError, ValueError, KeyError, TypeError) as exc:
        raise InputFileError(report, f"not a readable inspection report ({exc})",
                             hint="give the run_id of an inspect job, or its report.json") from None
    directions_file = report.parent / "directions.json"
    directions: list[str] = []
    if directions_file.is_file():
        directions = list(json.loads(directions_file.read_text(encoding="utf-8")).get("directions", {}))
    return features, directions


def check_feature_ids(features: Sequence[str] | None, report: Path | None, sae: str | Path | None) -> None:
    """Each id given to intervene parses, names a feature it can edit, and (a direction) is in the report."""
    known, directions = report_ids(report) if report is not None else ([], [])
    listing = f"; the report has {', '.join((directions + known)[:MAX_LISTED_IDS])}" if known or directions else ""
    for i, fid in enumerate(features or ()):
        parsed = match_feature_id(fid)
        if parsed is None:
            guess = suggest_feature_id(fid)
            raise ValidationError(
                f"{arg('features')}[{i}]: {fid!r} is not a feature id" + (f"; did you mean {guess!r}?" if guess else "")
                + listing, hint=f"use one of the forms {FEATURE_ID_FORMS}")
        if parsed.kind == "sae" and sae is None:
            raise ValidationError(f"{arg('features')}[{i}]: {fid!r} is an SAE latent, and no SAE was given",
                                  hint=f"give {arg('sae')}: the SAE Lens folder the latent belongs to")
        if parsed.kind == "direction" and fid not in directions:
            where = f"the report's directions are {', '.join(directions)}" if directions else (
                "no report with saved directions was given")
            raise ValidationError(f"{arg('features')}[{i}]: no direction {fid!r}: {where}",
                                  hint=f"give {arg('report')} (the run_id of an hf inspect job) and one of its "
                                       "direction ids")
        if parsed.kind == "dictionary":
            raise ValidationError(f"{arg('features')}[{i}]: {fid!r} is a dictionary feature of a seed file; a live "
                                  "model has no such feature to edit",
                                  hint="use L{layer}:D{dim}, L{layer}:N{i}, SAE:L{layer}:F{i} or a direction")


def check_intervene_inputs(params: dict[str, Any]) -> None:
    """Prompts, report, feature ids and SAE an intervene call names, read without a model."""
    check_prompts(params.get("dataset"), params.get("pack"))
    report = check_path(params.get("report"), "report", folder=False)
    check_sae_folder(params.get("sae"))
    check_feature_ids(params.get("features"), report, params.get("sae"))
