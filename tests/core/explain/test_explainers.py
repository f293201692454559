"""Explainers: the compact evidence view, the token, model and chat explainers, and their shared prompt."""

from __future__ import annotations

import json
from dataclasses import replace

import numpy as np
import pytest

from interp_agent.core.errors import RemoteServiceError
from interp_agent.core.explain.evidence import Contexts, EvidenceSet, FeatureEvidence
from interp_agent.core.explain.explainers import (
    MODEL_NOTE,
    NEVER_FIRES,
    ChatExplainer,
    Explainer,
    ModelExplainer,
    TokenExplainer,
    clean_answer,
    evidence_view,
    explainer_messages,
    fit_explanation_text,
    is_degenerate,
    prompt_evidence,
)
from interp_agent.core.explain.explanations import MAX_EXPLANATION_CHARS
from interp_agent.core.explain.select import Selection, evidence_from_dense

WEATHER = {"rain", "snow", "storm", "clouds", "wind", "thunder", "sunny", "fog"}
SECRET = "HELDOUTSECRET"


def held_out_ids(evidence: EvidenceSet) -> set[int]:
    return {int(i) for i in np.flatnonzero(evidence.contexts.held_out)}


def corrupted(evidence: EvidenceSet, feature_id: str) -> tuple[FeatureEvidence, Contexts]:
    """A copy whose held-out contexts say SECRET everywhere and whose held-out examples' activations are noise."""
    c = evidence.contexts
    tokens = [[f" {SECRET}"] * len(row) if c.held_out[i] else list(row) for i, row in enumerate(c.tokens)]
    ids = np.where(c.held_out[:, None], 9999, c.token_ids).astype(np.int32)
    rng = np.random.default_rng(7)
    feature = evidence.feature(feature_id)
    examples = tuple(
        replace(e, acts=rng.random(c.length).astype(np.float32) * 9, max_activation=9.0)
        if e.split == "held_out" and e.acts is not None else e for e in feature.examples)
    return replace(feature, examples=examples), Contexts(ids, tokens, c.held_out.copy(), c.passage.copy())


def one_feature(rows: list[list[str]], acts: np.ndarray, held_out: np.ndarray | None = None) -> tuple[
        FeatureEvidence, Contexts]:
    """Evidence of one made-up SAE latent firing with ``acts`` [N, T] on contexts ``rows``."""
    vocab = {t: i for i, t in enumerate(sorted({t for r in rows for t in r}))}
    ids = np.array([[vocab[t] for t in r] for r in rows], dtype=np.int32)
    held = np.zeros(len(rows), dtype=bool) if held_out is None else held_out
    contexts = Contexts(ids, rows, held, np.arange(len(rows), dtype=np.int32))
    features = evidence_from_dense(contexts, acts[None], ["toy:made"], ["sae_latent"], selection=Selection(), seed=0)
    return features["toy:made"], contexts


def firing_on(rows: list[list[str]], predicate) -> np.ndarray:
    rng = np.random.default_rng(3)
    acts = np.zeros((len(rows), len(rows[0])), dtype=np.float32)
    for c, row in enumerate(rows):
        for t, tok in enumerate(row):
            if t and predicate(c, tok):
                acts[c, t] = 1.0 + rng.random()
    return acts


# --- evidence_view ----------------------------------------------------------------------------


def test_evidence_view_shows_no_held_out_context(evidence):
    view = evidence_view(evidence.feature("toy:weather"), evidence.contexts, max_top=10, max_quantile=20,
                         max_random=30)
    shown = set(view["shown_contexts"])
    assert shown and not shown & held_out_ids(evidence)
    assert {r["context"] for r in view["top"] + view["quantile"] + view["random"]} == shown
    assert view["held_out_examples"]["top"] > 0  # counted, never rendered
    json.dumps(view)


def test_evidence_view_never_renders_held_out_text(evidence):
    feature, contexts = corrupted(evidence, "toy:weather")
    view = evidence_view(feature, contexts, max_top=50, max_quantile=50, max_random=50)
    assert SECRET not in json.dumps(view)


