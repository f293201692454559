"""The input probe on the embedded SmolLM2-135M: the question pack's criterion is about the prompt itself."""

from __future__ import annotations

import pytest

pytestmark = pytest.mark.slow

PACK = "question"


@pytest.fixture(scope="module")
def loaded():
    from interp_agent.core.models import load_model

    return load_model("smollm2-135m")


def test_the_probe_validates_on_question_calibration_prompts_and_auto_picks_it(loaded) -> None:
    from interp_agent.core.criteria import load_pack
    from interp_agent.core.criteria.probe import InputProbeScorer
    from interp_agent.core.live import resolve_scorer, split_prompts

    pack = load_pack(PACK)
    assert pack.targets is None
    assert resolve_scorer("auto", pack.criterion, None)[0] == "probe"  # the criterion is about the input
    calibration, held = split_prompts(pack.criterion, pack.prompts, held_out_fraction=0.3, salt="interp-agent")
    probe = InputProbeScorer().fit(loaded.model, loaded.tokenizer, calibration)
    validation = probe.validation
    assert probe.hookpoint == f"blocks.{loaded.n_layers - 1}.hook_resid_post"
    assert validation is not None and validation.on == "prompts" and validation.n == len(calibration)
    assert validation.usable and validation.auroc > 0.75, validation  # cross-validated on calibration only
    report = probe.evaluate(loaded.model, loaded.tokenizer, held)  # held-out: reported as evidence
    assert report.serves and report.n_held_out == len(held), report
    scores = probe.score(loaded.model, loaded.tokenizer, ["Where is the capital of Peru?", "Lima is in Peru."])
    assert scores[0] > scores[1]
