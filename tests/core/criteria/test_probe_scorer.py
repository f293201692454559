"""The input probe: a logistic-regression probe on the residual stream, cross-validated on calibration prompts.

A tiny random Llama with a character tokenizer: the classes differ in which letters their
texts use, which a random model's residual stream carries linearly.
"""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from interp_agent.core.criteria.probe import InputProbeScorer, _fit_ridge_logistic, pooled_activations
from interp_agent.core.criteria.scorers import ScorerReport, ScorerValidation, cv_folds, fit_logistic
from interp_agent.core.errors import EvidenceError, ValidationError
from interp_agent.core.formats.prompts import ScoredPrompt
from interp_agent.core.interventions import edit_fn
from interp_agent.core.models import tiny_model
from interp_agent.core.models.hooks import edit

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tests/conftest.py


@pytest.fixture(scope="module")
def tiny():
    return tiny_model("llama", n_layers=2, d_model=32, vocab_size=100, seed=0)


def _texts(letters: str, n: int, seed: int) -> list[str]:
    rng = np.random.default_rng(seed)
    return ["".join(rng.choice(list(letters), size=int(rng.integers(12, 20)))) for _ in range(n)]


def _prompts(tag: str, n: int, seed: int) -> list[ScoredPrompt]:
    """``n`` positives (letters a-f and x-z) and ``n`` negatives (a-f and k-m)."""
    pos = [ScoredPrompt(f"{tag}-pos-{i}", t, 1.0) for i, t in enumerate(_texts("abcdefxyz", n, seed))]
    neg = [ScoredPrompt(f"{tag}-neg-{i}", t, 0.0) for i, t in enumerate(_texts("abcdefklm", n, seed + 1))]
    return pos + neg


def test_probe_is_cross_validated_on_calibration_and_reads_the_edited_forward_pass(tiny) -> None:
    calibration, held_out = _prompts("cal", 20, 0), _prompts("ho", 10, 100)
    scorer = InputProbeScorer().fit(tiny.model, tiny.tokenizer, calibration)
    assert scorer.hookpoint == "blocks.1.hook_resid_post" and scorer.layer == 1  # the last block: after every edit
    validation = scorer.validation
    assert validation is not None and validation.on == "prompts" and validation.n == 40 and validation.n_positive == 20
    assert validation.usable and validation.auroc > 0.9, validation
    assert "5-fold" in validation.method and "mean-pooled" in validation.method
    report = scorer.evaluate(tiny.model, tiny.tokenizer, held_out)
    assert report.kind == "input_probe" and report.validated_on == "prompts" and report.serves
    assert report.hookpoint == "blocks.1.hook_resid_post" and report.pooling == "mean"
    assert report.targets is None and report.targets_inferred is None and report.usable

    texts = [p.text for p in held_out]
    scores = scorer.score(tiny.model, tiny.tokenizer, texts)
    assert scores.shape == (20,) and np.all((scores >= 0) & (scores <= 1))
    # the score is the probe on the model's own pass: an edit upstream of the probe moves it
    u = torch.zeros(32)
    u[0] = 1.0
    with edit(tiny.model, "blocks.0.hook_resid_post", edit_fn("steer", u, 20.0)):
        steered = scorer.score(tiny.model, tiny.tokenizer, texts)
    assert np.abs(steered - scores).max() > 0.05
    np.testing.assert_allclose(scorer.score(tiny.model, tiny.tokenizer, texts), scores)  # the edit is gone


def test_probe_fit_reads_calibration_prompts_only(tiny) -> None:
    calibration = _prompts("cal", 12, 0)
    seen: list[tuple[int, ...]] = []
    original = tiny.model.forward

    def recording(*args, **kwargs):
        for row, mask in zip(kwargs["input_ids"], kwargs["attention_mask"], strict=True):
            seen.append(tuple(row[mask.bool()].tolist()))
        return original(*args, **kwargs)

    tiny.model.forward = recording
    try:
        InputProbeScorer().fit(tiny.model, tiny.tokenizer, calibration)
    finally:
        del tiny.model.forward
    assert seen and set(seen) <= {tuple(tiny.tokenizer(p.text)["input_ids"]) for p in calibration}


