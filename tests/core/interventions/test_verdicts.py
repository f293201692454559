"""Verdicts that mean something: a minimum effect, controls' spread, [0, 0] said plainly, an adaptive grid
chosen on calibration prompts only, stability across strengths, and one quotable confidence line."""

from __future__ import annotations

import zlib
from pathlib import Path

import numpy as np
import pytest
import torch

from interp_agent.core.formats.interventions import read_interventions, write_interventions
from interp_agent.core.formats.prompts import ScoredPrompt
from interp_agent.core.interventions import InterveneConfig, parse_target, run_interventions
from interp_agent.core.models import tiny_model
from interp_agent.core.models.hooks import capture
from interp_agent.core.ranking import summarise_interventions
from interp_agent.core.ranking.verdict import MIN_CAUSAL_EFFECT, UNCHANGED_NOTE, VERDICT_RULE, judge
from interp_agent.core.reports.html import render_html
from interp_agent.core.reports.markdown import render_markdown

HOOK = "blocks.0.hook_resid_post"


class DimScorer:
    """0.5 + alpha * tanh(mean of dim 3 at HOOK over non-first tokens): steering dim 3 moves it by a known amount.

    Records every call's texts, so a test can see which prompts were scored when.
    """

    def __init__(self, alpha: float) -> None:
        self.alpha = alpha
        self.calls: list[list[str]] = []

    def score(self, model, tokenizer, texts):
        self.calls.append(list(texts))
        enc = tokenizer(list(texts), return_tensors="pt", padding=True)
        with capture(model, [HOOK]) as store, torch.no_grad():  # entered inside the edit: sees the edited value
            model(**enc)
        mask = enc["attention_mask"].clone().float()
        mask[:, 0] = 0
        mean = (store[HOOK][0][..., 3] * mask).sum(1) / mask.sum(1).clamp_min(1)
        return (0.5 + self.alpha * torch.tanh(mean)).numpy()


class TextOnlyScorer:
    """A score that depends on the text alone: no edit can change it (like identical continuations)."""

    def score(self, model, tokenizer, texts):
        return np.array([(zlib.crc32(t.encode()) % 100) / 100 for t in texts])


@pytest.fixture(scope="module")
def setup():
    # a 32-wide model gains nothing from intra-op threads, and on a busy machine they cost 100x per forward
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    loaded = tiny_model("llama", n_layers=2, d_model=32, vocab_size=100, seed=0)
    rng = np.random.default_rng(1)
    words = ["abc", "de", "fgh", "ij", "klm", "nop", "qr", "stu"]
    prompts = [ScoredPrompt(f"p{i}", " ".join(rng.choice(words, 3)), float(i % 2)) for i in range(36)]
    target = parse_target("L0:D3", {HOOK: 32})
    yield loaded, target, prompts[:24], prompts[24:]
    torch.set_num_threads(threads)


def _run(setup, scorer, held=None, **cfg):
    loaded, target, calibration, held_out = setup
    config = InterveneConfig(mode="steer", n_random_directions=2, n_matched_features=1, **cfg)
    return run_interventions(loaded, [target], scorer, calibration=calibration, held_out=held or held_out,
                             criterion="c", model_name="tiny", config=config)


# the rule itself

def test_a_tiny_effect_whose_interval_excludes_zero_is_weak_with_the_minimum_as_its_reason() -> None:
    j = judge(np.full(15, 0.0008) + np.linspace(-1e-4, 1e-4, 15), [1e-5, -2e-5, 0.0], expected_sign=1)
    assert j.checks == {"interval_excludes_zero": True, "beats_controls": True, "meets_min_effect": False}
    assert j.verdict == "weak" and f"minimum {MIN_CAUSAL_EFFECT:g}" in j.reason


