"""Filing runs: what each kind of run (inspect, intervene, explain, match) puts into a dossier, and its stances."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from interp_agent.core.dossier import DossierStore, file_run, grade_claim
from interp_agent.core.errors import InputFileError, ValidationError


def _store(workspace: Path) -> DossierStore:
    return DossierStore.in_workspace(workspace, "units")


def _by_feature(store: DossierStore, kind: str) -> dict:
    return {c.feature_id: c for c in store.read().claims if c.kind == kind}


def test_an_inspect_report_files_a_tracks_claim_per_top_feature_with_its_rungs(workspace: Path, criterion: str):
    store = _store(workspace)
    result = file_run(store, "inspect", workspace / "runs" / "toy-a", run_id="toy-a", top=12)
    report = json.loads((workspace / "runs" / "toy-a" / "report.json").read_text())
    top = [f["feature_id"] for f in report["features"][:12]]
    claims = _by_feature(store, "tracks")
    assert list(claims) == top and len(result.claims_added) == 12
    first = claims[top[0]]
    assert {ev.rung for ev in first.evidence} == {"correlational", "held_out", "causal"}
    assert grade_claim(first).rung == "causal"
    assert all(ev.provenance == "synthetic" for c in claims.values() for ev in c.evidence)
    held = next(ev for ev in first.evidence if ev.rung == "held_out")
    feature = report["features"][0]["association"]["held_out"]
    assert held.numbers["auroc"] == pytest.approx(feature["auroc"], rel=1e-5)
    assert held.run.folder == "runs/toy-a" and held.run.file == "report.json" and held.run.run_id == "toy-a"
    dossier = store.read()
    assert dossier.criterion == criterion and dossier.models == ("toy/model-a",)
    assert dossier.runs[0].backend == "toy" and dossier.runs[0].forward_passes == 0


def test_a_held_out_interval_that_includes_chance_contradicts(workspace: Path):
    store = _store(workspace)
    file_run(store, "inspect", workspace / "runs" / "toy-a", top=20)
    report = json.loads((workspace / "runs" / "toy-a" / "report.json").read_text())
    chance = [f["feature_id"] for f in report["features"]
              if f["association"]["held_out"]["ci_excludes_chance"] is False]
    assert chance, "the toy report has features whose held-out intervals include chance"
    for fid in chance:
        claim = _by_feature(store, "tracks")[fid]
        held = next(ev for ev in claim.evidence if ev.rung == "held_out")
        assert held.stance == "contradicts" and "include chance" in held.note
        assert grade_claim(claim).rung != "held_out"
        assert "held_out contradicted" in grade_claim(claim).reason


def test_filing_a_run_twice_adds_nothing(workspace: Path):
    store = _store(workspace)
    first = file_run(store, "inspect", workspace / "runs" / "toy-a")
    again = file_run(store, "inspect", workspace / "runs" / "toy-a")
    assert first.evidence_added > 0
    assert again.evidence_added == 0 and again.evidence_already_filed == first.evidence_added
    assert again.claims_added == () and len(store.read().runs) == 1


def test_an_intervene_summary_files_causes_claims_by_verdict(workspace: Path):
    store = _store(workspace)
    result = file_run(store, "intervene", workspace / "runs" / "iv1", run_id="iv1", elapsed_s=61.5)
    claims = _by_feature(store, "causes")
    contrast = claims["direction:contrast@blocks.20.hook_resid_post"]
    (ev,) = contrast.evidence
    assert (ev.rung, ev.stance, ev.weak, ev.provenance) == ("causal", "supports", False, "interventional")
    assert ev.numbers["effect_ci95"] == pytest.approx([0.172026, 0.354904], rel=1e-5)
    assert ev.numbers["control_max_abs"] > 0 and ev.numbers["verdict"] == "causal"
    assert grade_claim(contrast).rung == "causal"
    weak = claims["L20:D17"]
    assert weak.evidence[0].weak and grade_claim(weak).rung is None and "weak" in grade_claim(weak).reason
    assert result.grades[contrast.id] == "causal"
    record = store.read().runs[0]
    assert record.seconds == 61.5 and record.forward_passes and record.forward_passes > 0


@pytest.mark.parametrize("verdict", ["no_effect", "contradicts"])
def test_a_no_effect_or_contradicting_verdict_contradicts_and_is_kept(workspace: Path, verdict: str):
    store = _store(workspace)
    file_run(store, "intervene", workspace / "runs" / "iv1")
    path = workspace / "runs" / "iv2" / "summary.json"
    path.parent.mkdir()
    summary = json.loads((workspace / "runs" / "iv1" / "summary.json").read_text())
    summary["features"][0]["verdict"] = verdict
    path.write_text(json.dumps(summary))
    file_run(store, "intervene", path.parent)
    claim = _by_feature(store, "causes")[summary["features"][0]["feature_id"]]
    assert [ev.stance for ev in claim.evidence] == ["supports", "contradicts"]
    grade = grade_claim(claim)
    assert grade.rung is None and grade.lowered_from == "causal" and grade.rungs["causal"] == "contradicted"


def test_explanations_beating_their_null_reach_explained_and_the_others_contradict(workspace: Path):
    from interp_agent.core.explain.explanations import iter_explanations

    store = _store(workspace)
    file_run(store, "explain", workspace / "runs" / "ex1", run_id="ex1")
    claims = _by_feature(store, "means")
    items = {i.explanation.feature_id: i for i in iter_explanations(workspace / "runs" / "ex1" / "explanations.jsonl")}
    assert set(claims) == set(items)
    for fid, item in items.items():
        score = item.score("embedding")
        assert score is not None
        (ev,) = claims[fid].evidence
        assert claims[fid].explanation == item.explanation.text
        assert ev.numbers["margin_ci95"] == pytest.approx(list(score.margin_over_random.ci95 or []), rel=1e-5)
        if not score.beats_random:
            assert ev.stance == "contradicts"
        elif score.auroc.ci95 is not None and score.auroc.ci95[0] > 0.5:
            assert ev.counts and grade_claim(claims[fid]).rung == "explained"
        else:
            assert ev.weak
    assert any(not i.score("embedding").beats_random for i in items.values())  # type: ignore[union-attr]
    assert store.read().runs[0].forward_passes == 400


def test_an_explanation_scored_above_chance_and_its_null_reaches_explained(workspace: Path):
    import shutil
    from dataclasses import replace

    from interp_agent.core.explain.explanations import Metric, iter_explanations, write_explanations

    items = list(iter_explanations(workspace / "runs" / "ex1" / "explanations.jsonl"))
    score = items[0].scores[0]
    better = replace(score, auroc=Metric(0.81, (0.7, 0.9)), margin_over_random=Metric(0.3, (0.15, 0.45)))
    items[0] = replace(items[0], scores=(better,))
    folder = workspace / "runs" / "ex2"
    folder.mkdir()
    shutil.copy(workspace / "runs" / "ex1" / "explain.json", folder / "explain.json")
    write_explanations(folder / "explanations.jsonl", items)
    store = _store(workspace)
    file_run(store, "explain", folder, run_id="ex2")
    claim = _by_feature(store, "means")[items[0].explanation.feature_id]
    assert grade_claim(claim).rung == "explained" and claim.evidence[0].tool == "explain"
    assert "margin +0.300 [+0.150, +0.450]" in grade_claim(claim).reason


def test_a_match_files_correspondences_across_models(workspace: Path):
    store = _store(workspace)
    file_run(store, "match", workspace / "runs" / "match-ab", run_id="match-ab")
    result = json.loads((workspace / "runs" / "match-ab" / "matches.json").read_text())
    claims = [c for c in store.read().claims if c.kind == "corresponds"]
    assert len(claims) == len(result["matches"]) > 0
    m = result["matches"][0]
    claim = next(c for c in claims if c.feature_id == m["left_feature_id"])
    assert (claim.model, claim.other_model, claim.other_feature_id) == ("toy/model-a", "toy/model-b",
                                                                        m["right_feature_id"])
    (ev,) = claim.evidence
    assert ev.rung == "transferred" and ev.provenance == "synthetic"
    assert ev.numbers["similarity"] == pytest.approx(m["similarity"], rel=1e-5)
    assert ev.weak == (m["signed_effects_agree"] is False)
    assert store.read().models == ("toy/model-a", "toy/model-b")


def test_imported_cards_file_at_the_imported_rung_with_their_label_as_a_hypothesis(workspace: Path):
    store = _store(workspace)
    file_run(store, "inspect", workspace / "runs" / "feat1")
    tracks = _by_feature(store, "tracks")["L18:F104921"]
    (ev,) = tracks.evidence
    assert (ev.rung, ev.provenance) == ("imported", "imported") and grade_claim(tracks).rung == "imported"
    assert ev.numbers["imported_criterion_effect"] == 0.78
    means = _by_feature(store, "means")["L18:F104921"]
    assert means.explanation == "constructed benchmark or test scenario" and grade_claim(means).rung == "imported"


def test_a_run_of_another_criterion_is_refused_unless_allowed(workspace: Path, criterion: str):
    store = _store(workspace)
    file_run(store, "inspect", workspace / "runs" / "toy-a")
    with pytest.raises(ValidationError, match="physical units"):
        file_run(store, "inspect", workspace / "runs" / "feat1")
    file_run(store, "inspect", workspace / "runs" / "feat1", allow_criterion_mismatch=True)
    assert store.read().criterion == criterion


def test_filing_from_a_folder_that_does_not_exist_or_of_another_kind_is_an_error(workspace: Path):
    store = _store(workspace)
    with pytest.raises(InputFileError, match="run folder not found"):
        file_run(store, "inspect", workspace / "runs" / "gone")
    with pytest.raises(InputFileError, match="summary.json"):
        file_run(store, "intervene", workspace / "runs" / "toy-a")
    with pytest.raises(ValidationError, match="kind"):
        file_run(store, "train", workspace / "runs" / "toy-a")  # type: ignore[arg-type]
    assert not store.exists()


def test_a_dossier_file_path_works_as_well_as_a_store(workspace: Path):
    path = workspace / "dossiers" / "by-path.json"
    result = file_run(path, "intervene", workspace / "runs" / "iv1")
    assert result.dossier == "by-path" and DossierStore(path).read().claims
    assert result.to_dict()["run"]["folder"] == "runs/iv1"
