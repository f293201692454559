"""Scoring explanations on held-out contexts: metrics, the embedding score, blinded judge tasks, grading."""

from __future__ import annotations

import dataclasses
import re
from collections.abc import Sequence
from typing import Any

import numpy as np
import pytest

from interp_agent.core.errors import EvidenceError, ValidationError
from interp_agent.core.explain.evidence import EvidenceSet
from interp_agent.core.explain.explanations import MAX_EXPLANATION_CHARS
from interp_agent.core.explain.judges import ModelJudge, run_judge
from interp_agent.core.explain.scoring import (
    JudgeItem,
    JudgeMethod,
    auroc,
    auroc_difference,
    auroc_interval,
    average_ranks,
    balanced_accuracy,
    best_threshold,
    detection_task,
    embedding_score,
    f1_score,
    fuzzing_task,
    grade,
    held_out_items,
    mark_tokens,
    null_task,
    score_from_item_scores,
    shuffled_labels_null,
    threshold_metrics,
)

TOPICS = {  # the words the toy evidence's features fire on (see conftest.py)
    "weather": ["rain", "snow", "storm", "clouds", "wind", "thunder", "sunny", "fog"],
    "food": ["bread", "cheese", "soup", "apples", "pasta", "rice", "butter", "cake"],
}
GOOD = "weather words such as rain, snow and storms"
WRONG = "food such as bread, cheese and soup"


class MemoEncoder:
    """The real encoder with an in-memory cache, so repeated texts are embedded once per test module."""

    def __init__(self) -> None:
        from interp_agent.core.matching.text import load_text_encoder

        self.inner = load_text_encoder()
        self.rows: dict[str, np.ndarray] = {}

    def encode(self, texts: list[str]) -> np.ndarray:
        missing = [t for t in dict.fromkeys(texts) if t not in self.rows]
        if missing:
            self.rows.update(zip(missing, self.inner.encode(missing), strict=True))
        return np.stack([self.rows[t] for t in texts])


@pytest.fixture(scope="module")
def encoder() -> MemoEncoder:
    return MemoEncoder()


class KeywordJudge:
    """A stand-in judge: an item fits when it contains a word of the topic the explanation names."""

    name = "keyword stand-in"

    def judge(self, explanation: str, items: Sequence[str], method: JudgeMethod) -> list[float]:
        topic = next(t for t in TOPICS if t in explanation)
        words = set(TOPICS[topic])
        if method == "fuzzing":
            return [float(any(w in words for w in re.findall(r"«(.*?)»", text))) for text in items]
        return [float(any(w in words for w in text.split())) for text in items]


class NoEncoder:
    """An encoder that must never be reached (the input is refused first)."""

    def encode(self, texts: list[str]) -> np.ndarray:
        raise AssertionError("the encoder was called before the input was checked")


def _contains(metric_value: float | None, ci: tuple[float, float] | None) -> bool:
    assert metric_value is not None and ci is not None
    return ci[0] - 1e-12 <= metric_value <= ci[1] + 1e-12


# --- metrics --------------------------------------------------------------------------------


def test_auroc_equals_the_pairwise_count_with_ties_counted_half() -> None:
    rng = np.random.default_rng(0)
    labels = rng.random(60) < 0.4
    scores = rng.integers(0, 5, 60).astype(float)  # many ties
    pos, neg = scores[labels], scores[~labels]
    reference = ((pos[:, None] > neg[None, :]).sum() + 0.5 * (pos[:, None] == neg[None, :]).sum()) / (
        len(pos) * len(neg))
    assert auroc(labels, scores) == pytest.approx(reference)
    assert auroc([1, 1, 0, 0], [0.2, 0.9, 0.1, 0.3]) == pytest.approx(0.75)
    assert auroc([1, 0, 1, 0], [1.0, 1.0, 1.0, 1.0]) == pytest.approx(0.5)


def test_average_ranks_give_ties_their_mean_rank() -> None:
    np.testing.assert_allclose(average_ranks(np.array([3.0, 1.0, 3.0, 2.0])), [3.5, 1.0, 3.5, 2.0])


def test_auroc_refuses_a_single_class_and_mismatched_lengths() -> None:
    with pytest.raises(ValidationError, match="at least one of each"):
        auroc([1, 1, 1], [0.1, 0.2, 0.3])
    with pytest.raises(ValidationError, match="3 labels but 2 scores"):
        auroc([1, 0, 1], [0.1, 0.2])


