"""Batched edits: each edit acts on its own rows, and the batched runner reports what the sequential one does."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest
import torch
from safetensors.numpy import save_file

from interp_agent.core.criteria import TargetTokenScorer, next_token_probabilities
from interp_agent.core.errors import ValidationError
from interp_agent.core.formats.prompts import ScoredPrompt
from interp_agent.core.interventions import InterveneConfig, edit_fn, parse_target, run_interventions
from interp_agent.core.interventions.continuation import ContinuationScorer
from interp_agent.core.interventions.evaluate import grouped_logprobs, next_token_logprobs
from interp_agent.core.models import tiny_model
from interp_agent.core.models.hooks import capture, edit, edit_groups
from interp_agent.core.sae import load_sae_lens

HOOK = "blocks.1.hook_resid_post"
WORDS = ["abc", "de", "fgh", "ij", "klm", "nop", "qr", "stu"]
TEXTS = ["abc de", "fgh ij klm", "nop", "qr stu abc de fgh"]


def _steer(seed: int, amount: float, width: int = 32) -> Any:
    u = torch.from_numpy(np.random.default_rng(seed).normal(size=width)).float()
    return edit_fn("steer", u / u.norm(), amount)


@pytest.fixture(scope="module")
def llama(one_torch_thread):
    return tiny_model("llama", n_layers=3, d_model=32, vocab_size=100, seed=0)


@pytest.fixture(scope="module")
def gpt2(one_torch_thread):
    return tiny_model("gpt2", n_layers=3, d_model=32, vocab_size=100, seed=0)


class _Recorder:
    """A stand-in classifier that keeps the texts it was given."""

    def __init__(self) -> None:
        self.texts: list[str] = []

    def score(self, texts):
        self.texts.extend(texts)
        return np.zeros(len(texts))


# the group hook

def test_each_group_of_rows_gets_its_own_edit_including_cached_generation_steps(llama) -> None:
    fns = [_steer(0, 40.0), None, _steer(1, -40.0)]
    seen: list[tuple[int, int]] = []

    def spy(fn):
        def run(acts):
            seen.append(tuple(acts.shape[:2]))
            return fn(acts)
        return run

    classifier = _Recorder()
    scorer = ContinuationScorer(classifier, max_new_tokens=5, batch_size=4)
    model, tok = llama.model, llama.tokenizer
    with edit_groups(model, HOOK, [spy(fns[0]), None, spy(fns[2])]):
        scores, _ = scorer.score_groups(model, tok, TEXTS, 3)
    grouped = [classifier.texts[g * 4:(g + 1) * 4] for g in range(3)]
    one_by_one = []
    for fn in fns:
        with edit(model, HOOK, fn) if fn is not None else edit(model, HOOK, lambda a: a):
            one_by_one.append(scorer.continuations(model, tok, TEXTS))
    assert scores.shape == (3, 4) and grouped == one_by_one
    assert one_by_one[0] != one_by_one[1] != one_by_one[2]  # the edits change what is generated
    # the prompt pass, then one-token steps with the KV cache: each edit on its own 4 rows every time
    assert seen[0] == (4, max(len(t) for t in TEXTS)) and (4, 1) in seen and all(rows == 4 for rows, _ in seen)


def test_an_unedited_group_reads_the_unedited_activations_and_the_others_their_own(llama) -> None:
    enc = llama.tokenizer(TEXTS, return_tensors="pt", padding=True)
    fns = [_steer(0, 5.0), None]
    with torch.no_grad():
        with capture(llama.model, [HOOK]) as plain:
            llama.model(**enc)
        with edit(llama.model, HOOK, fns[0]), capture(llama.model, [HOOK]) as steered:
            llama.model(**enc)
        with edit_groups(llama.model, HOOK, fns), capture(llama.model, [HOOK]) as both:
            llama.model(input_ids=enc["input_ids"].repeat(2, 1), attention_mask=enc["attention_mask"].repeat(2, 1))
    got = both[HOOK][0]
    torch.testing.assert_close(got[:4], steered[HOOK][0], rtol=0, atol=1e-6)
    torch.testing.assert_close(got[4:], plain[HOOK][0], rtol=0, atol=1e-6)


def test_a_batch_that_does_not_split_into_equal_groups_is_refused(llama) -> None:
    enc = llama.tokenizer(TEXTS[:3], return_tensors="pt", padding=True)
    with edit_groups(llama.model, HOOK, [_steer(0, 1.0), None]), pytest.raises(ValidationError, match="equal groups"):
        llama.model(**enc)
    with pytest.raises(ValidationError, match="at least one edit"), edit_groups(llama.model, HOOK, []):
        pass


@pytest.mark.parametrize("family", ["llama", "gpt2"])
def test_upstream_blocks_run_once_per_prompt_pass_with_the_numbers_of_running_every_group(
    family: str, llama, gpt2
) -> None:
    loaded = llama if family == "llama" else gpt2
    model, fns = loaded.model, [_steer(0, 30.0), _steer(1, 30.0), None]
    rows: list[int] = []
    step_logits: list[torch.Tensor] = []  # every generation step's, so the KV cache of shared blocks is checked
    first_block = (model.model.layers if family == "llama" else model.transformer.h)[0]
    handles = [first_block.register_forward_hook(lambda m, a, out: rows.append(
        (out[0] if isinstance(out, tuple) else out).shape[0])),
        model.get_output_embeddings().register_forward_hook(lambda m, a, out: step_logits.append(out[:, -1]))]
    try:
        results = {}
        for share in (False, True):
            rows.clear()
            with edit_groups(model, HOOK, fns, share_upstream=share):
                lp = grouped_logprobs(loaded, TEXTS, 4, 3)
                step_logits.clear()
                classifier = _Recorder()
                ContinuationScorer(classifier, max_new_tokens=4).score_groups(model, loaded.tokenizer, TEXTS, 3)
            results[share] = (lp, classifier.texts, list(rows), torch.stack(step_logits))
    finally:
        for handle in handles:
            handle.remove()
    (lp0, gen0, rows0, steps0), (lp1, gen1, rows1, steps1) = results[False], results[True]
    torch.testing.assert_close(lp1, lp0, rtol=0, atol=1e-6)
    torch.testing.assert_close(steps1, steps0, rtol=0, atol=1e-6)
    assert gen1 == gen0
    # the forward and the generate's prefill ran block 0 on one group; the cached steps on every row
    assert len(rows1) == len(rows0) > 2 and set(rows0) == {12}
    assert rows1[:2] == [4, 4] and set(rows1[2:]) == {12}
    sequential = []
    for fn in fns:
        with edit(model, HOOK, fn) if fn is not None else edit(model, HOOK, lambda a: a):
            sequential.append(next_token_logprobs(loaded, TEXTS, 4))
    torch.testing.assert_close(lp1, torch.stack(sequential), rtol=0, atol=1e-5)


# the runner: batched against sequential

class _LengthClassifier:
    """A stand-in text classifier: a smooth function of a continuation's characters."""

    def score(self, texts):
        return np.array([0.5 + 0.4 * math.tanh((sum(map(ord, t)) % 997) / 300 - 1.5) for t in texts])


