"""Readers and writers of interp-agent's evidence formats (JSONL, seed-compatible, and Parquet).

The Parquet names load on first access (PEP 562 ``__getattr__``): pyarrow costs every
importer start-up time, and reading JSONL does not need it.
"""

from __future__ import annotations

import importlib
from typing import TYPE_CHECKING, Any

from interp_agent.core.formats.features import FeatureRecord, read_features, write_features
from interp_agent.core.formats.interventions import (
    KNOWN_INTERVENTIONS,
    InterventionRecord,
    read_interventions,
    write_interventions,
)
from interp_agent.core.formats.prompts import ScoredPrompt, read_scored_prompts, write_scored_prompts
from interp_agent.core.formats.records import (
    ActivationRecord,
    FeatureMeta,
    RecordReader,
    read_records,
    write_records,
)

if TYPE_CHECKING:
    from interp_agent.core.formats.parquet import (
        is_parquet_dataset,
        jsonl_to_parquet,
        parquet_to_jsonl,
        write_parquet_dataset,
    )

_PARQUET_NAMES = frozenset({"is_parquet_dataset", "jsonl_to_parquet", "parquet_to_jsonl", "write_parquet_dataset"})

__all__ = [
    "KNOWN_INTERVENTIONS",
    "ActivationRecord",
    "FeatureMeta",
    "FeatureRecord",
    "InterventionRecord",
    "RecordReader",
    "ScoredPrompt",
    "is_parquet_dataset",
    "jsonl_to_parquet",
    "parquet_to_jsonl",
    "read_features",
    "read_interventions",
    "read_records",
    "read_scored_prompts",
    "write_features",
    "write_interventions",
    "write_parquet_dataset",
    "write_records",
    "write_scored_prompts",
]


def __getattr__(name: str) -> Any:
    """Import ``interp_agent.core.formats.parquet`` (and pyarrow) when one of its names is first used."""
    if name not in _PARQUET_NAMES:
        raise AttributeError(f"module {__name__!r} has no attribute {name!r}")
    value = getattr(importlib.import_module("interp_agent.core.formats.parquet"), name)
    globals()[name] = value
    return value