def test_balanced_accuracy_and_f1_match_hand_counts() -> None:
    labels = [1, 1, 1, 1, 0, 0]
    predicted = [1, 1, 1, 0, 1, 0]  # tp 3, fn 1, fp 1, tn 1
    assert balanced_accuracy(labels, predicted) == pytest.approx(0.5 * (3 / 4 + 1 / 2))
    assert f1_score(labels, predicted) == pytest.approx(2 * 3 / (2 * 3 + 1 + 1))
    assert f1_score([1, 0], [0, 0]) == 0.0


def test_best_threshold_separates_separable_scores_in_the_gap() -> None:
    t = best_threshold([0, 0, 0, 1, 1], [0.1, 0.2, 0.3, 0.7, 0.8])
    assert 0.3 < t < 0.7
    ba, f1 = threshold_metrics([0, 0, 0, 1, 1], [0.1, 0.2, 0.3, 0.7, 0.8], t, n_boot=200)
    assert ba.value == 1.0 and f1.value == 1.0 and ba.ci95 == (1.0, 1.0)


def test_bootstrap_interval_is_seeded_and_contains_the_value() -> None:
    rng = np.random.default_rng(1)
    labels = np.r_[np.ones(30, bool), np.zeros(30, bool)]
    scores = rng.normal(size=60) + labels
    ci = auroc_interval(labels, scores, seed=3)
    assert ci == auroc_interval(labels, scores, seed=3)
    assert ci != auroc_interval(labels, scores, seed=4)
    assert _contains(auroc(labels, scores), ci) and ci[1] - ci[0] > 0.05


def test_paired_difference_of_identical_scores_is_exactly_zero() -> None:
    rng = np.random.default_rng(2)
    labels = np.r_[np.ones(20, bool), np.zeros(20, bool)]
    scores = rng.normal(size=40) + labels
    same = auroc_difference(labels, scores, scores.copy())
    assert same.value == 0.0 and same.ci95 == (0.0, 0.0)
    better = auroc_difference(labels, labels + 0.01 * scores, scores)
    assert better.value is not None and better.value > 0 and better.ci95 is not None and better.ci95[0] > 0


def test_shuffled_labels_null_sits_near_one_half_even_for_perfect_scores() -> None:
    labels = np.r_[np.ones(25, bool), np.zeros(25, bool)]
    null = shuffled_labels_null(labels, labels.astype(float) + np.linspace(0, 0.1, 50), seed=0)
    assert null.value is not None and abs(null.value - 0.5) < 0.05
    assert null.ci95 is not None and null.ci95[0] < 0.5 < null.ci95[1]


def test_score_from_item_scores_refuses_fewer_than_three_of_a_class() -> None:
    with pytest.raises(EvidenceError, match="2 negative"):
        score_from_item_scores("detection", [1, 1, 1, 0, 0], [1, 1, 1, 0, 0])


# --- the embedding score --------------------------------------------------------------------


def test_a_good_explanation_beats_a_wrong_one_and_the_null(evidence: EvidenceSet, encoder: MemoEncoder) -> None:
    feature = evidence.feature("toy:weather")
    good = embedding_score(feature, evidence.contexts, GOOD, encoder, null_text=WRONG, null_feature="toy:food")
    wrong = embedding_score(feature, evidence.contexts, WRONG, encoder)
    assert good.auroc.value is not None and wrong.auroc.value is not None
    assert good.auroc.value > 0.9 > wrong.auroc.value + 0.3
    assert good.beats_random and good.null_feature == "toy:food"
    null_value = good.null_random_explanation.value
    assert null_value is not None and good.margin_over_random.value == pytest.approx(good.auroc.value - null_value)
    shuffled = good.null_shuffled_labels.value
    assert shuffled is not None and abs(shuffled - 0.5) < 0.08
    for metric in (good.auroc, good.balanced_accuracy, good.f1, good.null_random_explanation,
                   good.null_shuffled_labels, good.margin_over_random):
        assert _contains(metric.value, metric.ci95)
    assert good.judge is None and good.provenance == "held_out_text" and "explain-split" in good.note
    assert wrong.null_random_explanation.value is None and not wrong.beats_random


