"""BatchTopK crosscoders: one sparse code shared by several sources (two models at one layer, or
several layers of one model), with a decoder per source.

- ``paired``: activations of every source on the same tokens, ``[n_tokens, n_sources, d]``.
- ``model``: the crosscoder (dictionary_learning's ``BatchTopKCrossCoder`` names and shapes).
- ``train``: the training loop and held-out reconstruction metrics.
- ``io``: save / load in dictionary_learning's folder layout (``ae.pt`` + ``config.json``).
- ``exclusive``: is a latent exclusive to one source? Decoder-norm share and Latent Scaling.
- ``rank``: activation records of the latents on scored prompts, ranked like any features.
- ``run``: ``train_crosscoder``, the entry point of ``train-crosscoder``.
"""

from interp_agent.core.crosscoder.exclusive import ExclusivityConfig, exclusivity_table, latent_scaling_betas
from interp_agent.core.crosscoder.io import load_crosscoder, save_crosscoder
from interp_agent.core.crosscoder.model import BatchTopKCrossCoder, CrosscoderShape
from interp_agent.core.crosscoder.paired import Paired, paired_activations, paired_from_arrays
from interp_agent.core.crosscoder.run import train_crosscoder
from interp_agent.core.crosscoder.train import CrosscoderTraining, fit_crosscoder, held_out_metrics

__all__ = [
    "BatchTopKCrossCoder", "CrosscoderShape", "CrosscoderTraining", "ExclusivityConfig", "Paired",
    "exclusivity_table", "fit_crosscoder", "held_out_metrics", "latent_scaling_betas", "load_crosscoder",
    "paired_activations", "paired_from_arrays", "save_crosscoder", "train_crosscoder",
]
