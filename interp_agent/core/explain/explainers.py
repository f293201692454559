"""Explainers: what writes an explanation from a feature's explain-split evidence.

Every explainer sees only the ``explain`` split of an evidence set (never a ``held_out``
example: those are what its explanation is scored on) and records the contexts it was
shown in :attr:`Explanation.shown_contexts`.

- :func:`evidence_view`: the compact, JSON-able evidence an agent (or a prompt) reads, with
  the firing tokens of each context marked ``«token»(0.8)`` (activation over the feature's
  maximum).
- :class:`TokenExplainer` (``local_tokens``): no model; the firing tokens by summed activation
  and the context words over-represented in firing contexts (smoothed log-odds against the
  explain-split non-firing contexts), as a phrase.
- :class:`ModelExplainer` (``local_model``): the embedded 135M instruct model prompted with
  :func:`explainer_messages`, greedy; a weak explainer, falling back to the token phrase.
- :class:`ChatExplainer` (``chat``): the same prompt through an OpenAI-compatible endpoint.
"""

from __future__ import annotations

import math
import re
import unicodedata
from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any, Protocol, runtime_checkable

import numpy as np

from interp_agent.core.errors import RemoteServiceError
from interp_agent.core.explain.evidence import Contexts, Example, FeatureEvidence
from interp_agent.core.explain.explanations import (
    MAX_EXPLANATION_CHARS,
    Author,
    Explanation,
    check_explanation_text,
)

if TYPE_CHECKING:
    from interp_agent.core.models.loading import LoadedModel

MARK_OPEN, MARK_CLOSE = "«", "»"
MARKING = ("«token»(a) marks a token where the feature fires; a is its activation divided by the feature's "
           "largest activation (1.0 = the strongest seen)")
"""What the marks in :func:`evidence_view` texts mean (the view carries it as ``marking``)."""
TOKEN_EXPLAINER_NAME = "token-frequency v2"
MODEL_NOTE = "a 135M instruct model: a weak explainer"
NEVER_FIRES = "never fires on the corpus"
STOP_WORDS = frozenset(
    "a an the and or but if of to in on at by for with from as is are was were be been it its this that these those "
    "he she they we you i me my our your his her their them us not no so than then there here what which who "
    "about into over after before all also can could would should will just".split())
"""Words never given as context words: frequent everywhere, they only name the template of a sample."""
_WHITESPACE_NAMES = (("\n", "newline"), ("\t", "tab"), ("\r", "carriage return"))
_ANSWER_PREFIX = re.compile(r"^(?:explanation|answer|label|feature|description)\s*[:\-]\s*", re.IGNORECASE)
_ECHOED_MARK = re.compile(r"«([^»]*)»(?:\(\d*(?:\.\d*)?\)?)?")
"""A mark echoed back from the prompt, with its relative activation (possibly cut off): ``«rain»(0.8)``."""
_SENTENCE_END = re.compile(r"[.!?](?=\s)")


# --- the compact view -----------------------------------------------------------------------


def explain_examples(feature: FeatureEvidence, contexts: Contexts, role: str | tuple[str, ...]) -> list[Example]:
    """The feature's ``explain``-split examples of ``role``, re-checked against the contexts' own split flags."""
    roles = (role,) if isinstance(role, str) else role
    return [e for e in feature.examples
            if e.role in roles and e.split == "explain" and not bool(contexts.held_out[e.context])]


def _show_token(token: str) -> str:
    return token.replace("\n", "↵").replace("\t", "⇥").replace("\r", "")


