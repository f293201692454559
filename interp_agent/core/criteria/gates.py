"""Quality gates of an authored criterion set: what must hold before its prompts serve as evidence.

Each gate measures one number on the set, compares it with a threshold and names the prompts
that make it fail (index, prompt id and, for a file, its line). The thresholds were chosen
before looking at which packs pass, from the reasoning given beside each constant, and
checked against the built-in packs (``docs/criteria.md`` lists the measured numbers):

- ``exact_duplicates``: texts equal after case and whitespace folding; none allowed.
- ``near_duplicates``: two prompts *of the same class* whose all-MiniLM-L6-v2 cosine is at least
  :data:`NEAR_DUPLICATE_COSINE`. Pairs across classes are not counted: the packs are built of
  minimal pairs (a complaint and a praise of the same thing reach cosine 0.96) and that is the
  design, not a flaw. Within a class a near-copy counts the same evidence twice and, when the
  split puts the copies on both sides, leaks it into the held-out part.
- ``class_balance``: each class at least :data:`MIN_CLASS_SHARE` of the set and at least
  :data:`MIN_PER_CLASS` prompts.
- ``length_confound``: AUROC of length alone (whitespace words, and the model's tokens when a
  tokenizer is given) predicting the label, oriented to >= 0.5. Fails above
  0.5 + max(:data:`LENGTH_AUROC_MARGIN`, 2.58 x its null standard error).
- ``lexical_confound``: a bag-of-words logistic classifier, cross-validated, says how well words
  alone separate the classes (reported). Words separating well is not itself a flaw ("French
  text" *is* a matter of words), so the gate fails on *unexplained carriers*: a token (a word, or
  the first / last word of a text) whose presence alone reaches balanced accuracy
  :data:`CARRIER_BALANCED_ACCURACY` and that is neither a word of the criterion, nor in
  ``expected_words``, nor a function word (:data:`FUNCTION_WORDS`) short of :data:`FIXED_SHARE` of its
  class, nor related to the criterion
  by the sentence encoder (cosine >= :data:`RELATED_COSINE`). Such a token is what a template
  leaves behind ("every positive ends with 'indeed'"), and a feature that tracks it would rank
  as the criterion.
- ``held_out_agreement``: a MiniLM text classifier fitted on the calibration split agrees with
  the labels of the held-out split at accuracy >= :data:`MIN_AGREEMENT` (the split is ranking's
  hash split, so the same prompts are held out here as in ``inspect``).
"""

from __future__ import annotations

import math
import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from typing import Any, Literal

import numpy as np

from interp_agent.core.criteria.packs import binary_labels, normalise_text
from interp_agent.core.criteria.scorers import auroc, cv_folds, fit_logistic
from interp_agent.core.formats.prompts import ScoredPrompt
from interp_agent.core.matching.text import Encoder

GateName = Literal[
    "exact_duplicates", "near_duplicates", "class_balance", "length_confound", "lexical_confound",
    "held_out_agreement",
]
GATE_NAMES: tuple[GateName, ...] = (
    "exact_duplicates", "near_duplicates", "class_balance", "length_confound", "lexical_confound",
    "held_out_agreement",
)

