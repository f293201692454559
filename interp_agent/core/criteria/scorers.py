"""Behaviour scorers: measure a criterion on what a model does, with held-out evidence.

Three scorers, one protocol: ``fit`` on calibration prompts (choose targets or weights and
a decision threshold), ``evaluate`` on held-out prompts (AUROC and accuracy there), then
``score`` new texts. A scorer whose held-out AUROC is below ``min_auroc`` (0.6 by
default: near chance) refuses to score, so no intervention effect is ever measured with a
ruler that cannot tell the criterion's classes apart.

Each scorer is also *validated* on calibration prompts only, on the kind of text it is
applied to (:class:`ScorerValidation`, ``validated_on`` ``prompts`` or ``continuations``);
one that fails its validation refuses to score as well. Validation never touches held-out
prompts: those are the evidence of whatever the scorer then measures.

- :class:`TargetTokenScorer`: total next-token probability on a set of target tokens
  after each text (criteria about the next token, e.g. "a measurement unit comes next").
  Targets are given as strings or inferred from calibration prompts only; inferred
  targets are stand-ins chosen by the scorer (``targets_inferred``), not named by the
  criterion. Validated on calibration prompts (cross-validated when targets are inferred).
- ``TextClassifierScorer`` (in :mod:`interp_agent.core.criteria.text_scorer`): logistic regression on
  all-MiniLM-L6-v2 embeddings of the text (criteria about a text's properties: language, code,
  sentiment); fitted on prompts, meant for generated continuations, so it is validated on the
  model's continuations of calibration prompts.
- ``InputProbeScorer`` (in :mod:`interp_agent.core.criteria.probe`): logistic regression on the
  model's own residual stream at a late layer (mean over the prompt's tokens), for criteria
  about the input itself ("is a question about geography"). Its score is the probe's probability on the forward pass of
  the prompt, edited or not, so it measures whether an edit changes what the model
  represents about the input. Validated by cross-validation on calibration prompts.

The model is any Hugging Face causal LM called as ``model(input_ids=…,
attention_mask=…).logits``; torch is imported only when a model is scored.
"""

from __future__ import annotations

import hashlib
import math
from collections.abc import Iterator, Sequence
from dataclasses import asdict, dataclass, replace
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from interp_agent.core.artifacts import schema_version
from interp_agent.core.criteria.packs import binary_labels, normalise_text
from interp_agent.core.criteria.sets import CriterionSet, split
from interp_agent.core.errors import EvidenceError, ValidationError
from interp_agent.core.formats.prompts import ScoredPrompt
from interp_agent.core.ranking.splits import HELD_OUT_FRACTION, SPLIT_SALT

if TYPE_CHECKING:
    import torch


ScorerKind = Literal["target_token", "text_classifier", "input_probe"]
ValidatedOn = Literal["prompts", "continuations"]
"""The kind of text a scorer was validated on (the kind it is applied to)."""
ThresholdRule = Literal["best", "midpoint"]
"""How the decision threshold is chosen on calibration scores: the threshold of best
calibration accuracy (ties: the middle one), or the midpoint of the two class means."""

MIN_AUROC = 0.6
"""Held-out (and validation) AUROC below which a scorer counts as near chance and refuses to score."""
N_FOLDS = 5
"""Folds of the cross-validations on calibration prompts (fewer when a class has fewer prompts)."""
SCORER_REPORT_SCHEMA = schema_version("scorer_report")


def _json_value(value: Any) -> Any:
    if isinstance(value, float) and not math.isfinite(value):
        return None
    if isinstance(value, (tuple, list)):
        return [_json_value(v) for v in value]
    if isinstance(value, dict):
        return {k: _json_value(v) for k, v in value.items()}
    return value


