"""Behaviour scorers: target-token mass on a tiny in-process Llama, text classifier on the real encoder."""

from __future__ import annotations

import itertools
import json

import numpy as np
import pytest
import torch

from interp_agent.core.criteria import (
    CriterionSet,
    ScorerReport,
    TargetTokenScorer,
    TextClassifierScorer,
    auroc,
    choose_threshold,
    fit_text_scorer,
    from_pack,
    load_pack,
    next_token_probabilities,
    split,
)
from interp_agent.core.errors import EvidenceError, ValidationError
from interp_agent.core.formats.prompts import ScoredPrompt
from interp_agent.core.matching.text import TextEncoder

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tests/conftest.py


# ------------------------------------------------------------------ statistics


def test_auroc_matches_the_pairwise_definition_with_ties_counting_half() -> None:
    rng = np.random.default_rng(0)
    scores = rng.integers(0, 5, size=40).astype(float)
    labels = rng.random(40) < 0.5
    pairs = [(1.0 if p > n else 0.5 if p == n else 0.0) for p, n in itertools.product(scores[labels], scores[~labels])]
    assert auroc(scores, labels) == pytest.approx(np.mean(pairs))
    assert np.isnan(auroc(scores, np.ones(40, dtype=bool)))


def test_best_threshold_separates_separable_scores_at_the_gap_midpoint() -> None:
    scores = np.array([0.1, 0.2, 0.3, 0.7, 0.8])
    labels = np.array([False, False, False, True, True])
    assert choose_threshold(scores, labels, "best") == pytest.approx(0.5)
    assert choose_threshold(scores, labels, "midpoint") == pytest.approx((0.2 + 0.75) / 2)


def test_scorer_report_serialises_to_strict_json() -> None:
    report = ScorerReport("target_token", float("nan"), 0.5, 0.1, 10, 5, False, (" meters",))
    obj = report.to_json()
    assert obj["schema_version"] == "interp-agent.scorer_report.v1"
    assert obj["auroc"] is None and obj["targets"] == [" meters"]
    json.dumps(obj, allow_nan=False)


# ------------------------------------------------------------------ a tiny Llama

WORDS = (
    "the a rope bridge tower river road wall team class farm shop spans measures has holds is "
    "about nearly one two three four five six seven eight nine ten twelve twenty forty hundred "
    "meters feet miles kilograms degrees minutes people students cows books goals apples and of to in"
).split()
SUBJECTS = "rope bridge tower river road wall team class farm shop".split()
NUMBERS = "one two three four five six seven eight nine ten twelve twenty forty hundred".split()


@pytest.fixture(scope="module")
def tiny() -> tuple[torch.nn.Module, object]:
    """A 2-layer random Llama (d_model 32) and a word-level tokenizer over ~60 words."""
    from tokenizers import Tokenizer, models, pre_tokenizers
    from transformers import LlamaConfig, LlamaForCausalLM, PreTrainedTokenizerFast

    vocab = {"[PAD]": 0, "[UNK]": 1} | {w: i + 2 for i, w in enumerate(dict.fromkeys(WORDS))}
    backend = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    backend.pre_tokenizer = pre_tokenizers.Whitespace()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=backend, pad_token="[PAD]", unk_token="[UNK]")
    torch.manual_seed(0)
    config = LlamaConfig(
        vocab_size=len(vocab), hidden_size=32, intermediate_size=64, num_hidden_layers=2,
        num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=64,
        initializer_range=0.5, tie_word_embeddings=False,
    )
    return LlamaForCausalLM(config).eval(), tokenizer


def _prompts(tag: str, verb: str, label: float, start: int, n: int) -> list[ScoredPrompt]:
    """``n`` distinct prompts ``the <subject> <about|nearly> <number> <verb>`` (deterministic)."""
    combos = list(itertools.product(SUBJECTS, ("about", "nearly"), NUMBERS))[start : start + n]
    return [
        ScoredPrompt(f"{tag}-{start + i}", f"the {s} {a} {num} {verb}", label) for i, (s, a, num) in enumerate(combos)
    ]