NEAR_DUPLICATE_COSINE = 0.9
"""Same-class pairs at or above this all-MiniLM-L6-v2 cosine are near-duplicates. Within a class the built-in
packs reach at most 0.72; a sentence with one word swapped for a synonym sits above 0.9."""
MIN_CLASS_SHARE = 0.4
"""Smallest share of the set either class may have (the packs' own bar, ``packs.MIN_CLASS_SHARE``)."""
MIN_PER_CLASS = 20
"""Fewest prompts of a class: the 30 % held-out split then holds about 6 of each, the least that a held-out
accuracy can be read from. :data:`~interp_agent.core.ranking.heldout.RECOMMENDED_PROMPTS_PER_CLASS` is the advice."""
LENGTH_AUROC_MARGIN = 0.15
"""Length AUROC may exceed 0.5 by at most this much (or by 2.58 null standard errors when that is larger, so a
small set is not failed by chance): beyond it length alone sorts two prompts in two of three pairs."""
CARRIER_BALANCED_ACCURACY = 0.85
"""A token whose presence alone reaches this balanced accuracy carries the classes (it is in at least 70 points
more of one class than of the other). The largest in the built-in packs: 'the' in French (0.875, a function word
of the negatives), every other token at most 0.74."""
RELATED_COSINE = 0.3
"""A token whose all-MiniLM-L6-v2 cosine with the criterion reaches this is related to it. Measured: 'le' 0.39 and
'est' 0.36 with the French criterion, 'meters' 0.51 with the measurement one; unrelated words ('banana', 'indeed',
'okay', 'Tuesday') 0.19 or less with every built-in criterion."""
FIXED_SHARE = 0.95
"""A token in at least this share of one class is a fixed word of how that class was written (a template's, or a
habit's); a function word is then no excuse. Grammar words of a language cover far less ('the': 75 % of the French
pack's English negatives)."""
MIN_AGREEMENT = 0.8
"""Held-out accuracy a MiniLM classifier fitted on the calibration split must reach: below it the labels are
noisy or the criterion is not visible in the text to a simple reader."""
BOW_L2 = 1.0
"""Ridge penalty of the bag-of-words classifier."""
MAX_QUOTED = 5
"""Offending prompts quoted in an error message."""
FUNCTION_WORDS = frozenset(
    "a an the and or but if of to in on at by for with from as is are was were be been being it its this that "
    "these those there here he she they we you i me my your his her our their them us not no do does did has have "
    "had will would can could should may might must so than then too very just also".split()
)
"""Grammar words of English: in any text, their presence or absence marks language or register (prose vs code,
English vs French), which is what such criteria are about, never a topic a template smuggled in."""

_TOKEN = re.compile(r"\w+", re.UNICODE)


@dataclass(frozen=True, slots=True)
class Offender:
    """A prompt that makes a gate fail."""

    index: int
    """Position in the set, from 0."""
    prompt_id: str
    """Its id."""
    text: str
    """Its text (cut to 120 characters)."""
    why: str
    """What is wrong with it."""
    line: int | None = None
    """Line in the file it came from (1-based), when it came from a file."""

    def describe(self) -> str:
        """``line 12 (pos-3) 'text…': why``."""
        where = f"line {self.line}" if self.line is not None else f"#{self.index}"
        return f"{where} ({self.prompt_id}) {self.text[:60]!r}: {self.why}"


@dataclass(frozen=True, slots=True)
class GateResult:
    """One gate's verdict on a set."""

    gate: GateName
    """Which gate."""
    passed: bool
    """Whether the set passes it."""
    value: float
    """The measured number (see ``rule``)."""
    threshold: float
    """The threshold it is compared with."""
    rule: str
    """How value and threshold decide, e.g. ``value <= threshold``."""
    detail: str
    """One line: what was measured and, on failure, what to do."""
    offenders: tuple[Offender, ...] = ()
    """Prompts that make it fail (empty when it passes)."""
    extra: dict[str, Any] = field(default_factory=dict)
    """Gate-specific numbers (per-class counts, carrier words, the bag-of-words accuracy, ...)."""

    def to_json(self) -> dict[str, Any]:
        """The result as a JSON object."""
        return {
            "gate": self.gate, "passed": self.passed, "value": _finite(self.value), "threshold": self.threshold,
            "rule": self.rule, "detail": self.detail, "extra": self.extra,
            "offenders": [{"index": o.index, "prompt_id": o.prompt_id, "line": o.line, "text": o.text, "why": o.why}
                          for o in self.offenders],
        }


def _finite(x: float) -> float | None:
    return float(x) if math.isfinite(x) else None


