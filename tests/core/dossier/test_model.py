"""Claims, evidence and dossiers: stable ids, strict validation, and a JSON round trip."""

from __future__ import annotations

import subprocess
import sys
from typing import Any

import pytest

from interp_agent.core.dossier import (
    Claim,
    Dossier,
    DossierFieldError,
    Evidence,
    RunRef,
    dossier_from_dict,
    dossier_to_dict,
    grade_claim,
    graded_dict,
)
from interp_agent.core.dossier.model import claim_id
from interp_agent.core.errors import ValidationError

REF = RunRef("runs/abc", "report.json", "abc")


def _evidence(rung: Any = "held_out", stance: Any = "supports", **kw: Any) -> Evidence:
    return Evidence.new(rung, stance, "held-out AUROC 0.9", {"auroc": 0.9, "auroc_ci95": [0.8, 0.95]}, REF,
                        provenance="correlational", tool="inspect", **kw)


def test_a_claim_id_depends_on_what_it_is_about_not_on_case_or_spacing():
    a = claim_id("tracks", "m", "L1:D2", criterion="The  next token")
    assert a == claim_id("tracks", "m", "L1:D2", criterion="the next token")
    assert a != claim_id("tracks", "m", "L1:D3", criterion="the next token")
    assert a != claim_id("causes", "m", "L1:D2", criterion="the next token")
    assert a != claim_id("tracks", "other", "L1:D2", criterion="the next token")
    assert a.startswith("tracks-")


def test_a_correspondence_is_one_claim_whichever_side_is_left():
    ab = Claim.new("corresponds", "a", "L1:F1", other_model="b", other_feature_id="L2:F9")
    ba = Claim.new("corresponds", "b", "L2:F9", other_model="a", other_feature_id="L1:F1")
    assert ab.id == ba.id


def test_another_explanation_of_a_feature_is_another_claim():
    one = Claim.new("means", "m", "L1:D2", explanation="fires on units")
    two = Claim.new("means", "m", "L1:D2", explanation="fires on numbers")
    assert one.id != two.id and one.criterion is None


def test_evidence_ids_ignore_the_filing_time_and_the_note():
    a = _evidence(filed_at="2026-01-01T00:00:00+00:00")
    b = _evidence(filed_at="2026-02-01T00:00:00+00:00", note="again")
    assert a.id == b.id
    assert a.id != _evidence(stance="contradicts").id


def test_filing_the_same_evidence_twice_adds_it_once():
    claim = Claim.new("tracks", "m", "L1:D2", criterion="c")
    once, n1 = claim.with_evidence([_evidence()])
    twice, n2 = once.with_evidence([_evidence(filed_at="2030-01-01T00:00:00+00:00")])
    assert (n1, n2) == (1, 0) and len(twice.evidence) == 1


@pytest.mark.parametrize("make, field", [
    (lambda: _evidence(rung="proven"), "rung"),
    (lambda: _evidence(stance="maybe"), "stance"),
    (lambda: _evidence(stance="contradicts", weak=True), "weak"),
    (lambda: Evidence.new("held_out", "supports", "s", {"x": {"nested": 1}}, REF, provenance="correlational",
                          tool="inspect"), "numbers.x"),
    (lambda: Evidence.new("held_out", "supports", "s", {"x": float("nan")}, REF, provenance="correlational",
                          tool="inspect"), "numbers.x"),
    (lambda: Evidence.new("held_out", "supports", "s", {}, REF, provenance="semantic",  # type: ignore[arg-type]
                          tool="inspect"),
     "provenance"),
    (lambda: RunRef("runs/x", "sub/report.json"), "file"),
])
def test_invalid_evidence_is_refused_naming_the_field(make, field):
    with pytest.raises(DossierFieldError) as err:
        make()
    assert err.value.field == field
    assert isinstance(err.value, ValidationError)


def test_a_claim_refuses_evidence_at_a_rung_its_kind_cannot_hold():
    claim = Claim.new("causes", "m", "L1:D2", criterion="c")
    with pytest.raises(DossierFieldError, match="causal") as err:
        claim.with_evidence([_evidence(rung="held_out")])
    assert err.value.field == "evidence[0].rung"


def test_kind_fields_are_checked():
    with pytest.raises(DossierFieldError, match="other_model"):
        Claim.new("corresponds", "a", "L1:F1")
    with pytest.raises(DossierFieldError, match="explanation"):
        Claim.new("means", "a", "L1:F1")
    with pytest.raises(DossierFieldError, match="criterion"):
        Claim.new("tracks", "a", "L1:F1")


def test_a_claim_whose_fields_no_longer_give_its_id_says_which_id_they_give():
    claim = Claim.new("tracks", "m", "L1:D2", criterion="c")
    raw = dossier_to_dict(Dossier.empty("d").add(claim))
    raw["claims"][0]["feature_id"] = "L1:D3"
    with pytest.raises(DossierFieldError) as err:
        dossier_from_dict(raw)
    assert err.value.field == "claims[0].id"
    assert claim_id("tracks", "m", "L1:D3", criterion="c") in err.value.detail


def test_a_dossier_round_trips_through_json():
    claim = Claim.new("tracks", "m", "L1:D2", criterion="c")
    dossier = Dossier.empty("units", criterion="c").add(claim, [_evidence(), _evidence(stance="contradicts")])
    again = dossier_from_dict(dossier_to_dict(dossier))
    assert again == dossier
    assert again.models == ("m",) and len(again.claims[0].evidence) == 2


@pytest.mark.parametrize("edit, field", [
    (lambda raw: raw["claims"][0]["evidence"][0].update(rung="proven"), "claims[0].evidence[0].rung"),
    (lambda raw: raw["claims"][0].update(colour="red"), "claims[0].colour"),
    (lambda raw: raw["claims"][0]["evidence"][0].pop("run"), "claims[0].evidence[0].run"),
    (lambda raw: raw["claims"][0]["evidence"][0]["run"].update(folder=""), "claims[0].evidence[0].run.folder"),
    (lambda raw: raw.update(schema_version="interp-agent.dossier.v0"), "schema_version"),
    (lambda raw: raw.update(name="../up"), "name"),
])
def test_a_bad_field_is_named_by_its_path(edit, field):
    claim = Claim.new("tracks", "m", "L1:D2", criterion="c")
    raw = dossier_to_dict(Dossier.empty("units").add(claim, [_evidence()]))
    edit(raw)
    with pytest.raises(DossierFieldError) as err:
        dossier_from_dict(raw)
    assert err.value.field == field


def test_importing_the_dossier_package_loads_no_mcp_numpy_or_torch():
    code = ("import sys, interp_agent.core.dossier; "
            "print(sorted(m for m in ('mcp', 'numpy', 'torch') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "[]"


def test_to_dict_carries_each_claims_grade_and_reads_back_without_it():
    claim = Claim.new("tracks", "m", "L1:D2", criterion="c")
    dossier = Dossier.empty("units", criterion="c").add(claim, [_evidence()])
    body = graded_dict(dossier)
    assert body["claims"][0]["grade"]["rung"] == "held_out" == grade_claim(dossier.claims[0]).rung
    assert dossier_from_dict(body) == dossier
    assert "grade" not in dossier_to_dict(dossier)["claims"][0]
