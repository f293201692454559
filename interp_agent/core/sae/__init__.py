"""Sparse autoencoders: reading SAE Lens folders (training arrives with train-sae)."""

from interp_agent.core.sae.lens import SaeWeights, load_sae_lens

__all__ = ["SaeWeights", "load_sae_lens"]