def render_example(example: Example, contexts: Contexts, *, threshold: float, scale: float,
                   window: int | None = None) -> str:
    """One context as text with its firing tokens marked ``«token»(a)``; ``window`` tokens each side of the peak."""
    tokens = contexts.tokens[example.context]
    acts = example.acts if example.acts is not None else np.zeros(len(tokens), dtype=np.float32)
    lo, hi = 0, len(tokens)
    if window is not None:
        peak = int(np.argmax(acts)) if len(acts) else 0
        lo, hi = max(0, peak - window), min(len(tokens), peak + window + 1)
    parts = ["…"] if lo > 0 else []
    for t in range(lo, hi):
        token = _show_token(tokens[t])
        if float(acts[t]) > threshold:
            core = token.strip() or "␣"
            lead = token[: len(token) - len(token.lstrip())]
            parts.append(f"{lead}{MARK_OPEN}{core}{MARK_CLOSE}({float(acts[t]) / scale:.1f})")
        else:
            parts.append(token)
    if hi < len(tokens):
        parts.append("…")
    return "".join(parts)


def _scale(feature: FeatureEvidence, examples: Sequence[Example]) -> float:
    if feature.max_activation > 0:
        return float(feature.max_activation)
    peaks = [abs(e.max_activation) for e in examples if e.max_activation]
    return max(peaks, default=1.0) or 1.0


def _spread(items: list[Example], k: int) -> list[Example]:
    """``k`` items evenly spread over ``items`` (all of them when there are no more than ``k``)."""
    if len(items) <= k:
        return items
    if k <= 0:
        return []
    return [items[i] for i in np.unique(np.linspace(0, len(items) - 1, k).round().astype(int))]


def evidence_view(feature: FeatureEvidence, contexts: Contexts, *, max_top: int = 8, max_quantile: int = 8,
                  max_random: int = 0, window: int | None = None) -> dict[str, Any]:
    """The compact evidence an explainer reads: statistics and marked explain-split examples, JSON-able.

    Held-out examples are only counted (``held_out_examples``), never rendered.

    Args:
        feature: the feature's evidence.
        contexts: the evidence set's contexts.
        max_top: top examples shown (the strongest first).
        max_quantile: quantile examples shown, spread evenly from the lowest bin to the highest.
        max_random: non-firing (random) examples shown, plain text.
        window: when given, each text is cut to ``window`` tokens each side of its strongest token.

    Returns:
        ``feature_id``, ``kind``, ``density``, ``max_activation``, ``mean_activation``,
        ``active_threshold``, ``n_active_contexts``, ``marking``, ``top`` and ``quantile``
        (``context``, ``max_activation``, ``text``; ``quantile`` bin for the latter), ``random``,
        ``promoted`` and ``suppressed`` (first 10 ``[token, logit change]``),
        ``held_out_examples`` (counts by role) and ``shown_contexts``.
    """
    top = explain_examples(feature, contexts, "top")[:max_top]
    quantile = _spread(explain_examples(feature, contexts, "quantile"), max_quantile)
    random = _spread(explain_examples(feature, contexts, "random"), max_random)
    scale = _scale(feature, top + quantile)

    def row(e: Example) -> dict[str, Any]:
        text = render_example(e, contexts, threshold=feature.active_threshold, scale=scale, window=window)
        out: dict[str, Any] = {"context": e.context, "max_activation": round(float(e.max_activation), 4)}
        if e.quantile is not None:
            out["quantile"] = e.quantile
        return out | {"text": text}

    held = Counter(e.role for e in feature.examples if e.split == "held_out" or bool(contexts.held_out[e.context]))
    shown = [e.context for e in top + quantile + random]
    return {
        "feature_id": feature.feature_id, "kind": feature.kind, "density": float(feature.density),
        "max_activation": float(feature.max_activation), "mean_activation": float(feature.mean_activation),
        "active_threshold": float(feature.active_threshold), "n_active_contexts": int(feature.n_active_contexts),
        "marking": MARKING,
        "top": [row(e) for e in top], "quantile": [row(e) for e in quantile],
        "random": [{"context": e.context, "text": render_example(e, contexts, threshold=math.inf, scale=scale,
                                                                  window=window)} for e in random],
        "promoted": [[t, round(float(v), 4)] for t, v in feature.promoted[:10]],
        "suppressed": [[t, round(float(v), 4)] for t, v in feature.suppressed[:10]],
        "held_out_examples": {role: held.get(role, 0) for role in ("top", "quantile", "random")},
        "shown_contexts": list(dict.fromkeys(shown)),
    }


