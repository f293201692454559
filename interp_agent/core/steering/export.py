"""Export the steering edit ``intervene`` chose for a feature as a file others load.

The strength is the one ``intervene`` chose on calibration prompts (its records'
``metadata.value``: the amount added along the unit direction, or for an SAE latent the
latent activation added through its decoder row); it is never re-chosen here. ``intervene``
does not save the direction itself, so it is rebuilt from the same sources it used: the
inspect run's ``directions.npz`` for ``direction:…`` ids (the report named in the run's
provenance, or ``report=``), the SAE folder's decoder row for ``SAE:L{l}:F{i}``, a basis
vector for ``L{l}:D{d}``. The file stores the unit direction and ``strength`` = the norm of
what was added (signed), so ``strength * direction`` is exactly intervene's edit.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from interp_agent.core.artifacts import run_provenance, sha256_of
from interp_agent.core.errors import InputFileError, ValidationError, arg
from interp_agent.core.formats.interventions import InterventionRecord, read_interventions
from interp_agent.core.ids import match_feature_id
from interp_agent.core.steering.vectors import RESIDUAL_SITES, SteeringVector, check_residual_hookpoint, save_steering

Format = Literal["safetensors", "gguf"]
FORMATS: tuple[str, ...] = ("safetensors", "gguf")
_SUFFIX = {".safetensors": "safetensors", ".gguf": "gguf"}
CHOSEN = "chosen by intervene on calibration prompts"
GIVEN = "given by the user"


@dataclass(frozen=True, slots=True)
class ExportedSteering:
    """What ``export_steering`` wrote."""

    path: Path
    """The file written."""
    format: Format
    """``safetensors`` or ``gguf``."""
    vector: SteeringVector
    """The vector, as written."""
    checked: dict[str, Any] | None = None
    """For GGUF: what the read-back with ``gguf.GGUFReader`` compared."""

    def to_json(self) -> dict[str, Any]:
        """A JSON summary for the CLI and the tools."""
        return {"path": str(self.path), "format": self.format, "vector": self.vector.describe(),
                "gguf_read_back": self.checked}


@dataclass(frozen=True, slots=True)
class _Run:
    """One feature's rows of an intervention run, and the run's summary entry for it."""

    interventions: Path
    summary_path: Path | None
    summary: dict[str, Any]
    entry: dict[str, Any]
    rows: list[InterventionRecord]


def export_steering(
    *,
    interventions: str | Path,
    feature: str,
    out: str | Path,
    report: str | Path | None = None,
    sae: str | Path | None = None,
    strength: float | None = None,
    format: Format | None = None,
    model_hint: str | None = None,
) -> ExportedSteering:
    """Write the steering vector of ``feature`` from an ``intervene`` run to ``out``.

    Args:
        interventions: the run's folder (interventions.jsonl and summary.json) or its interventions.jsonl.
        feature: the feature id, e.g. ``direction:contrast@blocks.15.hook_resid_post``.
        out: the file to write (``.safetensors`` or ``.gguf``).
        report: the inspect report (folder or report.json) whose saved directions ``intervene`` used; default:
            the report named in the run's summary.json provenance. Needed for ``direction:…`` ids.
        sae: the SAE folder ``intervene`` used, for ``SAE:L{l}:F{i}`` ids.
        strength: override: the amount to add, in intervene's ``value`` units (activation units along the unit
            direction; for an SAE latent, latent activation). Needed when the run chose none (a mode other than
            steer, or records without ``metadata.value``); the provenance then says "given by the user".
        format: ``safetensors`` or ``gguf`` (llama.cpp control vector); default: from the suffix of ``out``.
        model_hint: ``controlvector.model_hint`` of a GGUF file; default: the model config's ``model_type``.

    Raises:
        ValidationError: the feature is not in the run, has no strength, or cannot be a steering vector.
        InputFileError: a file is missing or malformed.
    """
    fmt = _format(format, out)
    run = _read_run(interventions, feature)
    model, hook = _model_and_hook(run)
    check_residual_hookpoint(hook)
    value, strength_source = _value(run, strength)
    unit, amount_per_value, source, width = _direction(feature, hook, run, report, sae, model)
    vec = SteeringVector(
        model=model, d_model=width, hookpoints=(hook,), directions=unit[None].astype(np.float32),
        strength=float(value * amount_per_value), feature_id=feature, unit_norm=True, positions="after_first",
        synthetic=_synthetic(run, source), provenance=_provenance(run, value, strength_source, source))
    path = Path(out)
    if fmt == "safetensors":
        return ExportedSteering(save_steering(vec, path), "safetensors", vec)
    from interp_agent.core.steering.controlvector import write_control_vector

    hint = model_hint or (_model_config(model) or {}).get("model_type") or "unknown"
    checked = write_control_vector(vec, path, model_hint=str(hint))
    return ExportedSteering(path, "gguf", vec, checked)


def _format(format: str | None, out: str | Path) -> Format:
    if format is not None:
        if format not in FORMATS:
            raise ValidationError(f"{arg('format', format)} is not one of {list(FORMATS)}")
        return format  # type: ignore[return-value]
    fmt = _SUFFIX.get(Path(out).suffix.lower())
    if fmt is None:
        raise ValidationError(f"cannot tell the format of {arg('out', str(out))} from its suffix",
                              hint=f"end it in .safetensors or .gguf, or give {arg('format')}")
    return fmt  # type: ignore[return-value]


def _read_run(interventions: str | Path, feature: str) -> _Run:
    """The feature's non-control rows of the run, and its summary.json entry when the run has one."""
    p = Path(interventions)
    path = p / "interventions.jsonl" if p.is_dir() else p
    if not path.is_file():
        raise InputFileError(path, "no such file", hint="give the folder intervene wrote, or its interventions.jsonl")
    rows = [r for r in read_interventions(path) if r.feature_id == feature and r.control_type is None]
    summary_path = path.parent / "summary.json"
    summary: dict[str, Any] = {}
    if summary_path.is_file():
        try:
            summary = json.loads(summary_path.read_text())
        except json.JSONDecodeError as exc:
            raise InputFileError(summary_path, f"not JSON: {exc.msg}", line=exc.lineno) from None
    entry = next((f for f in summary.get("features", []) if f.get("feature_id") == feature), {})
    if not rows:
        known = sorted({r.feature_id for r in read_interventions(path) if r.control_type is None})
        raise ValidationError(f"{arg('feature', feature)} has no (non-control) rows in {path}",
                              hint=f"features of this run: {', '.join(known[:12]) or 'none'}")
    return _Run(path, summary_path if summary else None, summary, entry, rows)