def _prompts(n: int, seed: int = 1) -> list[ScoredPrompt]:
    rng = np.random.default_rng(seed)
    return [ScoredPrompt(f"p{i}", " ".join(rng.choice(WORDS, 2 + i % 3)), float(i % 2)) for i in range(n)]


def _target_scorer(loaded) -> tuple[TargetTokenScorer, list[ScoredPrompt], list[ScoredPrompt]]:
    """A target-token scorer on the tiny model, with prompts labelled by its own mass (so it may serve)."""
    prompts = _prompts(36)
    scorer = TargetTokenScorer(targets=["a", "e"], min_auroc=0.5).fit(loaded.model, loaded.tokenizer, prompts)
    mass = next_token_probabilities(loaded.model, loaded.tokenizer, [p.text for p in prompts])[
        :, list(scorer.target_ids or ())].sum(1)
    labelled = [ScoredPrompt(p.prompt_id, p.text, float(m > np.median(mass)))
                for p, m in zip(prompts, mass, strict=True)]
    cal, held = [p for i, p in enumerate(labelled) if i % 3], [p for i, p in enumerate(labelled) if not i % 3]
    scorer.fit(loaded.model, loaded.tokenizer, cal).evaluate(loaded.model, loaded.tokenizer, held)
    assert scorer.report is not None and scorer.report.usable
    return scorer, cal, held


def _assert_same(a: Any, b: Any, path: str = "") -> None:
    """Equal structure and strings; floats within 1e-5 (the two paths batch differently)."""
    if isinstance(a, dict):
        assert a.keys() == b.keys(), path
        for k in a:
            _assert_same(a[k], b[k], f"{path}.{k}")
    elif isinstance(a, (list, tuple)):
        assert len(a) == len(b), path
        for i, (x, y) in enumerate(zip(a, b, strict=True)):
            _assert_same(x, y, f"{path}[{i}]")
    elif isinstance(a, float) and isinstance(b, float):
        assert a == pytest.approx(b, rel=1e-5, abs=1e-5), path
    else:
        assert a == b, path