def test_next_token_probabilities_are_distributions_independent_of_batch_and_padding(tiny) -> None:
    model, tokenizer = tiny
    short, long = "the rope spans", "the old wall of the farm is about twenty meters and the river has"
    alone = next_token_probabilities(model, tokenizer, [short])
    batched = next_token_probabilities(model, tokenizer, [short, long, "a"], batch_size=3)
    assert batched.shape == (3, len(tokenizer))
    np.testing.assert_allclose(batched.sum(axis=1), 1.0, rtol=1e-5)
    torch.testing.assert_close(torch.from_numpy(batched[0]), torch.from_numpy(alone[0]), rtol=1e-5, atol=1e-6)
    # Reference: the unpadded forward pass of the long text on its own.
    ids = torch.tensor([tokenizer(long)["input_ids"]])
    with torch.no_grad():
        ref = torch.softmax(model(input_ids=ids).logits[0, -1].float(), dim=-1)
    torch.testing.assert_close(torch.from_numpy(batched[1]), ref, rtol=1e-5, atol=1e-6)


def test_target_token_scorer_is_usable_when_the_last_word_carries_the_criterion(tiny) -> None:
    model, tokenizer = tiny
    calibration = _prompts("pos", "spans", 1.0, 0, 24) + _prompts("neg", "has", 0.0, 0, 24)
    held_out = _prompts("pos", "spans", 1.0, 100, 12) + _prompts("neg", "has", 0.0, 100, 12)
    scorer = TargetTokenScorer(n_inferred=5).fit(model, tokenizer, calibration)
    report = scorer.evaluate(model, tokenizer, held_out)
    assert report.usable and report.auroc > 0.9 and report.n_held_out == 24 and report.n_calibration == 48
    assert report.targets is not None and len(report.targets) <= 5

    texts = ["the bridge nearly forty spans", "the team has", "the road about one hundred and ten of the farm spans"]
    scores = scorer.score(model, tokenizer, texts)
    assert scores.shape == (3,) and np.all((scores >= 0) & (scores <= 1))
    one_by_one = np.array([scorer.score(model, tokenizer, [t])[0] for t in texts])
    torch.testing.assert_close(torch.from_numpy(scores), torch.from_numpy(one_by_one), rtol=1e-5, atol=1e-7)
    # The mass is the sum of the target tokens' probabilities.
    probs = next_token_probabilities(model, tokenizer, texts)
    np.testing.assert_allclose(scores, probs[:, list(scorer.target_ids or ())].sum(axis=1), rtol=1e-5)


def test_target_scorer_is_validated_on_calibration_prompts_and_flags_inferred_targets(tiny) -> None:
    model, tokenizer = tiny
    calibration = _prompts("pos", "spans", 1.0, 0, 24) + _prompts("neg", "has", 0.0, 0, 24)
    held_out = _prompts("pos", "spans", 1.0, 100, 8) + _prompts("neg", "has", 0.0, 100, 8)
    inferred = TargetTokenScorer(n_inferred=5).fit(model, tokenizer, calibration)
    assert inferred.targets_inferred is True
    v = inferred.validation
    assert v is not None and v.on == "prompts" and v.n == 48 and "5-fold cross-validation" in v.method
    assert v.usable and v.auroc > 0.9  # targets inferred on the other folds still separate each fold
    report = inferred.evaluate(model, tokenizer, held_out)
    assert report.targets_inferred is True and report.validated_on == "prompts" and report.held_out_on == "prompts"
    assert any("stand-ins" in note for note in report.notes)
    assert report.to_json()["targets_inferred"] is True

    given = TargetTokenScorer([" meters"]).fit(model, tokenizer, calibration)
    assert given.targets_inferred is False and given.validation is not None
    assert "given targets" in given.validation.method
    # the given targets' validation is their plain calibration AUROC: nothing else was fitted there
    assert given.validation.auroc == pytest.approx(given.evaluate(model, tokenizer, held_out).calibration_auroc)


