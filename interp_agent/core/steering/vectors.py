"""Steering vectors as files: one direction per hookpoint, a strength, and where both came from.

A :class:`SteeringVector` adds ``scale * strength * directions[i]`` to the activation at
``hookpoints[i]`` (TransformerLens names, residual-stream sites of width ``d_model``).
Saved as safetensors (``save_steering`` / ``load_steering``): one float32 tensor [d_model]
per hookpoint, named by the hookpoint, and string metadata:

- ``schema_version``: ``interp-agent.steering.v1``
- ``model``, ``d_model``, ``feature_id``, ``strength`` (float, as text), ``unit_norm`` and
  ``synthetic`` (``true``/``false``), ``positions`` (``after_first`` or ``all``)
- ``hookpoints``: JSON list, the tensors' order
- ``provenance``: JSON object (the intervention run, how the strength was chosen and on
  which prompts, the tool version)

llama.cpp's control-vector GGUF is written by ``steering.export``; ``load_steering`` reads
both.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import numpy as np

from interp_agent.core.artifacts import atomic_open, schema_version
from interp_agent.core.errors import InputFileError, MissingDependencyError, ValidationError
from interp_agent.core.ids import match_hookpoint

SCHEMA = schema_version("steering")
"""``interp-agent.steering.v1``."""
RESIDUAL_SITES = ("hook_resid_pre", "hook_resid_post", "hook_attn_out", "hook_mlp_out")
"""Hookpoint sites of width d_model that a steering vector may add to."""
Positions = Literal["after_first", "all"]
POSITIONS: tuple[str, ...] = ("after_first", "all")
_UNIT_TOLERANCE = 1e-4


@dataclass(frozen=True, slots=True)
class SteeringVector:
    """Directions at hookpoints and the strength to add them with."""

    model: str | None
    """The model the vector was made on (as ``intervene`` named it); None for a foreign GGUF file."""
    d_model: int
    """Residual-stream width of that model: the length of every direction."""
    hookpoints: tuple[str, ...]
    """Where each direction is added (TransformerLens names, residual-stream sites)."""
    directions: np.ndarray
    """float32 [len(hookpoints), d_model]; row i is added at hookpoints[i]."""
    strength: float
    """The amount each direction is added with (activation units; negative removes it)."""
    feature_id: str
    """The feature the direction is (``direction:…``, ``L{l}:D{d}``, ``SAE:L{l}:F{i}``)."""
    unit_norm: bool = True
    """Every direction has norm 1, so ``|strength|`` is the norm of what is added."""
    positions: Positions = "after_first"
    """Positions the vector is added at: every one but the first (how ``intervene`` edits, the first position
    carries massive activations) or all of them (as llama.cpp adds a control vector)."""
    synthetic: bool = False
    """Made from a synthetic or toy model or data (labelled so wherever it is used)."""
    provenance: dict[str, Any] = field(default_factory=dict)
    """JSON: the intervention run and record, how the strength was chosen and on which prompts."""

    def __post_init__(self) -> None:
        dirs = self.directions
        if dirs.ndim != 2 or dirs.shape != (len(self.hookpoints), self.d_model):
            raise ValidationError(f"directions must be [{len(self.hookpoints)} hookpoints, d_model {self.d_model}], "
                                  f"got {list(dirs.shape)}")
        if dirs.dtype != np.float32:
            raise ValidationError(f"directions must be float32, got {dirs.dtype}")
        if not self.hookpoints or len(set(self.hookpoints)) != len(self.hookpoints):
            raise ValidationError(f"hookpoints must be distinct and at least one, got {list(self.hookpoints)}")
        for hook in self.hookpoints:
            check_residual_hookpoint(hook)
        if not math.isfinite(self.strength):
            raise ValidationError(f"strength must be finite, got {self.strength!r}")
        if not np.isfinite(dirs).all():
            raise ValidationError("directions hold NaN or infinite values")
        if self.positions not in POSITIONS:
            raise ValidationError(f"positions must be one of {POSITIONS}, got {self.positions!r}")
        norms = np.linalg.norm(dirs.astype(np.float64), axis=1)
        if self.unit_norm and np.any(np.abs(norms - 1.0) > _UNIT_TOLERANCE):
            raise ValidationError(f"unit_norm is set but the directions have norms {norms.round(6).tolist()}",
                                  hint="normalise them, or set unit_norm=False")

    def added(self, i: int = 0) -> np.ndarray:
        """float32 [d_model]: what is added at ``hookpoints[i]`` at scale 1 (``strength * directions[i]``)."""
        return (np.float32(self.strength) * self.directions[i]).astype(np.float32)

    def describe(self) -> dict[str, Any]:
        """A JSON summary (no tensors): model, width, hookpoints, strength, feature and provenance."""
        return {"schema_version": SCHEMA, "model": self.model, "d_model": self.d_model,
                "hookpoints": list(self.hookpoints), "strength": self.strength, "feature_id": self.feature_id,
                "unit_norm": self.unit_norm, "positions": self.positions, "synthetic": self.synthetic,
                "added_norm": [float(np.linalg.norm(self.added(i))) for i in range(len(self.hookpoints))],
                "provenance": self.provenance}


def check_residual_hookpoint(hook: str) -> int:
    """The layer of a residual-stream hookpoint; raises ValidationError naming the sites allowed."""
    point = match_hookpoint(hook)
    if point is None or point.site not in RESIDUAL_SITES:
        raise ValidationError(
            f"hookpoint {hook!r} is not a residual-stream site: a steering vector is added where the width is "
            "d_model", hint="use blocks.{L}.hook_resid_post (also hook_resid_pre, hook_attn_out, hook_mlp_out)")
    return point.layer


def _safetensors() -> Any:
    try:
        import safetensors.numpy
    except ImportError:
        raise MissingDependencyError("safetensors", "hf", "Reading and writing steering vectors") from None
    return safetensors.numpy


def save_steering(vec: SteeringVector, path: str | Path) -> Path:
    """Write ``vec`` as safetensors with string metadata (atomically); returns the path."""
    meta = {
        "schema_version": SCHEMA, "model": vec.model or "", "d_model": str(vec.d_model),
        "hookpoints": json.dumps(list(vec.hookpoints)), "strength": repr(float(vec.strength)),
        "feature_id": vec.feature_id, "unit_norm": _flag(vec.unit_norm), "positions": vec.positions,
        "synthetic": _flag(vec.synthetic), "provenance": json.dumps(vec.provenance, allow_nan=False),
    }
    tensors = {hook: np.ascontiguousarray(vec.directions[i]) for i, hook in enumerate(vec.hookpoints)}
    blob = _safetensors().save(tensors, metadata=meta)
    with atomic_open(path, "wb") as fh:
        fh.write(blob)
    return Path(path)


def _flag(value: bool) -> str:
    return "true" if value else "false"


def read_safetensors(p: Path) -> SteeringVector:
    """Read our safetensors steering file (``load_steering`` in ``steering.files`` reads either format)."""
    try:
        from safetensors import safe_open

        with safe_open(str(p), framework="np") as fh:
            meta = fh.metadata() or {}
            tensors = {k: fh.get_tensor(k) for k in fh.keys()}  # noqa: SIM118 - safe_open has no __iter__
    except ImportError:
        raise MissingDependencyError("safetensors", "hf", "Reading steering vectors") from None
    except Exception as exc:  # noqa: BLE001 - any parse failure is a bad file
        raise InputFileError(p, f"not a readable safetensors file ({type(exc).__name__}: {exc})",
                             hint="give a file export-steering wrote, or a llama.cpp control-vector .gguf") from None
    if meta.get("schema_version") != SCHEMA:
        raise InputFileError(p, f"not an interp-agent steering vector: schema_version is "
                             f"{meta.get('schema_version')!r}, expected {SCHEMA!r}", field="schema_version",
                             hint="export one with interp-agent export-steering")
    hooks = _json_field(p, meta, "hookpoints", list)
    missing = [h for h in hooks if h not in tensors]
    if missing or set(tensors) != set(hooks):
        raise InputFileError(p, f"tensors {sorted(tensors)} do not match the hookpoints {hooks}", field="hookpoints")
    try:
        d_model = int(meta["d_model"])
        strength = float(meta["strength"])
        dirs = np.stack([np.asarray(tensors[h]) for h in hooks]) if hooks else np.zeros((0, d_model), np.float32)
        return SteeringVector(
            model=meta.get("model") or None, d_model=d_model, hookpoints=tuple(hooks), directions=dirs,
            strength=strength, feature_id=meta.get("feature_id", ""), unit_norm=meta.get("unit_norm") == "true",
            positions=meta.get("positions", "after_first"),  # type: ignore[arg-type] - checked in __post_init__
            synthetic=meta.get("synthetic") == "true", provenance=_json_field(p, meta, "provenance", dict))
    except (KeyError, ValueError) as exc:
        raise InputFileError(p, f"inconsistent steering vector: {exc}",
                             hint="export it again with interp-agent export-steering") from None


def _json_field(p: Path, meta: dict[str, str], name: str, kind: type) -> Any:
    try:
        value = json.loads(meta[name])
    except (KeyError, json.JSONDecodeError) as exc:
        raise InputFileError(p, f"metadata {name} is missing or not JSON ({exc})", field=name) from None
    if not isinstance(value, kind):
        raise InputFileError(p, f"metadata {name} must be a JSON {kind.__name__}", field=name)
    return value