def test_evidence_view_marks_firing_tokens_with_their_relative_activation(evidence):
    view = evidence_view(evidence.feature("toy:weather"), evidence.contexts, max_top=3, max_quantile=0)
    first = view["top"][0]["text"]
    assert "(1.0)" in first
    marked = [part.split("»")[0] for part in first.split("«")[1:]]
    assert marked and set(marked) <= WEATHER
    assert len(view["top"]) == 3 and view["quantile"] == []


def test_evidence_view_trims_each_text_to_a_window_around_its_peak(evidence):
    view = evidence_view(evidence.feature("toy:weather"), evidence.contexts, max_top=5, window=2)
    for row in view["top"]:
        assert "«" in row["text"] and "…" in row["text"]
        assert len(row["text"].replace("…", "").split()) <= 5


def test_evidence_view_spreads_quantile_examples_over_the_bins(evidence):
    view = evidence_view(evidence.feature("toy:weather"), evidence.contexts, max_quantile=5)
    bins = [r["quantile"] for r in view["quantile"]]
    assert bins == sorted(bins) and bins[0] == 0 and bins[-1] == 4


def test_evidence_view_lists_at_most_ten_promoted_tokens(evidence):
    feature = replace(evidence.feature("toy:food"), promoted=tuple((f" t{i}", float(i)) for i in range(15)))
    view = evidence_view(feature, evidence.contexts)
    assert len(view["promoted"]) == 10 and view["promoted"][0] == [" t0", 0.0]


# --- TokenExplainer ---------------------------------------------------------------------------


def test_token_explainer_names_weather_words_for_the_weather_feature(evidence):
    explanation = TokenExplainer().explain(evidence.feature("toy:weather"), evidence.contexts)
    named = {w for w in WEATHER if f'"{w}"' in explanation.text}
    assert explanation.text.startswith("fires on ") and len(named) >= 3
    assert explanation.author.kind == "local_tokens" and explanation.author.name == "token-frequency v2"
    assert explanation.feature_id == "toy:weather"


def test_token_explainer_is_deterministic(evidence):
    one = [TokenExplainer().explain(f, evidence.contexts) for f in evidence.features.values()]
    two = [TokenExplainer().explain(f, evidence.contexts) for f in evidence.features.values()]
    assert [(e.text, e.shown_contexts) for e in one] == [(e.text, e.shown_contexts) for e in two]


@pytest.mark.parametrize("feature_id", ["toy:weather", "toy:food", "toy:numbers"])
def test_token_explainer_never_reads_held_out_examples(evidence, feature_id):
    clean = TokenExplainer().explain(evidence.feature(feature_id), evidence.contexts)
    feature, contexts = corrupted(evidence, feature_id)
    dirty = TokenExplainer().explain(feature, contexts)
    assert (dirty.text, dirty.shown_contexts) == (clean.text, clean.shown_contexts)
    assert not set(clean.shown_contexts) & held_out_ids(evidence)


def test_token_explainer_says_plainly_that_a_dead_feature_never_fires(evidence):
    explanation = TokenExplainer().explain(evidence.feature("toy:dead"), evidence.contexts)
    assert explanation.text == NEVER_FIRES


def test_token_explainer_names_digits_for_the_numbers_feature(evidence):
    text = TokenExplainer().explain(evidence.feature("toy:numbers"), evidence.contexts).text
    assert sum(f'"{n}"' in text for n in ("3", "17", "42", "250", "9", "1000", "64", "12")) >= 3


def _sentences(n: int) -> list[list[str]]:
    words = ["city", "music", "garden", "train", "ocean", "river"]
    return [["<s>", " the", f" {words[i % 6]}", " was", " here", ",", " and", " the", " end", " ."] for i in range(n)]


def test_token_explainer_names_punctuation_when_it_is_all_that_fires():
    rows = _sentences(40)
    feature, contexts = one_feature(rows, firing_on(rows, lambda c, tok: tok.strip() in {".", ","}))
    text = TokenExplainer().explain(feature, contexts).text
    assert text.startswith('fires on "') and '"."' in text and '","' in text