# --- the protocol ---------------------------------------------------------------------------


@runtime_checkable
class Explainer(Protocol):
    """Writes one explanation of a feature from its explain-split evidence."""

    @property
    def name(self) -> str:
        """Who writes (the :attr:`Author.name` of its explanations)."""
        ...

    def explain(self, feature: FeatureEvidence, contexts: Contexts) -> Explanation:
        """An explanation of ``feature``, its author set, ``shown_contexts`` the explain contexts it used."""
        ...


# --- token frequency ------------------------------------------------------------------------


def normalise_token(token: str) -> str:
    """A token as a vocabulary key: stripped and lower-cased; whitespace-only tokens become their name."""
    key = token.strip().lower()
    if key:
        return key
    for char, name in _WHITESPACE_NAMES:
        if char in token:
            return name
    return "space" if token else ""


def is_word(key: str) -> bool:
    """True when a normalised token has a letter or digit (not punctuation or whitespace)."""
    return any(unicodedata.category(c)[0] in "LN" for c in key) and key not in ("newline", "tab", "space",
                                                                              "carriage return")


def _quoted(key: str) -> str:
    return key if key in ("newline", "tab", "space", "carriage return") else f'"{key}"'


def firing_token_weights(feature: FeatureEvidence, contexts: Contexts) -> dict[str, float]:
    """Summed activation above the threshold of each normalised token where the feature fires (explain split)."""
    weights: dict[str, float] = {}
    for e in explain_examples(feature, contexts, ("top", "quantile")):
        if e.acts is None:
            continue
        tokens = contexts.tokens[e.context]
        for t in np.flatnonzero(e.acts > feature.active_threshold):
            key = normalise_token(tokens[int(t)])
            if key:
                weights[key] = weights.get(key, 0.0) + float(e.acts[t]) - feature.active_threshold
    return weights


def token_specificity(feature: FeatureEvidence, contexts: Contexts) -> dict[str, float]:
    """Of each normalised token's occurrences in the explain examples (firing and non-firing contexts, first
    position left out), the fraction where the feature fires: low for words that are everywhere ("the", "a")."""
    seen: Counter[str] = Counter()
    fired: Counter[str] = Counter()
    for e in explain_examples(feature, contexts, ("top", "quantile", "random")):
        for t, token in enumerate(contexts.tokens[e.context][1:], 1):
            key = normalise_token(token)
            seen[key] += 1
            if e.acts is not None and e.acts[t] > feature.active_threshold:
                fired[key] += 1
    return {k: fired[k] / n for k, n in seen.items() if n}


def top_firing_tokens(weights: dict[str, float], k: int) -> tuple[list[str], int]:
    """The ``k`` heaviest word tokens (all tokens when none is a word), and how many others fired."""
    words = {t: w for t, w in weights.items() if is_word(t)} or dict(weights)
    ranked = sorted(words, key=lambda t: (-words[t], t))
    return ranked[:k], max(len(ranked) - k, 0)


