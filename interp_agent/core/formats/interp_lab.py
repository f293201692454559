"""Telling interp-lab's files apart: its schema names and what kind of file a JSON value is.

The conversion itself is :mod:`interp_agent.core.migrate.interp_lab`; this module is what
the report readers below it need to recognise an interp-lab file and say how to convert it.
"""

from __future__ import annotations

from typing import Any

REPORT_SCHEMA_V1 = "interp-lab.inspection_report.v1"
"""The inspection-report schema of interp-lab 1.0-3.1."""
MATCH_SCHEMA_V1 = "interp-lab.match_report.v1"
"""The match-report schema of interp-lab 1.0-3.1."""


def interp_lab_kind(obj: Any) -> str | None:
    """``report``, ``matches`` or ``run_config`` for an interp-lab file's value; None when it is none of them."""
    if not isinstance(obj, dict):
        return None
    version = obj.get("schema_version")
    if isinstance(version, str) and version.startswith("interp-lab."):
        return "matches" if ".match_report." in version else "report"
    if version is None and isinstance(obj.get("cards"), list) and isinstance(obj.get("criterion"), dict):
        return "report"
    if version is None and isinstance(obj.get("matches"), list) and "left_model" in obj:
        return "matches"
    if version is None and (isinstance(obj.get("steps"), list) or {"model", "criterion"} <= set(obj)):
        return "run_config"
    return None
