"""Intervention records JSONL: one intervention on one feature (and prompt) per row.

``{model, feature_id, criterion?, intervention, prompt_id?, baseline_score,
intervention_score, side_effect_score?, metadata?}``. Control rows carry
``metadata.control_type`` (random_feature, matched_frequency, random_direction, placebo, …).

Rows written by ``intervene`` also carry, in ``metadata`` and all optional: ``split``,
``measured_on``, ``strength``, ``value``, and the run's judgement of the feature,
``verdict``, ``verdict_reason``, ``confidence``, ``stability`` (``share``, ``n_same``,
``n_strengths``, ``by_strength``), ``expected_direction`` and ``note`` (the edit never
changed the score). Files without them read as before.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

from interp_agent.core.errors import InputFileError
from interp_agent.core.formats.jsonl import Fields, iter_json_objects, write_jsonl

DROP_MEANS_PROMOTES = frozenset({"ablate", "zero", "remove", "knockout", "suppress", "clamp_down"})
"""Interventions that remove a feature: a score drop means the feature promotes the criterion."""
RISE_MEANS_PROMOTES = frozenset({"amplify", "steer", "patch", "patch_in", "clamp", "clamp_up"})
"""Interventions that add a feature: a score rise means the feature promotes the criterion."""
KNOWN_INTERVENTIONS = DROP_MEANS_PROMOTES | RISE_MEANS_PROMOTES


def effect_sign(intervention: str) -> Literal[1, -1]:
    """+1 when a rise in score means 'promotes', -1 when a drop does."""
    return 1 if intervention in RISE_MEANS_PROMOTES else -1


def normalise_criterion(text: str) -> str:
    """Criterion text compared after folding case and collapsing whitespace."""
    return " ".join(text.casefold().split())


@dataclass(frozen=True, slots=True)
class InterventionRecord:
    """The outcome of one intervention."""

    feature_id: str
    """Feature intervened on (or the control feature/direction)."""
    intervention: str
    """Kind of intervention, one of KNOWN_INTERVENTIONS."""
    baseline_score: float
    """Behaviour score without the intervention."""
    intervention_score: float
    """Behaviour score with the intervention."""
    model: str | None = None
    """Model intervened on."""
    criterion: str | None = None
    """Criterion the behaviour score measures; None matches any criterion."""
    prompt_id: str | None = None
    """Prompt the intervention ran on."""
    side_effect_score: float | None = None
    """Size of the unwanted change (e.g. KL on unrelated prompts); larger is worse."""
    metadata: dict[str, Any] = field(default_factory=dict)
    """Free-form details; ``control_type`` marks a control row, ``control_for`` the feature it controls."""

    @property
    def control_type(self) -> str | None:
        """The control kind, or None for a row about a real feature."""
        value = self.metadata.get("control_type")
        return str(value) if value is not None else None

    @property
    def signed_effect(self) -> float:
        """Score change signed so that positive means 'the feature promotes the criterion'."""
        return effect_sign(self.intervention) * (self.intervention_score - self.baseline_score)

    def to_json(self) -> dict[str, Any]:
        """The JSONL row."""
        row: dict[str, Any] = {}
        if self.model is not None:
            row["model"] = self.model
        row["feature_id"] = self.feature_id
        if self.criterion is not None:
            row["criterion"] = self.criterion
        row["intervention"] = self.intervention
        if self.prompt_id is not None:
            row["prompt_id"] = self.prompt_id
        row["baseline_score"] = self.baseline_score
        row["intervention_score"] = self.intervention_score
        if self.side_effect_score is not None:
            row["side_effect_score"] = self.side_effect_score
        if self.metadata:
            row["metadata"] = self.metadata
        return row


def read_interventions(path: str | Path) -> list[InterventionRecord]:
    """Read intervention records; an unknown intervention name stops with file, line and field."""
    out: list[InterventionRecord] = []
    for line, obj in iter_json_objects(path):
        f = Fields(obj, path, line)
        kind = f.string("intervention")
        norm = kind.strip().lower()
        if norm not in KNOWN_INTERVENTIONS:
            raise f.error(
                "intervention",
                f"unknown intervention {kind!r}",
                hint=f"use one of {', '.join(sorted(KNOWN_INTERVENTIONS))}",
            )
        out.append(
            InterventionRecord(
                feature_id=f.string("feature_id"),
                intervention=norm,
                baseline_score=f.number("baseline_score"),
                intervention_score=f.number("intervention_score"),
                model=f.string("model", required=False),
                criterion=f.string("criterion", required=False),
                prompt_id=f.string("prompt_id", required=False),
                side_effect_score=f.number("side_effect_score", required=False),
                metadata=f.mapping("metadata") or {},
            )
        )
    if not out:
        raise InputFileError(path, "no intervention records in file", hint="one JSON object per line")
    return out


def write_interventions(path: str | Path, records: Iterable[InterventionRecord]) -> Path:
    """Write intervention records as JSONL atomically."""
    return write_jsonl(path, (r.to_json() for r in records))
