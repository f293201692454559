"""Workflows: the steps (inspect, intervene, train an SAE) combined, in one layer above them.

    investigate       inspect → intervene on the top features → rank again with that causal evidence
    trained_latents   train_then_test: train an SAE, then rank its latents and steer the best
                      (what ``train_sae`` runs with ``causal_out``)
    demo              the main job end to end (``interp-agent demo``)

A workflow imports steps; no step imports a workflow (``sae.train.train_sae`` keeps its
``causal_out`` argument by handing it on to ``train_then_test``, a lazy import kept for its callers).
"""

from interp_agent.core.workflows.investigate import Investigation, investigate
from interp_agent.core.workflows.trained_latents import steer_latents, train_then_test

__all__ = ["Investigation", "investigate", "steer_latents", "train_then_test"]
