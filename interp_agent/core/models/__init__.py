"""Models: loading (embedded default, local folder, hub id), hookpoints, hooks and activation harvesting.

    loading     load_model → LoadedModel; the embedded SmolLM2-135M cache; tiny random models
    hookpoints  TransformerLens names (blocks.L.hook_resid_post, …) resolved onto HF modules
    hooks       capture / edit activations, StopForward to end a forward pass early
    harvest     batched, padding-aware pooled activations and activation records

Needs torch and transformers (``pip install 'interp-agent[hf]'``).
"""

from interp_agent.core.errors import MissingDependencyError

try:
    import torch  # noqa: F401
    import transformers  # noqa: F401
except ImportError as exc:  # pragma: no cover - depends on the environment
    raise MissingDependencyError(exc.name or "torch", "hf", "Loading models and harvesting activations") from exc

from interp_agent.core.models.harvest import (
    Harvested,
    SaeParams,
    encode_sae,
    feature_ids,
    harvest,
    harvest_records,
    write_harvested_records,
)
from interp_agent.core.models.hookpoints import (
    HookPoint,
    default_hookpoints,
    list_hookpoints,
    resolve_hookpoint,
)
from interp_agent.core.models.hooks import StopForward, capture, edit, stop_after
from interp_agent.core.models.loading import (
    EMBEDDED_NAME,
    LoadedModel,
    ModelUnavailableError,
    load_model,
    tiny_model,
    wrap_model,
)

__all__ = [
    "EMBEDDED_NAME",
    "HookPoint",
    "Harvested",
    "LoadedModel",
    "ModelUnavailableError",
    "SaeParams",
    "StopForward",
    "capture",
    "default_hookpoints",
    "edit",
    "encode_sae",
    "feature_ids",
    "harvest",
    "harvest_records",
    "list_hookpoints",
    "load_model",
    "resolve_hookpoint",
    "stop_after",
    "tiny_model",
    "wrap_model",
    "write_harvested_records",
]