def _model_and_hook(run: _Run) -> tuple[str, str]:
    models = {str(r.model) for r in run.rows if r.model}
    models |= {str(run.summary["model"])} if run.summary.get("model") else set()
    hooks = {str(r.metadata["hookpoint"]) for r in run.rows if r.metadata.get("hookpoint")}
    hooks |= {run.entry["hookpoint"]} if run.entry.get("hookpoint") else set()
    if len(models) != 1 or len(hooks) != 1:
        raise ValidationError(f"{run.interventions}: the rows of {run.rows[0].feature_id} name models "
                              f"{sorted(models)} and hookpoints {sorted(hooks)}; expected one of each",
                              hint="export from a run written by interp-agent intervene")
    return models.pop(), str(hooks.pop())


def _value(run: _Run, strength: float | None) -> tuple[float, str]:
    """The edit value: the one intervene chose (the same on every row of the feature), or the user's."""
    if strength is not None:
        if not np.isfinite(strength):
            raise ValidationError(f"{arg('strength', strength)} must be a finite number")
        return float(strength), GIVEN
    modes = {r.metadata.get("mode") for r in run.rows}
    values = {r.metadata.get("value") for r in run.rows}
    fid = run.rows[0].feature_id
    if modes != {"steer"} or len(values) != 1 or None in values:
        raise ValidationError(
            f"{run.interventions}: {fid} has no steering strength chosen by intervene (modes {sorted(map(str, modes))},"
            f" values {sorted(map(str, values))[:4]}): only a steer run chooses an amount to add",
            hint=f"run intervene with mode 'steer', or give {arg('strength')} yourself (it is then recorded as "
                 "given by the user)")
    return float(values.pop()), CHOSEN  # type: ignore[arg-type]