def test_the_embedding_score_uses_held_out_contexts_only(evidence: EvidenceSet, encoder: MemoEncoder) -> None:
    feature = evidence.feature("toy:weather")
    score = embedding_score(feature, evidence.contexts, GOOD, encoder)
    pos, neg = held_out_items(feature, evidence.contexts)
    assert score.contexts == tuple(pos + neg)
    assert (score.n_positive, score.n_negative) == (len(pos), len(neg))
    assert all(evidence.contexts.held_out[c] for c in score.contexts)
    explain_side = {e.context for e in feature.examples if e.split == "explain"}
    assert not explain_side & set(score.contexts)


def test_scoring_on_a_context_the_explainer_was_shown_is_refused(evidence: EvidenceSet, encoder: MemoEncoder) -> None:
    feature = evidence.feature("toy:weather")
    leaked = held_out_items(feature, evidence.contexts)[0][0]
    with pytest.raises(ValidationError, match=f"shown to the explainer.*{leaked}"):
        embedding_score(feature, evidence.contexts, GOOD, encoder, shown=(leaked,))
    with pytest.raises(ValidationError, match="shown to the explainer"):
        detection_task(feature, evidence.contexts, GOOD, shown=held_out_items(feature, evidence.contexts)[0])


def test_a_feature_without_held_out_activations_cannot_be_scored(evidence: EvidenceSet) -> None:
    dead = evidence.feature("toy:dead")
    with pytest.raises(EvidenceError, match="0 held-out activating") as info:
        embedding_score(dead, evidence.contexts, GOOD, NoEncoder())
    assert "bigger corpus" in str(info.value)
    with pytest.raises(EvidenceError, match="0 held-out activating"):
        fuzzing_task(dead, evidence.contexts, GOOD)
    weather = evidence.feature("toy:weather")
    two = [e for e in weather.examples if e.split == "held_out" and e.role != "random"][:2]
    few = dataclasses.replace(weather, examples=tuple(
        e for e in weather.examples if e.split == "explain" or e.role == "random" or any(e is t for t in two)))
    n_pos = len(held_out_items(few, evidence.contexts)[0])
    assert n_pos < 3
    with pytest.raises(EvidenceError, match=f"{n_pos} held-out activating"):
        detection_task(few, evidence.contexts, GOOD)


@pytest.mark.parametrize("text", ["", "   ", "x" * (MAX_EXPLANATION_CHARS + 1)])
def test_empty_and_oversize_explanations_are_refused(evidence: EvidenceSet, text: str) -> None:
    feature = evidence.feature("toy:weather")
    with pytest.raises(ValidationError, match="empty|limit"):
        embedding_score(feature, evidence.contexts, text, NoEncoder())
    with pytest.raises(ValidationError, match="empty|limit"):
        detection_task(feature, evidence.contexts, text)


# --- blinded tasks and grading --------------------------------------------------------------


def test_a_detection_task_carries_no_labels(evidence: EvidenceSet) -> None:
    feature = evidence.feature("toy:weather")
    task, key = detection_task(feature, evidence.contexts, GOOD, n_per_class=8, seed=1)
    assert [f.name for f in dataclasses.fields(JudgeItem)] == ["item_id", "text"]
    assert "labels" not in {f.name for f in dataclasses.fields(task)}
    ids = [item.item_id for item in task.items]
    assert len(set(ids)) == 16 and set(key.labels) == set(ids) and key.task_id == task.task_id
    assert sum(key.labels.values()) == 8
    order = [key.labels[i] for i in ids]
    assert order != sorted(order, reverse=True) and order != sorted(order)
    assert all(evidence.contexts.held_out[key.contexts[i]] for i in ids)
    for item in task.items:
        assert item.text == evidence.contexts.text(key.contexts[item.item_id])
    again, again_key = detection_task(feature, evidence.contexts, GOOD, n_per_class=8, seed=1)
    assert again.task_id != task.task_id
    assert sorted(again_key.contexts.values()) == sorted(key.contexts.values())


def test_fuzzing_marks_the_same_number_of_tokens_truly_or_at_random(evidence: EvidenceSet) -> None:
    task, key = fuzzing_task(evidence.feature("toy:weather"), evidence.contexts, GOOD, n_per_class=10, seed=0)
    weather = set(TOPICS["weather"])
    assert sum(key.labels.values()) == 10 and len(task.items) == 20
    for item in task.items:
        marked = re.findall(r"«(.*?)»", item.text)
        assert 1 <= len(marked) <= 3
        if key.labels[item.item_id]:
            assert all(m in weather for m in marked)
        else:
            assert not any(m in weather for m in marked)
    counts = {label: sorted(len(re.findall("«", i.text)) for i in task.items if key.labels[i.item_id] == label)
              for label in (True, False)}
    assert counts[True] == counts[False]
    assert mark_tokens(["<s>", " rain", " and", " snow"], [1, 3]) == "<s> «rain» and «snow»"