@dataclass(frozen=True, slots=True)
class ScorerValidation:
    """How well a scorer separates the classes on calibration prompts, on the kind of text it is applied to."""

    on: ValidatedOn
    """``prompts`` (next-token mass or probe after each prompt) or ``continuations`` (the model's own)."""
    auroc: float
    """AUROC of the validation scores against the prompts' labels (0.5 = chance)."""
    n: int
    """Calibration prompts (or continuations) validated on."""
    n_positive: int
    """Of them, positives."""
    method: str
    """How the validation scores were obtained (cross-validation folds, what was fitted on what)."""
    min_auroc: float = MIN_AUROC
    """The AUROC bar for ``usable``."""

    @property
    def usable(self) -> bool:
        """Whether the validation AUROC reached ``min_auroc``."""
        return bool(self.auroc >= self.min_auroc)

    def to_json(self) -> dict[str, Any]:
        """The validation as a JSON object (NaN becomes null)."""
        out = {key: _json_value(value) for key, value in asdict(self).items()}
        return out | {"usable": self.usable, "n_negative": self.n - self.n_positive, "split": "calibration",
                      "provenance": "correlational"}


@dataclass(frozen=True, slots=True)
class ScorerReport:
    """How well a fitted scorer separates the criterion's classes on held-out prompts."""

    kind: ScorerKind
    """Which scorer: ``target_token`` or ``text_classifier``."""
    auroc: float
    """Held-out AUROC of the score against the labels (0.5 = chance)."""
    accuracy: float
    """Held-out accuracy at ``threshold``."""
    threshold: float
    """Decision threshold chosen on calibration prompts (score >= threshold means positive)."""
    n_calibration: int
    """Calibration prompts the scorer was fitted on."""
    n_held_out: int
    """Held-out prompts it was evaluated on."""
    usable: bool
    """Whether held-out AUROC reached ``min_auroc``; an unusable scorer refuses to score."""
    targets: tuple[str, ...] | None
    """Target tokens as decoded strings (target_token scorers), else None."""
    min_auroc: float = MIN_AUROC
    """The AUROC bar for ``usable``."""
    calibration_auroc: float = float("nan")
    """AUROC on the calibration prompts (optimistic; for comparison only)."""
    notes: tuple[str, ...] = ()
    """Caveats, e.g. target strings that are not single tokens."""
    validation: ScorerValidation | None = None
    """Validation on calibration prompts, on the kind of text the scorer is applied to (None: not validated)."""
    targets_inferred: bool | None = None
    """Target-token scorers: whether the targets were inferred from calibration prompts (stand-ins chosen by the
    scorer, not named by the criterion) rather than given; None for other scorers."""
    held_out_on: ValidatedOn | None = None
    """The kind of text ``auroc`` and ``accuracy`` were measured on (``prompts`` or ``continuations``)."""
    hookpoint: str | None = None
    """Input-probe scorers: the hookpoint the probe reads; None for other scorers."""
    pooling: str | None = None
    """Input-probe scorers: how the hookpoint is pooled over the prompt's tokens; None for other scorers."""

    @property
    def validated_on(self) -> ValidatedOn | None:
        """The kind of text the scorer was validated on, or None."""
        return self.validation.on if self.validation is not None else None

    @property
    def serves(self) -> bool:
        """Whether the scorer may serve: usable on held-out prompts and, when validated, usable in validation."""
        return self.usable and (self.validation is None or self.validation.usable)

    def to_json(self) -> dict[str, Any]:
        """The report as a JSON object (NaN becomes null)."""
        out: dict[str, Any] = {"schema_version": SCORER_REPORT_SCHEMA}
        for key, value in asdict(self).items():
            if key == "validation":
                continue
            out[key] = _json_value(value)
        out["evidence"] = "auroc and accuracy are measured on held-out prompts; threshold on calibration prompts"
        out["validated_on"] = self.validated_on
        out["validation"] = None if self.validation is None else self.validation.to_json()
        out["validation_auroc"] = None if self.validation is None else _json_value(self.validation.auroc)
        out["serves"] = self.serves
        if self.validation is not None:
            out["validation_evidence"] = (
                f"validation_auroc is measured on calibration {self.validation.on} only "
                f"({self.validation.method}); held-out prompts never choose or validate the scorer: its held-out "
                "auroc is reported as evidence, and a scorer near chance there is withheld too"
            )
        return out


def auroc(scores: np.ndarray, labels: np.ndarray) -> float:
    """Area under the ROC curve (ties count half); nan when a class is missing."""
    from scipy.stats import rankdata

    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels, dtype=bool)
    n_pos, n_neg = int(labels.sum()), int((~labels).sum())
    if n_pos == 0 or n_neg == 0:
        return float("nan")
    ranks = rankdata(scores)
    return float((ranks[labels].sum() - n_pos * (n_pos + 1) / 2) / (n_pos * n_neg))