def test_inferred_targets_come_from_calibration_prompts_only(tiny) -> None:
    model, tokenizer = tiny
    # Calibration and held-out prompts end in different words, so the tokens favoured
    # by the held-out positives differ from those favoured by the calibration positives.
    calibration = _prompts("pos", "spans", 1.0, 0, 20) + _prompts("neg", "has", 0.0, 0, 20)
    held_out = _prompts("pos", "measures", 1.0, 100, 20) + _prompts("neg", "holds", 0.0, 100, 20)

    def top_tokens(prompts: list[ScoredPrompt], m: int = 4) -> list[int]:
        probs = next_token_probabilities(model, tokenizer, [p.text for p in prompts])
        labels = np.array([p.criterion_score == 1 for p in prompts])
        diff = probs[labels].mean(axis=0) - probs[~labels].mean(axis=0)
        diff[tokenizer.all_special_ids] = -np.inf
        return [int(i) for i in np.argsort(-diff, kind="stable")[:m] if diff[i] > 0]

    from_calibration, from_everything = top_tokens(calibration), top_tokens(calibration + held_out)
    assert from_calibration != from_everything  # the case can tell the two apart

    seen: list[tuple[int, ...]] = []
    original_forward = model.forward

    def recording_forward(*args, **kwargs):
        for row, mask in zip(kwargs["input_ids"], kwargs["attention_mask"], strict=True):
            seen.append(tuple(row[mask.bool()].tolist()))
        return original_forward(*args, **kwargs)

    model.forward = recording_forward
    try:
        scorer = TargetTokenScorer(n_inferred=4).fit(model, tokenizer, calibration)
    finally:
        del model.forward
    assert list(scorer.target_ids or ()) == from_calibration
    calibration_ids = {tuple(tokenizer(p.text)["input_ids"]) for p in calibration}
    assert seen and set(seen) <= calibration_ids

    scorer.evaluate(model, tokenizer, held_out)
    assert list(scorer.target_ids or ()) == from_calibration  # evaluation never re-chooses targets


def test_target_strings_count_their_first_token_once(tiny) -> None:
    model, tokenizer = tiny
    calibration = _prompts("pos", "spans", 1.0, 0, 10) + _prompts("neg", "has", 0.0, 0, 10)
    scorer = TargetTokenScorer([" meters", " feet", " meters", " miles per hour"]).fit(model, tokenizer, calibration)
    assert scorer.target_ids == tuple(tokenizer.convert_tokens_to_ids(["meters", "feet", "miles"]))
    held_out = _prompts("pos", "spans", 1.0, 50, 6) + _prompts("neg", "has", 0.0, 50, 6)
    report = scorer.evaluate(model, tokenizer, held_out)
    assert any("' miles per hour' is 3 tokens" in note for note in report.notes)


def test_target_token_scorer_refuses_to_score_when_near_chance(tiny) -> None:
    model, tokenizer = tiny
    # Unknown words all map to [UNK]: each positive has a negative twin with the same tokens.
    def twins(tag: str) -> list[ScoredPrompt]:
        return [ScoredPrompt(f"{tag}{i}-{y}", f"the rope {n} {tag}{i}x{y}", float(y))
                for i, n in enumerate(NUMBERS) for y in (0, 1)]

    calibration, held_out = twins("zzz"), twins("qqq")
    scorer = TargetTokenScorer([" meters", " feet"]).fit(model, tokenizer, calibration)
    report = scorer.evaluate(model, tokenizer, held_out)
    assert not report.usable and report.auroc == pytest.approx(0.5)
    # the given targets are validated on calibration prompts first: that refusal comes before the held-out one
    assert report.validation is not None and not report.validation.usable and report.validated_on == "prompts"
    assert report.targets_inferred is False and not report.serves
    with pytest.raises(EvidenceError, match=r"scorer near chance in validation: AUROC 0\.50 .* calibration prompts"):
        scorer.score(model, tokenizer, ["the rope spans"])
    with pytest.raises(EvidenceError, match="no token is more likely"):
        TargetTokenScorer().fit(model, tokenizer, calibration)


def test_scorers_refuse_before_evaluation_and_on_calibration_prompts(tiny) -> None:
    model, tokenizer = tiny
    calibration = _prompts("pos", "spans", 1.0, 0, 10) + _prompts("neg", "has", 0.0, 0, 10)
    scorer = TargetTokenScorer([" meters"])
    with pytest.raises(ValidationError, match="not fitted"):
        scorer.evaluate(model, tokenizer, calibration)
    scorer.fit(model, tokenizer, calibration)
    with pytest.raises(EvidenceError, match="not been evaluated"):
        scorer.score(model, tokenizer, ["the rope spans"])
    with pytest.raises(ValidationError, match="were also calibration prompts"):
        scorer.evaluate(model, tokenizer, calibration[:3] + _prompts("neg", "has", 0.0, 60, 3))
    with pytest.raises(EvidenceError, match="need both classes"):
        scorer.evaluate(model, tokenizer, _prompts("pos", "spans", 1.0, 60, 5))


def test_scoring_leaves_the_model_in_its_training_mode(tiny) -> None:
    model, tokenizer = tiny
    model.train()
    try:
        next_token_probabilities(model, tokenizer, ["the rope spans"])
        assert model.training
    finally:
        model.eval()


