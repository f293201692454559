"""Scoring an explanation on held-out contexts: embedding similarity, detection and fuzzing.

Every protocol scores on the ``held_out`` split only, never on the contexts an explainer was
shown (delphi's protocols, Paulo et al. 2024, "Automatically Interpreting Millions of Features
in Large Language Models"):

- **embedding** (:func:`embedding_score`): positives are the feature's held-out top and quantile
  contexts, negatives its held-out random (non-firing) contexts; each item's score is the cosine
  similarity of the explanation and the context under the sentence encoder. AUROC needs no
  threshold; balanced accuracy and F1 use the threshold that maximises balanced accuracy on the
  *explain* split's examples, applied unchanged to the held-out ones.
- **detection** (:func:`detection_task`): a judge sees shuffled held-out contexts, activating
  and not, and says which the explanation describes.
- **fuzzing** (:func:`fuzzing_task`): a judge sees held-out activating contexts with tokens
  marked ``«like this»``, half marked at the truly most active tokens and half at randomly
  chosen non-firing tokens (the same number of marks), and says whether the marks fit.

Judge tasks are blinded: a :class:`JudgeTask` carries items with ids and text only; the labels
live in a separate :class:`AnswerKey`. :func:`grade` scores a judge's answers (0/1 or a
probability per item id). A judge (``judges.Judge``) answers a task programmatically: ``judges.ModelJudge`` (the
embedded 135M instruct model, a *weak* judge) or ``chat.ChatJudge`` (an OpenAI-compatible
endpoint); the agent itself is the third judge, answering through the tools.

Every score carries two nulls: another feature's explanation on the same items
(``null_random_explanation``, with the paired-bootstrap ``margin_over_random``), and the same
scores with the labels permuted (``null_shuffled_labels``, mean and 2.5/97.5 percentiles of 200
permutations). Intervals are percentile bootstraps that resample positives and negatives
separately (1000 resamples, ``numpy.random.default_rng(seed)``).
"""

from __future__ import annotations

import secrets
from collections.abc import Mapping, Sequence
from dataclasses import dataclass, replace
from numbers import Real
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from interp_agent.core.errors import EvidenceError, ValidationError, arg
from interp_agent.core.explain.evidence import Contexts, Example, FeatureEvidence
from interp_agent.core.explain.explanations import Method, Metric, Score, check_explanation_text

if TYPE_CHECKING:
    from interp_agent.core.matching.text import Encoder

JudgeMethod = Literal["detection", "fuzzing"]
MIN_PER_CLASS = 3
"""Fewest held-out positives and negatives a score is computed from."""
N_BOOT = 1000
"""Bootstrap resamples per interval."""
N_PERM = 200
"""Label permutations of the shuffled-labels null."""
MARK_OPEN, MARK_CLOSE = "«", "»"
"""How fuzzing marks a token (the same marks the evidence view and the explainer prompt use)."""
MAX_PER_CLASS = 200
"""Most items of each class a judge task holds."""


# --- metrics --------------------------------------------------------------------------------


def _labels_scores(labels: Any, scores: Any) -> tuple[np.ndarray, np.ndarray]:
    y_N = np.asarray(labels, dtype=bool).reshape(-1)
    s_N = np.asarray(scores, dtype=np.float64).reshape(-1)
    if y_N.shape != s_N.shape:
        raise ValidationError(f"{len(y_N)} labels but {len(s_N)} scores; give one score per labelled item")
    if not np.isfinite(s_N).all():
        raise ValidationError(f"scores hold {int((~np.isfinite(s_N)).sum())} non-finite values; give finite scores")
    if y_N.all() or not y_N.any():
        raise ValidationError(f"{int(y_N.sum())} positives and {int((~y_N).sum())} negatives: a metric of "
                              "separation needs at least one of each")
    return y_N, s_N


