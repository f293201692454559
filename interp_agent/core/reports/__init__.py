"""Renderings of an inspection report: ``report.json`` plus ``report.md`` and ``report.html``.

``report.json`` is the source of truth (see ``docs/report-format.md``); the Markdown and
the self-contained HTML page are derived from it and never add numbers of their own.
"""

from __future__ import annotations

from pathlib import Path

from interp_agent.core.artifacts import write_json, write_text
from interp_agent.core.reports.html import render_html
from interp_agent.core.reports.markdown import render_markdown

__all__ = ["render_html", "render_markdown", "write_report"]


def write_report(report: dict, out_dir: str | Path) -> dict[str, Path]:
    """Write ``report.json``, ``report.md`` and ``report.html`` into ``out_dir``, each atomically.

    Both renderings are built before anything is written, so a rendering error leaves
    no partial set of files behind.

    Args:
        report: the report, as defined in ``docs/report-format.md``.
        out_dir: destination folder; created if missing.

    Returns:
        The written paths keyed ``"json"``, ``"md"`` and ``"html"``.
    """
    out = Path(out_dir)
    markdown, page = render_markdown(report), render_html(report)
    return {
        "json": write_json(out / "report.json", report),
        "md": write_text(out / "report.md", markdown),
        "html": write_text(out / "report.html", page),
    }
