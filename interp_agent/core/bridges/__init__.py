"""Bridges between interp-agent and the ecosystem around it.

Importing bridges turn what a source says about a feature into a
:class:`~interp_agent.core.bridges.cards.FeatureCard` (every number ``imported``) and
write cards as feature JSONL that ``inspect`` reads; none of them measures a criterion.

- ``neuronpedia``: refs, URLs and SAEDashboard exports; an httpx client with timeouts,
  retries and an on-disk cache (``inspect --backend neuronpedia``).
- ``goodfire``: Goodfire SDK feature objects and their JSON exports; Goodfire's hosted
  API was shut down in 2025, so there is no live search.

Publishing (not re-exported here, import the module): ``hf_plan`` plans which files go up,
``hf_card`` renders the README.md card, and ``hf_hub`` uploads a run folder to the Hugging Face
Hub in one commit (``publish``); huggingface_hub is imported only for a real upload.

Measuring bridges (import torch; not re-exported here, import the module):

- ``saelens``: pretrained SAEs by SAE Lens release and id (hub or local cache, then an SAE
  Lens folder under the interp-agent cache); Gemma Scope / Qwen-Scope naming helpers
  (``inspect --backend saelens``).
- ``exporters``: activation records read through TransformerLens (``TransformerBridge``) or
  nnsight traces (``remote=True`` for NDIF), equal to our own harvesting (``export-records``).
"""

from interp_agent.core.bridges.cards import CardExample, FeatureCard, card_of, write_cards
from interp_agent.core.bridges.dashboards import read_export
from interp_agent.core.bridges.goodfire import cards_from_goodfire, search_goodfire, write_goodfire_features
from interp_agent.core.bridges.neuronpedia import FeatureRef, NeuronpediaClient, load_cards, parse_ref

__all__ = [
    "CardExample", "FeatureCard", "FeatureRef", "NeuronpediaClient", "card_of", "cards_from_goodfire",
    "load_cards", "parse_ref", "read_export", "search_goodfire", "write_cards", "write_goodfire_features",
]
