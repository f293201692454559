"""Grading: the highest rung reached, lowered by contradictions, with a reason that quotes the numbers."""

from __future__ import annotations

from interp_agent.core.dossier import Claim, Evidence, Rung, RunRef, Stance, grade_claim

REF = RunRef("runs/r1", "report.json", "r1")


def _ev(rung: Rung, stance: Stance = "supports", *, weak: bool = False, summary: str | None = None,
        at: str = "2026-01-01T00:00:00+00:00", note: str = "") -> Evidence:
    return Evidence.new(rung, stance, summary or f"{rung} {stance}", {"rung": rung, "stance": stance, "at": at}, REF,
                        provenance="correlational", tool="inspect", weak=weak, filed_at=at, note=note)


def _tracks(*evidence: Evidence) -> Claim:
    claim, _ = Claim.new("tracks", "m", "L1:D2", criterion="c").with_evidence(evidence)
    return claim


def test_the_grade_is_the_highest_rung_with_support():
    grade = grade_claim(_tracks(_ev("correlational"), _ev("held_out", summary="held-out AUROC 0.93 [0.88, 0.96]")))
    assert grade.rung == "held_out"
    assert "held-out AUROC 0.93 [0.88, 0.96]" in grade.reason and "r1" in grade.reason
    assert grade.rungs["causal"] == "missing" and grade.rungs["explained"] == "not_applicable"
    assert grade.lowered_from is None


def test_a_contradiction_at_the_top_rung_lowers_the_grade_and_is_kept():
    claim = _tracks(_ev("correlational"), _ev("held_out"), _ev("causal"),
                    _ev("causal", "contradicts", summary="verdict no_effect", at="2026-02-01T00:00:00+00:00"))
    grade = grade_claim(claim)
    assert grade.rung == "held_out" and grade.lowered_from == "causal"
    assert grade.rungs["causal"] == "contradicted"
    assert "causal contradicted (1 contradicting, 1 supporting): verdict no_effect" in grade.reason
    assert len(claim.evidence) == 4


def test_support_filed_after_a_contradiction_does_not_outweigh_it():
    claim = _tracks(_ev("held_out", "contradicts", at="2026-01-01T00:00:00+00:00"),
                    _ev("held_out", at="2026-03-01T00:00:00+00:00"), _ev("correlational"))
    assert grade_claim(claim).rung == "correlational"


def test_a_held_out_failure_leaves_only_the_training_association():
    grade = grade_claim(_tracks(_ev("correlational"), _ev("held_out", "contradicts", summary="AUROC 0.52 [0.4, 0.64]")))
    assert grade.rung == "correlational"
    assert "held_out contradicted: AUROC 0.52 [0.4, 0.64]" in grade.reason


def test_weak_support_is_shown_but_never_reaches_its_rung():
    causes, _ = Claim.new("causes", "m", "L1:D2", criterion="c").with_evidence(
        [_ev("causal", weak=True, summary="verdict weak", note="within the controls")])
    grade = grade_claim(causes)
    assert grade.rung is None and grade.rungs["causal"] == "weak"
    assert "causal weak only: verdict weak" in grade.reason and "within the controls" in grade.reason


def test_a_claim_without_evidence_says_so():
    grade = grade_claim(Claim.new("means", "m", "L1:D2", explanation="units"))
    assert grade.rung is None and grade.reason == "no evidence filed yet"
    assert grade.to_dict()["rungs"]["explained"] == "missing"
