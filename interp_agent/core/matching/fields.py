"""Reading the fields of a report's features, with errors that name side, feature and field.

Matching reads reports other tools (or other versions) wrote; every value it uses is
checked here so a bad one fails with the side (``left`` / ``right``), the feature id and
the field, instead of a numpy error later.
"""

from __future__ import annotations

import math
from typing import Any

import numpy as np

from interp_agent.core.errors import ValidationError


def bad_field(side: str, fid: str, field: str, message: str) -> ValidationError:
    """The error for a malformed feature field."""
    return ValidationError(
        f"{side} report: feature '{fid}': field '{field}' {message}",
        hint="fix the report or regenerate it with interp-agent inspect",
    )


def number(value: Any, side: str, fid: str, field: str) -> float:
    """``value`` as a finite float.

    Raises:
        ValidationError: it is not a finite number (booleans are not numbers here).
    """
    if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value):
        raise bad_field(side, fid, field, f"must be a finite number, got {value!r}")
    return float(value)


def vector(value: Any, side: str, fid: str, field: str) -> np.ndarray | None:
    """A list of finite numbers as a float64 array; None stays None.

    Raises:
        ValidationError: it is not a list, or an entry is not a finite number.
    """
    if value is None:
        return None
    if not isinstance(value, list):
        raise bad_field(side, fid, field, f"must be a list of numbers or null, got {type(value).__name__}")
    return np.array([number(v, side, fid, field) for v in value], dtype=np.float64)


def mapping(value: Any, side: str, fid: str, field: str) -> dict[str, Any] | None:
    """An object field; None stays None.

    Raises:
        ValidationError: it is neither an object nor null.
    """
    if value is None:
        return None
    if not isinstance(value, dict):
        raise bad_field(side, fid, field, f"must be an object or null, got {type(value).__name__}")
    return value


def imported_block(feature: dict[str, Any], side: str) -> dict[str, Any]:
    """The feature's ``imported`` block (what a feature dump said), ``{}`` when it has none."""
    return mapping(feature.get("imported"), side, feature["feature_id"], "imported") or {}
