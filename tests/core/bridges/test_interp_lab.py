"""interp-lab's real files (tests/fixtures/interp_lab, written by its releases) read as ours."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from interp_agent.cli import main
from interp_agent.core.errors import InputFileError
from interp_agent.core.graphs import build_graph, load_report_file
from interp_agent.core.matching.match import REPORT_SCHEMA, match_reports
from interp_agent.core.migrate.interp_lab import (
    SUPPORTED_REPORT_SCHEMAS,
    UNVERSIONED,
    import_interp_lab,
    read_interp_lab_matches,
    read_interp_lab_report,
)
from interp_agent.core.migrate.interp_lab_runs import read_interp_lab_run_config

FIX = Path(__file__).resolve().parents[2] / "fixtures" / "interp_lab"
RECORDS = {"0.2.0": "report_records_0_2_0.json", "1.0.0": "report_records_1_0_0.json",
           "3.1.0": "report_records_3_1_0.json"}


@pytest.mark.parametrize("version", sorted(RECORDS))
def test_every_release_report_reads_as_our_report_with_its_numbers_labelled(version: str) -> None:
    report = read_interp_lab_report(FIX / RECORDS[version])
    raw = json.loads((FIX / RECORDS[version]).read_text())
    assert report["schema_version"] == REPORT_SCHEMA
    assert report["provenance"]["imported_from"] == {
        "kind": "interp-lab", "schema_version": raw.get("schema_version", UNVERSIONED),
        "file": str(FIX / RECORDS[version]), "interp_lab_version": (raw["metadata"].get("tool") or {}).get("version"),
        "created_at": raw["created_at"]}
    assert [f["feature_id"] for f in report["features"]] == [c["feature_id"] for c in raw["cards"]]
    for feature, card in zip(report["features"], raw["cards"], strict=True):
        assert feature["association"] is None and feature["causal"] is None  # we measured nothing
        scores = feature["imported"]["scores"]
        assert scores["association"] == {"value": card["association"], "provenance": "correlational"}
        assert scores["causal_effect"]["provenance"] == "interventional"  # these runs had intervention records
        assert feature["importance"] == card["importance"]
        # the signed interventional effect is what matching compares; L9:F101's ablation raised the score
        assert feature["imported"]["causal_effects"]["criterion"] == card["causal_effects"]["signed_causal_effect"]
    assert report["features"][1]["direction"] == "suppresses"


def test_a_report_without_intervention_records_keeps_its_causal_numbers_correlational() -> None:
    report = read_interp_lab_report(FIX / "report_records_no_interventions_3_1_0.json")
    for feature in report["features"]:
        assert feature["imported"]["causal_effects"] is None  # matching must not read a correlation as causal
        assert feature["imported"]["interp_lab_causal_effects"]["provenance"] == "correlational"
        assert feature["imported"]["scores"]["causal_effect"]["provenance"] == "correlational"
        assert "correlational" in feature["notes"][0]


def test_a_toy_report_is_labelled_synthetic_throughout() -> None:
    report = read_interp_lab_report(FIX / "report_demo_toy_model_a_3_1_0.json")
    assert report["synthetic"] is True and report["warnings"][0].startswith("SYNTHETIC")
    assert {s["provenance"] for f in report["features"] for s in f["imported"]["scores"].values()} == {"synthetic"}


def test_an_unknown_schema_version_names_the_file_the_version_and_the_versions_read(tmp_path: Path) -> None:
    raw = json.loads((FIX / RECORDS["3.1.0"]).read_text()) | {"schema_version": "interp-lab.inspection_report.v9"}
    bad = tmp_path / "report.json"
    bad.write_text(json.dumps(raw))
    with pytest.raises(InputFileError) as exc:
        read_interp_lab_report(bad)
    text = str(exc.value)
    assert str(bad) in text and "interp-lab.inspection_report.v9" in text
    assert all(s in text for s in SUPPORTED_REPORT_SCHEMAS)


def test_the_report_loader_names_the_import_command_for_an_interp_lab_file() -> None:
    with pytest.raises(InputFileError) as exc:
        load_report_file(FIX / RECORDS["0.2.0"])
    assert "interp-lab inspection report" in str(exc.value) and "import-interp-lab" in (exc.value.hint or "")


def test_imported_reports_feed_export_graph_and_match(tmp_path: Path) -> None:
    for name in (RECORDS["0.2.0"], "report_demo_toy_model_a_3_1_0.json", "report_demo_toy_model_b_3_1_0.json"):
        import_interp_lab(FIX / name, tmp_path / name)
    report, _ = load_report_file(tmp_path / RECORDS["0.2.0"] / "report.json")
    graph = build_graph(report)
    assert [n["id"] for n in graph["nodes"][1:]] == ["L18:F104921", "L9:F101", "L21:F55012"]
    assert graph["summary"]["n_interventional_edges"] == 0  # imported numbers are not drawn as our measurements
    left, _ = load_report_file(tmp_path / "report_demo_toy_model_a_3_1_0.json" / "report.json")
    right, _ = load_report_file(tmp_path / "report_demo_toy_model_b_3_1_0.json" / "report.json")
    result = match_reports(left, right, use_text=False)
    best = result["matches"][0]  # interp-lab's toy reports: synthetic, and labelled so through matching
    assert best["components_used"] == ["activation", "decoder", "causal"]
    assert best["signed_effects_basis"] == "imported.causal_effects.criterion"
    assert set(best["provenance"].values()) == {"synthetic"}


def test_match_reports_of_both_schemas_are_read() -> None:
    old = read_interp_lab_matches(FIX / "matches_demo_0_2_0.json")
    new = read_interp_lab_matches(FIX / "matches_demo_3_1_0.json")
    assert old["provenance"]["imported_from"]["schema_version"] == UNVERSIONED
    assert new["provenance"]["imported_from"]["schema_version"] == "interp-lab.match_report.v1"
    assert old["pairs"][0]["left"] == "L8:F52739" and old["pairs"][0]["score"] == 0.803522


def test_a_run_config_maps_onto_our_steps_and_runs(tmp_path: Path) -> None:
    config = read_interp_lab_run_config(FIX / "run_records_3_1_0.json", run_dir=tmp_path / "run")
    assert [s["command"] for s in config["steps"]] == ["inspect", "export-graph"]
    assert config["steps"][0]["args"]["out"] == str((tmp_path / "run" / "inspect").resolve())
    assert "html_out" in config["description"]  # what was dropped is said
    result = import_interp_lab(FIX / "run_records_3_1_0.json", tmp_path / "cfg")
    assert result["commands"] == ["inspect", "export-graph"]


def test_an_unmapped_step_is_refused_by_name_with_the_closest_of_ours() -> None:
    with pytest.raises(InputFileError) as exc:
        read_interp_lab_run_config(FIX / "run_sae_3_1_0.json")
    assert "prepare-sae-prompts" in str(exc.value) and "steps[0]" in str(exc.value)
    assert exc.value.hint is not None and "train-sae" in exc.value.hint


def test_cli_imports_a_report_that_our_match_then_reads(tmp_path: Path, capsys: pytest.CaptureFixture[str]) -> None:
    assert main(["import-interp-lab", str(FIX / RECORDS["1.0.0"]), "--out", str(tmp_path / "a"), "--json"]) == 0
    result = json.loads(capsys.readouterr().out)
    assert result["kind"] == "report" and result["n_features"] == 3
    written = json.loads((tmp_path / "a" / "report.json").read_text())
    assert written["schema_version"] == REPORT_SCHEMA and (tmp_path / "a" / "report.md").is_file()
