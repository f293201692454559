"""Edits during a left-padded batched generate treat every row as the prompt alone would be treated."""

from __future__ import annotations

import torch

from interp_agent.core.interventions.continuation import ContinuationScorer
from interp_agent.core.interventions.edits import edit_fn
from interp_agent.core.models.hooks import edit, left_padded
from interp_agent.core.models.loading import tiny_model

HOOK = "blocks.0.hook_resid_post"


def _first_step_logits(loaded, texts: list[str], *, padded: bool) -> torch.Tensor:
    """Logits of the first generated token of each text, under a strong steer at HOOK."""
    tok = loaded.tokenizer
    side, tok.padding_side = tok.padding_side, "left"
    try:
        enc = tok(texts, return_tensors="pt", padding=True)
    finally:
        tok.padding_side = side
    u = torch.ones(loaded.model.config.hidden_size) / loaded.model.config.hidden_size ** 0.5
    with torch.no_grad(), edit(loaded.model, HOOK, edit_fn("steer", u, 8.0)):
        if padded:
            with left_padded(enc["attention_mask"]):
                out = loaded.model.generate(**enc, max_new_tokens=1, do_sample=False, output_scores=True,
                                            return_dict_in_generate=True, pad_token_id=tok.pad_token_id)
        else:
            out = loaded.model.generate(**enc, max_new_tokens=1, do_sample=False, output_scores=True,
                                        return_dict_in_generate=True, pad_token_id=tok.pad_token_id)
    return out.scores[0]


def test_a_short_prompt_in_a_left_padded_batch_is_edited_as_it_is_alone() -> None:
    loaded = tiny_model(seed=3)
    short, long = "abc", "a much longer prompt"
    alone = _first_step_logits(loaded, [short], padded=True)[0]
    batched = _first_step_logits(loaded, [short, long], padded=True)[0]
    protected_gap = float((alone - batched).abs().max())
    # without left_padded the short prompt's first real token (column 17, after its pads) is steered too
    unprotected_gap = float((_first_step_logits(loaded, [short, long], padded=False)[0] - alone).abs().max())
    assert protected_gap < 1e-5 and unprotected_gap > 50 * max(protected_gap, 1e-7), (protected_gap, unprotected_gap)


def test_the_continuation_scorer_generates_inside_left_padded() -> None:
    loaded = tiny_model(seed=4)
    scorer = ContinuationScorer(classifier=None, max_new_tokens=3, batch_size=2)
    u = torch.ones(loaded.model.config.hidden_size) / loaded.model.config.hidden_size ** 0.5
    with edit(loaded.model, HOOK, edit_fn("steer", u, 8.0)):
        alone = scorer.continuations(loaded.model, loaded.tokenizer, ["xy"])
        together = scorer.continuations(loaded.model, loaded.tokenizer, ["xy", "a far longer prompt here"])
    assert together[0] == alone[0]