@dataclass(frozen=True, slots=True)
class TokenExplainer:
    """Explains from token statistics alone: no model, deterministic, offline."""

    max_tokens: int = 5
    """Firing tokens named."""
    max_context_words: int = 3
    """Context words named."""
    min_log_odds: float = 1.0
    """Smallest smoothed log-odds ratio (appearing in firing vs non-firing explain contexts) of a context word."""
    min_z: float = 3.0
    """Smallest log-odds z-score of a context word: with ~30 contexts a side, weaker contrasts are mostly chance."""
    min_context_share: float = 0.25
    """Smallest fraction of firing contexts a context word must appear in."""
    smoothing: float = 1.0
    """Pseudo-count added to each cell of the log-odds."""

    @property
    def name(self) -> str:
        """``token-frequency v2``."""
        return TOKEN_EXPLAINER_NAME

    def explain(self, feature: FeatureEvidence, contexts: Contexts) -> Explanation:
        """A phrase: the firing tokens by summed activation times specificity (the share of the token's
        occurrences in explain examples where the feature fires, so "the" and "a" sink), then over-represented
        context words."""
        active = explain_examples(feature, contexts, ("top", "quantile"))
        quiet = explain_examples(feature, contexts, "random")
        shown = tuple(sorted({e.context for e in active + quiet}))
        author = Author("local_tokens", self.name)
        if not active:
            text = NEVER_FIRES if feature.n_active_contexts == 0 else (
                "fires too rarely to explain: no firing contexts in the explain split")
            return Explanation(feature.feature_id, text, author, shown)
        weights = firing_token_weights(feature, contexts)
        specific = token_specificity(feature, contexts)
        ranked = {t: w * specific.get(t, 1.0) for t, w in weights.items()}
        tokens, _ = top_firing_tokens(ranked, self.max_tokens)
        text = "fires on " + ", ".join(_quoted(t) for t in tokens)
        words = self.context_words(feature, contexts, active, quiet, exclude=set(weights))
        if words:
            text += "; in text about " + ", ".join(words)
        return Explanation(feature.feature_id, check_explanation_text(fit_explanation_text(text)), author, shown)

    def context_words(self, feature: FeatureEvidence, contexts: Contexts, active: Sequence[Example],
                      quiet: Sequence[Example], *, exclude: set[str]) -> list[str]:
        """Words in more firing than non-firing contexts, best first.

        A word counts once per context, at positions where the feature does not fire; it is kept
        when its smoothed log-odds of appearing (firing vs non-firing explain contexts) and that
        ratio's z-score clear ``min_log_odds`` and ``min_z``, and it appears in at least
        ``min_context_share`` of the firing contexts. Stop words and the firing tokens are left out.
        """
        if not quiet:
            return []

        def words_of(e: Example, skip_firing: bool) -> set[str]:
            keys = set()
            for t, token in enumerate(contexts.tokens[e.context]):
                if t == 0 or (skip_firing and e.acts is not None and e.acts[t] > feature.active_threshold):
                    continue
                key = normalise_token(token)
                if is_word(key) and key not in exclude and key not in STOP_WORDS:
                    keys.add(key)
            return keys

        n_a, n_q, s = len(active), len(quiet), self.smoothing
        in_active = Counter(w for e in active for w in words_of(e, True))
        in_quiet = Counter(w for e in quiet for w in words_of(e, False))
        scores: dict[str, float] = {}
        for w, a in in_active.items():
            b = in_quiet.get(w, 0)
            cells = (a + s, n_a - a + s, b + s, n_q - b + s)
            log_odds = math.log(cells[0] / cells[1]) - math.log(cells[2] / cells[3])
            z = log_odds / math.sqrt(sum(1.0 / c for c in cells))
            if log_odds >= self.min_log_odds and z >= self.min_z and a / n_a >= self.min_context_share:
                scores[w] = z
        return sorted(scores, key=lambda w: (-scores[w], w))[: self.max_context_words]


# --- prompts and model answers ----------------------------------------------------------------

SYSTEM_PROMPT = (
    "You label features of a language model. A feature is a unit inside the model that activates on some tokens. "
    "You are shown text excerpts where it activates: " + MARKING + ". Reply with one short phrase (under 15 words) "
    "saying what the feature fires on, e.g. 'the word \"rain\" and other weather words'. No preamble, no reasoning."
)