def average_ranks(values_N: np.ndarray) -> np.ndarray:
    """1-based ranks of ``values_N``, ties given their average rank (float64 [N])."""
    values_N = np.asarray(values_N, dtype=np.float64)
    order = np.argsort(values_N, kind="mergesort")
    _, first, counts = np.unique(values_N[order], return_index=True, return_counts=True)
    ranks_N = np.empty(len(values_N), dtype=np.float64)
    ranks_N[order] = np.repeat(first + (counts + 1) / 2.0, counts)
    return ranks_N


def auroc(labels: Any, scores: Any) -> float:
    """Area under the ROC curve (Mann-Whitney U / (P·N)); tied scores count half.

    Raises:
        ValidationError: lengths differ, a score is not finite, or a class is empty.
    """
    y_N, s_N = _labels_scores(labels, scores)
    n_pos, n_neg = int(y_N.sum()), int((~y_N).sum())
    ranks_N = average_ranks(s_N)
    return float((ranks_N[y_N].sum() - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg))


def balanced_accuracy(labels: Any, predicted: Any) -> float:
    """Mean of the true-positive and true-negative rates of boolean ``predicted``."""
    y_N, p_N = _labels_scores(labels, np.asarray(predicted, dtype=bool))
    return float(0.5 * (p_N[y_N].mean() + (1.0 - p_N[~y_N]).mean()))


def f1_score(labels: Any, predicted: Any) -> float:
    """F1 of boolean ``predicted`` (0 when nothing is predicted positive and nothing is right)."""
    y_N, p_N = _labels_scores(labels, np.asarray(predicted, dtype=bool))
    tp, fp, fn = float((p_N * y_N).sum()), float((p_N * ~y_N).sum()), float(((1 - p_N) * y_N).sum())
    return 2 * tp / (2 * tp + fp + fn) if tp else 0.0


