"""Ranking a crosscoder's latents against a criterion, like any other features.

Each scored prompt is read on every source (the same tokens on each), its tokens encoded by
the crosscoder with the inference threshold, and each latent max-pooled over the prompt's
tokens (the first position left out) into one activation record per prompt; the ``top_n``
largest latents of a prompt are kept. The records go through the ordinary ranking
(``core.inspection.inspect`` with the records backend), whose train / held-out split picks
features on one half of the prompts and reports their association on the other: the result is
an ordinary inspection report. The values are the latent code ``f_j`` (the coefficient of the
decoder vectors), not dictionary_learning's ``f_j · Σ_s ‖W_dec[s, j]‖``.

Latents are named ``SAE:crosscoder:F{i}`` (the existing ``SAE:{sae_id}:F{i}`` form): one id for
the latent whichever source it is read on.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any

import numpy as np
import torch

from interp_agent.core.crosscoder.model import BatchTopKCrossCoder, latent_ids
from interp_agent.core.crosscoder.paired import Source, paired_activations
from interp_agent.core.formats.prompts import ScoredPrompt
from interp_agent.core.formats.records import ActivationRecord, FeatureMeta, write_records
from interp_agent.core.ids import hook_layer

__all__ = ["latent_ids", "latent_records", "prompt_latents", "rank_latents", "write_latent_records"]


@torch.no_grad()
def prompt_latents(
    model: BatchTopKCrossCoder, sources: Sequence[Source], texts: Sequence[str], *, max_length: int
) -> np.ndarray:
    """Max over each text's tokens of every latent's activation, [n_texts, m]."""
    paired = paired_activations(sources, texts, max_length=max_length)
    assert paired.row_prompt is not None
    out = np.zeros((len(texts), model.shape.latent_dim), dtype=np.float32)
    for i in range(0, len(paired.acts), 4096):
        f = model.encode(torch.as_tensor(paired.acts[i:i + 4096])).numpy()
        np.maximum.at(out, paired.row_prompt[i:i + 4096], f)
    return out


def latent_records(
    model: BatchTopKCrossCoder, sources: Sequence[Source], prompts: Sequence[ScoredPrompt], *, model_name: str,
    max_length: int, top_n: int = 32,
) -> Iterator[ActivationRecord]:
    """One activation record per scored prompt: its ``top_n`` largest crosscoder latents (zeros left out)."""
    pooled = prompt_latents(model, sources, [p.text for p in prompts], max_length=max_length)
    ids = latent_ids(model.shape.latent_dim)
    n = min(top_n, pooled.shape[1])
    for prompt, row in zip(prompts, pooled, strict=True):
        top = np.argsort(-row, kind="stable")[:n]
        top = top[row[top] > 0]
        yield ActivationRecord(
            prompt_id=prompt.prompt_id, criterion_score=prompt.criterion_score, feature_ids=tuple(ids[j] for j in top),
            activations=tuple(row[top].astype(float).tolist()), text=prompt.text, model=model_name,
            split=prompt.split)


def write_latent_records(
    path: Path, model: BatchTopKCrossCoder, sources: Sequence[Source], prompts: Sequence[ScoredPrompt], *,
    model_name: str, max_length: int, top_n: int = 32,
) -> Path:
    """Write the latents' activation records (JSONL) of ``prompts``; each latent's layer in the metadata when
    every source reads one layer."""
    layers = {hook_layer(hook) for _, hook in sources}
    layer = layers.pop() if len(layers) == 1 else None
    meta = {fid: FeatureMeta(layer=layer) for fid in latent_ids(model.shape.latent_dim)}
    records = latent_records(model, sources, prompts, model_name=model_name, max_length=max_length, top_n=top_n)
    return write_records(path, records, meta)


def rank_latents(records: Path, *, model_name: str, criterion: str, out: Path) -> dict[str, Any]:
    """The ordinary ranking of the records against ``criterion``; the inspection report (also written to ``out``)."""
    from interp_agent.core.inspection import inspect

    return inspect(model_name, criterion, backend="records", records=records, out=out).report
