"""What a sharded harvest reads: scored prompts (a dataset JSONL or a criterion pack) or a corpus cut into contexts.

Prompts are harvested one by one, truncated to ``max_length`` tokens, and each gets a per-prompt
record (its criterion score and its ranking split) besides its token activations. A corpus is
cut into ``context_length``-token windows exactly as ``explain`` cuts it
(``core.explain.corpus.tokenize_corpus``), so its stored activations stand in for the explain pass.
"""

from __future__ import annotations

import hashlib
import json
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from interp_agent.core.artifacts import sha256_of
from interp_agent.core.errors import ValidationError, arg
from interp_agent.core.formats.prompts import ScoredPrompt
from interp_agent.core.ranking.config import HELD_OUT_FRACTION, SPLIT_SALT

InputKind = Literal["dataset", "pack", "corpus"]
RecordPooling = Literal["last", "mean", "max"]


@dataclass(frozen=True, slots=True)
class HarvestInputs:
    """The input of a sharded harvest and how it is cut into units (prompts or contexts)."""

    kind: InputKind
    """dataset: scored prompts JSONL; pack: a built-in criterion pack; corpus: a corpus (``explain``'s specs)."""
    spec: str
    """The dataset path, the pack name, or the corpus spec (a file, a folder, ``builtin``, ``hf:<id>``)."""
    max_length: int = 128
    """Tokens kept per prompt (prompt inputs), as the hf inspect backend keeps."""
    pooling: RecordPooling = "last"
    """How the per-prompt records pool token activations (the hf backend's default: last)."""
    context_length: int = 64
    """Tokens per context (corpus inputs), as ``explain --context-length``."""
    max_contexts: int | None = None
    """Contexts read from the corpus at most (corpus inputs)."""
    held_out_fraction: float = HELD_OUT_FRACTION
    """The ranking split written into each record (prompt inputs)."""
    split_salt: str = SPLIT_SALT
    """Salt of the ranking split's prompt-id hash."""

    def __post_init__(self) -> None:
        if self.kind not in ("dataset", "pack", "corpus"):
            raise ValidationError(f"inputs kind {self.kind!r} is unknown", hint="use dataset, pack or corpus")
        if not isinstance(self.max_length, int) or self.max_length < 2:
            raise ValidationError(f"{arg('max_length', self.max_length)} must be an integer of at least 2")
        if self.pooling not in ("last", "mean", "max"):
            raise ValidationError(f"{arg('pooling', self.pooling)} must be last, mean or max")
        if not isinstance(self.context_length, int) or not 8 <= self.context_length <= 1024:
            raise ValidationError(f"{arg('context_length', self.context_length)} must be an integer from 8 to 1024")
        if self.max_contexts is not None and self.max_contexts < 1:
            raise ValidationError(f"{arg('max_contexts', self.max_contexts)} must be a positive integer")
        if not 0.0 < self.held_out_fraction < 1.0:
            raise ValidationError(f"{arg('held_out_fraction', self.held_out_fraction)} must be in (0, 1)")

    @property
    def mode(self) -> Literal["prompts", "contexts"]:
        """prompts (dataset, pack) or contexts (corpus)."""
        return "contexts" if self.kind == "corpus" else "prompts"


@dataclass(frozen=True, slots=True)
class Units:
    """The resolved units of an input: scored prompts or context token ids."""

    source: dict[str, Any]
    """Where they came from, with digests (goes into the manifest)."""
    prompts: tuple[ScoredPrompt, ...] | None = None
    """Prompt inputs: every prompt, its split filled in."""
    token_ids: np.ndarray | None = None
    """Corpus inputs: int32 [n_contexts, context_length]."""
    passage: np.ndarray | None = None
    """Corpus inputs: int32 [n_contexts], the passage each context was cut from."""

    def __len__(self) -> int:
        if self.prompts is not None:
            return len(self.prompts)
        assert self.token_ids is not None
        return len(self.token_ids)


def resolve_prompts(inputs: HarvestInputs) -> Units:
    """The prompts of a dataset or pack, each with its ranking split (its own ``split`` wins), and their digest."""
    from interp_agent.core.criteria.packs import load_pack
    from interp_agent.core.formats.prompts import read_scored_prompts
    from interp_agent.core.ranking.splits import HELD_OUT, assign_splits, prompt_hashes

    if inputs.kind == "pack":
        pack = load_pack(inputs.spec)
        prompts, source = list(pack.prompts), {"kind": "pack", "name": inputs.spec, "sha256": sha256_of(pack.path)}
    else:
        path = Path(inputs.spec)
        prompts = read_scored_prompts(path)
        source = {"kind": "dataset", "path": str(path), "sha256": sha256_of(path)}
    ids = [p.prompt_id for p in prompts]
    if len(set(ids)) != len(ids):
        dup = next(i for i in ids if ids.count(i) > 1)
        raise ValidationError(f"prompt ids must be unique, {dup!r} repeats in {inputs.spec}",
                              hint="give each prompt its own id")
    if not prompts:
        raise ValidationError(f"{inputs.spec} holds no prompts")
    groups = assign_splits(prompt_hashes(ids, inputs.split_salt), inputs.held_out_fraction, [p.split for p in prompts])
    prompts = [ScoredPrompt(p.prompt_id, p.text, p.criterion_score, "held_out" if g == HELD_OUT else "train")
               for p, g in zip(prompts, groups, strict=True)]
    digest = hashlib.sha256(json.dumps([[p.prompt_id, p.text, p.criterion_score, p.split] for p in prompts])
                            .encode()).hexdigest()
    return Units({**source, "n_units": len(prompts), "units_sha256": digest,
                  "held_out_fraction": inputs.held_out_fraction, "split_salt": inputs.split_salt}, tuple(prompts))


def resolve_contexts(inputs: HarvestInputs, tokenizer: Any) -> Units:
    """The corpus cut into contexts, as ``explain`` cuts it, and their digest."""
    from interp_agent.core.explain.corpus import load_corpus, tokenize_corpus

    corpus = load_corpus(inputs.spec)
    contexts = tokenize_corpus(tokenizer, corpus, context_length=inputs.context_length,
                               max_contexts=inputs.max_contexts)
    ids = np.ascontiguousarray(contexts.token_ids, dtype=np.int32)
    source = {"kind": "corpus", "spec": inputs.spec, "corpus": corpus.describe(), "max_contexts": inputs.max_contexts,
              "n_units": len(ids), "units_sha256": hashlib.sha256(ids.tobytes()).hexdigest()}
    return Units(source, None, ids, np.ascontiguousarray(contexts.passage, dtype=np.int32))
