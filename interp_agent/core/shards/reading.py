"""Reading a verified harvest's token activations back per batch of contexts (explain); the manifest, the shards'
rows and their records folders are read by ``core.formats.harvest``."""

from __future__ import annotations

from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np
import torch

from interp_agent.core.errors import InputFileError, ValidationError
from interp_agent.core.formats.harvest import ACTIVATIONS_FILE, REBUILD_HINT, Manifest, open_manifest

if TYPE_CHECKING:
    from interp_agent.core.explain.evidence import Contexts


class StoredActivations:
    """A context harvest's token activations read back per batch of contexts: [B, T, d_in], position 0 zero."""

    def __init__(self, manifest: Manifest, *, cached_shards: int = 2) -> None:
        self.manifest = manifest
        self.length = int(manifest.identity["context_length"])
        self.starts = np.array([s.start for s in manifest.shards], dtype=np.int64)
        self.cached_shards = cached_shards
        self._cache: dict[int, np.ndarray] = {}

    def _shard(self, i: int) -> np.ndarray:
        """Shard ``i``'s activations as [n_contexts, T - 1, d_in] (the last ``cached_shards`` kept)."""
        if i not in self._cache:
            from safetensors.numpy import load_file

            shard = self.manifest.shards[i]
            path = self.manifest.shard_dir(shard) / ACTIVATIONS_FILE
            try:
                acts = load_file(str(path))["activations"]
            except Exception as exc:  # noqa: BLE001 - safetensors raises several types for a damaged file
                raise InputFileError(path, f"shard {shard.name} cannot be read: {exc}", hint=REBUILD_HINT) from exc
            if len(self._cache) >= self.cached_shards:
                self._cache.pop(next(iter(self._cache)))
            self._cache[i] = acts.reshape(shard.stop - shard.start, self.length - 1, self.manifest.d_in)
        return self._cache[i]

    def __call__(self, rows: np.ndarray) -> torch.Tensor:
        """float32 [len(rows), T, d_in] of contexts ``rows`` (indices into the harvest's contexts)."""
        rows = np.asarray(rows, dtype=np.int64)
        out = np.zeros((len(rows), self.length, self.manifest.d_in), np.float32)
        shard_of = np.searchsorted(self.starts, rows, side="right") - 1
        for i in np.unique(shard_of):
            sel = np.flatnonzero(shard_of == i)
            out[sel, 1:, :] = self._shard(int(i))[rows[sel] - self.starts[i]]
        return torch.from_numpy(out)


def stored_contexts(
    path: str | Path, *, model: str, hookpoint: str, tokenizer: Any, context_length: int, max_contexts: int | None,
    held_out_fraction: float, seed: int,
) -> tuple[Contexts, dict[str, Any], StoredActivations]:
    """A verified corpus harvest as explain's contexts (the first ``max_contexts``), its corpus description and
    the reader of its activations.

    Raises:
        InputFileError: a shard missing or corrupt (named).
        ValidationError: not a corpus harvest, or another model, hookpoint or context length.
    """
    from safetensors.numpy import load_file

    from interp_agent.core.explain.corpus import held_out_contexts
    from interp_agent.core.explain.evidence import Contexts
    from interp_agent.core.models.harvest import TokenText

    manifest = open_manifest(path)
    ident = manifest.identity
    if ident["mode"] != "contexts":
        raise ValidationError(f"the harvest in {manifest.folder} is of prompts, not of a corpus",
                              hint="harvest a corpus (interp-agent harvest --corpus C) for explain")
    for name, want, have in (("model", model, manifest.model), ("hookpoint", hookpoint, manifest.hookpoint),
                             ("context_length", context_length, ident["context_length"])):
        if want != have:
            raise ValidationError(f"the harvest in {manifest.folder} has {name} {have!r}, this explain {want!r}",
                                  hint=f"explain with {name} {have!r}, or harvest again with {want!r}")
    ids, passage = [], []
    for shard in manifest.shards:
        tensors = load_file(str(manifest.shard_dir(shard) / ACTIVATIONS_FILE))
        ids.append(tensors["context_token_ids"])
        passage.append(tensors["context_passage"])
    ids_NT, passage_N = np.concatenate(ids)[:max_contexts], np.concatenate(passage)[:max_contexts]
    decode = TokenText(tokenizer)
    contexts = Contexts(ids_NT, [[decode(int(t)) for t in row] for row in ids_NT],
                        held_out_contexts(len(ids_NT), held_out_fraction, seed), passage_N)
    corpus = {**ident["source"]["corpus"], "harvest": str(manifest.folder)}
    return contexts, corpus, StoredActivations(manifest)