def _offender(prompts: Sequence[ScoredPrompt], i: int, why: str, lines: Sequence[int | None] | None) -> Offender:
    return Offender(i, prompts[i].prompt_id, prompts[i].text[:120], why, None if lines is None else lines[i])


def exact_duplicates_gate(prompts: Sequence[ScoredPrompt], lines: Sequence[int | None] | None = None) -> GateResult:
    """Texts repeated after normalising case and whitespace (a text may count once, for one class)."""
    first: dict[str, int] = {}
    bad: list[Offender] = []
    for i, p in enumerate(prompts):
        key = normalise_text(p.text)
        if key in first:
            j = first[key]
            bad.append(_offender(prompts, i, f"repeats {prompts[j].prompt_id}", lines))
        else:
            first[key] = i
    return GateResult("exact_duplicates", not bad, float(len(bad)), 0.0, "value <= threshold",
                      f"{len(bad)} repeated texts" + ("; remove the repeats" if bad else ""), tuple(bad))


def near_duplicates_gate(prompts: Sequence[ScoredPrompt], emb_ND: np.ndarray, lines: Sequence[int | None] | None = None,
                         threshold: float = NEAR_DUPLICATE_COSINE) -> GateResult:
    """Same-class pairs whose sentence-embedding cosine reaches ``threshold``; the later of each pair offends."""
    labels = binary_labels(prompts)
    sim_NN = emb_ND.astype(np.float64) @ emb_ND.astype(np.float64).T
    same = labels[:, None] == labels[None, :]
    sim_NN = np.where(same & np.tri(len(prompts), k=-1, dtype=bool), sim_NN, -1.0)  # earlier prompts only
    best_j = sim_NN.argmax(axis=1) if len(prompts) else np.zeros(0, dtype=int)
    best = sim_NN.max(axis=1) if len(prompts) else np.zeros(0)
    bad = [_offender(prompts, int(i), f"cosine {best[i]:.3f} with {prompts[int(best_j[i])].prompt_id} "
                     f"{prompts[int(best_j[i])].text[:40]!r}", lines)
           for i in np.flatnonzero(best >= threshold)]
    value = float(best.max()) if len(prompts) > 1 else 0.0
    return GateResult("near_duplicates", not bad, value, threshold, "max same-class cosine < threshold",
                      f"{len(bad)} near-duplicates within a class (largest same-class cosine {value:.3f})"
                      + ("; rewrite or drop them, each prompt should add new evidence" if bad else ""), tuple(bad))


def class_balance_gate(prompts: Sequence[ScoredPrompt], *, min_share: float = MIN_CLASS_SHARE,
                       min_per_class: int = MIN_PER_CLASS) -> GateResult:
    """Each class at least ``min_share`` of the prompts and at least ``min_per_class`` prompts."""
    labels = binary_labels(prompts)
    n_pos, n = int(labels.sum()), len(prompts)
    n_neg = n - n_pos
    share = min(n_pos, n_neg) / n if n else 0.0
    ok = share >= min_share and min(n_pos, n_neg) >= min_per_class
    detail = f"{n_pos} positive, {n_neg} negative (smaller class {share:.0%} of the set)"
    if not ok:
        short = "positive" if n_pos < n_neg else "negative"
        detail += f"; add {short} prompts: need >= {min_per_class} of each and each class >= {min_share:.0%}"
    return GateResult("class_balance", ok, share, min_share, f"smaller-class share >= threshold and each class >= "
                      f"{min_per_class}", detail, (), {"n_positive": n_pos, "n_negative": n_neg,
                                                      "min_per_class": min_per_class})


def _oriented_auroc(values: np.ndarray, labels: np.ndarray) -> float:
    a = auroc(values, labels)
    return max(a, 1.0 - a) if math.isfinite(a) else 0.5