def test_an_effect_within_the_controls_spread_is_weak_even_when_large() -> None:
    effects = 0.2 + np.linspace(-0.02, 0.02, 12)
    # every control is below 0.2, but 3x their RMS (~0.45) is not
    j = judge(effects, [0.15, -0.15, 0.15], expected_sign=1)
    assert j.checks["interval_excludes_zero"] and j.checks["meets_min_effect"] and not j.checks["beats_controls"]
    assert j.verdict == "weak" and "controls' bar" in j.reason
    assert judge(effects, [0.01, -0.02, 0.0], expected_sign=1).verdict == "causal"


def test_a_large_effect_against_the_expected_direction_contradicts_and_a_tiny_one_is_no_effect() -> None:
    assert judge(-0.3 + np.linspace(-0.01, 0.01, 10), [0.01, 0.0], expected_sign=1).verdict == "contradicts"
    tiny = judge(-0.001 + np.linspace(-1e-4, 1e-4, 10), [1e-5], expected_sign=1)
    assert tiny.verdict == "no_effect" and "against the expected direction" in tiny.reason


def test_an_interval_of_exactly_zero_says_the_score_never_changed() -> None:
    j = judge(np.zeros(8), [0.0, 0.0], expected_sign=1)
    assert (j.verdict, j.ci95, j.note) == ("no_effect", (0.0, 0.0), UNCHANGED_NOTE)
    assert "exactly 0" in j.reason


# the runner on a tiny model

def test_a_tiny_significant_effect_on_a_model_is_weak_and_the_summary_states_the_rule(setup) -> None:
    f = _run(setup, DimScorer(0.3), strengths=(1.0,), max_widening=1).features[0]
    assert f["verdict_checks"]["interval_excludes_zero"] and f["effect"]["ci95"][0] > 0
    assert abs(f["effect"]["mean"]) < MIN_CAUSAL_EFFECT
    assert f["verdict"] == "weak" and "below" not in f["verdict_reason"] and "< the minimum 0.05" in f[
        "verdict_reason"]
    assert f["verdict_rule"] == VERDICT_RULE and f["verdict_rule"]["min_effect"] == 0.05
    assert f["confidence"].startswith("low: held-out effect +") and "on 6 prompts" in f["confidence"]


def test_an_edit_that_never_changes_the_score_is_no_effect_with_a_note(setup) -> None:
    run = _run(setup, TextOnlyScorer(), strengths=(1.0,), max_widening=1)
    f = run.features[0]
    assert f["effect"]["ci95"] == [0.0, 0.0] and f["verdict"] == "no_effect"
    assert f["note"] == UNCHANGED_NOTE and "never changed the score" in f["confidence"]
    rows = [r for r in run.records if r.control_type is None]
    assert rows and all(r.metadata["note"] == UNCHANGED_NOTE for r in rows)


def test_the_grid_widens_on_calibration_prompts_only_when_the_budget_is_barely_used(setup) -> None:
    _, _, calibration, held = setup
    scorer = DimScorer(0.3)
    f = _run(setup, scorer, strengths=(0.01,), max_widening=8).features[0]
    cal = f["calibration"]
    assert cal["given_grid"] == [0.01] and cal["grid"] == pytest.approx([0.01, 0.02, 0.04, 0.08])
    assert cal["widened"] and cal["widening"]["factors"] == [2.0, 4.0, 8.0]
    assert "cap reached" in cal["widening"]["stopped"] and cal["chosen"] == pytest.approx(0.08)
    assert [r["widened"] for r in cal["sweep"]] == [False, True, True, True]
    # every calibration scoring (the whole choice) happens before any held-out prompt is scored
    held_texts, cal_texts = {p.text for p in held}, {p.text for p in calibration}
    kinds = ["held" if set(c) <= held_texts else "cal" if set(c) <= cal_texts else "?" for c in scorer.calls]
    first_held = kinds.index("held")
    assert "?" not in kinds and "held" not in kinds[:first_held] and "cal" not in kinds[first_held:]
    assert kinds[:first_held].count("cal") == 1 + len(cal["grid"])  # the (cached) unedited scores + one per strength


