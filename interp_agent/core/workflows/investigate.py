"""``investigate``: inspect, intervene on the top features with controls, then rank again with that evidence."""

from __future__ import annotations

from dataclasses import dataclass
from pathlib import Path
from typing import Any

from interp_agent.core.inspection import InspectionResult, inspect
from interp_agent.core.live import InterveneResult, intervene


@dataclass(frozen=True, slots=True)
class Investigation:
    """What ``investigate`` returns."""

    first: InspectionResult
    """The ranking before any intervention (correlational evidence)."""
    intervention: InterveneResult
    """Interventions with controls on the first ranking's top features."""
    final: InspectionResult
    """The same ranking again, with the interventional evidence beside the correlational."""


def investigate(
    model: str,
    criterion: str | None,
    *,
    first_out: Path,
    intervene_out: Path,
    final_out: Path,
    inspect_options: dict[str, Any],
    intervene_options: dict[str, Any],
    progress: Any = None,
) -> Investigation:
    """Inspect ``model``, intervene on the report's top features, and inspect again with the interventions.

    Args:
        model: the model (a live model for ``intervene``).
        criterion: the criterion text; None or empty takes a pack's own.
        first_out, intervene_out, final_out: folders of the three steps.
        inspect_options: keyword arguments of ``inspect`` for both rankings (backend, records or pack, config …).
        intervene_options: keyword arguments of ``intervene`` (pack or dataset, top_k, mode, sae …).
        progress: passed to every step.
    """
    # both steps split prompts by the same hash (held-out fraction and salt): features are chosen on
    # training prompts, and their effects measured on held-out ones
    first = inspect(model, criterion or "", out=first_out, progress=progress, **inspect_options)
    inter = intervene(model, criterion, out=intervene_out, report=first.paths["json"], progress=progress,
                      **intervene_options)
    final = inspect(model, criterion or "", out=final_out, interventions=inter.paths["interventions"],
                    progress=progress, **inspect_options)
    return Investigation(first=first, intervention=inter, final=final)
