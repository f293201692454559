"""Cross-model feature matching: pair the features of two inspection reports one to one.

Fingerprints (activation on shared probes, decoder direction, label text, causal effects)
are compared component by component, combined over the components both features have,
and assigned one to one by the Hungarian algorithm.
"""

from interp_agent.core.matching.fingerprints import Fingerprints
from interp_agent.core.matching.match import load_report, match_reports, write_matches
from interp_agent.core.matching.text import TextEncoder, load_text_encoder

__all__ = [
    "Fingerprints",
    "TextEncoder",
    "load_report",
    "load_text_encoder",
    "match_reports",
    "write_matches",
]
