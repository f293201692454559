"""The text-classifier behaviour scorer: logistic regression on all-MiniLM-L6-v2 embeddings of a text.

For criteria about a text's properties (language, code, sentiment). It is fitted on prompts
and meant for generated continuations, so :meth:`TextClassifierScorer.validate_on_texts`
validates it on the model's continuations of calibration prompts. The protocol it follows
(fit on calibration, evaluate held out, refuse near chance) is :mod:`.scorers`'.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any

import numpy as np

from interp_agent.core.criteria.scorers import (
    MIN_AUROC,
    CalibratedScorer,
    ScorerKind,
    ScorerReport,
    ScorerValidation,
    ThresholdRule,
    ValidatedOn,
    fit_logistic,
)
from interp_agent.core.criteria.sets import CriterionSet, split
from interp_agent.core.errors import ValidationError
from interp_agent.core.formats.prompts import ScoredPrompt
from interp_agent.core.ranking.splits import HELD_OUT_FRACTION, SPLIT_SALT

if TYPE_CHECKING:
    from interp_agent.core.matching.text import TextEncoder


class TextClassifierScorer(CalibratedScorer):
    """Score = probability that a text meets the criterion, by logistic regression on sentence embeddings.

    Embedding dimensions are standardised on the calibration prompts before the fit.
    """

    kind: ScorerKind = "text_classifier"

    def __init__(
        self,
        *,
        encoder: TextEncoder | None = None,
        l2: float = 1.0,
        min_auroc: float = MIN_AUROC,
        threshold_rule: ThresholdRule = "best",
    ) -> None:
        """Set up the scorer.

        Args:
            encoder: sentence encoder; None loads all-MiniLM-L6-v2 on first use.
            l2: ridge penalty on the weights over standardised embedding dimensions.
            min_auroc: held-out AUROC below which the scorer refuses to score.
            threshold_rule: how the decision threshold is chosen on calibration prompts.
        """
        super().__init__(min_auroc, threshold_rule)
        if l2 <= 0:
            raise ValidationError(f"l2 must be positive, got {l2}", hint="1.0 is the default")
        self._encoder = encoder
        self.l2 = l2
        self.weights: np.ndarray | None = None
        """Logistic-regression weights over the standardised embedding dimensions (None until fitted)."""
        self.bias = 0.0
        self._mean_D: np.ndarray | None = None
        self._scale_D: np.ndarray | None = None

    @property
    def encoder(self) -> TextEncoder:
        """The sentence encoder (loaded on first use)."""
        if self._encoder is None:
            from interp_agent.core.matching.text import load_text_encoder

            self._encoder = load_text_encoder()
        return self._encoder

    def _proba(self, texts: Sequence[str]) -> np.ndarray:
        return self._proba_of(self.encoder.encode(list(texts)))

    def _proba_of(self, emb_ND: np.ndarray) -> np.ndarray:
        assert self.weights is not None and self._mean_D is not None and self._scale_D is not None
        z_ND = (emb_ND.astype(np.float64) - self._mean_D) / self._scale_D
        return 1.0 / (1.0 + np.exp(-np.clip(z_ND @ self.weights + self.bias, -30, 30)))

    def fit(self, calibration_prompts: Sequence[ScoredPrompt]) -> TextClassifierScorer:
        """Fit the classifier and choose the threshold on calibration prompts.

        Raises:
            EvidenceError: the prompts lack a class.
        """
        labels = self._labels(calibration_prompts, "calibration")
        emb_ND = self.encoder.encode([p.text for p in calibration_prompts]).astype(np.float64)
        # Standardise each dimension (on calibration prompts): sentence embeddings are
        # anisotropic, and a criterion such as "is a question" lives in low-variance
        # directions that an unscaled ridge penalty all but ignores.
        mean_D, scale_D = emb_ND.mean(axis=0), emb_ND.std(axis=0) + 1e-6
        self._mean_D, self._scale_D = mean_D, scale_D
        self.weights, self.bias = fit_logistic((emb_ND - mean_D) / scale_D, labels, self.l2)
        self._calibrate(calibration_prompts, self._proba_of(emb_ND), labels)
        return self

    def validate_on_texts(
        self, texts: Sequence[str], calibration_prompts: Sequence[ScoredPrompt], *,
        on: ValidatedOn = "continuations", method: str | None = None,
    ) -> ScorerValidation:
        """Validate on the kind of text the classifier will be applied to, derived from calibration prompts.

        ``texts[i]`` is made from ``calibration_prompts[i]`` (e.g. the model's greedy
        continuation of it) and carries that prompt's label. The classifier was fitted on
        the prompts, never on these texts. Held-out prompts may not serve here: they are
        the evidence of whatever the scorer then measures.

        Raises:
            ValidationError: not fitted, lengths differ, or a prompt is not a calibration prompt.
            EvidenceError: the prompts lack a class.
        """
        self._check_fitted()
        if len(texts) != len(calibration_prompts):
            raise ValidationError(f"{len(texts)} texts for {len(calibration_prompts)} prompts; give one text a prompt")
        stray = [p.prompt_id for p in calibration_prompts if p.prompt_id not in self._calibration_keys]
        if stray:
            raise ValidationError(
                f"{len(stray)} prompts were not calibration prompts of this fit (e.g. {stray[0]!r})",
                hint="validate on texts made from the calibration prompts; held-out prompts are the evidence",
            )
        labels = self._labels(calibration_prompts, "validation")
        return self._set_validation(on, self._proba(texts), labels, method or (
            f"classifier fitted on calibration prompts, applied to {on} of those prompts, each labelled by its "
            "prompt's class"))

    def evaluate(
        self, held_out_prompts: Sequence[ScoredPrompt], *, texts: Sequence[str] | None = None,
        on: ValidatedOn = "continuations",
    ) -> ScorerReport:
        """Held-out AUROC and accuracy; decides whether the scorer may serve.

        ``texts`` (optional) are what the classifier reads in place of the prompts, one per
        held-out prompt and labelled by it, e.g. the model's continuations of them (``on``
        names their kind); by default the prompts themselves.

        Raises:
            ValidationError: not fitted, or a held-out prompt was a calibration prompt.
            EvidenceError: the held-out prompts lack a class.
        """
        labels = self._check_held_out(held_out_prompts)
        if texts is None:
            return self._finish_evaluation(self._proba([p.text for p in held_out_prompts]), labels, None)
        if len(texts) != len(held_out_prompts):
            raise ValidationError(f"{len(texts)} texts for {len(held_out_prompts)} prompts; give one text a prompt")
        return self._finish_evaluation(self._proba(texts), labels, None, held_out_on=on)

    def validation_hint(self) -> str:
        return ("the classifier, fitted on prompts, cannot tell the classes apart in the model's continuations: "
                "for a criterion about the prompt itself use an input probe (scorer='probe')")

    def score(self, texts: Sequence[str]) -> np.ndarray:
        """Probability that each text meets the criterion, float64 in [0, 1].

        Raises:
            EvidenceError: the scorer was not evaluated, or is near chance on held-out prompts.
        """
        self._check_serving()
        return self._proba(texts)


def fit_text_scorer(
    criterion_set: CriterionSet, *, held_out_fraction: float = HELD_OUT_FRACTION, salt: str = SPLIT_SALT,
    **options: Any,
) -> TextClassifierScorer:
    """Split ``criterion_set``, fit a :class:`TextClassifierScorer` on calibration, evaluate it held out.

    Read ``scorer.report`` for the held-out evidence; ``options`` go to the constructor.
    """
    calibration, held_out = split(criterion_set, held_out_fraction, salt)
    scorer = TextClassifierScorer(**options)
    scorer.fit(calibration).evaluate(held_out)
    return scorer
