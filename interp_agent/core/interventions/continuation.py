"""Behaviour measured on generated text: a text classifier applied to greedy continuations.

For criteria about what the model writes (French, code, sentiment), the behaviour score of
a prompt is the classifier's probability on the model's own continuation of it, generated
greedily under whatever edit is active.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np
import torch


class ContinuationScorer:
    """Scores prompts by classifying the model's greedy continuations with a fitted text classifier."""

    def __init__(self, classifier: Any, *, max_new_tokens: int = 12, batch_size: int = 8) -> None:
        """Wrap a fitted and evaluated text classifier (``TextClassifierScorer``).

        Args:
            classifier: anything with ``score(texts) -> probabilities``.
            max_new_tokens: length of each greedy continuation.
            batch_size: prompts generated together (left-padded).
        """
        self.classifier = classifier
        self.max_new_tokens = max_new_tokens
        self.batch_size = batch_size

    def continuations(self, model: Any, tokenizer: Any, texts: Sequence[str]) -> list[str]:
        """Greedy continuations of ``texts`` (the new text only)."""
        out: list[str] = []
        side = tokenizer.padding_side
        tokenizer.padding_side = "left"  # generation appends on the right
        try:
            with torch.no_grad():
                for start in range(0, len(texts), self.batch_size):
                    enc = tokenizer(list(texts[start : start + self.batch_size]), return_tensors="pt", padding=True)
                    enc = {k: v.to(model.device) for k, v in enc.items()}
                    ids = model.generate(**enc, max_new_tokens=self.max_new_tokens, do_sample=False,
                                         pad_token_id=tokenizer.pad_token_id)
                    out.extend(tokenizer.batch_decode(ids[:, enc["input_ids"].shape[1]:], skip_special_tokens=True))
        finally:
            tokenizer.padding_side = side
        return out

    def score(self, model: Any, tokenizer: Any, texts: Sequence[str]) -> np.ndarray:
        """The classifier's probability on each prompt's continuation."""
        return np.asarray(self.classifier.score(self.continuations(model, tokenizer, texts)), dtype=float)
