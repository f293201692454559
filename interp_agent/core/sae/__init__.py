"""Sparse autoencoders: SAE Lens folders (read and write), sparsify folders (read), training (train-sae)."""

from interp_agent.core.sae.lens import SaeWeights, load_sae, load_sae_lens, load_sparsify, save_sae_lens

__all__ = ["SaeWeights", "load_sae", "load_sae_lens", "load_sparsify", "save_sae_lens"]
