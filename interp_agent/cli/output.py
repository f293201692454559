"""What a command prints: its text or, with ``--json``, its payload; the inspection table; terminal progress bars."""

from __future__ import annotations

import argparse
import json
import sys
from collections.abc import Mapping
from pathlib import Path
from typing import Any


class TerminalProgress:
    """A tqdm bar per phase on a terminal; silent otherwise."""

    def __init__(self) -> None:
        self.enabled = sys.stderr.isatty()
        self.bar: Any = None
        self.phase: str | None = None

    def __call__(self, phase: str, done: int, total: int | None) -> None:
        if not self.enabled:
            return
        from tqdm import tqdm

        if phase != self.phase:
            self.close()
            self.phase = phase
            self.bar = tqdm(total=total, desc=phase, unit="rows", file=sys.stderr, leave=False)
        self.bar.update(done - self.bar.n)

    def close(self) -> None:
        """Remove the bar of the current phase, if any."""
        if self.bar is not None:
            self.bar.close()
            self.bar = None


def emit(args: argparse.Namespace, payload: dict[str, Any], text: str) -> None:
    """Print ``payload`` as indented JSON when ``args.json`` is set, else ``text``."""
    if getattr(args, "json", False):
        print(json.dumps(payload, indent=2, default=str))
    else:
        print(text)


def path_strings(paths: Mapping[str, Any]) -> dict[str, str]:
    """A result's named output paths as strings, for a JSON payload."""
    return {k: str(v) for k, v in paths.items()}


def compact_inspection(report: dict[str, Any], paths: dict[str, Path], limit: int = 10) -> dict[str, Any]:
    """The payload of ``inspect``: the report's header, its top ``limit`` features compacted, and the paths written."""
    from interp_agent.core.reports.compact import compact_feature

    return {
        "model": report["model"],
        "criterion": report["criterion"],
        "backend": report["backend"],
        "synthetic": report["synthetic"],
        "summary": report["summary"],
        "warnings": report["warnings"],
        "top": [compact_feature(f) for f in report["features"][:limit]],
        "paths": path_strings(paths),
    }


def _fmt(value: Any, spec: str = "+.3f") -> str:
    return "—" if value is None else (format(value, spec) if isinstance(value, float) else str(value))


def _with_ci(value: Any, ci: Any, spec: str) -> str:
    """``+0.370 [-0.10, +0.71]``: a value and its 95% interval, or a dash."""
    if value is None:
        return "—"
    if not ci:
        return _fmt(value, spec)
    short = spec.replace(".3f", ".2f")
    return f"{_fmt(value, spec)} [{_fmt(ci[0], short)}, {_fmt(ci[1], short)}]"


def _feature_row(t: dict[str, Any]) -> str:
    tested = t["r_held_out"] is not None or t["auroc_held_out"] is not None
    supported = "untested" if not tested else ("yes" if t["held_out_supported"] else "no")
    return (
        f"{t['rank']:>4}  {t['importance']:>10.4f}  {_fmt(t['r_train']):>7}  "
        f"{_with_ci(t['r_held_out'], t['r_held_out_ci95'], '+.3f'):<22}  "
        f"{_with_ci(t['auroc_held_out'], t['auroc_held_out_ci95'], '.3f'):<23}  "
        f"{_fmt(t['n_held_out_prompts']):>10}  {supported:>9}  {t['feature_id']}  {t['label'] or ''}"
    )


def inspection_text(compact: dict[str, Any]) -> str:
    """The text of ``inspect``: header, warnings, a table of the top features with their notes, the paths."""
    from interp_agent.core.reports.markdown import rows_sentence

    lines = [
        f"{'[SYNTHETIC] ' if compact['synthetic'] else ''}{compact['model']} — {compact['criterion']}",
        rows_sentence(compact["summary"]),
    ]
    lines += [f"warning: {w}" for w in compact["warnings"]]
    lines.append(
        f"{'rank':>4}  {'importance':>10}  {'r train':>7}  {'r held-out [95% CI]':<22}  "
        f"{'AUROC held-out [95% CI]':<23}  {'n held-out':>10}  supported  feature"
    )
    for t in compact["top"]:
        lines.append(_feature_row(t))
        lines += [f"{'':>6}note: {n}" for n in t["notes"]]
    for name, path in compact["paths"].items():
        lines.append(f"{name}: {path}")
    return "\n".join(lines)
