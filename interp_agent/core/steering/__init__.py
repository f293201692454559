"""Steering vectors as artifacts: export the edit intervene chose, save and load it, generate with it.

- ``vectors``: :class:`SteeringVector`, ``save_steering`` / ``load_steering`` (safetensors with metadata).
- ``controlvector``: llama.cpp's control-vector GGUF (write, read back, layer mapping).
- ``export``: ``export_steering`` from an intervene run (the strength it chose, the direction rebuilt).
- ``apply``: ``apply_steering``, steered and unsteered generations side by side with their KL (imports torch,
  so it loads on first use: exporting and reading vectors need no model stack).
"""

from typing import TYPE_CHECKING, Any

from interp_agent.core.steering.export import ExportedSteering, export_steering
from interp_agent.core.steering.files import load_steering
from interp_agent.core.steering.vectors import SteeringVector, save_steering

if TYPE_CHECKING:
    from interp_agent.core.steering.apply import apply_steering, check_compatible, steering

_APPLY = ("apply_steering", "check_compatible", "steering")

__all__ = ["ExportedSteering", "SteeringVector", "apply_steering", "check_compatible", "export_steering",
           "load_steering", "save_steering", "steering"]


def __getattr__(name: str) -> Any:
    if name in _APPLY:
        from interp_agent.core.steering import apply

        return getattr(apply, name)
    raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