def prompt_evidence(feature: FeatureEvidence, contexts: Contexts, *, n_top: int = 6, n_quantile: int = 4,
                    window: int = 10) -> tuple[list[dict[str, str]], tuple[int, ...]]:
    """The explainer prompt (system + user messages) and the explain contexts it shows."""
    view = evidence_view(feature, contexts, max_top=n_top, max_quantile=n_quantile, window=window)
    lines = [f"{i}. {ex['text'].strip()}" for i, ex in enumerate(view["top"] + view["quantile"], 1)]
    tokens, _ = top_firing_tokens(firing_token_weights(feature, contexts), 8)
    user = ["Excerpts where the feature fires (strongest first, then weaker ones):", *lines]
    if tokens:
        user.append("Tokens it fires on most: " + ", ".join(_quoted(t) for t in tokens))
    if view["promoted"]:
        user.append("Tokens it makes more likely next: " + ", ".join(f'"{t.strip()}"' for t, _ in view["promoted"][:8]))
    user.append("What does the feature fire on? Answer with one short phrase.")
    messages = [{"role": "system", "content": SYSTEM_PROMPT}, {"role": "user", "content": "\n".join(user)}]
    return messages, tuple(view["shown_contexts"])


def explainer_messages(feature: FeatureEvidence, contexts: Contexts) -> list[dict[str, str]]:
    """The chat messages (system, user) that :class:`ModelExplainer` and :class:`ChatExplainer` send."""
    return prompt_evidence(feature, contexts)[0]


def fit_explanation_text(text: str, limit: int = MAX_EXPLANATION_CHARS) -> str:
    """``text`` with whitespace collapsed, cut to ``limit`` characters at a sentence end (else a word, with …)."""
    text = " ".join(text.split())
    if len(text) <= limit:
        return text
    head = text[: limit + 1]
    ends = [m.end() for m in _SENTENCE_END.finditer(head)]
    if ends and ends[-1] >= limit // 4:
        return head[: ends[-1]].strip()
    cut = head[:limit - 1].rsplit(" ", 1)[0] if " " in head[:limit - 1] else head[:limit - 1]
    return cut.rstrip(" ,;:") + "…"


def clean_answer(text: str, *, one_line: bool = True) -> str:
    """A model's answer as a label: the first non-empty line (``one_line``), prefixes, quotes and marks removed."""
    lines = [ln.strip() for ln in text.replace("\r", "").split("\n") if ln.strip()]
    if not lines:
        return ""
    out = lines[0] if one_line else " ".join(lines)
    out = _ANSWER_PREFIX.sub("", out.lstrip("-*#>• ").strip())
    out = _ECHOED_MARK.sub(r"\1", out).replace(MARK_OPEN, "").replace(MARK_CLOSE, "").strip().strip("*_`").strip()
    if len(out) >= 2 and out[0] == out[-1] and out[0] in "\"'":
        out = out[1:-1].strip()
    return " ".join(out.split())


def is_degenerate(text: str) -> bool:
    """True for an answer that says nothing: under three letters, or one word repeated over and over."""
    if sum(c.isalpha() for c in text) < 3:
        return True
    words = re.findall(r"\w+", text.lower())
    return len(words) >= 6 and len(set(words)) <= len(words) // 3


# --- model explainers -----------------------------------------------------------------------


