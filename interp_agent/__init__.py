"""interp-agent: criterion-driven mechanistic interpretability.

Rank a model's features against a criterion, with held-out and causal
evidence, test them causally, train sparse autoencoders, write readable reports, and match
features across models.

    from interp_agent import inspect, match
    left = inspect("toy/model-a", "mentions a measurement unit", backend="toy", out="reports/a")

The public names are resolved on first access (PEP 562 ``__getattr__``): importing
``interp_agent`` or any of its subpackages (the CLI does on every command) must not pay
for numpy, scipy and pyarrow, which the API functions pull in.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from interp_agent._version import __version__

if TYPE_CHECKING:  # for type checkers and IDEs; at run time see __getattr__
    from interp_agent.api import (
        apply_steering,
        calibrate,
        capabilities,
        compile_criterion,
        convert,
        convert_hidden_dump,
        diff_models,
        explain,
        export_steering,
        feature_effects,
        finetune,
        import_interp_lab,
        inspect,
        intervene,
        investigate,
        match,
        match_activations,
        score_prompts,
        train_crosscoder,
        train_sae,
        validate_matches,
    )
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

_LAZY: dict[str, str] = {
    "calibrate": "interp_agent.api",
    "convert": "interp_agent.api",
    "explain": "interp_agent.api",
    "inspect": "interp_agent.api",
    "intervene": "interp_agent.api",
    "investigate": "interp_agent.api",
    "match": "interp_agent.api",
    "train_sae": "interp_agent.api",
    "match_activations": "interp_agent.api",
    "validate_matches": "interp_agent.api",
    "finetune": "interp_agent.api",
    "diff_models": "interp_agent.api",
    "train_crosscoder": "interp_agent.api",
    "apply_steering": "interp_agent.api",
    "capabilities": "interp_agent.api",
    "compile_criterion": "interp_agent.api",
    "convert_hidden_dump": "interp_agent.api",
    "export_steering": "interp_agent.api",
    "feature_effects": "interp_agent.api",
    "import_interp_lab": "interp_agent.api",
    "score_prompts": "interp_agent.api",
    "EvidenceError": "interp_agent.core.errors",
    "InputFileError": "interp_agent.core.errors",
    "InterpAgentError": "interp_agent.core.errors",
    "MissingDependencyError": "interp_agent.core.errors",
    "ValidationError": "interp_agent.core.errors",
    "InspectionResult": "interp_agent.core.inspection",
    "load_report": "interp_agent.core.matching",
    "RankingConfig": "interp_agent.core.ranking",
}
"""Public name -> module that defines it."""

__all__ = [
    "EvidenceError",
    "InputFileError",
    "InspectionResult",
    "InterpAgentError",
    "MissingDependencyError",
    "RankingConfig",
    "ValidationError",
    "__version__",
    "apply_steering",
    "calibrate",
    "capabilities",
    "compile_criterion",
    "convert",
    "convert_hidden_dump",
    "diff_models",
    "explain",
    "export_steering",
    "feature_effects",
    "finetune",
    "import_interp_lab",
    "inspect",
    "intervene",
    "investigate",
    "load_report",
    "match",
    "match_activations",
    "score_prompts",
    "train_crosscoder",
    "train_sae",
    "validate_matches",
]


def __getattr__(name: str) -> Any:
    """Import a public name's module on first access and cache the name here."""
    module = _LAZY.get(name)
    if module is None:
        raise AttributeError(f"module 'interp_agent' has no attribute {name!r}")
    value = getattr(importlib.import_module(module), name)
    globals()[name] = value
    return value


def __dir__() -> list[str]:
    """The public names, loaded or not."""
    return sorted(set(globals()) | set(__all__))
