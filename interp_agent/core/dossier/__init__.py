"""Dossiers: the durable record of an investigation's claims and their evidence, graded on one ladder.

    imported → correlational → held_out → causal → explained → transferred

- :mod:`.model`: the value objects (:class:`Dossier`, :class:`Claim`, :class:`Evidence`, ...).
- :mod:`.grading`: a claim's grade (highest rung reached, lowered by contradictions) and why.
- :mod:`.store`: one JSON file per dossier, changed under an exclusive lock (``DossierStore``).
- :mod:`.findings` and :mod:`.filing`: what an inspect, intervene, explain or match run measured,
  filed into a dossier (``file_run``).
- :mod:`.plan` and :mod:`.calls`: what each claim lacks and the next calls, cheapest first.
- :mod:`.render`: Markdown, a self-contained HTML page, and the compact JSON view (``summary_dict``).

``docs/dossier.md`` describes the file format, the grading rules, concurrency and the plan.
Importing this package loads no numpy, torch or MCP.
"""

from __future__ import annotations

from interp_agent.core.dossier.calls import Call, Cost
from interp_agent.core.dossier.codec import dossier_from_dict, dossier_to_dict, graded_dict
from interp_agent.core.dossier.filing import FilingResult, apply_findings, file_run
from interp_agent.core.dossier.findings import Finding, RunFindings, read_run
from interp_agent.core.dossier.grading import Grade, RungStatus, grade_claim
from interp_agent.core.dossier.model import (
    CLAIM_KINDS,
    KIND_RUNGS,
    RUNGS,
    SCHEMA_VERSION,
    Claim,
    ClaimKind,
    Dossier,
    DossierFieldError,
    Evidence,
    Provenance,
    Rung,
    RunKind,
    RunRecord,
    RunRef,
    Stance,
)
from interp_agent.core.dossier.names import NAME_PATTERN, check_name
from interp_agent.core.dossier.plan import (
    ClaimPlan,
    EvidencePlan,
    PlanStep,
    Unmet,
    plan_evidence,
    plan_from_report,
)
from interp_agent.core.dossier.render import render_html, render_markdown, summary_dict
from interp_agent.core.dossier.store import DOSSIERS_DIR, DossierStore, MissingRun

__all__ = [
    "CLAIM_KINDS", "DOSSIERS_DIR", "KIND_RUNGS", "NAME_PATTERN", "RUNGS", "SCHEMA_VERSION",
    "Call", "Claim", "ClaimKind", "ClaimPlan", "Cost", "Dossier", "DossierFieldError", "DossierStore",
    "Evidence", "EvidencePlan", "FilingResult", "Finding", "Grade", "MissingRun", "PlanStep", "Provenance",
    "Rung", "RunFindings", "RunKind", "RunRecord", "RunRef", "RungStatus", "Stance", "Unmet",
    "apply_findings", "check_name", "dossier_from_dict", "dossier_to_dict", "file_run", "grade_claim", "graded_dict",
    "plan_evidence", "plan_from_report", "read_run", "render_html", "render_markdown", "summary_dict",
]