@dataclass
class ModelExplainer:
    """The embedded instruct model (SmolLM2-135M-Instruct) prompted with the evidence, greedy decoding.

    The model is loaded on the first :meth:`explain` unless given. An empty or degenerate
    answer is replaced by the :class:`TokenExplainer` phrase, and the author note says so.
    """

    loaded: LoadedModel | None = None
    """The model to prompt; None loads ``model_name`` on first use."""
    model_name: str = "smollm2-135m"
    """What to load when ``loaded`` is None."""
    max_new_tokens: int = 24
    """Longest answer, in tokens."""
    fallback: TokenExplainer = field(default_factory=TokenExplainer)
    """Explains dead features and replaces degenerate answers."""

    @property
    def name(self) -> str:
        """The loaded model's name (``model_name`` before it is loaded)."""
        return self.loaded.name if self.loaded is not None else self.model_name

    def _model(self) -> LoadedModel:
        if self.loaded is None:
            from interp_agent.core.models.loading import load_model

            self.loaded = load_model(self.model_name)
        return self.loaded

    def generate(self, messages: list[dict[str, str]]) -> str:
        """The model's greedy answer to ``messages`` (chat template applied), new tokens only."""
        import torch

        loaded = self._model()
        tok = loaded.tokenizer
        model: Any = loaded.model  # a Hugging Face causal LM: nn.Module does not declare generate
        prompt = tok.apply_chat_template(messages, add_generation_prompt=True, tokenize=False)
        ids = tok(prompt, return_tensors="pt", add_special_tokens=False)["input_ids"].to(loaded.device)
        with torch.inference_mode():
            out = model.generate(ids, attention_mask=torch.ones_like(ids), do_sample=False,
                                 max_new_tokens=self.max_new_tokens, pad_token_id=tok.pad_token_id)
        return str(tok.decode(out[0, ids.shape[1]:], skip_special_tokens=True))

    def explain(self, feature: FeatureEvidence, contexts: Contexts) -> Explanation:
        """Prompt the model with the evidence; the token phrase when it fires nowhere in the explain split."""
        if not explain_examples(feature, contexts, ("top", "quantile")):
            return self.fallback.explain(feature, contexts)
        messages, shown = prompt_evidence(feature, contexts)
        text = fit_explanation_text(clean_answer(self.generate(messages)))
        if not is_degenerate(text):
            return Explanation(feature.feature_id, check_explanation_text(text),
                               Author("local_model", self.name, MODEL_NOTE), shown)
        backup = self.fallback.explain(feature, contexts)
        note = f"{MODEL_NOTE}; its answer was empty or degenerate, so this is the {TOKEN_EXPLAINER_NAME} phrase"
        return Explanation(feature.feature_id, backup.text, Author("local_model", self.name, note),
                           tuple(sorted(set(shown) | set(backup.shown_contexts))))


class ChatCompleter(Protocol):
    """What :class:`ChatExplainer` needs of an endpoint (``interp_agent.core.explain.chat.ChatEndpoint``)."""

    @property
    def model(self) -> str:
        """The endpoint's model id."""
        ...

    def complete(self, messages: list[dict[str, str]], *, max_tokens: int = 200, temperature: float = 0.0) -> str:
        """The assistant's reply; RemoteServiceError on failure."""
        ...


@dataclass
class ChatExplainer:
    """An OpenAI-compatible chat endpoint prompted with :func:`explainer_messages`."""

    endpoint: ChatCompleter | None = None
    """The endpoint; None makes ``ChatEndpoint.from_env()`` on first use."""
    max_tokens: int = 120
    """Longest answer, in tokens."""
    fallback: TokenExplainer = field(default_factory=TokenExplainer)
    """Explains features that fire nowhere in the explain split (no call is made for them)."""

    def _endpoint(self) -> ChatCompleter:
        endpoint = self.endpoint
        if endpoint is None:
            from interp_agent.core.explain.chat import ChatEndpoint  # only needed without an endpoint

            endpoint = self.endpoint = ChatEndpoint.from_env()
        return endpoint

    @property
    def name(self) -> str:
        """The endpoint's model id."""
        return self._endpoint().model

    def explain(self, feature: FeatureEvidence, contexts: Contexts) -> Explanation:
        """Ask the endpoint; a long answer is cut at a sentence end to the size limit.

        Raises:
            RemoteServiceError: the endpoint failed, or answered nothing usable.
        """
        if not explain_examples(feature, contexts, ("top", "quantile")):
            return self.fallback.explain(feature, contexts)
        endpoint = self._endpoint()
        messages, shown = prompt_evidence(feature, contexts)
        answer = endpoint.complete(messages, max_tokens=self.max_tokens, temperature=0.0)
        text = fit_explanation_text(clean_answer(answer if isinstance(answer, str) else "", one_line=False))
        if not text:
            raise RemoteServiceError(
                f"the chat endpoint ({endpoint.model}) answered nothing for feature {feature.feature_id}",
                hint="check the endpoint's model and limits, or use the local token explainer")
        return Explanation(feature.feature_id, check_explanation_text(text), Author("chat", endpoint.model), shown)