def test_token_explainer_prefers_words_over_punctuation_that_also_fires():
    rows = _sentences(40)
    feature, contexts = one_feature(rows, firing_on(rows, lambda c, tok: tok.strip() in {".", "here"}))
    assert TokenExplainer().explain(feature, contexts).text.startswith('fires on "here"')


def test_token_explainer_handles_a_single_token_feature():
    rows = _sentences(40)
    feature, contexts = one_feature(rows, firing_on(rows, lambda c, tok: tok == " end"))
    assert TokenExplainer().explain(feature, contexts).text == 'fires on "end"'


def test_token_explainer_names_newlines_by_name():
    rows = [["<s>", " line", "\n", " two", "\n\n", " three"] for _ in range(30)]
    feature, contexts = one_feature(rows, firing_on(rows, lambda c, tok: not tok.strip()))
    assert TokenExplainer().explain(feature, contexts).text == "fires on newline"


def test_token_explainer_names_context_words_over_represented_where_it_fires():
    rows = [["<s>", " the", " ocean", " waves", " hit", " the", " shore"] if i % 2 else
            ["<s>", " the", " city", " lights", " lit", " the", " street"] for i in range(80)]
    feature, contexts = one_feature(rows, firing_on(rows, lambda c, tok: c % 2 == 1 and tok == " the"))
    text = TokenExplainer().explain(feature, contexts).text
    assert text.startswith('fires on "the"; in text about ')
    named = text.split("in text about ")[1].split(", ")
    assert len(named) == 3 and set(named) <= {"ocean", "waves", "hit", "shore"}
    assert "city" not in text


def test_token_explainer_is_an_explainer():
    assert isinstance(TokenExplainer(), Explainer)


# --- prompt and answers -----------------------------------------------------------------------


def test_explainer_messages_show_only_explain_contexts(evidence):
    feature, contexts = corrupted(evidence, "toy:weather")
    messages = explainer_messages(feature, contexts)
    assert [m["role"] for m in messages] == ["system", "user"]
    assert SECRET not in json.dumps(messages) and "«" in messages[1]["content"]
    _, shown = prompt_evidence(feature, contexts)
    assert shown and not set(shown) & held_out_ids(evidence)


def test_fit_explanation_text_cuts_at_a_sentence_end():
    long = "Fires on weather words. " * 30
    cut = fit_explanation_text(long)
    assert len(cut) <= MAX_EXPLANATION_CHARS and cut.endswith("words.")
    assert fit_explanation_text("  short   text ") == "short text"
    unbroken = fit_explanation_text("word " * 200)
    assert len(unbroken) <= MAX_EXPLANATION_CHARS and unbroken.endswith("…")


def test_clean_answer_keeps_the_label_and_drops_the_wrapping():
    assert clean_answer('Explanation: "weather words like «rain»"\nand more') == "weather words like rain"
    assert clean_answer("\n\n- **the word rain**  ") == "the word rain"
    assert clean_answer("   ") == ""
    echoed = 'fires on "250" as in "counted «250»(0.8) and «12»(0.'
    assert clean_answer(echoed) == 'fires on "250" as in "counted 250 and 12'



def test_is_degenerate_flags_empty_and_repeated_answers():
    assert is_degenerate("") and is_degenerate("..") and is_degenerate("rain rain rain rain rain rain")
    assert not is_degenerate("weather words such as rain and snow")


# --- model and chat explainers ------------------------------------------------------------------


class FakeEndpoint:
    """An OpenAI-compatible endpoint stand-in: records the messages, answers what it is told."""

    model = "fake-chat-1"

    def __init__(self, answer: str) -> None:
        self.answer = answer
        self.calls: list[list[dict[str, str]]] = []

    def complete(self, messages: list[dict[str, str]], *, max_tokens: int = 200, temperature: float = 0.0) -> str:
        self.calls.append(messages)
        return self.answer


