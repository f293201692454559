"""The bridge tests' fixtures: the local Hub and Neuronpedia stand-ins, for every test module here."""

from hub_standin import hub, hub_token
from neuronpedia_standin import batch, np_hub, word_encoder

__all__ = ["batch", "hub", "hub_token", "np_hub", "word_encoder"]
