"""Ranking features against a criterion: association, specificity, stability, causal evidence, importance.

The names below load on first use, so reading ``RankingConfig`` (the CLI's flags, a job's
parameter check) imports no numerics.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from interp_agent.core.ranking.causal import CausalEvidence, summarise_interventions
    from interp_agent.core.ranking.config import RankingConfig
    from interp_agent.core.ranking.rank import METHOD, rank_records
    from interp_agent.core.ranking.sources import RecordsSource

_HOMES = {
    "CausalEvidence": "causal", "summarise_interventions": "causal", "RankingConfig": "config",
    "METHOD": "rank", "rank_records": "rank", "RecordsSource": "sources",
}

__all__ = ["METHOD", "CausalEvidence", "RankingConfig", "RecordsSource", "rank_records", "summarise_interventions"]


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_HOMES[name]}"), name)
