"""Workflows: the steps (inspect, intervene, train an SAE) combined, in one layer above them.

    investigate       inspect → intervene on the top features → rank again with that causal evidence
    trained_latents   train_sae (the train-sae entry point) and train_then_test: train an SAE,
                      then rank its latents and steer the best (``causal_out``)
    demo              the main job end to end (``interp-agent demo``)

A workflow imports steps; no step imports a workflow.
"""

from interp_agent.core.workflows.investigate import Investigation, investigate
from interp_agent.core.workflows.trained_latents import steer_latents, train_sae, train_then_test

__all__ = ["Investigation", "investigate", "steer_latents", "train_sae", "train_then_test"]
