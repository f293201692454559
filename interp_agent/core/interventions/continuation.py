"""Behaviour measured on generated text: a text classifier applied to greedy continuations.

For criteria about what the model writes (French, code, sentiment), the behaviour score of
a prompt is the classifier's probability on the model's own continuation of it, generated
greedily under whatever edit is active.

:meth:`ContinuationScorer.score_groups` scores several edits with one generate per prompt
chunk: the chunk repeated once per edit, for ``models.hooks.edit_groups``.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch

from interp_agent.core.models.hooks import left_padded


class ContinuationScorer:
    """Scores prompts by classifying the model's greedy continuations with a fitted text classifier."""

    def __init__(self, classifier: Any, *, max_new_tokens: int = 12, batch_size: int = 8) -> None:
        """Wrap a fitted and evaluated text classifier (``TextClassifierScorer``).

        Args:
            classifier: anything with ``score(texts) -> probabilities``.
            max_new_tokens: length of each greedy continuation.
            batch_size: prompts generated together (left-padded; edits leave each row's pads and
                first real token alone, as they leave the first position of a right-padded batch).
        """
        self.classifier = classifier
        self.max_new_tokens = max_new_tokens
        self.batch_size = batch_size

    def _generate(self, model: Any, tokenizer: Any, texts: Sequence[str], n_groups: int) -> list[list[str]]:
        """Greedy continuations per group, [n_groups][len(texts)]: each chunk generated once for all groups."""
        out: list[list[str]] = [[] for _ in range(n_groups)]
        side = tokenizer.padding_side
        tokenizer.padding_side = "left"  # generation appends on the right
        try:
            with torch.no_grad():
                for start in range(0, len(texts), self.batch_size):
                    enc = tokenizer(list(texts[start : start + self.batch_size]), return_tensors="pt", padding=True)
                    n = enc["input_ids"].shape[0]
                    enc = {k: v.to(model.device).repeat(n_groups, 1) for k, v in enc.items()}
                    with left_padded(enc["attention_mask"]):
                        ids = model.generate(**enc, max_new_tokens=self.max_new_tokens, do_sample=False,
                                             pad_token_id=tokenizer.pad_token_id)
                    new = tokenizer.batch_decode(ids[:, enc["input_ids"].shape[1]:], skip_special_tokens=True)
                    for g in range(n_groups):
                        out[g].extend(new[g * n:(g + 1) * n])
        finally:
            tokenizer.padding_side = side
        return out

    def continuations(self, model: Any, tokenizer: Any, texts: Sequence[str]) -> list[str]:
        """Greedy continuations of ``texts`` (the new text only)."""
        return self._generate(model, tokenizer, texts, 1)[0]

    def score(self, model: Any, tokenizer: Any, texts: Sequence[str]) -> np.ndarray:
        """The classifier's probability on each prompt's continuation."""
        return np.asarray(self.classifier.score(self.continuations(model, tokenizer, texts)), dtype=float)

    def score_groups(
        self, model: Any, tokenizer: Any, texts: Sequence[str], n_groups: int, *, logprobs: bool = False
    ) -> tuple[np.ndarray, None]:
        """Scores [n_groups, len(texts)], every chunk of ``texts`` generated once per group in one batch.

        Each chunk (``batch_size`` prompts, as :meth:`score` takes them) is repeated
        ``n_groups`` times, group-major, for ``edit_groups`` to edit group by group. Never
        log-probabilities (``logprobs`` is ignored): the side-effect KL reads the
        right-padded forward pass of the logit scorers, not generation.
        """
        groups = self._generate(model, tokenizer, texts, n_groups)
        flat = np.asarray(self.classifier.score([c for g in groups for c in g]), dtype=float)
        return flat.reshape(n_groups, len(texts)), None
