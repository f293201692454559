"""intervene's behaviour scorers: the auto rule, the input probe, stand-in targets, validation on the applied text.

A tiny random Llama stands in for the model (``load_model`` is swapped for it), so these
run in seconds; the real-model check of the probe is in test_probe_live.py.
"""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from interp_agent.core.errors import EvidenceError, ValidationError
from interp_agent.core.live import SCORER_RULE, _probe_hookpoint, intervene, resolve_scorer, scorer_warnings
from interp_agent.core.models import tiny_model

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tests/conftest.py


@pytest.fixture(scope="module")
def tiny():
    return tiny_model("llama", n_layers=2, d_model=32, vocab_size=100, seed=0)


@pytest.fixture
def tiny_loaded(tiny, monkeypatch: pytest.MonkeyPatch):
    import interp_agent.core.models as models

    monkeypatch.setattr(models, "load_model", lambda name, *a, **k: tiny)
    return tiny


def test_auto_picks_target_with_targets_target_for_next_token_criteria_and_else_the_probe() -> None:
    assert resolve_scorer("auto", "anything", [" meters"]) == ("target", "auto (1): target tokens were given")
    kind, rule = resolve_scorer("auto", "The NEXT-token should be a unit", None)
    assert kind == "target" and rule is not None and rule.startswith("auto (2)")
    kind, rule = resolve_scorer("auto", "the text is a question about geography", None)
    assert kind == "probe" and rule is not None and rule.startswith("auto (3)")
    assert resolve_scorer("classifier", "the next token", None) == ("classifier", None)  # named: no rule applies
    assert "never picked automatically" in SCORER_RULE
    with pytest.raises(ValidationError, match="scorer must be one of"):
        resolve_scorer("probes", "x", None)


def test_the_probe_never_reads_upstream_of_an_edit(tiny) -> None:
    assert _probe_hookpoint(tiny, None, ["blocks.1.hook_resid_post", "blocks.0.mlp.hook_post"]) == (
        "blocks.1.hook_resid_post")
    assert _probe_hookpoint(tiny, "blocks.0.hook_resid_post", ["blocks.0.hook_resid_post"]) == (
        "blocks.0.hook_resid_post")
    with pytest.raises(ValidationError, match="upstream of"):
        _probe_hookpoint(tiny, "blocks.0.hook_resid_post", ["blocks.1.hook_resid_post"])


def test_intervene_scores_an_input_criterion_with_a_cross_validated_probe(tiny_loaded, tmp_path: Path,
                                                                         write_letter_prompts) -> None:
    result = intervene("tiny", "the text uses the letters x, y and z",
                       dataset=write_letter_prompts(tmp_path / "p.jsonl"),
                       features=["L0:D3"], strengths=(1.0,), out=tmp_path / "iv")
    summary = json.loads(Path(result.paths["summary"]).read_text())
    settings, scorer = summary["settings"], summary["scorer"]
    assert settings["scorer"] == "probe" and settings["scorer_requested"] == "auto"
    assert settings["scorer_rule"].startswith("auto (3)")
    assert scorer["kind"] == "input_probe" and scorer["validated_on"] == "prompts"
    assert scorer["hookpoint"] == "blocks.1.hook_resid_post" and scorer["pooling"] == "mean"
    assert scorer["validation"]["split"] == "calibration" and scorer["validation"]["n"] == settings["n_calibration"]
    assert scorer["validation_auroc"] >= 0.6 and scorer["serves"] and scorer["targets_inferred"] is None
    assert "forward pass of each prompt" in scorer["applied_to"]
    assert summary["warnings"] == []
    assert {"auroc", "accuracy", "threshold", "usable", "evidence"} <= set(scorer)  # the earlier fields stay
    assert summary["features"][0]["feature_id"] == "L0:D3"


def test_intervene_flags_inferred_target_tokens_as_stand_ins(tiny_loaded, tmp_path: Path, write_letter_prompts) -> None:
    result = intervene("tiny", "the text uses the letters x, y and z",
                       dataset=write_letter_prompts(tmp_path / "p.jsonl"),
                       features=["L0:D3"], strengths=(1.0,), scorer="target", out=tmp_path / "iv")
    summary = result.summary
    scorer = summary["scorer"]
    assert summary["settings"]["scorer"] == "target" and summary["settings"]["scorer_rule"] is None
    assert scorer["targets_inferred"] is True and scorer["validated_on"] == "prompts"
    assert "cross-validation" in scorer["validation"]["method"]
    (warning,) = summary["warnings"]
    assert "stand-ins" in warning and "scorer='probe'" in warning
    assert all(repr(t) in warning for t in scorer["targets"])


def test_scorer_warnings_are_empty_for_given_targets() -> None:
    from interp_agent.core.criteria import ScorerReport

    given = ScorerReport("target_token", 0.9, 0.8, 0.1, 30, 10, True, (" m",), targets_inferred=False)
    assert scorer_warnings(given) == []


def test_the_classifier_is_validated_on_continuations_before_it_may_serve(tiny_loaded, tmp_path: Path) -> None:
    pytest.importorskip("sentence_transformers")
    # the French classifier reads French prompts well (held-out AUROC ~1), but a random model's continuations
    # are not French: validated on those continuations (AUROC ~0.6 here), it may not serve
    with pytest.raises(EvidenceError, match=r"near chance in validation on calibration continuations") as err:
        intervene("tiny", None, pack="french", features=["L0:D3"], strengths=(1.0,), scorer="classifier",
                  max_new_tokens=4, min_scorer_auroc=0.7, out=tmp_path / "iv")
    assert "probe" in (err.value.hint or "")


def test_a_classifier_validated_on_continuations_reports_that_validation(
    tiny_loaded, tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    pytest.importorskip("sentence_transformers")
    from interp_agent.core.interventions.continuation import ContinuationScorer

    seen: list[list[str]] = []

    def echo(self, model, tokenizer, texts):  # "continuations" that repeat the prompt: they carry its class
        seen.append(list(texts))
        return list(texts)

    monkeypatch.setattr(ContinuationScorer, "continuations", echo)
    result = intervene("tiny", None, pack="french", features=["L0:D3"], strengths=(1.0,), scorer="classifier",
                       max_new_tokens=4, out=tmp_path / "iv")
    scorer = result.summary["scorer"]
    assert scorer["kind"] == "text_classifier" and scorer["validated_on"] == "continuations"
    assert scorer["held_out_on"] == "continuations" and scorer["applied_to"] == "greedy continuations of 4 tokens"
    assert scorer["validation"]["n"] == result.summary["settings"]["n_calibration"]
    assert "greedy 4-token continuations" in scorer["validation"]["method"]
    # the first generation is of the calibration prompts (validation), before any held-out prompt
    from interp_agent.core.live import load_criterion_set, split_prompts

    criterion, prompts, _ = load_criterion_set(None, None, "french")
    calibration, held = split_prompts(criterion, prompts, held_out_fraction=0.3, salt="interp-agent")
    assert seen[0] == [p.text for p in calibration] and seen[1] == [p.text for p in held]
