"""Ranking features against a criterion: association, specificity, stability, causal evidence, importance."""

from interp_agent.core.ranking.causal import CausalEvidence, summarise_interventions
from interp_agent.core.ranking.config import RankingConfig
from interp_agent.core.ranking.rank import METHOD, rank_records
from interp_agent.core.ranking.sources import RecordsSource

__all__ = ["METHOD", "CausalEvidence", "RankingConfig", "RecordsSource", "rank_records", "summarise_interventions"]