def length_gate(prompts: Sequence[ScoredPrompt], lines: Sequence[int | None] | None = None, *,
                count_tokens: Callable[[str], int] | None = None,
                margin: float = LENGTH_AUROC_MARGIN) -> GateResult:
    """Whether length alone (words; model tokens when ``count_tokens`` is given) predicts the label.

    Character counts are reported, not gated: a model sees tokens, not characters.
    """
    labels = binary_labels(prompts)
    n_pos, n_neg = int(labels.sum()), int((~labels).sum())
    se0 = math.sqrt((n_pos + n_neg + 1) / (12 * n_pos * n_neg)) if n_pos and n_neg else 0.5
    limit = 0.5 + max(margin, 2.58 * se0)
    measures = {"words": np.asarray([len(p.text.split()) for p in prompts], dtype=np.float64)}
    if count_tokens is not None:
        measures["tokens"] = np.asarray([count_tokens(p.text) for p in prompts], dtype=np.float64)
    aurocs = {k: _oriented_auroc(v, labels) for k, v in measures.items()}
    chars = _oriented_auroc(np.asarray([len(p.text) for p in prompts], dtype=np.float64), labels)
    worst = max(aurocs, key=lambda k: aurocs[k])
    value = aurocs[worst]
    bad: list[Offender] = []
    if value > limit:
        v = measures[worst]
        longer = bool(v[labels].mean() > v[~labels].mean())  # the class that runs longer
        lo, hi = np.quantile(v, [0.25, 0.75])
        idx = np.flatnonzero((labels == longer) & (v >= hi) | (labels != longer) & (v <= lo))
        bad = [_offender(prompts, int(i), f"{int(v[i])} {worst}", lines) for i in idx]
    means = {k: {"positive": float(v[labels].mean()), "negative": float(v[~labels].mean())}
             for k, v in measures.items()} if n_pos and n_neg else {}
    detail = ", ".join(f"{k} AUROC {a:.3f}" for k, a in aurocs.items()) + f" (limit {limit:.3f})"
    if bad:
        detail += (f"; length in {worst} tells the classes apart: lengthen the shorter class's prompts "
                   "(or shorten the other) so the classes match in length")
    return GateResult("length_confound", not bad, value, round(limit, 4), "max length AUROC <= threshold", detail,
                      tuple(bad), {"auroc": aurocs, "chars_auroc": chars, "means": means, "null_se": se0})


def _tokens(text: str) -> set[str]:
    words = _TOKEN.findall(text.casefold())
    out = set(words)
    if words:
        out |= {f"{words[0]} (first word)", f"{words[-1]} (last word)"}
    return out


def _word_of(token: str) -> str:
    return token.split(" (", 1)[0]


def bag_of_words_accuracy(prompts: Sequence[ScoredPrompt], labels: np.ndarray, sets: Sequence[set[str]],
                          vocab: Sequence[str]) -> tuple[float, list[str]]:
    """Cross-validated accuracy of a logistic classifier on word presence, and its heaviest words."""
    col = {w: j for j, w in enumerate(vocab)}
    x_ND = np.zeros((len(prompts), len(vocab)))
    for i, s in enumerate(sets):
        x_ND[i, [col[w] for w in s]] = 1.0
    folds = cv_folds(prompts, labels)
    right = 0
    for k in range(int(folds.max()) + 1):
        tr, te = folds != k, folds == k
        w, b = fit_logistic(x_ND[tr], labels[tr], BOW_L2)
        right += int(((x_ND[te] @ w + b >= 0) == labels[te]).sum())
    w, _ = fit_logistic(x_ND, labels, BOW_L2)
    heavy = [str(vocab[int(j)]) for j in np.argsort(-np.abs(w))[:10]]
    return right / len(prompts), heavy


def _criterion_words(criterion: str, expected: Sequence[str]) -> set[str]:
    words = set(_TOKEN.findall(criterion.casefold())) - FUNCTION_WORDS
    return words | {w.casefold() for e in expected for w in _TOKEN.findall(e)}


