"""Interventions: ablate, mean-ablate, clamp, steer or patch features, with controls and held-out effects.

The names below load on first use, so the verdict rule (``interventions.verdict``, pure
numpy) can be read by the report without importing torch.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from interp_agent.core.interventions.edits import MODES, RECORD_NAME, edit_fn
    from interp_agent.core.interventions.run import (
        InterveneConfig,
        InterventionRun,
        next_token_logprobs,
        run_interventions,
    )
    from interp_agent.core.interventions.targets import Target, parse_target
    from interp_agent.core.interventions.verdict import MIN_CAUSAL_EFFECT, VERDICT_RULE, VERDICT_RULE_TEXT

_HOMES = {
    "MODES": "edits", "RECORD_NAME": "edits", "edit_fn": "edits", "InterveneConfig": "run", "InterventionRun": "run",
    "next_token_logprobs": "run", "run_interventions": "run", "Target": "targets", "parse_target": "targets",
    "MIN_CAUSAL_EFFECT": "verdict", "VERDICT_RULE": "verdict", "VERDICT_RULE_TEXT": "verdict",
}

__all__ = [
    "MIN_CAUSAL_EFFECT", "MODES", "RECORD_NAME", "VERDICT_RULE", "VERDICT_RULE_TEXT", "InterveneConfig",
    "InterventionRun", "Target", "edit_fn", "next_token_logprobs", "parse_target", "run_interventions",
]


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_HOMES[name]}"), name)
