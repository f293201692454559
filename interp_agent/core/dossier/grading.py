"""A claim's grade: the highest rung of the ladder its evidence reaches, and why.

Per rung of the claim's kind (``KIND_RUNGS``), the status is

- ``contradicted``: some evidence at the rung contradicts the claim (whatever else supports it:
  contradicting evidence is never outweighed or overwritten, only kept and shown);
- ``reached``: full (not weak) support and nothing contradicting;
- ``weak``: only weak support (e.g. an intervene verdict ``weak``): shown, not reached;
- ``missing``: no evidence; ``not_applicable`` for rungs the kind cannot hold.

The grade is the highest ``reached`` rung. A contradiction at a rung therefore lowers the
grade to the highest rung below it that is reached on its own; the reason names what reached
the grade and every contradiction and weak result above it, with the numbers.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any, Literal

from interp_agent.core.dossier.model import KIND_RUNGS, RUNGS, Claim, Evidence, Rung

RungStatus = Literal["reached", "weak", "contradicted", "missing", "not_applicable"]
RUNG_STATUSES: tuple[RungStatus, ...] = ("reached", "weak", "contradicted", "missing", "not_applicable")


@dataclass(frozen=True, slots=True)
class Grade:
    """Where a claim stands on the ladder."""

    rung: Rung | None
    """The highest rung reached; None when none is."""
    reason: str
    """Why, in a sentence or two, with the numbers."""
    rungs: dict[Rung, RungStatus]
    """Status of every rung of the ladder, lowest first."""
    lowered_from: Rung | None = None
    """The highest rung with full support, when a contradiction there put the grade below it."""

    def to_dict(self) -> dict[str, Any]:
        """``{rung, reason, rungs, lowered_from}``."""
        return {"rung": self.rung, "reason": self.reason, "rungs": dict(self.rungs),
                "lowered_from": self.lowered_from}


def rung_status(items: Sequence[Evidence]) -> RungStatus:
    """The status of one rung from its evidence (see the module docstring)."""
    if any(ev.stance == "contradicts" for ev in items):
        return "contradicted"
    if any(ev.counts for ev in items):
        return "reached"
    return "weak" if items else "missing"


def claim_rungs(claim: Claim) -> dict[Rung, RungStatus]:
    """Status of every rung for ``claim``, lowest first."""
    out: dict[Rung, RungStatus] = {}
    for rung in RUNGS:
        if rung not in KIND_RUNGS[claim.kind]:
            out[rung] = "not_applicable"
        else:
            out[rung] = rung_status([ev for ev in claim.evidence if ev.rung == rung])
    return out


def _latest(items: Sequence[Evidence]) -> Evidence:
    return max(items, key=lambda ev: ev.filed_at)


def _said(ev: Evidence) -> str:
    where = ev.run.run_id or ev.run.folder
    return f"{ev.summary} ({ev.tool} run {where})"


def grade_claim(claim: Claim) -> Grade:
    """The grade of ``claim`` from its evidence (rules in the module docstring)."""
    rungs = claim_rungs(claim)
    at = {r: [ev for ev in claim.evidence if ev.rung == r] for r in RUNGS}
    reached: list[Rung] = [r for r in RUNGS if rungs[r] == "reached"]
    top = reached[-1] if reached else None
    supported: list[Rung] = [r for r in RUNGS if any(ev.counts for ev in at[r])]
    lowered = supported[-1] if supported and (top is None or RUNGS.index(supported[-1]) > RUNGS.index(top)) \
        else None
    parts = [f"{top}: {_said(_latest([ev for ev in at[top] if ev.counts]))}" if top is not None
             else ("no rung reached" if claim.evidence else "no evidence filed yet")]
    for rung in reversed(RUNGS):
        if rungs[rung] == "contradicted":
            against = [ev for ev in at[rung] if ev.stance == "contradicts"]
            mixed = f" ({len(against)} contradicting, {len(at[rung]) - len(against)} supporting)" \
                if len(against) < len(at[rung]) else ""
            parts.append(f"{rung} contradicted{mixed}: {_said(_latest(against))}")
        elif rungs[rung] == "weak" and (top is None or RUNGS.index(rung) > RUNGS.index(top)):
            ev = _latest(at[rung])
            parts.append(f"{rung} weak only: {_said(ev)}" + (f"; {ev.note}" if ev.note else ""))
    if lowered is not None:
        parts.insert(1, f"lowered from {lowered} by the contradiction there")
    return Grade(top, "; ".join(parts), rungs, lowered)