def _explained(word: str, own: set[str], coverage: float) -> bool:
    """A word of the criterion (or expected; inflections allowed: shared first 5 letters), or a function word that
    is not a pattern's fixed word (in under :data:`FIXED_SHARE` of its class)."""
    if word in FUNCTION_WORDS and coverage < FIXED_SHARE:
        return True
    return any(word == w or (len(w) >= 5 and word[:5] == w[:5]) for w in own)


def lexical_gate(prompts: Sequence[ScoredPrompt], criterion: str, encoder: Encoder,
                 lines: Sequence[int | None] | None = None, *, expected_words: Sequence[str] = (),
                 min_balanced_accuracy: float = CARRIER_BALANCED_ACCURACY,
                 related_cosine: float = RELATED_COSINE) -> GateResult:
    """Tokens unrelated to the criterion that alone separate the classes (see the module docstring)."""
    labels = binary_labels(prompts)
    sets = [_tokens(p.text) for p in prompts]
    vocab = sorted(set().union(*sets))
    x_NV = np.zeros((len(prompts), len(vocab)), dtype=bool)
    col = {w: j for j, w in enumerate(vocab)}
    for i, s in enumerate(sets):
        x_NV[i, [col[w] for w in s]] = True
    gap_V = x_NV[labels].mean(axis=0) - x_NV[~labels].mean(axis=0)
    bal_V = 0.5 + np.abs(gap_V) / 2
    own = _criterion_words(criterion, expected_words)
    carriers = [int(j) for j in np.argsort(-bal_V) if bal_V[j] >= min_balanced_accuracy]
    cover_V = np.maximum(x_NV[labels].mean(axis=0), x_NV[~labels].mean(axis=0))
    unexplained = [j for j in carriers if not _explained(_word_of(vocab[j]), own, float(cover_V[j]))]
    cos: dict[str, float] = {}
    if unexplained:
        words = sorted({_word_of(vocab[j]) for j in unexplained})
        sims = encoder.encode(words) @ encoder.encode([criterion])[0]
        cos = {w: float(s) for w, s in zip(words, sims, strict=True)}
        unexplained = [j for j in unexplained if cos[_word_of(vocab[j])] < related_cosine]
    bow_acc, heavy = bag_of_words_accuracy(prompts, labels, sets, vocab)
    value = float(max((bal_V[j] for j in unexplained), default=float(bal_V.max()) if vocab else 0.5))
    bad: list[Offender] = []
    for j in unexplained:
        cls = "positive" if gap_V[j] > 0 else "negative"
        rows = np.flatnonzero(x_NV[:, j] & (labels == (gap_V[j] > 0)))
        bad += [_offender(prompts, int(i), f"has {vocab[j]!r}, in {x_NV[labels == (gap_V[j] > 0), j].mean():.0%} "
                          f"of {cls} and {x_NV[labels != (gap_V[j] > 0), j].mean():.0%} of the other class", lines)
                for i in rows]
    named = [vocab[j] for j in unexplained]
    detail = (f"bag-of-words held-out accuracy {bow_acc:.2f} (heaviest: {', '.join(heavy[:5])}); "
              f"{len(carriers)} tokens alone reach balanced accuracy {min_balanced_accuracy}")
    if named:
        detail += (f"; unrelated to the criterion: {', '.join(repr(w) for w in named[:8])}: a feature tracking them "
                   "would look like the criterion, so vary or remove them (or list them in expected_words if the "
                   "criterion is about them)")
    extra = {"bow_accuracy": bow_acc, "bow_heaviest": heavy, "carriers": [
        {"token": vocab[j], "balanced_accuracy": float(bal_V[j]), "class": "positive" if gap_V[j] > 0 else "negative",
         "explained": j not in unexplained, "cosine_with_criterion": cos.get(_word_of(vocab[j]))} for j in carriers]}
    return GateResult("lexical_confound", not named, value if named else float(bal_V.max()) if vocab else 0.5,
                      min_balanced_accuracy, "no unexplained token reaches threshold", detail, tuple(bad), extra)


