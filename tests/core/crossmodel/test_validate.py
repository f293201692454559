"""validate_matches: grading of constructed effects, input errors before any model loads, dossier filing,
a tiny-model run end to end (synthetic activations), and one run on the embedded SmolLM2-135M (slow)."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from interp_agent.core.artifacts import schema_version
from interp_agent.core.crossmodel.compare import SideEffect, compare, grade_counts, paired_bootstrap
from interp_agent.core.crossmodel.validate import validate_matches
from interp_agent.core.errors import InputFileError, ValidationError

CAUSAL = {"interval_excludes_zero": True, "beats_controls": True, "meets_min_effect": True}
NOT_CAUSAL = {"interval_excludes_zero": False, "beats_controls": False, "meets_min_effect": False}


def _side(fid: str, effects: np.ndarray, causal: bool) -> SideEffect:
    m, s = float(effects.mean()), float(effects.std(ddof=1) / np.sqrt(len(effects)))
    return SideEffect(fid, m, (m - 2 * s, m + 2 * s), "causal" if causal else "no_effect",
                      CAUSAL if causal else NOT_CAUSAL, 0.01, "held_out_negatives")


def _effects(mean: float, n: int = 40, seed: int = 0, sd: float = 0.02) -> np.ndarray:
    return mean + sd * np.random.default_rng(seed).standard_normal(n)


# -- grading ---------------------------------------------------------------------------------------


def test_each_grade_is_reached_by_the_effects_that_define_it() -> None:
    base = _effects(0.2)
    cases = {
        "equivalent": (base, base + _effects(0.0, seed=1, sd=0.01), True, True),
        "same_direction": (base, 0.5 * base, True, True),
        "opposite": (base, -base, True, True),
        "similar": (base, _effects(0.001, seed=2), True, False),
    }
    rows = []
    for expected, (left_P, right_P, lc, rc) in cases.items():
        row = compare(_side("L1:D1", left_P, lc), _side("L2:D2", right_P, rc), left_P, right_P)
        assert row["grade"] == expected, (expected, row["grade_reason"])
        assert row["provenance"] == "interventional"
        rows.append(row)
    assert rows[1]["ratio"] == pytest.approx(0.5) and rows[1]["ratio_ci_includes_1"] is False
    assert rows[0]["ratio_ci_includes_1"] is True and rows[0]["sign_agree"] is True
    assert rows[2]["sign_agree"] is False
    assert "right without a causal effect" in rows[3]["grade_reason"]
    counts = grade_counts(rows)
    assert counts == {"similar": 1, "opposite": 1, "same_direction": 1, "equivalent": 1, "survive": 2,
                      "n_pairs": 4}


def test_a_pair_where_neither_side_is_causal_is_similar_whatever_the_ratio() -> None:
    left_P = _effects(0.2)
    row = compare(_side("a", left_P, False), _side("b", left_P, False), left_P, left_P)
    assert row["grade"] == "similar" and "left and right without a causal effect" in row["grade_reason"]


def test_the_paired_bootstrap_ratio_interval_covers_the_true_ratio_and_keeps_the_pairing() -> None:
    left_P = _effects(0.3, n=60, sd=0.1)
    stats = paired_bootstrap(left_P, 2 * left_P)
    assert stats["ratio"] == pytest.approx(2.0)
    lo, hi = stats["ratio_ci95"]
    assert lo == pytest.approx(2.0) and hi == pytest.approx(2.0)  # paired: every resample has ratio exactly 2
    noisy = paired_bootstrap(left_P, 2 * left_P + _effects(0.0, n=60, seed=3, sd=0.1))
    assert noisy["ratio_ci95"][0] < 2.0 < noisy["ratio_ci95"][1]
    assert noisy["difference_ci95"][0] < noisy["difference"] < noisy["difference_ci95"][1]
    assert paired_bootstrap(left_P[:1], left_P[:1])["ratio_ci95"] is None  # one prompt: no interval


# -- bad input, before any model loads ---------------------------------------------------------------


def _report(folder: Path, features: list[tuple[str, str]], model: str = "tiny") -> Path:
    folder.mkdir(parents=True, exist_ok=True)
    doc = {"schema_version": schema_version("inspection_report"), "model": model,
           "features": [{"feature_id": f, "direction": d} for f, d in features]}
    (folder / "report.json").write_text(json.dumps(doc))
    return folder / "report.json"


def _matches(pairs: list[tuple[str, str]], left: str = "tiny", right: str = "tiny") -> dict[str, Any]:
    return {"schema_version": schema_version("matches"),
            "provenance": {"left_model": left, "right_model": right, "inputs": []},
            "matches": [{"left_feature_id": a, "right_feature_id": b, "similarity": 0.5} for a, b in pairs]}


@pytest.fixture
def no_model(monkeypatch: pytest.MonkeyPatch) -> None:
    import interp_agent.core.models as models

    def refuse(*_a: Any, **_k: Any) -> Any:
        raise AssertionError("a model was loaded before the inputs were checked")

    monkeypatch.setattr(models, "load_model", refuse)


@pytest.mark.usefixtures("no_model")
@pytest.mark.parametrize("side", ["left", "right"])
def test_a_feature_absent_from_its_sides_report_is_named_with_its_side(tmp_path: Path, side: str) -> None:
    left = _report(tmp_path / "l", [("L0:D3", "promotes")])
    right = _report(tmp_path / "r", [("L1:D5", "promotes")])
    pairs = [("L0:D3", "L1:D5"), ("L0:D9", "L1:D5") if side == "left" else ("L0:D3", "L1:D7")]
    missing = "L0:D9" if side == "left" else "L1:D7"
    with pytest.raises(ValidationError, match=f"{side} feature '{missing}' is not in the {side} report"):
        validate_matches(_matches(pairs), out=tmp_path / "v", left_report=left, right_report=right,
                         pack="french", top=2)
    assert not (tmp_path / "v").exists()


@pytest.mark.usefixtures("no_model")
def test_reports_named_in_the_matches_provenance_are_the_default(tmp_path: Path) -> None:
    left = _report(tmp_path / "l", [("L0:D3", "promotes")])
    right = _report(tmp_path / "r", [("L1:D5", "promotes")])
    doc = _matches([("L0:D3", "L1:D6")])
    doc["provenance"]["inputs"] = [{"role": "left", "path": str(left)}, {"role": "right", "path": str(right.parent)}]
    with pytest.raises(ValidationError, match=r"right feature 'L1:D6' is not in the right report .*r/report.json"):
        validate_matches(doc, out=tmp_path / "v", pack="french")


@pytest.mark.usefixtures("no_model")
def test_bad_settings_and_missing_prompts_are_refused_with_what_to_do(tmp_path: Path) -> None:
    m = _matches([("L0:D3", "L1:D5")])
    with pytest.raises(ValidationError, match="`mode='clamp'` is not a validation mode"):
        validate_matches(m, out=tmp_path / "v", pack="french", mode="clamp")
    with pytest.raises(ValidationError, match="give finite strengths > 0"):
        validate_matches(m, out=tmp_path / "v", pack="french", strengths=(-1.0, 1.0))
    with pytest.raises(ValidationError, match="validation needs prompts"):
        validate_matches(m, out=tmp_path / "v")
    with pytest.raises(ValidationError, match="right feature 'direction:contrast@blocks.1.hook_resid_post' is a "
                                              "direction with no saved vector"):
        validate_matches(_matches([("L0:D3", "direction:contrast@blocks.1.hook_resid_post")]), out=tmp_path / "v",
                         pack="french")
    with pytest.raises(ValidationError, match="left feature 'SAE:L0:F2' is an SAE latent and no left SAE"):
        validate_matches(_matches([("SAE:L0:F2", "L1:D5")]), out=tmp_path / "v", pack="french")
    with pytest.raises(ValidationError, match="no right model"):
        doc = _matches([("L0:D3", "L1:D5")])
        doc["provenance"].pop("right_model")
        validate_matches(doc, out=tmp_path / "v", pack="french")
    (tmp_path / "busy").mkdir()
    (tmp_path / "busy" / "notes.txt").write_text("mine")
    with pytest.raises(ValidationError, match="a folder with other files in it"):
        validate_matches(m, out=tmp_path / "busy", pack="french")
    assert (tmp_path / "busy" / "notes.txt").read_text() == "mine"


def test_a_matches_file_that_is_not_one_names_the_file_and_field(tmp_path: Path) -> None:
    path = tmp_path / "m.json"
    path.write_text(json.dumps({"schema_version": "interp-agent.matches.v1", "matches": [{"left_feature_id": "x"}]}))
    with pytest.raises(InputFileError, match=r"m.json.*right_feature_id"):
        validate_matches(path, out=tmp_path / "v", pack="french")


def test_a_probe_across_two_models_is_refused() -> None:
    from interp_agent.core.crossmodel.validate import resolve_scorer

    with pytest.raises(ValidationError, match="each probe would read its own model"):
        resolve_scorer("probe", same_model=False, same_tokens=True, targets=None)
    assert resolve_scorer("auto", same_model=False, same_tokens=True, targets=[" x"])[0] == "target"
    assert resolve_scorer("auto", same_model=True, same_tokens=True, targets=None)[0] == "probe"
    assert resolve_scorer("auto", same_model=False, same_tokens=False, targets=[" x"])[0] == "classifier"


# -- dossier ---------------------------------------------------------------------------------------


def _validation_doc(grade: str, left: str = "model-a", right: str = "model-b") -> dict[str, Any]:
    side = {"effect": 0.2, "ci95": [0.15, 0.25], "verdict": "causal", "measured_on": "held_out_negatives"}
    other = side | ({"effect": -0.2, "ci95": [-0.25, -0.15], "verdict": "contradicts"} if grade == "opposite" else {})
    return {"schema_version": schema_version("match_validation"), "criterion": "the text is written in French",
            "provenance": {"left_model": left, "right_model": right, "synthetic": False},
            "settings": {"mode": "steer", "strengths": [1.0], "n_calibration": 60, "n_held_out": 28},
            "scorer": {"kind": "classifier"}, "summary": {"n_pairs": 1},
            "pairs": [{"left_feature_id": "L3:D1", "right_feature_id": "L4:D2", "left": side, "right": other,
                       "grade": grade, "grade_reason": "constructed", "sign_agree": grade != "opposite",
                       "ratio": 1.0, "ratio_ci95": [0.8, 1.2], "n_shared_prompts": 14}]}


def _file_match_then_validation(tmp_path: Path, grade: str, agree: bool | None = True) -> Any:
    from interp_agent.core.dossier import DossierStore, file_run
    from interp_agent.core.dossier.grading import grade_claim

    (tmp_path / "m").mkdir(parents=True)
    doc = _matches([("L3:D1", "L4:D2")], left="model-a", right="model-b")
    doc["matches"][0] |= {"signed_effects_agree": agree, "components": {}, "components_used": ["activation"]}
    (tmp_path / "m" / "matches.json").write_text(json.dumps(doc))
    store = DossierStore(tmp_path / "d.json")
    before = file_run(store, "match", tmp_path / "m")
    (tmp_path / "v").mkdir()
    (tmp_path / "v" / "validation.json").write_text(json.dumps(_validation_doc(grade)))
    after = file_run(store, "validate_matches", tmp_path / "v")
    (claim,) = store.read().claims
    assert claim.kind == "corresponds" and len(claim.evidence) == 2
    return before, after, grade_claim(claim)


def test_an_opposite_validation_contradicts_and_lowers_the_corresponds_claim(tmp_path: Path) -> None:
    before, after, grade = _file_match_then_validation(tmp_path, "opposite")
    (cid,) = before.grades
    assert before.grades[cid] == "transferred" and after.grades[cid] is None
    assert grade.lowered_from == "transferred" and "contradicted" in grade.reason
    assert after.kind == "validate_matches"


def test_an_equivalent_validation_raises_a_weak_match_to_the_transferred_rung(tmp_path: Path) -> None:
    before, after, grade = _file_match_then_validation(tmp_path, "equivalent", agree=False)
    (cid,) = before.grades
    assert before.grades[cid] is None  # the fingerprint match alone was weak (signed effects disagreed)
    assert after.grades[cid] == "transferred" and "validate_matches" in grade.reason


def test_a_similar_validation_is_weak_support_that_neither_raises_nor_lowers(tmp_path: Path) -> None:
    before, after, _ = _file_match_then_validation(tmp_path, "similar")
    (cid,) = before.grades
    assert before.grades[cid] == after.grades[cid] == "transferred"
    before2, after2, _ = _file_match_then_validation(tmp_path / "weak", "similar", agree=False)
    (cid2,) = before2.grades
    assert before2.grades[cid2] is None and after2.grades[cid2] is None


# -- end to end on a tiny random model (synthetic activations) ------------------------------------


@pytest.mark.usefixtures("one_torch_thread")
def test_a_tiny_model_validation_measures_both_sides_on_the_same_held_out_prompts(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch, write_letter_prompts
) -> None:
    import interp_agent.core.models as models
    from interp_agent.core.models import tiny_model

    tiny = tiny_model("llama", n_layers=2, d_model=32, vocab_size=100, seed=0)
    monkeypatch.setattr(models, "load_model", lambda *_a, **_k: tiny)
    left = _report(tmp_path / "l", [("L0:D3", "promotes")])
    right = _report(tmp_path / "r", [("L1:D5", "suppresses")])
    out = tmp_path / "v"
    result = validate_matches(_matches([("L0:D3", "L1:D5")]), out=out, left_report=left, right_report=right,
                              criterion="the text uses the letters x, y and z",
                              dataset=write_letter_prompts(tmp_path / "p.jsonl", n=24), top=1, strengths=(1.0,))
    assert result["scorer"]["kind"] == "probe" and result["scorer"]["why"].startswith("auto (2)")
    (row,) = result["pairs"]
    assert row["left"]["measured_on"] == row["right"]["measured_on"] == "held_out_negatives"
    ids = {side: {r["prompt_id"] for r in map(json.loads, (out / side / "interventions.jsonl").read_text().splitlines())
                  if r["feature_id"] == row[f"{side}_feature_id"]} for side in ("left", "right")}
    assert ids["left"] == ids["right"] and len(ids["left"]) == row["n_shared_prompts"] > 5
    assert all(p.startswith("0-") for p in ids["left"])  # the held-out negatives, where a push can show
    assert row["grade"] in ("similar", "opposite", "same_direction", "equivalent")
    assert result["summary"]["n_pairs"] == 1 and result["provenance"]["kind"] == "interventional"
    patch = row["patch_across"]
    assert result["patch_across"]["applies"] and patch["map"] == "ridge least squares"
    assert patch["from"] == "blocks.0.hook_resid_post" and patch["to"] == "blocks.1.hook_resid_post"
    written = json.loads((out / "validation.json").read_text())
    assert written["pairs"][0]["grade"] == row["grade"]
    assert "survive intervention" in (out / "validation.md").read_text()
    records = [json.loads(r) for r in (out / "right" / "interventions.jsonl").read_text().splitlines()]
    assert {r["feature_id"] for r in records if not r.get("metadata", {}).get("control_type")} == \
        {"L1:D5", patch["feature_id"]}
    assert any(r.get("metadata", {}).get("control_type") for r in records)  # controls on the right side too
    assert not [p for p in tmp_path.iterdir() if p.name.startswith(".v.")]  # no temporary folder left behind


# -- the embedded SmolLM2-135M ------------------------------------------------------------------------


@pytest.mark.slow
def test_the_embedded_models_matched_contrast_directions_survive_steering_on_both_layers(tmp_path: Path) -> None:
    """Two hf reports of SmolLM2-135M (blocks 10 and 20) on a slice of the negative_sentiment pack, fingerprint-
    matched; the top match (the two contrast directions) is steered on each side and measured on the same
    held-out negatives with one probe: both must push the criterion up, beyond their controls."""
    from interp_agent.api import match
    from interp_agent.core.criteria import load_pack
    from interp_agent.core.inspection import inspect
    from interp_agent.core.ranking import RankingConfig

    pack = load_pack("negative_sentiment")
    pos = [p for p in pack.prompts if p.criterion_score > 0.5][:30]
    neg = [p for p in pack.prompts if p.criterion_score <= 0.5][:30]
    dataset = tmp_path / "slice.jsonl"
    dataset.write_text("".join(json.dumps({"prompt_id": p.prompt_id, "text": p.text,
                                           "criterion_score": p.criterion_score}) + "\n" for p in pos + neg))
    for layer in (10, 20):
        inspect("smollm2-135m", pack.criterion, backend="hf", dataset=dataset,
                hookpoints=[f"blocks.{layer}.hook_resid_post"], out=tmp_path / f"r{layer}",
                config=RankingConfig(top_k=10))
    matches = match(tmp_path / "r10", tmp_path / "r20", out=tmp_path / "m" / "matches.json", use_text=False)
    assert matches["matches"][0]["left_feature_id"] == "direction:contrast@blocks.10.hook_resid_post"
    result = validate_matches(tmp_path / "m" / "matches.json", out=tmp_path / "v", left_report=tmp_path / "r10",
                              right_report=tmp_path / "r20", criterion=pack.criterion, dataset=dataset, top=1,
                              strengths=(1.0,), max_widening=1.0)
    (row,) = result["pairs"]
    assert row["right_feature_id"] == "direction:contrast@blocks.20.hook_resid_post"
    assert result["scorer"]["kind"] == "probe"
    assert row["left"]["measured_on"] == row["right"]["measured_on"] == "held_out_negatives"
    assert row["left"]["causal"] and row["right"]["causal"], row["grade_reason"]
    assert row["left"]["effect"] > 0 and row["right"]["effect"] > 0 and row["sign_agree"] is True
    assert row["grade"] in ("same_direction", "equivalent")
    patch = row["patch_across"]
    assert patch["map"] == "ridge least squares" and patch["cosine_with_right_feature"] > 0


def test_the_validate_matches_command_passes_its_options_through(monkeypatch: pytest.MonkeyPatch,
                                                                 capsys: pytest.CaptureFixture[str]) -> None:
    import argparse

    import interp_agent.core.crossmodel.validate as validate
    from interp_agent.cli.validate import add_validate_parsers

    seen: dict[str, Any] = {}

    def fake(matches: Any, **kwargs: Any) -> dict[str, Any]:
        seen.update(kwargs, matches=matches)
        return {"summary": {"survive": 0, "n_pairs": 0}, "scorer": {"kind": "probe", "why": "auto (2)"},
                "patch_across": {"applies": False, "note": "x"}, "pairs": [], "paths": {"json": "v.json", "md": "v.md"}}

    monkeypatch.setattr(validate, "validate_matches", fake)
    parser = argparse.ArgumentParser()
    add_validate_parsers(parser.add_subparsers())
    args = parser.parse_args(["validate-matches", "--matches", "m.json", "--out", "v", "--pack", "french",
                              "--strengths", "0.5,2", "--mode", "ablate", "--top", "2", "--left-model", "a"])
    assert args.func(args) == 0
    assert seen["strengths"] == (0.5, 2.0) and seen["mode"] == "ablate" and seen["top"] == 2
    assert seen["left_model"] == "a" and seen["right_model"] is None and seen["patch_across"] is True
    assert "0 of 0 matches survive intervention" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        parser.parse_args(["validate-matches", "--matches", "m", "--out", "v", "--strengths", "one"])
