"""The ranked features of an inspection report as one CSV table (``--csv-out``), for spreadsheets and pandas.

One row per ranked feature, best first, with the numbers a reader sorts and filters by:
importance, the train and held-out association (Pearson r, AUROC, p, q and the held-out
95% intervals), the causal effect with its interval, the control and side effects, the
causal verdict and the provenance of the association and causal blocks. A cell is empty
where the report holds null (no held-out split, no intervention evidence). Numbers are
written with full precision (Python's ``repr``), so a reader gets back the report's
floats exactly. The CSV is derived from report.json and adds nothing of its own.
"""

from __future__ import annotations

import csv
from collections.abc import Callable, Mapping
from pathlib import Path
from typing import Any, Protocol

from interp_agent.core.artifacts import atomic_open
from interp_agent.core.reports.markdown import dig


class _Report(Protocol):
    """An ``InspectionReport`` (or anything that renders as report JSON)."""

    def to_json(self) -> dict[str, Any]: ...


Getter = Callable[[Mapping[str, Any]], Any]


def _interval(*keys: str, end: int) -> Getter:
    def get(row: Mapping[str, Any]) -> Any:
        interval = dig(row, *keys)
        return interval[end] if isinstance(interval, (list, tuple)) and len(interval) == 2 else None

    return get


def _at(*keys: str) -> Getter:
    return lambda row: dig(row, *keys)


_COLUMNS: tuple[tuple[str, Getter], ...] = (
    ("rank", _at("rank")),
    ("feature_id", _at("feature_id")),
    ("layer", _at("layer")),
    ("label", _at("label")),
    ("direction", _at("direction")),
    ("importance", _at("importance")),
    ("train_n_prompts", _at("association", "train", "n_prompts")),
    ("train_r", _at("association", "train", "pearson_r")),
    ("train_auroc", _at("association", "train", "auroc")),
    ("train_p", _at("association", "train", "p_value")),
    ("train_q", _at("association", "train", "q_value")),
    ("held_out_n_prompts", _at("association", "held_out", "n_prompts")),
    ("held_out_r", _at("association", "held_out", "pearson_r")),
    ("held_out_r_ci95_low", _interval("association", "held_out", "pearson_r_ci95", end=0)),
    ("held_out_r_ci95_high", _interval("association", "held_out", "pearson_r_ci95", end=1)),
    ("held_out_auroc", _at("association", "held_out", "auroc")),
    ("held_out_auroc_ci95_low", _interval("association", "held_out", "auroc_ci95", end=0)),
    ("held_out_auroc_ci95_high", _interval("association", "held_out", "auroc_ci95", end=1)),
    ("held_out_p", _at("association", "held_out", "p_value")),
    ("held_out_q", _at("association", "held_out", "q_value")),
    ("held_out_supported", _at("association", "held_out_supported")),
    ("specificity_held_out", _at("specificity", "held_out")),
    ("stability_top_k_frequency", _at("stability", "bootstrap_top_k_frequency")),
    ("causal_n", _at("causal", "n")),
    ("causal_effect", _at("causal", "mean_effect")),
    ("causal_ci95_low", _interval("causal", "ci95", end=0)),
    ("causal_ci95_high", _interval("causal", "ci95", end=1)),
    ("control_effect", _at("causal", "control_effect")),
    ("side_effect", _at("causal", "side_effect")),
    ("verdict", _at("causal", "verdict")),
    ("association_provenance", _at("provenance", "association")),
    ("causal_provenance", _at("provenance", "causal")),
)

CSV_COLUMNS: tuple[str, ...] = tuple(name for name, _ in _COLUMNS)
"""The header of the CSV, in order. ``verdict`` is the causal verdict (empty without intervention evidence);
``*_provenance`` is correlational, interventional, semantic, imported or synthetic."""


def feature_rows(report: Mapping[str, Any] | _Report) -> list[dict[str, Any]]:
    """One dict per ranked feature, keyed by :data:`CSV_COLUMNS`, values as the report holds them (None: null)."""
    obj = report if isinstance(report, Mapping) else report.to_json()
    return [{name: get(row) for name, get in _COLUMNS} for row in obj.get("features") or []]


def _cell(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, float):
        return repr(value)
    return str(value)


def write_features_csv(report: Mapping[str, Any] | _Report, path: str | Path) -> Path:
    """Write the report's ranked features as CSV (header :data:`CSV_COLUMNS`, UTF-8), atomically.

    Args:
        report: an inspection report (the report.json object or the typed report).
        path: the CSV file to write; its folder is created if missing.

    Returns:
        The path written.
    """
    rows = feature_rows(report)
    with atomic_open(path) as fh:
        writer = csv.writer(fh, lineterminator="\n")  # atomic_open translates newlines: \r\n would double on Windows
        writer.writerow(CSV_COLUMNS)
        writer.writerows([_cell(row[name]) for name in CSV_COLUMNS] for row in rows)
    return Path(path)
