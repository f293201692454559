"""Cross-model feature matching: pair the features of two inspection reports one to one.

Fingerprints (activation on shared probes, decoder direction, label text, causal effects
on a shared named scale) are compared component by component, combined over the
components both features have, and assigned one to one by the Hungarian algorithm.
Label text is embedded by all-MiniLM-L6-v2 behind an on-disk embedding cache, loaded
only when both reports have text.
"""

from interp_agent.core.matching.fingerprints import Fingerprints
from interp_agent.core.matching.match import (
    load_report,
    match_reports,
    matches_paths,
    write_matches,
)
from interp_agent.core.matching.text import (
    CachedEncoder,
    TextEncoder,
    default_text_encoder,
    load_text_encoder,
)

__all__ = [
    "CachedEncoder",
    "Fingerprints",
    "TextEncoder",
    "default_text_encoder",
    "load_report",
    "load_text_encoder",
    "match_reports",
    "matches_paths",
    "write_matches",
]