def choose_threshold(scores: np.ndarray, labels: np.ndarray, rule: ThresholdRule = "best") -> float:
    """Decision threshold on ``scores`` (score >= threshold means positive).

    ``best``: among midpoints between consecutive distinct scores (and beyond both ends),
    the one of highest accuracy; of equally good ones, the middle one. ``midpoint``: halfway
    between the two class means.
    """
    scores = np.asarray(scores, dtype=np.float64)
    labels = np.asarray(labels, dtype=bool)
    if rule == "midpoint":
        return float((scores[labels].mean() + scores[~labels].mean()) / 2)
    if rule != "best":
        raise ValidationError(f"threshold_rule must be 'best' or 'midpoint', got {rule!r}")
    values = np.unique(scores)
    candidates = np.concatenate([[values[0] - 1.0], (values[:-1] + values[1:]) / 2, [values[-1] + 1.0]])
    acc = ((scores[None, :] >= candidates[:, None]) == labels[None, :]).mean(axis=1)
    best = np.flatnonzero(acc == acc.max())
    return float(candidates[best[len(best) // 2]])


def cv_folds(prompts: Sequence[ScoredPrompt], labels: np.ndarray, n_folds: int = N_FOLDS) -> np.ndarray:
    """Fold index of each prompt for a stratified cross-validation on calibration prompts, int64 [n].

    Deterministic and independent of the prompts' order: within each class, prompts are
    sorted by a hash of their id and dealt round-robin into ``min(n_folds, class sizes)``
    folds, so every fold holds both classes.

    Raises:
        EvidenceError: a class has fewer than 2 prompts (nothing to cross-validate).
    """
    labels = np.asarray(labels, dtype=bool)
    k = min(n_folds, int(labels.sum()), int((~labels).sum()))
    if k < 2:
        raise EvidenceError(
            f"cross-validation needs at least 2 calibration prompts of each class; got {int(labels.sum())} "
            f"positive, {int((~labels).sum())} negative",
            hint="give more examples (>= 30 of each class)",
        )
    folds = np.zeros(len(labels), dtype=np.int64)
    for cls in (True, False):
        idx = np.flatnonzero(labels == cls)
        order = sorted(idx, key=lambda i: hashlib.sha256(prompts[int(i)].prompt_id.encode()).hexdigest())
        for j, i in enumerate(order):
            folds[i] = j % k
    return folds


class CalibratedScorer:
    """Shared fit/evaluate/refuse bookkeeping of the scorers."""

    kind: ScorerKind

    def __init__(self, min_auroc: float, threshold_rule: ThresholdRule) -> None:
        if not 0.5 <= min_auroc <= 1.0:
            raise ValidationError(f"min_auroc must be in [0.5, 1], got {min_auroc}", hint=f"{MIN_AUROC} is the default")
        if threshold_rule not in ("best", "midpoint"):
            raise ValidationError(f"threshold_rule must be 'best' or 'midpoint', got {threshold_rule!r}")
        self.min_auroc = min_auroc
        self.threshold_rule: ThresholdRule = threshold_rule
        self.threshold: float | None = None
        """Decision threshold chosen on calibration prompts (None until fitted)."""
        self.report: ScorerReport | None = None
        """Held-out evaluation (None until evaluated)."""
        self.validation: ScorerValidation | None = None
        """Validation on calibration prompts, on the kind of text the scorer is applied to (None until set)."""
        self._calibration_keys: set[str] = set()
        self._calibration_auroc = float("nan")
        self._n_calibration = 0

    @staticmethod
    def _labels(prompts: Sequence[ScoredPrompt], part: str) -> np.ndarray:
        labels = binary_labels(prompts)
        if labels.all() or not labels.any():
            raise EvidenceError(
                f"{part} prompts need both classes; got {int(labels.sum())} positive, {int((~labels).sum())} negative",
                hint="use criteria.sets.split, which checks both parts",
            )
        return labels

    def _calibrate(self, prompts: Sequence[ScoredPrompt], scores: np.ndarray, labels: np.ndarray) -> None:
        self.threshold = choose_threshold(scores, labels, self.threshold_rule)
        self._calibration_auroc = auroc(scores, labels)
        self._n_calibration = len(prompts)
        self._calibration_keys = {p.prompt_id for p in prompts} | {"text:" + normalise_text(p.text) for p in prompts}
        self.report = None
        self.validation = None

    def _set_validation(self, on: ValidatedOn, scores: np.ndarray, labels: np.ndarray, method: str) -> ScorerValidation:
        """Record a validation on calibration prompts (and update the held-out report, if any)."""
        self.validation = ScorerValidation(
            on=on, auroc=auroc(scores, labels), n=len(labels), n_positive=int(np.sum(labels)), method=method,
            min_auroc=self.min_auroc,
        )
        if self.report is not None:
            self.report = replace(self.report, validation=self.validation)
        return self.validation

    def _report_extras(self) -> dict[str, Any]:
        """Scorer-specific fields of the held-out report (beyond the shared ones)."""
        return {}

    def _check_fitted(self) -> None:
        if self.threshold is None:
            raise ValidationError(
                f"{type(self).__name__} is not fitted", hint="call fit(...) on calibration prompts first"
            )

    def _check_held_out(self, prompts: Sequence[ScoredPrompt]) -> np.ndarray:
        self._check_fitted()
        keys = self._calibration_keys
        leaked = [p.prompt_id for p in prompts if p.prompt_id in keys or "text:" + normalise_text(p.text) in keys]
        if leaked:
            raise ValidationError(
                f"{len(leaked)} held-out prompts were also calibration prompts (e.g. {leaked[0]!r})",
                hint="evaluate on the held-out part of criteria.sets.split, never on calibration prompts",
            )
        return self._labels(prompts, "held-out")

    def _finish_evaluation(
        self, scores: np.ndarray, labels: np.ndarray, targets: tuple[str, ...] | None, notes: Sequence[str] = (),
        held_out_on: ValidatedOn = "prompts",
    ) -> ScorerReport:
        assert self.threshold is not None
        a = auroc(scores, labels)
        acc = float(((scores >= self.threshold) == labels).mean())
        self.report = ScorerReport(
            kind=self.kind, auroc=a, accuracy=acc, threshold=self.threshold, n_calibration=self._n_calibration,
            n_held_out=len(scores), usable=bool(a >= self.min_auroc), targets=targets, min_auroc=self.min_auroc,
            calibration_auroc=self._calibration_auroc, notes=tuple(notes), validation=self.validation,
            held_out_on=held_out_on, **self._report_extras(),
        )
        return self.report

    def _check_serving(self) -> None:
        """Refuse unless fitted, evaluated held out, and above the bar in validation and held out."""
        self._check_fitted()
        if self.report is None:
            raise EvidenceError(
                f"{type(self).__name__} has not been evaluated on held-out prompts",
                hint="call evaluate(...) on the held-out split before scoring",
            )
        if self.validation is not None and not self.validation.usable:
            raise EvidenceError(
                f"scorer near chance in validation: AUROC {self.validation.auroc:.2f} (< {self.min_auroc}) on "
                f"{self.validation.n} calibration {self.validation.on}; {self.validation.method}",
                hint=self.validation_hint(),
            )
        if not self.report.usable:
            raise EvidenceError(
                f"scorer near chance: held-out AUROC {self.report.auroc:.2f} (< {self.min_auroc}) "
                f"on {self.report.n_held_out} prompts",
                hint="give targets or more/better examples",
            )

    def validation_hint(self) -> str:
        """What to try when the scorer fails its validation."""
        return "give more or clearer calibration examples"


# --------------------------------------------------------------------------- target tokens


def _prompt_ids(tokenizer: Any, text: str, max_tokens: int) -> list[int]:
    ids = list(tokenizer(text, add_special_tokens=True)["input_ids"])
    eos = getattr(tokenizer, "eos_token_id", None)
    eos_text = getattr(tokenizer, "eos_token", None)
    # Some tokenizers append EOS; the next token must follow the text itself.
    if len(ids) > 1 and eos is not None and ids[-1] == eos and not (eos_text and text.endswith(eos_text)):
        ids = ids[:-1]
    if not ids:
        raise ValidationError(f"text {text[:40]!r} tokenises to nothing", hint="remove empty texts")
    return ids[-max_tokens:]


def _iter_next_token_logits(
    model: Any, tokenizer: Any, texts: Sequence[str], batch_size: int, max_tokens: int, *, n_groups: int = 1,
    head_at_last: bool = False,
) -> Iterator[torch.Tensor]:
    """Yield float32 next-token logits [n_groups * B, V] after each text of a batch, batch by batch.

    Each batch of ``batch_size`` texts is repeated ``n_groups`` times, group-major (one group
    per edit of ``models.hooks.edit_groups``; 1: the batch as is). ``head_at_last`` applies
    the LM head at the last real token only (``models.hooks.logits_at``): the same logits,
    without the head's matmul over every position.
    """
    import torch

    from interp_agent.core.models.hooks import logits_at

    if batch_size < 1 or max_tokens < 1:
        raise ValidationError(f"batch_size and max_tokens must be >= 1, got {batch_size} and {max_tokens}")
    pad = tokenizer.pad_token_id if tokenizer.pad_token_id is not None else (tokenizer.eos_token_id or 0)
    device = next(model.parameters()).device
    was_training = model.training
    model.eval()
    try:
        with torch.inference_mode():
            for start in range(0, len(texts), batch_size):
                seqs = [_prompt_ids(tokenizer, t, max_tokens) for t in texts[start : start + batch_size]]
                lengths_B = torch.tensor([len(s) for s in seqs])
                width = int(lengths_B.max())
                # Right padding keeps real tokens at positions 0..len-1, so position ids need no care.
                ids_BT = torch.full((len(seqs), width), pad, dtype=torch.long)
                mask_BT = torch.zeros((len(seqs), width), dtype=torch.long)
                for i, s in enumerate(seqs):
                    ids_BT[i, : len(s)] = torch.tensor(s, dtype=torch.long)
                    mask_BT[i, : len(s)] = 1
                ids_BT, mask_BT = ids_BT.repeat(n_groups, 1).to(device), mask_BT.repeat(n_groups, 1).to(device)
                last_B = (lengths_B - 1).repeat(n_groups).to(device)
                if head_at_last:
                    last_BV = logits_at(model, ids_BT, mask_BT, last_B)
                else:
                    logits_BTV = model(input_ids=ids_BT, attention_mask=mask_BT).logits
                    last_BV = logits_BTV[torch.arange(len(last_B), device=logits_BTV.device), last_B]
                yield last_BV.float()
    finally:
        model.train(was_training)


def _iter_next_token_probs(
    model: Any, tokenizer: Any, texts: Sequence[str], batch_size: int, max_tokens: int
) -> Iterator[torch.Tensor]:
    """Yield float32 next-token distributions [B, V] after each text, batch by batch."""
    import torch

    for logits_BV in _iter_next_token_logits(model, tokenizer, texts, batch_size, max_tokens):
        yield torch.softmax(logits_BV, dim=-1).cpu()


def next_token_probabilities(
    model: Any, tokenizer: Any, texts: Sequence[str], *, batch_size: int = 8, max_tokens: int = 256
) -> np.ndarray:
    """Next-token distribution after each text, float32 [len(texts), vocab].

    Texts are right-padded in batches and read at their last real token, so a text's
    distribution does not depend on what it is batched with. Texts longer than
    ``max_tokens`` keep their last ``max_tokens`` tokens.
    """
    parts = [p.numpy() for p in _iter_next_token_probs(model, tokenizer, list(texts), batch_size, max_tokens)]
    if not parts:
        return np.zeros((0, 0), dtype=np.float32)
    return np.concatenate(parts).astype(np.float32)


class TargetTokenScorer(CalibratedScorer):
    """Score = total next-token probability on target tokens after a text (in [0, 1])."""

    kind: ScorerKind = "target_token"

    def __init__(
        self,
        targets: Sequence[str] | None = None,
        *,
        n_inferred: int = 10,
        min_auroc: float = MIN_AUROC,
        threshold_rule: ThresholdRule = "best",
        batch_size: int = 8,
        max_tokens: int = 256,
    ) -> None:
        """Set up the scorer.

        Args:
            targets: target strings, each tokenised as written (so include the leading
                space: ``" meters"``); each contributes its first token. None infers
                ``n_inferred`` targets from the calibration prompts in :meth:`fit`.
            n_inferred: how many tokens to infer when ``targets`` is None.
            min_auroc: held-out AUROC below which the scorer refuses to score.
            threshold_rule: how the decision threshold is chosen on calibration prompts.
            batch_size: texts per forward pass.
            max_tokens: longest context kept per text (its last tokens).
        """
        super().__init__(min_auroc, threshold_rule)
        if targets is not None:
            if isinstance(targets, str) or not targets or not all(isinstance(t, str) and t for t in targets):
                raise ValidationError(
                    f"targets must be a non-empty list of non-empty strings, got {targets!r}",
                    hint='e.g. [" meters", " feet"], or None to infer them from calibration prompts',
                )
        if n_inferred < 1:
            raise ValidationError(f"n_inferred must be at least 1, got {n_inferred}", hint="10 is typical")
        if batch_size < 1 or max_tokens < 1:
            raise ValidationError(f"batch_size and max_tokens must be >= 1, got {batch_size} and {max_tokens}")
        self.target_strings = tuple(targets) if targets is not None else None
        self.n_inferred = n_inferred
        self.batch_size = batch_size
        self.max_tokens = max_tokens
        self.target_ids: tuple[int, ...] | None = None
        """Token ids whose probabilities are summed (None until fitted)."""
        self.target_tokens: tuple[str, ...] | None = None
        """The target tokens as decoded strings."""
        self.targets_inferred: bool | None = None
        """Whether the targets were inferred from calibration prompts (stand-ins) rather than given
        (None until fitted)."""
        self._notes: list[str] = []

    def _resolve_targets(self, tokenizer: Any) -> None:
        ids: list[int] = []
        self._notes = []
        for t in self.target_strings or ():
            tok = list(tokenizer(t, add_special_tokens=False)["input_ids"])
            if not tok:
                raise ValidationError(f"target {t!r} tokenises to nothing", hint="remove it")
            if len(tok) > 1:
                self._notes.append(
                    f"target {t!r} is {len(tok)} tokens; only its first, {tokenizer.decode(tok[:1])!r}, counts"
                )
            if tok[0] not in ids:
                ids.append(tok[0])
        self.target_ids = tuple(ids)

    def _top_tokens(self, tokenizer: Any, probs_NV: np.ndarray, labels: np.ndarray) -> list[int]:
        """The ``n_inferred`` tokens most raised after positives relative to negatives (may be empty)."""
        diff_V = probs_NV[labels].mean(axis=0) - probs_NV[~labels].mean(axis=0)
        special = [i for i in getattr(tokenizer, "all_special_ids", []) if 0 <= i < diff_V.size]
        diff_V[special] = -np.inf
        diff_V[len(tokenizer):] = -np.inf  # padded logit rows beyond the tokenizer's vocabulary
        order = np.argsort(-diff_V, kind="stable")[: self.n_inferred]
        # A margin above float32 noise: equal inputs batched differently may differ by ~1e-9.
        return [int(i) for i in order if diff_V[i] > 1e-6]

    def _infer_targets(
        self, model: Any, tokenizer: Any, prompts: Sequence[ScoredPrompt], labels: np.ndarray
    ) -> np.ndarray:
        """Infer targets from the calibration prompts; returns their next-token distributions [N, V]."""
        probs_NV = next_token_probabilities(
            model, tokenizer, [p.text for p in prompts], batch_size=self.batch_size, max_tokens=self.max_tokens
        )
        chosen = self._top_tokens(tokenizer, probs_NV, labels)
        if not chosen:
            raise EvidenceError(
                "no token is more likely after positive than after negative calibration prompts",
                hint="give target strings, or examples where the criterion shows in the next token",
            )
        self.target_ids = tuple(chosen)
        self._notes = [
            f"targets inferred from {len(prompts)} calibration prompts",
            "inferred targets are stand-ins: the tokens most raised after positive calibration prompts, chosen "
            "by the scorer, not named by the criterion; for a criterion about the prompt itself an input probe "
            "may fit better",
        ]
        return probs_NV

    def _cross_validated_mass(
        self, tokenizer: Any, prompts: Sequence[ScoredPrompt], probs_NV: np.ndarray, labels: np.ndarray
    ) -> tuple[np.ndarray, int]:
        """Out-of-fold target mass: targets inferred on the other folds, read on each fold's prompts."""
        folds = cv_folds(prompts, labels, N_FOLDS)
        mass = np.zeros(len(labels))
        for f in range(int(folds.max()) + 1):
            test = folds == f
            ids = self._top_tokens(tokenizer, probs_NV[~test], labels[~test])
            # a fold whose training part raises no token gets mass 0: it tells the classes apart not at all
            mass[test] = probs_NV[np.ix_(test, ids)].sum(axis=1) if ids else 0.0
        return np.clip(mass, 0.0, 1.0), int(folds.max()) + 1

    def _mass(self, model: Any, tokenizer: Any, texts: Sequence[str]) -> np.ndarray:
        assert self.target_ids is not None
        import torch

        idx = torch.tensor(self.target_ids, dtype=torch.long)
        out = [p[:, idx].sum(dim=1).numpy()
               for p in _iter_next_token_probs(model, tokenizer, list(texts), self.batch_size, self.max_tokens)]
        return np.clip(np.concatenate(out), 0.0, 1.0).astype(np.float64) if out else np.zeros(0)

    def fit(self, model: Any, tokenizer: Any, calibration_prompts: Sequence[ScoredPrompt]) -> TargetTokenScorer:
        """Resolve or infer the target tokens and choose the threshold, on calibration prompts only.

        Raises:
            EvidenceError: the prompts lack a class, or no token separates them.
        """
        labels = self._labels(calibration_prompts, "calibration")
        texts = [p.text for p in calibration_prompts]
        if self.target_strings is not None:
            self._resolve_targets(tokenizer)
            self.targets_inferred = False
            mass = self._mass(model, tokenizer, texts)
            self._calibrate(calibration_prompts, mass, labels)
            self._set_validation("prompts", mass, labels, "next-token mass of the given targets after each "
                                 "calibration prompt (only the decision threshold is fitted there, and AUROC "
                                 "does not use it)")
        else:
            probs_NV = self._infer_targets(model, tokenizer, calibration_prompts, labels)
            self.targets_inferred = True
            assert self.target_ids is not None
            mass = np.clip(probs_NV[:, list(self.target_ids)].sum(axis=1), 0.0, 1.0).astype(np.float64)
            self._calibrate(calibration_prompts, mass, labels)
            oof, k = self._cross_validated_mass(tokenizer, calibration_prompts, probs_NV, labels)
            self._set_validation("prompts", oof, labels, f"{k}-fold cross-validation on calibration prompts: "
                                 "targets inferred on the other folds, next-token mass read on each fold")
        assert self.target_ids is not None
        self.target_tokens = tuple(tokenizer.decode([i]) for i in self.target_ids)
        return self

    def _report_extras(self) -> dict[str, Any]:
        return {"targets_inferred": self.targets_inferred}

    def validation_hint(self) -> str:
        return ("give target tokens that express the criterion, or use an input probe (scorer='probe') "
                "for a criterion about the prompt itself")

    def evaluate(self, model: Any, tokenizer: Any, held_out_prompts: Sequence[ScoredPrompt]) -> ScorerReport:
        """Held-out AUROC and accuracy; decides whether the scorer may serve.

        Raises:
            ValidationError: not fitted, or a held-out prompt was a calibration prompt.
            EvidenceError: the held-out prompts lack a class.
        """
        labels = self._check_held_out(held_out_prompts)
        scores = self._mass(model, tokenizer, [p.text for p in held_out_prompts])
        return self._finish_evaluation(scores, labels, self.target_tokens, self._notes)

    def score(self, model: Any, tokenizer: Any, texts: Sequence[str]) -> np.ndarray:
        """Probability mass on the target tokens as the next token after each text, float64 in [0, 1].

        Raises:
            EvidenceError: the scorer was not evaluated, or is near chance on held-out prompts.
        """
        self._check_serving()
        return self._mass(model, tokenizer, texts)

    def score_groups(
        self, model: Any, tokenizer: Any, texts: Sequence[str], n_groups: int, *, logprobs: bool = False
    ) -> tuple[np.ndarray, torch.Tensor | None]:
        """Scores [n_groups, len(texts)] with every batch of ``texts`` run once per group in one forward pass.

        Each batch (``batch_size`` texts, as :meth:`score` takes them) is repeated
        ``n_groups`` times, group-major, for ``models.hooks.edit_groups`` to edit group by
        group. With ``logprobs``, also the log-probabilities of the same next-token
        distributions [n_groups, len(texts), vocab]; None when a text's context here is not
        its plain tokenisation (an appended EOS dropped, a long text cut to ``max_tokens``),
        as that would be another distribution than the side-effect KL reads.

        Raises:
            EvidenceError: the scorer was not evaluated, or is near chance on held-out prompts.
        """
        import torch

        self._check_serving()
        assert self.target_ids is not None
        if not texts:
            return np.zeros((n_groups, 0)), None
        idx = torch.tensor(self.target_ids, dtype=torch.long)
        same = logprobs and all(
            _prompt_ids(tokenizer, t, self.max_tokens) == list(tokenizer(t)["input_ids"]) for t in texts)
        mass, lps = [], []
        for logits_BV in _iter_next_token_logits(model, tokenizer, list(texts), self.batch_size, self.max_tokens,
                                                 n_groups=n_groups, head_at_last=True):
            n = logits_BV.shape[0] // n_groups
            probs_BV = torch.softmax(logits_BV, dim=-1).cpu()
            mass.append(probs_BV[:, idx].sum(dim=1).numpy().reshape(n_groups, n))
            if same:
                lps.append(torch.log_softmax(logits_BV, dim=-1).cpu().view(n_groups, n, -1))
        scores = np.clip(np.concatenate(mass, axis=1), 0.0, 1.0).astype(np.float64)
        return scores, torch.cat(lps, dim=1) if same else None


# --------------------------------------------------------------------------- text classifier


def fit_logistic(x_ND: np.ndarray, y_N: np.ndarray, l2: float, iterations: int = 50) -> tuple[np.ndarray, float]:
    """L2-regularised logistic regression by Newton's method, classes weighted to balance.

    Minimises sum_i w_i log(1 + exp(-s_i z_i)) + l2/2 |w|^2 (bias not penalised).
    """
    n, d = x_ND.shape
    y = y_N.astype(np.float64)
    sample_w = np.where(y_N, n / (2 * y_N.sum()), n / (2 * (~y_N).sum()))
    xb = np.hstack([x_ND.astype(np.float64), np.ones((n, 1))])
    penalty = np.full(d + 1, l2)
    penalty[-1] = 0.0
    theta = np.zeros(d + 1)
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-np.clip(xb @ theta, -30, 30)))
        grad = xb.T @ (sample_w * (p - y)) + penalty * theta
        hess = (xb * (sample_w * p * (1 - p))[:, None]).T @ xb + np.diag(penalty) + 1e-9 * np.eye(d + 1)
        step = np.linalg.solve(hess, grad)
        theta -= step
        if np.abs(step).max() < 1e-8:
            break
    return theta[:-1], float(theta[-1])


# --------------------------------------------------------------------------- input probe


# --------------------------------------------------------------------------- one call


def fit_target_scorer(
    model: Any,
    tokenizer: Any,
    criterion_set: CriterionSet,
    *,
    targets: Sequence[str] | None = None,
    held_out_fraction: float = HELD_OUT_FRACTION,
    salt: str = SPLIT_SALT,
    **options: Any,
) -> TargetTokenScorer:
    """Split ``criterion_set``, fit a :class:`TargetTokenScorer` on calibration, evaluate it held out.

    ``targets`` defaults to the set's own (a pack's); when both are None they are
    inferred from the calibration prompts (build a :class:`TargetTokenScorer` yourself to
    infer them for a pack that lists targets). Read
    ``scorer.report`` for the held-out evidence; ``options`` go to the constructor.
    """
    calibration, held_out = split(criterion_set, held_out_fraction, salt)
    scorer = TargetTokenScorer(targets if targets is not None else criterion_set.targets, **options)
    scorer.fit(model, tokenizer, calibration).evaluate(model, tokenizer, held_out)
    return scorer
