"""Interventions: ablate, mean-ablate, clamp, steer or patch features, with controls and held-out effects."""

from interp_agent.core.interventions.edits import MODES, RECORD_NAME, edit_fn
from interp_agent.core.interventions.evaluate import next_token_logprobs
from interp_agent.core.interventions.run import InterveneConfig, InterventionRun, run_interventions
from interp_agent.core.interventions.targets import Target, parse_target

__all__ = [
    "MODES", "RECORD_NAME", "InterveneConfig", "InterventionRun", "Target", "edit_fn", "next_token_logprobs",
    "parse_target", "run_interventions",
]