def test_widening_stops_once_a_strength_uses_its_share_of_the_budget(setup) -> None:
    f = _run(setup, DimScorer(0.3), strengths=(1.0,), kl_budget=0.01).features[0]
    cal = f["calibration"]
    kls = [r["calibration_kl"] for r in cal["sweep"]]
    assert cal["widened"] and len(cal["grid"]) < 7  # stopped well before the 64x cap
    assert kls[-1] >= 0.1 * 0.01 and all(k < 0.1 * 0.01 for k in kls[:-1])
    assert "of the KL budget" in cal["widening"]["stopped"]
    assert cal["chosen_kl_budget_share"] == pytest.approx(kls[cal["grid"].index(cal["chosen"])] / 0.01)


def test_the_choice_does_not_depend_on_the_held_out_prompts(setup) -> None:
    _, _, calibration, held = setup
    other_held = [ScoredPrompt(f"h{i}", t, float(i % 2)) for i, t in
                  enumerate(["abc de", "qr stu", "ij klm nop", "fgh", "nop qr", "de ij"])]
    a = _run(setup, DimScorer(0.3), strengths=(0.5, 1.0), kl_budget=0.01).features[0]["calibration"]
    b = _run(setup, DimScorer(0.3), held=other_held, strengths=(0.5, 1.0), kl_budget=0.01).features[0]["calibration"]
    assert (a["grid"], a["chosen"]) == (b["grid"], b["chosen"])
    assert [r["calibration_signed_effect"] for r in a["sweep"]] == [r["calibration_signed_effect"] for r in b["sweep"]]


def test_stability_reports_every_in_budget_strength_without_changing_the_verdict(setup) -> None:
    f = _run(setup, DimScorer(0.3), strengths=(2.0, 16.0), kl_budget=5.0, max_widening=1).features[0]
    stab = f["stability"]
    by = {b["strength"]: b for b in stab["by_strength"]}
    assert set(by) == {2.0, 16.0} and by[16.0]["chosen"] and not by[2.0]["chosen"]
    assert f["strength"] == 16.0 and f["verdict"] == "causal" and by[16.0]["verdict"] == "causal"
    assert by[2.0]["verdict"] == "weak" and by[2.0]["effect"] == pytest.approx(by[16.0]["effect"] / 8, rel=0.1)
    assert (stab["share"], stab["n_same"], stab["n_strengths"]) == (0.5, 1, 2)
    assert f["confidence"].startswith("medium:") and "same verdict at 1/2 strengths" in f["confidence"]
    # reporting only: without it the choice, the effect and the verdict are the same
    g = _run(setup, DimScorer(0.3), strengths=(2.0, 16.0), kl_budget=5.0, max_widening=1,
             measure_stability=False).features[0]
    assert (g["strength"], g["verdict"], g["effect"]) == (f["strength"], f["verdict"], f["effect"])
    assert g["stability"]["n_strengths"] == 1


def test_the_records_carry_the_verdict_into_inspect_and_the_report_quotes_it(setup, tmp_path: Path) -> None:
    run = _run(setup, DimScorer(0.3), strengths=(2.0, 16.0), kl_budget=5.0, max_widening=1)
    f = run.features[0]
    rows = read_interventions(write_interventions(tmp_path / "iv.jsonl", run.records))
    causal = summarise_interventions(rows, "c").features["L0:D3"].to_json(1.0)
    assert (causal["verdict"], causal["verdict_reason"], causal["confidence"]) == (
        f["verdict"], f["verdict_reason"], f["confidence"])
    assert causal["stability"]["n_strengths"] == 2 and causal["verdict_source"].startswith("intervene run")
    report = {"model": "tiny", "criterion": "c", "method": {"ranking": "r"},
              "features": [{"feature_id": "L0:D3", "rank": 1, "causal": causal}]}
    md, page = render_markdown(report), render_html(report)
    for text in (md, page):
        assert "Verdict" in text or "verdict" in text
        assert "same verdict at 1/2 strengths" in text and "0.05 on the 0..1 score scale" in text
