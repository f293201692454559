"""The input probe: a behaviour scorer for criteria about the prompt itself.

A ridge logistic regression on the model's own residual stream (the last block's output by
default, mean-pooled without the first token), fitted and cross-validated on calibration
prompts only; its score is the probe's probability on the prompt's (edited) forward pass, so
it measures whether an edit changes what the model represents about its input.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import TYPE_CHECKING, Any, Literal

import numpy as np

from interp_agent.core.artifacts import schema_version
from interp_agent.core.criteria.scorers import (
    MIN_AUROC,
    N_FOLDS,
    CalibratedScorer,
    ScorerKind,
    ScorerReport,
    ThresholdRule,
    choose_threshold,
    cv_folds,
    fit_logistic,
)
from interp_agent.core.criteria.sets import CriterionSet, split
from interp_agent.core.errors import ValidationError
from interp_agent.core.formats.prompts import ScoredPrompt
from interp_agent.core.ranking.splits import HELD_OUT_FRACTION, SPLIT_SALT

if TYPE_CHECKING:
    pass


PROBE_L2 = 10.0
"""Default ridge penalty of :class:`InputProbeScorer` over standardised residual dimensions."""
SCORER_REPORT_SCHEMA = schema_version("scorer_report")

PROBE_L2 = 10.0
"""Default ridge penalty of :class:`InputProbeScorer` over standardised residual dimensions."""


ProbePooling = Literal["mean", "last"]


def _fit_ridge_logistic(x_ND: np.ndarray, y_N: np.ndarray, l2: float) -> tuple[np.ndarray, float]:
    """:func:`fit_logistic`, solved in the span of the rows when there are more dimensions than rows.

    The penalised weights of a ridge logistic regression lie in the span of the training
    rows (representer theorem; the bias is not penalised), so with ``D > N`` the fit runs
    on the ``N`` coordinates of that span and maps back: the same optimum, an N x N Newton
    system instead of a D x D one.
    """
    n, d = x_ND.shape
    if d <= n:
        return fit_logistic(x_ND, y_N, l2)
    _, s, vt = np.linalg.svd(x_ND, full_matrices=False)
    basis_RD = vt[s > s.max() * 1e-10]
    w_R, bias = fit_logistic(x_ND @ basis_RD.T, y_N, l2)
    return basis_RD.T @ w_R, bias


def default_probe_hookpoint(model: Any) -> str:
    """The residual stream after the model's last block, ``blocks.{n_layers - 1}.hook_resid_post``."""
    from interp_agent.core.models.hookpoints import model_layout

    return f"blocks.{len(model_layout(model).blocks) - 1}.hook_resid_post"


def pooled_activations(
    model: Any, tokenizer: Any, texts: Sequence[str], hookpoint: str, *, pooling: ProbePooling = "mean",
    batch_size: int = 16, max_length: int = 128,
) -> np.ndarray:
    """float64 [len(texts), width]: each text's activation at ``hookpoint``, pooled over its tokens.

    ``mean`` averages every real token but the first (which carries massive activations);
    ``last`` takes the last real token. Hooks are registered per batch, after any edit that
    is already active, so an edit upstream of ``hookpoint`` shows in what is read.
    """
    from interp_agent.core.models.harvest import (
        by_length,
        check_options,
        forward_batches,
        hook_reader,
        make_loop,
        resolve_points,
        tokenize,
    )

    check_options(batch_size, max_length, pooling)
    points = resolve_points(model, [hookpoint])
    ids = tokenize(tokenizer, list(texts), max_length, pooling, True)
    out = np.zeros((len(ids), points[0].width), dtype=np.float64)
    device = next(model.parameters()).device
    loop = make_loop(hook_reader(model, points), points, tokenizer, device, batch_size=batch_size, pooling=pooling,
                     exclude_first=True)
    was_training = model.training
    model.eval()
    try:
        for batch in forward_batches(loop, ids, by_length(ids, range(len(ids)))):
            out[batch.row_prompt] = batch.values[points[0].name].double().cpu().numpy()
    finally:
        model.train(was_training)
    return out