def _direction(
    feature: str, hook: str, run: _Run, report: str | Path | None, sae: str | Path | None, model: str
) -> tuple[np.ndarray, float, dict[str, Any], int]:
    """The feature's unit direction, the norm added per unit of intervene's value, where it came from, and width."""
    fid = match_feature_id(feature)
    if fid is not None and fid.kind == "direction":
        return _learned_direction(feature, hook, run, report)
    if fid is not None and fid.kind == "sae" and fid.index is not None:
        return _sae_direction(feature, fid.index, hook, sae)
    point = fid.hookpoint if fid is not None else None
    if fid is None or fid.kind != "dim" or fid.index is None or point is None or point.site not in RESIDUAL_SITES:
        raise ValidationError(
            f"{arg('feature', feature)} is not a residual-stream feature: a steering vector is a direction of width "
            "d_model", hint="export a direction:…, SAE:L{l}:F{i} or L{l}:D{d} feature (MLP neurons are not)")
    width = _width(model, report)
    if fid.index >= width:
        raise ValidationError(f"{feature}: dimension {fid.index} is out of range for d_model {width}")
    unit = np.zeros(width)
    unit[fid.index] = 1.0
    return unit, 1.0, {"kind": "basis vector", "index": fid.index}, width


def _report_file(run: _Run, report: str | Path | None) -> Path:
    """The report.json whose directions intervene used: the one given, else the one the run's provenance names."""
    if report is None:
        named = [i["path"] for i in run.summary.get("provenance", {}).get("inputs", []) if i.get("role") == "report"]
        if not named:
            raise ValidationError(f"{run.rows[0].feature_id} is a learned direction and the run names no report",
                                  hint=f"give {arg('report')}: the inspect run whose directions intervene used")
        report = str(named[0])
    p = Path(report)
    p = p / "report.json" if p.is_dir() else p
    if not p.is_file():
        raise InputFileError(p, "no such file", hint=f"give {arg('report')}: the inspect run intervene used")
    return p


def _learned_direction(
    feature: str, hook: str, run: _Run, report: str | Path | None
) -> tuple[np.ndarray, float, dict[str, Any], int]:
    """A direction saved by inspect, checked to be the one intervene read (same report.json hash)."""
    from interp_agent.core.live import load_directions

    path = _report_file(run, report)
    digest = sha256_of(path)
    used = [i for i in run.summary.get("provenance", {}).get("inputs", []) if i.get("role") == "report"]
    if used and used[0].get("sha256") != digest:
        raise ValidationError(
            f"{path} is not the report intervene used (sha256 {digest[:12]}…, the run recorded "
            f"{str(used[0].get('sha256'))[:12]}… for {used[0].get('path')})",
            hint="give the report of the inspect run this intervene read, or run intervene again on this one")
    directions = load_directions(path.parent)
    if feature not in directions:
        raise ValidationError(f"{feature} has no saved vector beside {path}",
                              hint="directions.npz and directions.json of the inspect run must sit beside report.json")
    saved_hook, vector = directions[feature]
    if saved_hook != hook:
        raise ValidationError(f"{feature}: the report saved it at {saved_hook}, the run steered {hook}")
    vector = np.asarray(vector, dtype=np.float64)
    norm = float(np.linalg.norm(vector))
    if not np.isfinite(norm) or norm == 0:
        raise ValidationError(f"{feature}: the saved vector has norm {norm}; nothing to steer along")
    return vector / norm, 1.0, {"kind": "learned direction", "report": str(path), "report_sha256": digest,
                                "vector_norm": norm}, vector.shape[0]


def _sae_direction(feature: str, index: int, hook: str, sae: str | Path | None) -> tuple[
        np.ndarray, float, dict[str, Any], int]:
    """An SAE latent's decoder row: intervene adds ``value * row``, so the norm added per unit value is |row|."""
    if sae is None:
        raise ValidationError(f"{feature} is an SAE latent", hint=f"give {arg('sae')}: the SAE folder intervene used")
    from interp_agent.core.sae import load_sae

    weights = load_sae(sae)
    if weights.hookpoint != hook:
        raise ValidationError(f"the SAE in {sae} reads {weights.hookpoint}, the run steered {hook}",
                              hint="give the SAE folder intervene used")
    if index >= weights.W_dec.shape[0]:
        raise ValidationError(f"{feature}: latent {index} is out of range (d_sae {weights.W_dec.shape[0]})")
    row = np.asarray(weights.W_dec[index], dtype=np.float64)
    norm = float(np.linalg.norm(row))
    if norm == 0:
        raise ValidationError(f"{feature}: its decoder row is zero; nothing to steer along")
    return row / norm, norm, {"kind": "SAE decoder row", "sae": str(sae), "sae_sha256": sha256_of(sae),
                              "decoder_norm": norm}, row.shape[0]


