"""Sharded harvesting: token activations and per-prompt records in shards with a verified manifest.

``harvest_shards`` cuts a prompt set or a corpus into shards and harvests them in-process or on
Ray actors (one model replica each); ``open_manifest`` (``core.formats.harvest``) reads the result
back, every shard file checked against its recorded hash. ``train_sae``, ``inspect`` and ``explain`` read a harvest
folder as one dataset.
"""

from interp_agent.core.formats.harvest import (
    ACTIVATIONS_FILE,
    MANIFEST,
    RECORDS_DIR,
    Manifest,
    ShardEntry,
    is_manifest,
    iter_shard_activations,
    manifest_path,
    open_manifest,
    read_manifest,
    record_folders,
)
from interp_agent.core.shards.inputs import HarvestInputs, Units
from interp_agent.core.shards.reading import StoredActivations, stored_contexts
from interp_agent.core.shards.run import ShardWorkerError, harvest_shards

__all__ = [
    "ACTIVATIONS_FILE",
    "MANIFEST",
    "RECORDS_DIR",
    "HarvestInputs",
    "Manifest",
    "ShardEntry",
    "ShardWorkerError",
    "StoredActivations",
    "Units",
    "harvest_shards",
    "is_manifest",
    "iter_shard_activations",
    "manifest_path",
    "open_manifest",
    "read_manifest",
    "record_folders",
    "stored_contexts",
]