class InputProbeScorer(CalibratedScorer):
    """Score = probability, by a logistic-regression probe on the model's residual stream, that the input meets
    the criterion.

    For criteria about the prompt itself ("is a question about geography"). The probe reads
    ``hookpoint`` (default: the residual stream after the last block, downstream of every
    edit) averaged over the prompt's tokens after the first, standardised per dimension on
    calibration prompts, with a ridge penalty ``l2``. It is validated by stratified
    ``n_folds``-fold cross-validation on the calibration prompts (out-of-fold probabilities,
    which also set the decision threshold), then refitted on all of them. Its score is the
    probe's probability on the forward pass of each prompt, under whatever edit is active:
    an edit that changes what the model represents about the input moves it.
    """

    kind: ScorerKind = "input_probe"

    def __init__(
        self,
        hookpoint: str | None = None,
        *,
        pooling: ProbePooling = "mean",
        l2: float = PROBE_L2,
        n_folds: int = N_FOLDS,
        min_auroc: float = MIN_AUROC,
        threshold_rule: ThresholdRule = "best",
        batch_size: int = 16,
        max_length: int = 128,
    ) -> None:
        """Set up the scorer.

        Args:
            hookpoint: where the probe reads (a TransformerLens name); None: the last block's
                ``hook_resid_post``, resolved in :meth:`fit`.
            pooling: ``mean`` over the prompt's tokens after the first (default), or the ``last`` token.
            l2: ridge penalty over standardised dimensions (10: soft probabilities, so an edit's
                effect on them is not flattened by saturation).
            n_folds: cross-validation folds on calibration prompts (fewer when a class is smaller).
            min_auroc: validation (and held-out) AUROC below which the scorer refuses to score.
            threshold_rule: how the decision threshold is chosen on out-of-fold calibration scores.
            batch_size: prompts per forward pass.
            max_length: tokens kept per prompt.
        """
        super().__init__(min_auroc, threshold_rule)
        if pooling not in ("mean", "last"):
            raise ValidationError(f"pooling must be 'mean' or 'last', got {pooling!r}", hint="mean is the default")
        if l2 <= 0:
            raise ValidationError(f"l2 must be positive, got {l2}", hint=f"{PROBE_L2} is the default")
        if n_folds < 2:
            raise ValidationError(f"n_folds must be at least 2, got {n_folds}", hint=f"{N_FOLDS} is the default")
        if batch_size < 1 or max_length < 1:
            raise ValidationError(f"batch_size and max_length must be >= 1, got {batch_size} and {max_length}")
        self.requested_hookpoint = hookpoint
        self.hookpoint: str | None = hookpoint
        """The hookpoint the probe reads (resolved in fit when None was given)."""
        self.pooling: ProbePooling = pooling
        self.l2 = l2
        self.n_folds = n_folds
        self.batch_size = batch_size
        self.max_length = max_length
        self.weights: np.ndarray | None = None
        """Probe weights over the standardised residual dimensions (None until fitted)."""
        self.bias = 0.0
        self._mean_D: np.ndarray | None = None
        self._scale_D: np.ndarray | None = None

    @property
    def layer(self) -> int | None:
        """Block index of the probe's hookpoint (None until resolved)."""
        from interp_agent.core.ids import match_hookpoint

        point = match_hookpoint(self.hookpoint) if self.hookpoint else None
        return point.layer if point is not None else None

    def _acts(self, model: Any, tokenizer: Any, texts: Sequence[str]) -> np.ndarray:
        assert self.hookpoint is not None
        return pooled_activations(model, tokenizer, texts, self.hookpoint, pooling=self.pooling,
                                  batch_size=self.batch_size, max_length=self.max_length)

    def _fit_probe(self, x_ND: np.ndarray, y_N: np.ndarray) -> tuple[np.ndarray, np.ndarray, np.ndarray, float]:
        mean_D, scale_D = x_ND.mean(axis=0), x_ND.std(axis=0) + 1e-6
        w, b = _fit_ridge_logistic((x_ND - mean_D) / scale_D, y_N, self.l2)
        return mean_D, scale_D, w, b

    @staticmethod
    def _apply(x_ND: np.ndarray, mean_D: np.ndarray, scale_D: np.ndarray, w: np.ndarray, b: float) -> np.ndarray:
        return 1.0 / (1.0 + np.exp(-np.clip(((x_ND - mean_D) / scale_D) @ w + b, -30, 30)))

    def _proba_of(self, x_ND: np.ndarray) -> np.ndarray:
        assert self.weights is not None and self._mean_D is not None and self._scale_D is not None
        if x_ND.shape[1] != self.weights.shape[0]:
            raise ValidationError(f"the probe reads {self.weights.shape[0]} dims at {self.hookpoint} but got "
                                  f"{x_ND.shape[1]}", hint="score with the model the probe was fitted on")
        return self._apply(x_ND, self._mean_D, self._scale_D, self.weights, self.bias)

    def fit(self, model: Any, tokenizer: Any, calibration_prompts: Sequence[ScoredPrompt]) -> InputProbeScorer:
        """Cross-validate the probe on calibration prompts, then fit it on all of them.

        Raises:
            EvidenceError: the prompts lack a class, or a class has fewer than 2 prompts.
            ValidationError: the hookpoint does not resolve, or a prompt has nothing to pool.
        """
        labels = self._labels(calibration_prompts, "calibration")
        folds = cv_folds(calibration_prompts, labels, self.n_folds)
        self.hookpoint = self.requested_hookpoint or default_probe_hookpoint(model)
        x_ND = self._acts(model, tokenizer, [p.text for p in calibration_prompts])
        oof = np.zeros(len(labels))
        k = int(folds.max()) + 1
        for f in range(k):
            test = folds == f
            oof[test] = self._apply(x_ND[test], *self._fit_probe(x_ND[~test], labels[~test]))
        self._mean_D, self._scale_D, self.weights, self.bias = self._fit_probe(x_ND, labels)
        self._calibrate(calibration_prompts, self._proba_of(x_ND), labels)
        # the threshold from out-of-fold probabilities: in-sample ones of a probe in 500+ dims are all but separable
        self.threshold = choose_threshold(oof, labels, self.threshold_rule)
        self._set_validation("prompts", oof, labels, f"{k}-fold stratified cross-validation on calibration prompts "
                             f"(probe at {self.hookpoint}, {self.pooling}-pooled, l2 {self.l2:g})")
        return self

    def evaluate(self, model: Any, tokenizer: Any, held_out_prompts: Sequence[ScoredPrompt]) -> ScorerReport:
        """Held-out AUROC and accuracy (reported as evidence; the probe was chosen on calibration only).

        Raises:
            ValidationError: not fitted, or a held-out prompt was a calibration prompt.
            EvidenceError: the held-out prompts lack a class.
        """
        labels = self._check_held_out(held_out_prompts)
        scores = self._proba_of(self._acts(model, tokenizer, [p.text for p in held_out_prompts]))
        return self._finish_evaluation(scores, labels, None)

    def score(self, model: Any, tokenizer: Any, texts: Sequence[str]) -> np.ndarray:
        """The probe's probability that each text meets the criterion, on its (edited) forward pass; float64.

        Raises:
            EvidenceError: the scorer failed its validation, was not evaluated, or is near chance held out.
        """
        self._check_serving()
        return self._proba_of(self._acts(model, tokenizer, texts))

    def _report_extras(self) -> dict[str, Any]:
        return {"hookpoint": self.hookpoint, "pooling": self.pooling}

    def validation_hint(self) -> str:
        return ("the model's residual stream at the probe's layer does not tell the classes apart on calibration "
                "prompts: give more or clearer examples, another hookpoint, or target tokens (scorer='target')")


def fit_probe_scorer(
    model: Any,
    tokenizer: Any,
    criterion_set: CriterionSet,
    *,
    held_out_fraction: float = HELD_OUT_FRACTION,
    salt: str = SPLIT_SALT,
    **options: Any,
) -> InputProbeScorer:
    """Split ``criterion_set``, fit and cross-validate an :class:`InputProbeScorer` on calibration, evaluate it
    held out.

    Read ``scorer.validation`` (calibration) and ``scorer.report`` (held-out evidence);
    ``options`` go to the constructor.
    """
    calibration, held_out = split(criterion_set, held_out_fraction, salt)
    scorer = InputProbeScorer(**options)
    scorer.fit(model, tokenizer, calibration).evaluate(model, tokenizer, held_out)
    return scorer


