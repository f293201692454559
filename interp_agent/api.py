"""The Python API: ``inspect``, ``match`` and ``convert``, thin wrappers over ``interp_agent.core``."""

from __future__ import annotations

from pathlib import Path
from typing import Any

from interp_agent.core.errors import InputFileError, ValidationError
from interp_agent.core.formats.parquet import is_parquet_dataset, jsonl_to_parquet, parquet_to_jsonl
from interp_agent.core.inspection import InspectionResult, inspect
from interp_agent.core.matching import load_report, match_reports, write_matches

__all__ = ["convert", "inspect", "match"]


def _as_report(value: str | Path | dict[str, Any] | InspectionResult) -> dict[str, Any]:
    if isinstance(value, InspectionResult):
        return value.report
    if isinstance(value, dict):
        return value
    path = Path(value)
    return load_report(path / "report.json" if path.is_dir() else path)


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
        out: where to write matches.json (matches.md is written beside it).
        min_similarity: smallest combined similarity kept as a match.
        weights: component weights (activation, decoder, text, causal).
        use_text: embed labels with all-MiniLM-L6-v2 (needs the ``embed`` extra).

    Returns:
        The matches document (as written to matches.json).
    """
    result = match_reports(
        _as_report(left), _as_report(right), min_similarity=min_similarity, weights=weights, use_text=use_text
    )
    if out is not None:
        write_matches(result, out)
    return result


def convert(src: str | Path, out: str | Path) -> Path:
    """Convert activation records between JSONL and a Parquet dataset folder (direction from ``src``)."""
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
