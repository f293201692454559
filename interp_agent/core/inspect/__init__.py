"""``inspect`` as typed parts: the request (``request``), the backends that gather evidence
(``backends``), the shared ranking and report build (``pipeline``) and the typed report (``report``).

``interp_agent.core.inspection.inspect`` is the keyword-argument facade over ``run_inspection``.
The names below load on first use: the request alone (the CLI's flags, a job's parameter
check) imports no numerics.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from interp_agent.core.inspect.backends import BACKEND_REGISTRY, Backend, Evidence, get_backend, register_backend
    from interp_agent.core.inspect.pipeline import run_inspection
    from interp_agent.core.inspect.report import FeatureEvidence, InspectionReport
    from interp_agent.core.inspect.request import BACKENDS, BackendName, InspectRequest

_HOMES = {
    "BACKEND_REGISTRY": "backends", "Backend": "backends", "Evidence": "backends", "get_backend": "backends",
    "register_backend": "backends", "run_inspection": "pipeline", "FeatureEvidence": "report",
    "InspectionReport": "report", "BACKENDS": "request", "BackendName": "request", "InspectRequest": "request",
}

__all__ = [
    "BACKENDS", "BACKEND_REGISTRY", "Backend", "BackendName", "Evidence", "FeatureEvidence", "InspectRequest",
    "InspectionReport", "get_backend", "register_backend", "run_inspection",
]


def __getattr__(name: str) -> Any:
    if name not in _HOMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    return getattr(importlib.import_module(f"{__name__}.{_HOMES[name]}"), name)