def test_probe_refuses_when_near_chance_in_validation(tiny) -> None:
    # every text appears once as a positive and once as a negative: nothing can tell the classes apart
    texts = _texts("abcdefghijklm", 16, 7)
    calibration = [ScoredPrompt(f"t{i}-{y}", t, float(y)) for i, t in enumerate(texts) for y in (0, 1)]
    held_out = _prompts("ho", 6, 50)
    scorer = InputProbeScorer().fit(tiny.model, tiny.tokenizer, calibration)
    assert scorer.validation is not None and not scorer.validation.usable and scorer.validation.auroc < 0.6
    report = scorer.evaluate(tiny.model, tiny.tokenizer, held_out)
    assert not report.serves
    with pytest.raises(EvidenceError, match=r"near chance in validation: AUROC .* calibration prompts") as err:
        scorer.score(tiny.model, tiny.tokenizer, ["abc"])
    assert "hookpoint" in (err.value.hint or "")


def test_probe_checks_its_options_and_its_data(tiny) -> None:
    with pytest.raises(ValidationError, match="pooling"):
        InputProbeScorer(pooling="max")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="l2"):
        InputProbeScorer(l2=0.0)
    with pytest.raises(EvidenceError, match="at least 2 calibration prompts of each class"):
        InputProbeScorer().fit(tiny.model, tiny.tokenizer, _prompts("c", 6, 0)[:7])
    scorer = InputProbeScorer()
    with pytest.raises(ValidationError, match="not fitted"):
        scorer.evaluate(tiny.model, tiny.tokenizer, _prompts("c", 3, 0))
    calibration = _prompts("cal", 8, 0)
    scorer.fit(tiny.model, tiny.tokenizer, calibration)
    with pytest.raises(EvidenceError, match="not been evaluated"):
        scorer.score(tiny.model, tiny.tokenizer, ["abc"])
    with pytest.raises(ValidationError, match="were also calibration prompts"):
        scorer.evaluate(tiny.model, tiny.tokenizer, calibration[:2] + _prompts("ho", 2, 9))


def test_last_token_pooling_reads_the_last_real_token_whatever_the_padding(tiny) -> None:
    texts = ["abcdefgh", "xy", "klmklmklmklm"]
    last = pooled_activations(tiny.model, tiny.tokenizer, texts, "blocks.1.hook_resid_post", pooling="last")
    alone = np.concatenate([pooled_activations(tiny.model, tiny.tokenizer, [t], "blocks.1.hook_resid_post",
                                               pooling="last") for t in texts])
    np.testing.assert_allclose(last, alone, rtol=1e-4, atol=1e-5)


def test_cv_folds_are_stratified_and_independent_of_order() -> None:
    prompts = _prompts("p", 11, 0)
    labels = np.array([p.criterion_score == 1 for p in prompts])
    folds = cv_folds(prompts, labels, 5)
    for f in range(5):
        assert labels[folds == f].any() and (~labels[folds == f]).any()
    order = np.random.default_rng(0).permutation(len(prompts))
    again = cv_folds([prompts[i] for i in order], labels[order], 5)
    assert again.tolist() == folds[order].tolist()
    assert cv_folds(prompts[:3] + prompts[11:14], labels[:3].tolist() + [False] * 3, 5).max() == 2  # k = class size


def test_ridge_logistic_in_the_span_of_the_rows_matches_the_full_fit() -> None:
    rng = np.random.default_rng(0)
    x = rng.normal(size=(12, 40))
    y = rng.random(12) < 0.5
    w_full, b_full = fit_logistic(x, y, 3.0)
    w_span, b_span = _fit_ridge_logistic(x, y, 3.0)
    np.testing.assert_allclose(w_span, w_full, atol=1e-6)
    assert b_span == pytest.approx(b_full, abs=1e-6)


def test_scorer_report_carries_its_validation_in_strict_json() -> None:
    validation = ScorerValidation("continuations", 0.8, 30, 15, "classifier on continuations")
    report = ScorerReport("text_classifier", float("nan"), 0.5, 0.1, 30, 10, False, None, validation=validation,
                          held_out_on="continuations")
    obj = report.to_json()
    assert obj["validated_on"] == "continuations" and obj["validation_auroc"] == 0.8
    assert obj["validation"]["usable"] and obj["validation"]["split"] == "calibration"
    assert obj["validation"]["n_negative"] == 15 and obj["held_out_on"] == "continuations"
    assert obj["auroc"] is None and obj["serves"] is False and "validation_evidence" in obj
    json.dumps(obj, allow_nan=False)
    bare = ScorerReport("target_token", 0.9, 0.8, 0.1, 30, 10, True, (" m",)).to_json()
    assert bare["validated_on"] is None and bare["validation"] is None and bare["serves"] is True