# ------------------------------------------------------------------ text classifier on the real encoder


class CachingEncoder(TextEncoder):
    """The real all-MiniLM-L6-v2 encoder, memoised per text so the tests encode each text once."""

    def __init__(self) -> None:
        from interp_agent.core.matching.text import load_text_encoder

        self.inner = load_text_encoder()
        super().__init__(self.inner.model, name=self.inner.name)
        self.cache: dict[str, np.ndarray] = {}

    def encode(self, texts: list[str]) -> np.ndarray:
        missing = [t for t in dict.fromkeys(texts) if t not in self.cache]
        if missing:
            self.cache.update(zip(missing, self.inner.encode(missing), strict=True))
        return np.stack([self.cache[t] for t in texts])


@pytest.fixture(scope="module")
def encoder() -> CachingEncoder:
    pytest.importorskip("sentence_transformers")
    return CachingEncoder()


@pytest.mark.parametrize("name", ["french", "negative_sentiment"])
def test_text_classifier_reaches_held_out_accuracy_above_085(encoder: CachingEncoder, name: str) -> None:
    scorer = fit_text_scorer(from_pack(name), encoder=encoder)
    report = scorer.report
    assert report is not None and report.kind == "text_classifier" and report.targets is None
    assert report.usable and report.accuracy > 0.85 and report.auroc > 0.9, report
    probs = scorer.score(["Je pense que le film était très long.", "The service was slow and the food cold."])
    assert np.all((probs >= 0) & (probs <= 1))


def test_text_classifier_scores_new_texts_on_the_right_side_of_its_threshold(encoder: CachingEncoder) -> None:
    scorer = fit_text_scorer(from_pack("french"), encoder=encoder)
    french, english = scorer.score(["Nous avons mangé une soupe délicieuse hier soir.",
                                    "We ate a delicious soup last night."])
    assert french >= scorer.threshold > english


def test_text_classifier_refuses_to_score_with_shuffled_labels(encoder: CachingEncoder) -> None:
    # The texts of the two packs encoded above (cached), with their labels shuffled.
    rows = [p for name in ("french", "negative_sentiment") for p in load_pack(name).prompts]
    labels = np.random.default_rng(0).permutation([p.criterion_score for p in rows])
    shuffled = [ScoredPrompt(p.prompt_id, p.text, float(y)) for p, y in zip(rows, labels, strict=True)]
    calibration, held_out = split(CriterionSet("shuffled", tuple(shuffled), "file"))
    scorer = TextClassifierScorer(encoder=encoder).fit(calibration)
    report = scorer.evaluate(held_out)
    assert not report.usable and 0.4 < report.auroc < 0.6 and report.n_held_out > 60
    with pytest.raises(EvidenceError, match="scorer near chance: held-out AUROC"):
        scorer.score(["any text"])


def test_text_classifier_is_validated_on_the_texts_it_will_read(encoder: CachingEncoder) -> None:
    calibration, held_out = split(from_pack("french"))
    scorer = TextClassifierScorer(encoder=encoder).fit(calibration)
    with pytest.raises(ValidationError, match="not calibration prompts"):
        scorer.validate_on_texts([p.text for p in held_out], held_out)
    with pytest.raises(ValidationError, match="one text a prompt"):
        scorer.validate_on_texts(["x"], calibration)
    # stand-in "continuations" that carry the class: usable
    good = scorer.validate_on_texts(["Il fait beau aujourd'hui." if p.criterion_score else "It is sunny today."
                                     for p in calibration], calibration)
    assert good.on == "continuations" and good.usable and good.auroc == 1.0
    report = scorer.evaluate(held_out, texts=[p.text for p in held_out], on="continuations")
    assert report.validated_on == "continuations" and report.held_out_on == "continuations" and report.serves
    # continuations that do not carry the class: the classifier refuses, however well it reads prompts
    bad = scorer.validate_on_texts(["The answer is below." for _ in calibration], calibration)
    assert not bad.usable and abs(bad.auroc - 0.5) < 0.05  # one text: equal scores up to float noise
    assert scorer.report is not None and scorer.report.validation == bad and scorer.report.usable
    with pytest.raises(EvidenceError, match="near chance in validation: .* calibration continuations") as err:
        scorer.score(["Bonjour."])
    assert "probe" in (err.value.hint or "")


def test_text_classifier_rejects_a_non_positive_penalty() -> None:
    with pytest.raises(ValidationError, match="l2"):
        TextClassifierScorer(l2=0.0)
