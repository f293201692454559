"""Integration on the embedded SmolLM2-135M: hf inspect, steering with controls, and causal evidence fed back."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

pytestmark = pytest.mark.slow

PACK = "measurement_unit"


@pytest.fixture(scope="module")
def hf_report(tmp_path_factory: pytest.TempPathFactory):
    from interp_agent.core.inspection import inspect
    from interp_agent.core.ranking import RankingConfig

    out = tmp_path_factory.mktemp("hf")
    return inspect("smollm2-135m", "", backend="hf", pack=PACK, out=out, config=RankingConfig(top_k=10))


def test_hf_inspect_finds_the_contrast_direction_with_held_out_support(hf_report) -> None:
    report = hf_report.report
    assert report["synthetic"] is False and report["live"]["model_info"]["d_model"] == 576
    top5 = report["features"][:5]
    directions = [f for f in top5 if f["feature_id"].startswith("direction:contrast@")]
    assert directions, [f["feature_id"] for f in top5]
    for f in directions:
        assert f["association"]["held_out_supported"] and f["association"]["held_out"]["auroc"] > 0.8
    # token-level highlights for the top features' examples
    example = report["features"][0]["examples"][0]
    assert example["tokens"] and all(isinstance(t[1], float) for t in example["tokens"])
    html = Path(hf_report.paths["html"]).read_text()
    assert 'class="tok"' in html


def test_steering_along_the_learned_direction_raises_the_scorer_far_above_controls(hf_report) -> None:
    from interp_agent.core.criteria import TargetTokenScorer
    from interp_agent.core.interventions import InterveneConfig, parse_target, run_interventions
    from interp_agent.core.live import load_criterion_set, load_directions, split_prompts
    from interp_agent.core.models import load_model

    loaded = load_model("smollm2-135m")
    criterion, prompts, targets = load_criterion_set(None, None, PACK)
    calibration, held = split_prompts(criterion, prompts, held_out_fraction=0.3, salt="interp-agent")
    scorer = TargetTokenScorer(targets=targets)
    scorer.fit(loaded.model, loaded.tokenizer, calibration)
    assert scorer.evaluate(loaded.model, loaded.tokenizer, held).auroc > 0.8
    directions = load_directions(Path(hf_report.paths["json"]).parent)
    fid = "direction:contrast@blocks.15.hook_resid_post"
    target = parse_target(fid, {"blocks.15.hook_resid_post": 576}, directions)
    run = run_interventions(loaded, [target], scorer, calibration=calibration, held_out=held, criterion=criterion,
                            model_name="smollm2-135m", config=InterveneConfig(mode="steer", strengths=(1.0,)))
    summary = run.features[0]
    assert summary["effect"]["measured_on"] == "held_out_negatives"  # adding the concept where it is absent
    effect = summary["effect"]["mean"]
    controls = [r for r in run.records if r.control_type is not None]
    assert {r.control_type for r in controls} == {"random_direction", "matched_frequency"}
    control_effects = [np.mean([r.signed_effect for r in controls if r.feature_id == cid])
                       for cid in {r.feature_id for r in controls}]
    assert effect > 0.05 and summary["effect"]["ci95"][0] > 0
    assert effect > 5 * max(abs(c) for c in control_effects)
    assert summary["verdict"] == "causal"


def test_intervention_records_fed_back_to_inspect_move_features_as_the_evidence_says(hf_report, tmp_path: Path) -> None:
    from interp_agent.core.inspection import inspect
    from interp_agent.core.live import intervene
    from interp_agent.core.ranking import RankingConfig

    result = intervene("smollm2-135m", None, pack=PACK, report=hf_report.paths["json"], top_k=1,
                       strengths=(-1.0, 1.0), out=tmp_path / "iv")
    summary = json.loads(Path(result.paths["summary"]).read_text())
    assert summary["schema_version"] == "interp-agent.intervention_summary.v1"
    verdicts = {f["feature_id"]: f["verdict"] for f in summary["features"]}
    assert all(v in {"causal", "weak", "no_effect", "contradicts"} for v in verdicts.values())
    direction = next(f for f in verdicts if f.startswith("direction:"))
    assert verdicts[direction] == "causal"
    again = inspect("smollm2-135m", hf_report.report["criterion"], backend="records",
                    records=hf_report.paths["records"],
                    interventions=result.paths["interventions"], out=tmp_path / "again", config=RankingConfig(top_k=10))
    moved = {f["feature_id"]: f for f in again.report["features"]}
    assert moved[direction]["causal"]["agrees_with_association"] is True
    assert moved[direction]["causal"]["n_controls"] > 0
    before = next(f["importance"] for f in hf_report.report["features"] if f["feature_id"] == direction)
    assert moved[direction]["importance"] > before


def test_sae_latents_are_ranked_and_intervened_on_through_the_sae(tmp_path: Path) -> None:
    """A random SAE (synthetic weights, real model): the plumbing from SAE Lens folder to verdict."""
    import numpy as np
    from safetensors.numpy import save_file

    from interp_agent.core.inspection import inspect
    from interp_agent.core.live import intervene
    from interp_agent.core.ranking import RankingConfig

    rng = np.random.default_rng(0)
    sae_dir = tmp_path / "sae"
    sae_dir.mkdir()
    save_file({"W_enc": rng.normal(0, 0.05, (576, 128)).astype(np.float32),
               "W_dec": rng.normal(0, 0.05, (128, 576)).astype(np.float32),
               "b_enc": np.zeros(128, np.float32), "b_dec": np.zeros(576, np.float32)},
              str(sae_dir / "sae_weights.safetensors"))
    (sae_dir / "cfg.json").write_text(json.dumps({"d_in": 576, "d_sae": 128, "architecture": "standard",
                                                  "metadata": {"hook_name": "blocks.15.hook_resid_post"}}))
    report = inspect("smollm2-135m", "", backend="hf", pack=PACK, hookpoints=["blocks.15.hook_resid_post"], sae=sae_dir,
                     out=tmp_path / "r", config=RankingConfig(top_k=300, candidates=800))
    sae_features = [f for f in report.report["features"] if f["feature_id"].startswith("SAE:L15:F")]
    assert sae_features, "SAE latents should be ranked beside the residual dimensions"
    fid = sae_features[0]["feature_id"]
    result = intervene("smollm2-135m", None, pack=PACK, report=report.paths["json"], features=[fid], mode="ablate",
                       sae=sae_dir, out=tmp_path / "iv")
    (summary,) = result.summary["features"]
    assert summary["feature_id"] == fid and summary["hookpoint"] == "blocks.15.hook_resid_post"
    assert summary["verdict"] in {"causal", "weak", "no_effect", "contradicts"}