def test_perfect_answers_grade_perfectly_and_beat_the_null(evidence: EvidenceSet) -> None:
    task, key = detection_task(evidence.feature("toy:weather"), evidence.contexts, GOOD, seed=0)
    rng = np.random.default_rng(0)
    null = {i: float(rng.random()) for i in key.labels}
    score = grade(task, key, {i: int(v) for i, v in key.labels.items()}, judge="agent", null_answers=null,
                  null_feature="toy:food")
    assert score.auroc.value == 1.0 and score.balanced_accuracy.value == 1.0 and score.f1.value == 1.0
    assert score.method == "detection" and score.judge == "agent" and score.null_feature == "toy:food"
    assert score.beats_random and score.contexts == tuple(sorted(key.contexts.values()))
    inverted = grade(task, key, {i: not v for i, v in key.labels.items()}, judge="agent")
    assert inverted.auroc.value == 0.0 and inverted.margin_over_random.value is None


def test_grade_names_the_bad_item_ids_and_what_to_send(evidence: EvidenceSet) -> None:
    task, key = detection_task(evidence.feature("toy:weather"), evidence.contexts, GOOD, seed=0)
    good: dict[str, Any] = {i: 1.0 for i in key.labels}
    first = task.items[0].item_id
    with pytest.raises(ValidationError, match="does not have.*'bogus'") as info:
        grade(task, key, good | {"bogus": 1}, judge="agent")
    assert "item_id" in str(info.value)
    with pytest.raises(ValidationError, match=f"missing 1 of 20 items.*{first}"):
        grade(task, key, {i: v for i, v in good.items() if i != first}, judge="agent")
    bad_values: tuple[Any, ...] = (1.5, -0.1, "yes", float("nan"))
    for bad in bad_values:
        with pytest.raises(ValidationError, match=f"not numbers in \\[0, 1\\].*{first}"):
            grade(task, key, good | {first: bad}, judge="agent")
    with pytest.raises(ValidationError, match="null_answers"):
        grade(task, key, good, judge="agent", null_answers={first: 1})
    other, _ = detection_task(evidence.feature("toy:weather"), evidence.contexts, GOOD, seed=0)
    with pytest.raises(ValidationError, match="answer key is for task"):
        grade(other, key, good, judge="agent")


def test_a_judge_runs_on_the_task_and_its_null(evidence: EvidenceSet) -> None:
    feature = evidence.feature("toy:weather")
    task, key = detection_task(feature, evidence.contexts, "weather: rain, snow, storms", seed=2)
    score = run_judge(KeywordJudge(), task, key, null_text="food: bread, soup", null_feature="toy:food")
    assert score.auroc.value == 1.0 and score.judge == "keyword stand-in" and score.beats_random
    assert score.null_random_explanation.value is not None and score.null_random_explanation.value < 0.6
    fuzz, fuzz_key = fuzzing_task(feature, evidence.contexts, "weather: rain, snow, storms", seed=2)
    assert run_judge(KeywordJudge(), fuzz, fuzz_key).auroc.value == 1.0
    assert null_task(task, "food").items == task.items and null_task(task, "food").task_id != task.task_id


@pytest.mark.slow
def test_the_embedded_model_judges_a_task_with_probabilities(evidence: EvidenceSet) -> None:
    from interp_agent.core.models.loading import load_model

    judge = ModelJudge(load_model("smollm2-135m", device="cpu"))
    task, key = detection_task(evidence.feature("toy:weather"), evidence.contexts, GOOD, n_per_class=3, seed=0)
    texts = [item.text for item in task.items]
    probs = judge.judge(GOOD, texts, "detection")
    assert len(probs) == 6 and all(0.0 < p < 1.0 for p in probs)
    shortest = min(range(6), key=lambda i: len(texts[i]))  # padded in the batch, alone here
    assert judge.judge(GOOD, [texts[shortest]], "detection")[0] == pytest.approx(probs[shortest], abs=1e-4)
    score = grade(task, key, dict(zip([i.item_id for i in task.items], probs, strict=True)), judge=judge.name)
    assert score.judge == "smollm2-135m (weak local judge)" and score.auroc.value is not None