def _model_config(model: str) -> dict[str, Any] | None:
    """The model's config.json (embedded cache, a local folder, or the hub cache), or None when unreachable."""
    from interp_agent.core.models.loading import EMBEDDED_ALIASES, ensure_embedded_cache

    try:
        if model.strip().lower() in EMBEDDED_ALIASES:
            return json.loads((ensure_embedded_cache() / "config.json").read_text())
        if (Path(model).expanduser() / "config.json").is_file():
            return json.loads((Path(model).expanduser() / "config.json").read_text())
        from transformers import AutoConfig

        return AutoConfig.from_pretrained(model).to_dict()
    except Exception:  # noqa: BLE001 - a missing config only means the width must come from elsewhere
        return None


def _width(model: str, report: str | Path | None) -> int:
    """d_model of the run's model: from the report's model info, else the model's config."""
    if report is not None:
        p = Path(report)
        p = p / "report.json" if p.is_dir() else p
        if p.is_file():
            info = (json.loads(p.read_text()).get("live") or {}).get("model_info") or {}
            if isinstance(info.get("d_model"), int):
                return info["d_model"]
    cfg = _model_config(model) or {}
    width = cfg.get("hidden_size") or cfg.get("n_embd") or cfg.get("d_model")
    if not isinstance(width, int):
        raise ValidationError(f"cannot find d_model of {model!r} (no report, no readable config)",
                              hint=f"give {arg('report')} (an inspect report of this model) or make the model's "
                                   "config reachable")
    return width


def _synthetic(run: _Run, source: dict[str, Any]) -> bool:
    """Whether the run (or the report behind the direction) is labelled synthetic."""
    if run.summary.get("synthetic") or any(r.metadata.get("synthetic") for r in run.rows):
        return True
    report = source.get("report")
    return bool(report and json.loads(Path(report).read_text()).get("synthetic"))


def _provenance(run: _Run, value: float, strength_source: str, source: dict[str, Any]) -> dict[str, Any]:
    """Where the vector came from: the run, the record, how the strength was chosen and on which prompts."""
    meta = run.rows[0].metadata
    cal = run.entry.get("calibration") or {}
    settings = run.summary.get("settings") or {}
    chosen_row = next((r for r in cal.get("sweep", []) if r.get("strength") == cal.get("chosen")), {})
    inputs: dict[str, str | Path | None] = {"interventions": run.interventions, "summary": run.summary_path}
    return {
        "source": "intervene", "value_provenance": "interventional", **run_provenance(inputs),
        "feature_id": run.rows[0].feature_id, "mode": meta.get("mode"), "hookpoint": meta.get("hookpoint"),
        "strength_source": strength_source, "edit_value": value,
        "edit_value_units": "latent activation through the decoder row" if source["kind"] == "SAE decoder row"
        else "activation units along the unit direction",
        "recorded_value": meta.get("value"), "recorded_strength_in_feature_units": meta.get("strength"),
        "strength_rule": cal.get("rule"), "kl_budget": cal.get("kl_budget"),
        "calibration_kl": chosen_row.get("calibration_kl"),
        "chosen_on": {"prompts": "calibration split", "n_calibration": settings.get("n_calibration"),
                      "held_out_fraction": settings.get("held_out_fraction"), "split_salt": settings.get("split_salt"),
                      "dataset": [i for i in run.summary.get("provenance", {}).get("inputs", [])
                                  if i.get("role") == "dataset"]},
        "evidence": {"measured_on": meta.get("measured_on"), "verdict": meta.get("verdict"),
                     "confidence": meta.get("confidence"), "held_out_prompt_ids": [r.prompt_id for r in run.rows]},
        "direction": source, "criterion": run.rows[0].criterion,
    }