def agreement_gate(prompts: Sequence[ScoredPrompt], encoder: Encoder, lines: Sequence[int | None] | None = None, *,
                   min_accuracy: float = MIN_AGREEMENT) -> GateResult:
    """A MiniLM classifier fitted on the calibration split agrees with the held-out labels (accuracy)."""
    from interp_agent.core.criteria.sets import CriterionSet, split
    from interp_agent.core.criteria.text_scorer import TextClassifierScorer
    from interp_agent.core.errors import EvidenceError

    try:
        calibration, held_out = split(CriterionSet("criterion", tuple(prompts), "examples"))
    except EvidenceError as exc:
        return GateResult("held_out_agreement", False, float("nan"), min_accuracy, "held-out accuracy >= threshold",
                          f"cannot measure: {exc.message}; add prompts of both classes")
    scorer = TextClassifierScorer(encoder=encoder)  # type: ignore[arg-type]  # any Encoder will do
    report = scorer.fit(calibration).evaluate(held_out)
    index = {p.prompt_id: i for i, p in enumerate(prompts)}
    assert scorer.threshold is not None
    proba = scorer._proba([p.text for p in held_out])  # the fitted probabilities, before any refusal
    wrong = [index[p.prompt_id] for p, s in zip(held_out, proba, strict=True)
             if (s >= scorer.threshold) != (p.criterion_score >= 0.5)]
    ok = report.accuracy >= min_accuracy
    bad = () if ok else tuple(_offender(prompts, i, f"held out, labelled {prompts[i].criterion_score:g}, the "
                                        "classifier disagrees", lines) for i in wrong)
    detail = (f"classifier fitted on {report.n_calibration} calibration prompts: held-out accuracy "
              f"{report.accuracy:.2f}, AUROC {report.auroc:.2f} on {report.n_held_out} prompts")
    if not ok:
        detail += "; check the labels of the prompts it gets wrong, or make the criterion plainer in the text"
    return GateResult("held_out_agreement", ok, report.accuracy, min_accuracy, "held-out accuracy >= threshold",
                      detail, bad, {"auroc": report.auroc, "n_calibration": report.n_calibration,
                                    "n_held_out": report.n_held_out, "n_wrong": len(wrong)})


class _Memo:
    """Embeds each distinct text once (the gates and the agreement classifier read the same prompts)."""

    def __init__(self, encoder: Encoder) -> None:
        self.encoder = encoder
        self.name = getattr(encoder, "name", None)
        self.cache: dict[str, np.ndarray] = {}

    def encode(self, texts: list[str]) -> np.ndarray:
        missing = list(dict.fromkeys(t for t in texts if t not in self.cache))
        if missing:
            self.cache.update(zip(missing, self.encoder.encode(missing), strict=True))
        return np.stack([self.cache[t] for t in texts]) if texts else self.encoder.encode([])


def run_gates(prompts: Sequence[ScoredPrompt], criterion: str, encoder: Encoder, *,
              lines: Sequence[int | None] | None = None, count_tokens: Callable[[str], int] | None = None,
              expected_words: Sequence[str] = ()) -> list[GateResult]:
    """Every gate on ``prompts``, in :data:`GATE_NAMES` order."""
    encoder = _Memo(encoder)
    emb_ND = encoder.encode([p.text for p in prompts])
    return [
        exact_duplicates_gate(prompts, lines),
        near_duplicates_gate(prompts, emb_ND, lines),
        class_balance_gate(prompts),
        length_gate(prompts, lines, count_tokens=count_tokens),
        lexical_gate(prompts, criterion, encoder, lines, expected_words=expected_words),
        agreement_gate(prompts, encoder, lines),
    ]