def _both(loaded, targets, scorer, cal, held, **cfg):
    """The sequential and the batched run, and how many forward passes each made."""
    runs, passes = [], []
    for batch_edits in (False, True):
        config = InterveneConfig(n_random_directions=2, n_matched_features=1, batch_edits=batch_edits,
                                 max_batch_rows=24, **cfg)
        calls: list[int] = []
        handle = loaded.model.register_forward_pre_hook(lambda *_, sink=calls: sink.append(1))
        try:
            runs.append(run_interventions(loaded, targets, scorer, calibration=cal, held_out=held, criterion="c",
                                          model_name="tiny", config=config))
        finally:
            handle.remove()
        passes.append(len(calls))
    return runs, passes


@pytest.mark.parametrize("mode", ["steer", "ablate", "clamp"])
def test_batched_edits_give_the_records_and_summaries_of_one_edit_per_pass(mode: str, llama) -> None:
    scorer, cal, held = _target_scorer(llama)
    targets = [parse_target("L1:D3", {HOOK: 32}), parse_target("L2:D5", {"blocks.2.hook_resid_post": 32})]
    (seq, bat), (seq_passes, bat_passes) = _both(llama, targets, scorer, cal, held, mode=mode,
                                                 strengths=(-2.0, 2.0, 4.0), max_widening=4)
    _assert_same([r.to_json() for r in seq.records], [r.to_json() for r in bat.records])
    _assert_same(seq.features, bat.features)
    assert bat_passes < 0.75 * seq_passes  # the edits of a step shared passes (single widening steps do not)
    if mode != "ablate":
        assert len(seq.features[0]["calibration"]["sweep"]) >= 3  # a strength grid was compared


def test_batched_continuation_scores_match_for_an_sae_latent(llama, tmp_path: Path) -> None:
    rng = np.random.default_rng(0)
    save_file({"W_enc": rng.normal(0, 0.3, (32, 16)).astype(np.float32),
               "W_dec": rng.normal(0, 0.3, (16, 32)).astype(np.float32),
               "b_enc": np.full(16, 0.1, np.float32), "b_dec": rng.normal(0, 0.1, 32).astype(np.float32)},
              str(tmp_path / "sae_weights.safetensors"))
    (tmp_path / "cfg.json").write_text('{"d_in": 32, "d_sae": 16, "architecture": "standard", "dtype": "float32", '
                                       '"metadata": {"hook_name": "blocks.1.hook_resid_post"}}')
    target = parse_target("SAE:L1:F3", {}, saes={1: load_sae_lens(tmp_path)})
    prompts = _prompts(30, seed=2)
    scorer = ContinuationScorer(_LengthClassifier(), max_new_tokens=4, batch_size=4)
    (seq, bat), (seq_passes, bat_passes) = _both(llama, [target], scorer, prompts[:20], prompts[20:],
                                                 strengths=(-8.0, 8.0), max_widening=2)
    assert bat_passes < seq_passes / 2
    _assert_same([r.to_json() for r in seq.records], [r.to_json() for r in bat.records])
    _assert_same(seq.features, bat.features)
    assert seq.features[0]["effect"]["mean"] != 0.0  # the edit changed some continuations


@pytest.mark.slow
def test_on_the_embedded_model_grouped_generation_continues_as_one_edit_at_a_time(one_torch_thread) -> None:
    from interp_agent.core.models import load_model

    loaded = load_model("smollm2-135m")
    texts = ["Le chat est", "The weather today is", "def add(a, b):"]
    fns = [_steer(0, 8.0, width=576), _steer(1, -8.0, width=576)]
    classifier = _Recorder()
    scorer = ContinuationScorer(classifier, max_new_tokens=4)
    hook = "blocks.10.hook_resid_post"
    with edit_groups(loaded.model, hook, fns):
        scorer.score_groups(loaded.model, loaded.tokenizer, texts, 2)
    grouped = [classifier.texts[:3], classifier.texts[3:]]
    assert grouped[0] != grouped[1]
    for fn, got in zip(fns, grouped, strict=True):
        with edit(loaded.model, hook, fn):
            assert scorer.continuations(loaded.model, loaded.tokenizer, texts) == got
