"""The classifier-on-continuations scorer: generation under an edit reaches the behaviour score."""

from __future__ import annotations

import numpy as np
import torch

from interp_agent.core.criteria import TextClassifierScorer, from_pack, split
from interp_agent.core.interventions import edit_fn
from interp_agent.core.interventions.continuation import ContinuationScorer
from interp_agent.core.models import tiny_model
from interp_agent.core.models.hooks import edit


def test_continuations_are_generated_under_the_active_edit_and_classified() -> None:
    cset = from_pack("french")
    calibration, held = split(cset)
    classifier = TextClassifierScorer().fit(calibration)
    assert classifier.evaluate(held).usable
    loaded = tiny_model("llama", n_layers=2, d_model=32, vocab_size=100, seed=0)
    scorer = ContinuationScorer(classifier, max_new_tokens=6, batch_size=3)
    texts = ["le chat", "the cat sat", "bonjour a tous", "hello"]
    plain = scorer.continuations(loaded.model, loaded.tokenizer, texts)
    assert len(plain) == 4 and all(isinstance(c, str) for c in plain)
    assert loaded.tokenizer.padding_side == "right"  # restored after generation
    u = torch.zeros(32)
    u[0] = 1.0
    with edit(loaded.model, "blocks.0.hook_resid_post", edit_fn("steer", u, 50.0)):
        steered = scorer.continuations(loaded.model, loaded.tokenizer, texts)
    assert steered != plain  # the edit acts on every generated token, not only the prompt
    scores = scorer.score(loaded.model, loaded.tokenizer, texts)
    assert scores.shape == (4,) and np.all((scores >= 0) & (scores <= 1))