def best_threshold(labels: Any, scores: Any) -> float:
    """The threshold (``score >= t`` is positive) that maximises balanced accuracy on these items.

    Candidates are the midpoints between adjacent distinct scores (and one beyond each end); of
    several best, the middle one.
    """
    y_N, s_N = _labels_scores(labels, scores)
    u = np.unique(s_N)
    cands_C = np.concatenate([[u[0] - 1.0], (u[:-1] + u[1:]) / 2.0, [u[-1] + 1.0]])
    pred_CN = s_N[None, :] >= cands_C[:, None]
    ba_C = 0.5 * (pred_CN[:, y_N].mean(axis=1) + (~pred_CN[:, ~y_N]).mean(axis=1))
    best = np.flatnonzero(ba_C >= ba_C.max() - 1e-12)
    return float(cands_C[best[len(best) // 2]])


def _draws(n_pos: int, n_neg: int, n_boot: int, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Resampling counts: positives int [B, P] and negatives int [B, N], each row a draw with replacement."""
    if n_boot < 1:
        raise ValidationError(f"{arg('n_boot', n_boot)} must be at least 1; 1000 is the default")
    rng = np.random.default_rng(seed)
    pos_BP = rng.multinomial(n_pos, np.full(n_pos, 1.0 / n_pos), size=n_boot)
    neg_BN = rng.multinomial(n_neg, np.full(n_neg, 1.0 / n_neg), size=n_boot)
    return pos_BP, neg_BN


def _interval(values_B: np.ndarray) -> tuple[float, float]:
    lo, hi = np.percentile(values_B, [2.5, 97.5])
    return float(lo), float(hi)


def _pairs(pos_P: np.ndarray, neg_N: np.ndarray) -> np.ndarray:
    """[P, N]: 1 where the positive scores above the negative, 0.5 for a tie."""
    return (pos_P[:, None] > neg_N[None, :]) + 0.5 * (pos_P[:, None] == neg_N[None, :])


def _boot_auroc(pairs_PN: np.ndarray, pos_BP: np.ndarray, neg_BN: np.ndarray) -> np.ndarray:
    """AUROC (or a difference of AUROCs, given a difference of pair matrices) of each resample [B]."""
    n_pos, n_neg = pairs_PN.shape
    return ((pos_BP @ pairs_PN) * neg_BN).sum(axis=1) / (n_pos * n_neg)


def auroc_interval(labels: Any, scores: Any, *, n_boot: int = N_BOOT, seed: int = 0) -> tuple[float, float]:
    """Percentile-bootstrap 95% interval of the AUROC, positives and negatives resampled separately."""
    y_N, s_N = _labels_scores(labels, scores)
    pos_BP, neg_BN = _draws(int(y_N.sum()), int((~y_N).sum()), n_boot, seed)
    return _interval(_boot_auroc(_pairs(s_N[y_N], s_N[~y_N]), pos_BP, neg_BN))


def auroc_difference(labels: Any, scores_a: Any, scores_b: Any, *, n_boot: int = N_BOOT, seed: int = 0) -> Metric:
    """AUROC(a) − AUROC(b) on the same items, with a paired-bootstrap 95% interval (same resamples for both)."""
    y_N, a_N = _labels_scores(labels, scores_a)
    _, b_N = _labels_scores(y_N, scores_b)
    diff_PN = _pairs(a_N[y_N], a_N[~y_N]) - _pairs(b_N[y_N], b_N[~y_N])
    pos_BP, neg_BN = _draws(int(y_N.sum()), int((~y_N).sum()), n_boot, seed)
    return Metric(auroc(y_N, a_N) - auroc(y_N, b_N), _interval(_boot_auroc(diff_PN, pos_BP, neg_BN)))


def threshold_metrics(labels: Any, scores: Any, threshold: float, *, n_boot: int = N_BOOT,
                      seed: int = 0) -> tuple[Metric, Metric]:
    """Balanced accuracy and F1 of ``score >= threshold``, each with its bootstrap 95% interval."""
    y_N, s_N = _labels_scores(labels, scores)
    pred_N = s_N >= threshold
    n_pos, n_neg = int(y_N.sum()), int((~y_N).sum())
    pos_BP, neg_BN = _draws(n_pos, n_neg, n_boot, seed)
    tp_B = pos_BP @ pred_N[y_N].astype(np.float64)
    fp_B = neg_BN @ pred_N[~y_N].astype(np.float64)
    ba_B = 0.5 * (tp_B / n_pos + (n_neg - fp_B) / n_neg)
    denom_B = 2 * tp_B + fp_B + (n_pos - tp_B)
    f1_B = np.divide(2 * tp_B, denom_B, out=np.zeros_like(tp_B), where=denom_B > 0)
    ba = Metric(balanced_accuracy(y_N, pred_N), _interval(ba_B))
    return ba, Metric(f1_score(y_N, pred_N), _interval(f1_B))


def shuffled_labels_null(labels: Any, scores: Any, *, n_perm: int = N_PERM, seed: int = 0) -> Metric:
    """AUROC with the labels permuted: the mean over ``n_perm`` permutations and its 2.5/97.5 percentiles."""
    y_N, s_N = _labels_scores(labels, scores)
    if n_perm < 1:
        raise ValidationError(f"{arg('n_perm', n_perm)} must be at least 1; 200 is the default")
    n_pos, n_neg = int(y_N.sum()), int((~y_N).sum())
    ranks_N = average_ranks(s_N)
    perm_KN = np.random.default_rng(seed).permuted(np.tile(np.arange(len(y_N)), (n_perm, 1)), axis=1)
    null_K = (ranks_N[perm_KN[:, :n_pos]].sum(axis=1) - n_pos * (n_pos + 1) / 2.0) / (n_pos * n_neg)
    return Metric(float(null_K.mean()), _interval(null_K))


def score_from_item_scores(method: Method, labels: Sequence[bool | int] | np.ndarray,
                           scores: Sequence[float] | np.ndarray, *, threshold: float | None = 0.5,
                           null_scores: Sequence[float] | np.ndarray | None = None, judge: str | None = None,
                           contexts: Sequence[int] = (), null_feature: str | None = None, seed: int = 0,
                           n_boot: int = N_BOOT, n_perm: int = N_PERM, note: str = "") -> Score:
    """A :class:`Score` from per-item labels and scores (and a null explanation's scores on the same items).

    Args:
        method: the protocol that produced the scores.
        labels: True for positives (the feature fires; a correctly marked item).
        scores: higher means "matches the explanation": a similarity, a probability, a 0/1 answer.
        threshold: ``score >= threshold`` predicts positive for balanced accuracy and F1; None skips both.
        null_scores: the same items scored under another feature's explanation; None skips that null.
        judge: who judged (None for the embedding score).
        contexts: the held-out contexts scored on.
        null_feature: whose explanation ``null_scores`` came from.
        seed: seeds every bootstrap and permutation.

    Raises:
        EvidenceError: fewer than ``MIN_PER_CLASS`` positives or negatives.
    """
    y_N = np.asarray(labels, dtype=bool).reshape(-1)
    n_pos, n_neg = int(y_N.sum()), int((~y_N).sum())
    if n_pos < MIN_PER_CLASS or n_neg < MIN_PER_CLASS:
        raise EvidenceError(f"{method} scoring got {n_pos} positive and {n_neg} negative items; it needs at least "
                            f"{MIN_PER_CLASS} of each", hint="score on more held-out contexts (a bigger corpus)")
    s_N = np.asarray(scores, dtype=np.float64).reshape(-1)
    auc = Metric(auroc(y_N, s_N), auroc_interval(y_N, s_N, n_boot=n_boot, seed=seed))
    ba, f1 = (Metric(None), Metric(None)) if threshold is None else threshold_metrics(
        y_N, s_N, threshold, n_boot=n_boot, seed=seed)
    shuffled = shuffled_labels_null(y_N, s_N, n_perm=n_perm, seed=seed + 1)
    null = margin = Metric(None)
    if null_scores is not None:
        null_N = np.asarray(null_scores, dtype=np.float64).reshape(-1)
        null = Metric(auroc(y_N, null_N), auroc_interval(y_N, null_N, n_boot=n_boot, seed=seed))
        margin = auroc_difference(y_N, s_N, null_N, n_boot=n_boot, seed=seed)
    return Score(method, auc, ba, f1, n_pos, n_neg, null, shuffled, margin, judge, "held_out_text",
                 tuple(int(c) for c in contexts), null_feature if null_scores is not None else None, note)


# --- which contexts are scored --------------------------------------------------------------


def _unique(values: Sequence[int]) -> list[int]:
    return list(dict.fromkeys(int(v) for v in values))


def held_out_items(feature: FeatureEvidence, contexts: Contexts) -> tuple[list[int], list[int]]:
    """The feature's held-out activating (top, quantile) and random contexts, without repeats.

    Raises:
        EvidenceError: an example marked held-out points at a context that is not held out.
    """
    pos = _unique([e.context for e in feature.select(("top", "quantile"), "held_out")])
    taken = set(pos)
    neg = [c for c in _unique([e.context for e in feature.select("random", "held_out")]) if c not in taken]
    bad = [c for c in pos + neg if not 0 <= c < len(contexts) or not contexts.held_out[c]]
    if bad:
        raise EvidenceError(f"feature {feature.feature_id}: held-out examples point at contexts {bad[:5]}, which "
                            "are not held-out contexts of these contexts",
                            hint="pass the contexts of the harvest the feature's evidence came from")
    return pos, neg


def _explain_items(feature: FeatureEvidence, contexts: Contexts) -> tuple[list[int], list[int]]:
    """The feature's explain-split activating and random contexts (those the contexts agree are not held out)."""
    def ok(c: int) -> bool:
        return 0 <= c < len(contexts) and not contexts.held_out[c]

    pos = [c for c in _unique([e.context for e in feature.select(("top", "quantile"), "explain")]) if ok(c)]
    taken = set(pos)
    neg = [c for c in _unique([e.context for e in feature.select("random", "explain")]) if ok(c) and c not in taken]
    return pos, neg


def _require_items(feature_id: str, n_pos: int, n_neg: int, what: str, need: int = MIN_PER_CLASS) -> None:
    if n_pos >= need and n_neg >= MIN_PER_CLASS:
        return
    raise EvidenceError(
        f"{arg('feature_id', feature_id)} has {n_pos} held-out activating and {n_neg} held-out non-firing "
        f"contexts; {what} needs at least {need} activating and {MIN_PER_CLASS} non-firing",
        hint="harvest a bigger corpus (more contexts or a larger held-out fraction), or score a feature that "
             "fires in some held-out contexts and not in others")


def check_not_shown(scored: Sequence[int], shown: Sequence[int]) -> None:
    """ValidationError when a context to be scored on was shown to the explainer."""
    overlap = sorted(set(int(c) for c in scored) & set(int(c) for c in shown))
    if overlap:
        raise ValidationError(
            f"{len(overlap)} contexts to score on were shown to the explainer (contexts {overlap[:5]})",
            hint="an explanation is scored on held-out contexts only; show the explainer explain-split contexts")


# --- the embedding score --------------------------------------------------------------------


def embedding_score(feature: FeatureEvidence, contexts: Contexts, text: str, encoder: Encoder, *,
                    null_text: str | None = None, null_feature: str | None = None, shown: Sequence[int] = (),
                    seed: int = 0, n_boot: int = N_BOOT) -> Score:
    """Score ``text`` by how much closer it embeds to held-out activating contexts than to non-firing ones.

    Args:
        feature: the feature's evidence.
        contexts: the contexts its evidence indexes.
        text: the explanation.
        encoder: a sentence encoder with unit-norm rows (``load_text_encoder()``).
        null_text: another feature's explanation, scored on the same items as the random-explanation null.
        null_feature: whose explanation ``null_text`` is.
        shown: contexts the explainer was shown; none may be scored on.
        seed: seeds the bootstraps and permutations.

    Raises:
        ValidationError: an empty or oversize text, or a scored context was shown.
        EvidenceError: fewer than 3 held-out activating or non-firing contexts.
    """
    text = check_explanation_text(text)
    null = None if null_text is None else check_explanation_text(null_text, name="null_text")
    pos, neg = held_out_items(feature, contexts)
    _require_items(feature.feature_id, len(pos), len(neg), "embedding scoring")
    check_not_shown(pos + neg, shown)
    ex_pos, ex_neg = _explain_items(feature, contexts)
    queries = [text] + ([null] if null is not None else [])
    items = pos + neg + ex_pos + ex_neg
    emb_KD = np.asarray(encoder.encode(queries + [contexts.text(c) for c in items]), dtype=np.float64)
    sims_QI = emb_KD[: len(queries)] @ emb_KD[len(queries):].T
    n_held = len(pos) + len(neg)
    assert not set(pos + neg) & set(ex_pos + ex_neg), "held-out and explain examples share a context"
    labels = [True] * len(pos) + [False] * len(neg)
    threshold, note = None, "no explain-split activating and non-firing examples to set a threshold on"
    if ex_pos and ex_neg:
        threshold = best_threshold([True] * len(ex_pos) + [False] * len(ex_neg), sims_QI[0, n_held:])
        note = f"threshold {threshold:.4f} (cosine) chosen on {len(ex_pos) + len(ex_neg)} explain-split examples"
    return score_from_item_scores("embedding", labels, sims_QI[0, :n_held], threshold=threshold,
                                  null_scores=sims_QI[1, :n_held] if null is not None else None, judge=None,
                                  contexts=pos + neg, null_feature=null_feature, seed=seed, n_boot=n_boot, note=note)


# --- blinded judge tasks --------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class JudgeItem:
    """One text a judge answers about; carries no label."""

    item_id: str
    """Random id the answer is keyed by."""
    text: str
    """The context as text (fuzzing: with tokens marked ``«like this»``)."""


@dataclass(frozen=True, slots=True)
class JudgeTask:
    """What a judge is shown: an explanation and shuffled, unlabelled items."""

    task_id: str
    """Random url-safe id; its :class:`AnswerKey` carries the same."""
    method: JudgeMethod
    """detection or fuzzing."""
    feature_id: str
    explanation: str
    """The explanation to judge the items against."""
    items: tuple[JudgeItem, ...]
    instructions: str
    """What to answer for each item."""


@dataclass(frozen=True, slots=True)
class AnswerKey:
    """The labels of a task's items, kept apart from the task."""

    task_id: str
    labels: dict[str, bool]
    """item_id → True for a positive (the feature fires; the marks are the truly most active tokens)."""
    contexts: dict[str, int]
    """item_id → the held-out context it shows."""


INSTRUCTIONS: dict[JudgeMethod, str] = {
    "detection": "For each item, answer 1 when the explanation describes the text (the feature would fire on it) "
                 "and 0 when it does not; a probability in [0, 1] is also accepted. Answer by item_id.",
    "fuzzing": f"In each item some tokens are marked {MARK_OPEN}like this{MARK_CLOSE}. Answer 1 when the marked "
               "tokens are what the explanation describes and 0 when they are not; a probability in [0, 1] is also "
               "accepted. Answer by item_id.",
}


def _check_n(n_per_class: int) -> None:
    if not MIN_PER_CLASS <= n_per_class <= MAX_PER_CLASS:
        raise ValidationError(f"{arg('n_per_class', n_per_class)} must be in [{MIN_PER_CLASS}, {MAX_PER_CLASS}]",
                              hint="10 per class is the default")


def _blinded(method: JudgeMethod, feature_id: str, text: str, entries: list[tuple[int, bool, str]],
             rng: np.random.Generator) -> tuple[JudgeTask, AnswerKey]:
    """Shuffle ``(context, label, text)`` entries into a task and its key."""
    ids: list[str] = []
    while len(ids) < len(entries):
        new = f"i{secrets.token_hex(4)}"
        if new not in ids:
            ids.append(new)
    order = rng.permutation(len(entries))
    items = tuple(JudgeItem(ids[k], entries[i][2]) for k, i in enumerate(order))
    task_id = f"t{secrets.token_urlsafe(12)}"
    key = AnswerKey(task_id, {ids[k]: entries[i][1] for k, i in enumerate(order)},
                    {ids[k]: entries[i][0] for k, i in enumerate(order)})
    return JudgeTask(task_id, method, feature_id, text, items, INSTRUCTIONS[method]), key


def detection_task(feature: FeatureEvidence, contexts: Contexts, text: str, *, n_per_class: int = 10,
                   shown: Sequence[int] = (), seed: int = 0) -> tuple[JudgeTask, AnswerKey]:
    """A blinded detection task: up to ``n_per_class`` held-out activating and non-firing contexts, shuffled.

    Positives are drawn uniformly from the held-out top and quantile examples, negatives from the
    held-out random ones.

    Raises:
        ValidationError: an empty or oversize text, a bad ``n_per_class``, or a chosen context was shown.
        EvidenceError: fewer than 3 held-out activating or non-firing contexts.
    """
    text = check_explanation_text(text)
    _check_n(n_per_class)
    pos, neg = held_out_items(feature, contexts)
    _require_items(feature.feature_id, len(pos), len(neg), "a detection task")
    rng = np.random.default_rng(seed)
    pos = [pos[i] for i in np.sort(rng.choice(len(pos), min(n_per_class, len(pos)), replace=False))]
    neg = [neg[i] for i in np.sort(rng.choice(len(neg), min(n_per_class, len(neg)), replace=False))]
    check_not_shown(pos + neg, shown)
    entries = [(c, True, contexts.text(c)) for c in pos] + [(c, False, contexts.text(c)) for c in neg]
    return _blinded("detection", feature.feature_id, text, entries, rng)


def mark_tokens(tokens: Sequence[str], positions: Sequence[int]) -> str:
    """The tokens joined, those at ``positions`` wrapped ``«like this»`` (leading/trailing spaces kept outside)."""
    marked = set(int(p) for p in positions)
    out: list[str] = []
    for i, tok in enumerate(tokens):
        core = tok.strip()
        if i not in marked:
            out.append(tok)
        elif not core:
            out.append(f"{MARK_OPEN}{tok}{MARK_CLOSE}")
        else:
            lead = tok[: len(tok) - len(tok.lstrip())]
            trail = tok[len(tok.rstrip()):]
            out.append(f"{lead}{MARK_OPEN}{core}{MARK_CLOSE}{trail}")
    return "".join(out)


def _true_marks(example: Example, threshold: float, max_marks: int) -> list[int]:
    """Positions (first excluded) of the example's most active firing tokens, at most ``max_marks``."""
    assert example.acts is not None
    acts_T = np.asarray(example.acts, dtype=np.float64)
    firing = np.flatnonzero(acts_T[1:] > threshold) + 1
    return sorted(firing[np.argsort(-acts_T[firing], kind="stable")][:max_marks].tolist())


def _decoy_marks(example: Example, tokens: Sequence[str], threshold: float, count: int,
                 rng: np.random.Generator) -> list[int]:
    """``count`` random non-firing, non-blank positions (first excluded); [] when there are too few."""
    assert example.acts is not None
    quiet = [i for i in range(1, len(tokens)) if example.acts[i] <= threshold and tokens[i].strip()]
    if len(quiet) < count:
        return []
    return sorted(rng.choice(quiet, count, replace=False).tolist())


def fuzzing_task(feature: FeatureEvidence, contexts: Contexts, text: str, *, n_per_class: int = 10,
                 max_marks: int = 3, shown: Sequence[int] = (), seed: int = 0) -> tuple[JudgeTask, AnswerKey]:
    """A blinded fuzzing task over held-out activating contexts.

    Half the contexts have their (up to ``max_marks``) most active firing tokens marked; the other
    half, different contexts, have as many randomly chosen non-firing tokens marked, so the count
    of marks says nothing about the label.

    Raises:
        ValidationError: an empty or oversize text, a bad ``n_per_class`` or ``max_marks``, or a chosen
            context was shown.
        EvidenceError: fewer than 6 held-out activating contexts (3 of each kind).
    """
    text = check_explanation_text(text)
    _check_n(n_per_class)
    if not 1 <= max_marks <= 20:
        raise ValidationError(f"{arg('max_marks', max_marks)} must be in [1, 20]; 3 is the default")
    held_out_items(feature, contexts)  # checks that every held-out example points at a held-out context
    by_context = {e.context: e for e in reversed(feature.select(("top", "quantile"), "held_out"))
                  if e.acts is not None}
    pool = sorted(by_context.values(), key=lambda e: e.context)
    if len(pool) < 2 * MIN_PER_CLASS:
        raise EvidenceError(
            f"{arg('feature_id', feature.feature_id)} has {len(pool)} held-out activating contexts; a fuzzing task "
            f"needs at least {2 * MIN_PER_CLASS} ({MIN_PER_CLASS} marked truly, {MIN_PER_CLASS} at random)",
            hint="harvest a bigger corpus (more contexts or a larger held-out fraction), or use detection")
    rng = np.random.default_rng(seed)
    pool = [pool[i] for i in rng.permutation(len(pool))]
    n = min(n_per_class, len(pool) // 2)
    thr = feature.active_threshold
    marks = [_true_marks(e, thr, max_marks) for e in pool[:n]]
    entries = [(e.context, True, mark_tokens(contexts.tokens[e.context], m))
               for e, m in zip(pool[:n], marks, strict=True)]
    for e in pool[n:]:
        if len(entries) == 2 * n:
            break
        # the i-th decoy gets as many marks as the i-th true marking: mark counts say nothing of the label
        decoys = _decoy_marks(e, contexts.tokens[e.context], thr, max(1, len(marks[len(entries) - n])), rng)
        if decoys:
            entries.append((e.context, False, mark_tokens(contexts.tokens[e.context], decoys)))
    if len(entries) - n < MIN_PER_CLASS:
        raise EvidenceError(f"only {len(entries) - n} held-out activating contexts of {feature.feature_id} have "
                            "enough non-firing tokens to mark at random", hint="use detection for this feature")
    check_not_shown([c for c, _, _ in entries], shown)
    return _blinded("fuzzing", feature.feature_id, text, entries, rng)


def null_task(task: JudgeTask, null_text: str) -> JudgeTask:
    """The same items (and item ids) under another feature's explanation, for the random-explanation null."""
    return replace(task, task_id=f"t{secrets.token_urlsafe(12)}",
                   explanation=check_explanation_text(null_text, name="null_text"))


# --- grading --------------------------------------------------------------------------------


def _answer_values(answers: Mapping[str, Any], ids: Sequence[str], name: str) -> list[float]:
    """One value in [0, 1] per item id, or a ValidationError naming the bad ids and what to send."""
    send = "send one answer per item_id: 1 (the explanation fits), 0 (it does not), or a probability in [0, 1]"
    if not isinstance(answers, Mapping):
        raise ValidationError(f"{arg(name)} must map item_id to an answer, got {type(answers).__name__}", hint=send)
    known = set(ids)
    unknown = [k for k in answers if k not in known]
    if unknown:
        raise ValidationError(f"{arg(name)} has {len(unknown)} item ids this task does not have: {unknown[:5]}",
                              hint=f"{send}; the task's item ids are {list(ids)[:3]}…")
    missing = [i for i in ids if i not in answers]
    if missing:
        raise ValidationError(f"{arg(name)} is missing {len(missing)} of {len(ids)} items: {missing[:5]}", hint=send)
    bad = [i for i in ids if isinstance(answers[i], str) or not isinstance(answers[i], (Real, np.number))
           or not 0.0 <= float(answers[i]) <= 1.0]
    if bad:
        shown = {i: answers[i] for i in bad[:5]}
        raise ValidationError(f"{arg(name)} has {len(bad)} answers that are not numbers in [0, 1]: {shown}",
                              hint=send)
    return [float(answers[i]) for i in ids]


def grade(task: JudgeTask, key: AnswerKey, answers: Mapping[str, float | bool | int], *, judge: str,
          null_answers: Mapping[str, float | bool | int] | None = None, null_feature: str | None = None,
          seed: int = 0, n_boot: int = N_BOOT) -> Score:
    """Score a judge's answers to ``task`` against its key.

    Args:
        task: the task the judge was shown.
        key: the task's answer key.
        answers: item_id → 0/1 or a probability in [0, 1] that the item fits the explanation.
        judge: who answered (``agent``, ``chat:<model>``, …).
        null_answers: the same judge's answers to :func:`null_task` of this task (another feature's explanation).
        null_feature: whose explanation the null task used.
        seed: seeds the bootstraps and permutations.

    Returns:
        AUROC from the answer values; balanced accuracy and F1 with answers >= 0.5 counted as "fits".

    Raises:
        ValidationError: the key is another task's, or an answer is unknown, missing or out of range.
    """
    if key.task_id != task.task_id:
        raise ValidationError(f"the answer key is for task {key.task_id!r}, not {arg('task_id', task.task_id)}",
                              hint="grade a task with the key it was made with")
    if not isinstance(judge, str) or not judge.strip():
        raise ValidationError(f"{arg('judge')} must name who answered, e.g. 'agent'")
    ids = [item.item_id for item in task.items]
    values = _answer_values(answers, ids, "answers")
    null_values = None if null_answers is None else _answer_values(null_answers, ids, "null_answers")
    return score_from_item_scores(task.method, [key.labels[i] for i in ids], values, threshold=0.5,
                                  null_scores=null_values, judge=judge,
                                  contexts=sorted(key.contexts[i] for i in ids), null_feature=null_feature,
                                  seed=seed, n_boot=n_boot)
