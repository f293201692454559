"""interp-agent: criterion-driven mechanistic interpretability.

Rank a model's features against a natural-language criterion, with held-out and causal
evidence, test them causally, train sparse autoencoders, write readable reports, and match
features across models.

    from interp_agent import inspect, match
    left = inspect("toy/model-a", "mentions a measurement unit", backend="toy", out="reports/a")
"""

from interp_agent._version import __version__
from interp_agent.api import convert, inspect, intervene, match, train_sae
from interp_agent.core.errors import (
    EvidenceError,
    InputFileError,
    InterpAgentError,
    MissingDependencyError,
    ValidationError,
)
from interp_agent.core.inspection import InspectionResult
from interp_agent.core.matching import load_report
from interp_agent.core.ranking import RankingConfig

__all__ = [
    "EvidenceError",
    "InputFileError",
    "InspectionResult",
    "InterpAgentError",
    "MissingDependencyError",
    "RankingConfig",
    "ValidationError",
    "__version__",
    "convert",
    "inspect",
    "intervene",
    "load_report",
    "match",
    "train_sae",
]
