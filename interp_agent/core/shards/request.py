"""One call from named arguments to a finished harvest and its summary: what the CLI, the job and the tool share."""

from __future__ import annotations

from pathlib import Path
from typing import Any, cast

from interp_agent.core.errors import ValidationError, arg
from interp_agent.core.formats.harvest import MANIFEST, Manifest
from interp_agent.core.progress import Progress
from interp_agent.core.shards.inputs import HarvestInputs
from interp_agent.core.shards.run import harvest_shards

SUMMARY_KEYS = ("model", "hookpoint", "d_in", "dtype", "mode", "records", "n_shards", "complete", "totals", "source")


def harvest_inputs(*, dataset: str | Path | None = None, pack: str | None = None, corpus: str | Path | None = None,
                   max_length: int = 128, pooling: str = "last", context_length: int = 64,
                   max_contexts: int | None = None) -> HarvestInputs:
    """The ``HarvestInputs`` of exactly one of ``dataset``, ``pack`` or ``corpus``.

    Raises:
        ValidationError: none or several of them given, or a bad option.
    """
    given = [(k, v) for k, v in (("dataset", dataset), ("pack", pack), ("corpus", corpus)) if v]
    if len(given) != 1:
        raise ValidationError(f"give exactly one of {arg('dataset')}, {arg('pack')} or {arg('corpus')}, got "
                              f"{len(given)}", hint=f"{arg('dataset')} (scored prompts JSONL), {arg('pack')} (a "
                              f"built-in criterion pack), or {arg('corpus')} (builtin, a text/JSONL/Parquet file or "
                              "folder)")
    kind, spec = given[0]
    return HarvestInputs(cast(Any, kind), str(spec), max_length=max_length, pooling=cast(Any, pooling),
                         context_length=context_length, max_contexts=max_contexts)


def summary(manifest: Manifest) -> dict[str, Any]:
    """The manifest's identity and totals, with where it lies."""
    body = manifest.to_json()
    return {k: body[k] for k in SUMMARY_KEYS} | {"folder": str(manifest.folder),
                                                  "manifest": str(manifest.folder / MANIFEST)}


def run_harvest(model: str, hookpoint: str, inputs: HarvestInputs, out: str | Path, *, shard_size: int = 256,
                workers: int = 1, engine: str = "local", ray_address: str | None = None, torch_threads: int = 1,
                progress: Progress | None = None) -> dict[str, Any]:
    """``harvest_shards`` (it resumes what ``out`` holds) and the summary of the finished harvest."""
    manifest = harvest_shards(model, hookpoint, inputs, out, shard_size=shard_size, workers=workers,
                              engine=cast(Any, engine), ray_address=ray_address, torch_threads=torch_threads,
                              progress=progress)
    return summary(manifest)