def test_chat_explainer_sends_the_shared_prompt_and_keeps_the_answer(evidence):
    endpoint = FakeEndpoint("  Weather words such as rain and snow.  ")
    explanation = ChatExplainer(endpoint).explain(evidence.feature("toy:weather"), evidence.contexts)
    assert explanation.text == "Weather words such as rain and snow."
    assert (explanation.author.kind, explanation.author.name) == ("chat", "fake-chat-1")
    assert endpoint.calls == [explainer_messages(evidence.feature("toy:weather"), evidence.contexts)]
    assert explanation.shown_contexts and not set(explanation.shown_contexts) & held_out_ids(evidence)


def test_chat_explainer_cuts_a_long_answer_at_a_sentence_end(evidence):
    endpoint = FakeEndpoint("It fires on weather words.\n" + "This goes on and on. " * 40)
    text = ChatExplainer(endpoint).explain(evidence.feature("toy:weather"), evidence.contexts).text
    assert len(text) <= MAX_EXPLANATION_CHARS and text.startswith("It fires on weather words.")
    assert text.endswith(".")


def test_chat_explainer_raises_when_the_endpoint_answers_nothing(evidence):
    with pytest.raises(RemoteServiceError, match="answered nothing"):
        ChatExplainer(FakeEndpoint(" \n ")).explain(evidence.feature("toy:weather"), evidence.contexts)


def test_chat_explainer_does_not_call_the_endpoint_for_a_dead_feature(evidence):
    endpoint = FakeEndpoint("anything")
    explanation = ChatExplainer(endpoint).explain(evidence.feature("toy:dead"), evidence.contexts)
    assert endpoint.calls == [] and explanation.text == NEVER_FIRES


class ScriptedModel(ModelExplainer):
    """ModelExplainer with generation replaced by a fixed answer (no model is loaded)."""

    answer: str = ""

    def generate(self, messages: list[dict[str, str]]) -> str:
        return self.answer


def test_model_explainer_keeps_a_clean_first_line(evidence):
    explainer = ScriptedModel()
    explainer.answer = "Label: weather words\nlike rain"
    explanation = explainer.explain(evidence.feature("toy:weather"), evidence.contexts)
    assert explanation.text == "weather words"
    assert (explanation.author.kind, explanation.author.name, explanation.author.note) == (
        "local_model", "smollm2-135m", MODEL_NOTE)


def test_model_explainer_falls_back_to_the_token_phrase_and_says_so(evidence):
    explainer = ScriptedModel()
    explainer.answer = "the the the the the the the"
    explanation = explainer.explain(evidence.feature("toy:weather"), evidence.contexts)
    token = TokenExplainer().explain(evidence.feature("toy:weather"), evidence.contexts)
    assert explanation.text == token.text and explanation.author.kind == "local_model"
    assert "degenerate" in explanation.author.note and "token-frequency v2" in explanation.author.note
    assert not set(explanation.shown_contexts) & held_out_ids(evidence)


@pytest.mark.slow
def test_the_embedded_model_explains_the_weather_feature(evidence):
    explainer = ModelExplainer()
    explanation = explainer.explain(evidence.feature("toy:weather"), evidence.contexts)
    assert explanation.text and "\n" not in explanation.text and len(explanation.text) <= MAX_EXPLANATION_CHARS
    assert (explanation.author.kind, explanation.author.name) == ("local_model", "smollm2-135m")
    assert explanation.author.note.startswith(MODEL_NOTE)
    assert explanation.shown_contexts and not set(explanation.shown_contexts) & held_out_ids(evidence)


def test_chat_explainer_accepts_the_real_chat_endpoint(evidence, monkeypatch):
    from interp_agent.core.explain.chat import ChatEndpoint

    endpoint = ChatEndpoint("http://127.0.0.1:9", None, "served-model")
    monkeypatch.setattr(ChatEndpoint, "complete", lambda self, messages, **kw: "weather words")
    explanation = ChatExplainer(endpoint).explain(evidence.feature("toy:weather"), evidence.contexts)
    assert (explanation.text, explanation.author.name) == ("weather words", "served-model")
