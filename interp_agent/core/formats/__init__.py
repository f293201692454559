"""Readers and writers of interp-agent's evidence formats (JSONL, seed-compatible, and Parquet)."""

from interp_agent.core.formats.features import FeatureRecord, read_features, write_features
from interp_agent.core.formats.interventions import (
    KNOWN_INTERVENTIONS,
    InterventionRecord,
    read_interventions,
    write_interventions,
)
from interp_agent.core.formats.parquet import (
    is_parquet_dataset,
    jsonl_to_parquet,
    parquet_to_jsonl,
    write_parquet_dataset,
)
from interp_agent.core.formats.prompts import ScoredPrompt, read_scored_prompts, write_scored_prompts
from interp_agent.core.formats.records import (
    ActivationRecord,
    FeatureMeta,
    RecordReader,
    read_records,
    write_records,
)

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
