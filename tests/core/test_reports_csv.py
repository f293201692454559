"""The ranked-features CSV: parsed back, every row equals the report it came from."""

from __future__ import annotations

import copy
import csv
import json
from pathlib import Path

import pytest

from interp_agent.cli import main
from interp_agent.core.inspect.report import InspectionReport
from interp_agent.core.inspection import inspect
from interp_agent.core.ranking import RankingConfig
from interp_agent.core.reports.csv import CSV_COLUMNS, write_features_csv

CRIT = "the model is aware it is being evaluated"


@pytest.fixture(scope="module")
def seed_report(tmp_path_factory: pytest.TempPathFactory) -> dict:
    seed = Path(__file__).resolve().parents[1] / "fixtures" / "seed"
    out = tmp_path_factory.mktemp("seed-report")
    inspect("my/model", CRIT, backend="records", records=seed / "activation_records.jsonl",
            interventions=seed / "interventions.jsonl", out=out)
    return json.loads((out / "report.json").read_text())


@pytest.fixture(scope="module")
def toy_report(tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("toy-report")
    inspect("toy/a", "mentions a unit", backend="toy", out=out, config=RankingConfig(top_k=12))
    return json.loads((out / "report.json").read_text())


def _read(path: Path) -> tuple[list[str], list[dict[str, str]]]:
    with path.open(newline="", encoding="utf-8") as fh:
        reader = csv.DictReader(fh)
        return list(reader.fieldnames or []), list(reader)


def _num(cell: str) -> float | None:
    return None if cell == "" else float(cell)


def _expected(feature: dict) -> dict:
    """The CSV's numbers, read straight from a report row."""
    assoc = feature["association"] or {}
    train, held = assoc.get("train") or {}, assoc.get("held_out") or {}
    causal = feature["causal"] or {}
    return {
        "importance": feature["importance"], "train_r": train.get("pearson_r"), "train_p": train.get("p_value"),
        "train_q": train.get("q_value"), "train_auroc": train.get("auroc"), "held_out_r": held.get("pearson_r"),
        "held_out_r_ci95_low": (held.get("pearson_r_ci95") or [None, None])[0],
        "held_out_r_ci95_high": (held.get("pearson_r_ci95") or [None, None])[1],
        "held_out_auroc": held.get("auroc"), "held_out_auroc_ci95_low": (held.get("auroc_ci95") or [None])[0],
        "held_out_q": held.get("q_value"), "causal_effect": causal.get("mean_effect"),
        "causal_ci95_low": (causal.get("ci95") or [None, None])[0],
        "causal_ci95_high": (causal.get("ci95") or [None, None])[1], "control_effect": causal.get("control_effect"),
    }


def test_seed_report_rows_read_back_equal_the_report_with_causal_evidence(seed_report: dict, tmp_path: Path) -> None:
    path = write_features_csv(seed_report, tmp_path / "out" / "features.csv")
    header, rows = _read(path)
    assert tuple(header) == CSV_COLUMNS
    assert [r["feature_id"] for r in rows] == [f["feature_id"] for f in seed_report["features"]]
    assert [int(r["rank"]) for r in rows] == list(range(1, len(rows) + 1))
    for row, feature in zip(rows, seed_report["features"], strict=True):
        assert {k: _num(row[k]) for k in _expected(feature)} == _expected(feature)  # exact: floats written by repr
        assert row["label"] == (feature["label"] or "")
        assert row["verdict"] == ((feature["causal"] or {}).get("verdict") or "")
        assert row["association_provenance"] == feature["provenance"]["association"]
        assert row["held_out_supported"] == str(feature["association"]["held_out_supported"]).lower()
    with_causal = [r for r in rows if r["causal_effect"]]
    assert with_causal and all(r["causal_provenance"] == "interventional" for r in with_causal)
    # the seed's held-out split has one prompt: no held-out statistics, so the cells are empty, not zero
    assert all(r["held_out_r"] == "" and r["held_out_n_prompts"] == "" for r in rows)


def test_toy_report_carries_held_out_intervals_and_says_synthetic(toy_report: dict, tmp_path: Path) -> None:
    path = write_features_csv(InspectionReport.from_json(toy_report), tmp_path / "toy.csv")
    _, rows = _read(path)
    assert len(rows) == len(toy_report["features"]) == 12
    top, feature = rows[0], toy_report["features"][0]
    held = feature["association"]["held_out"]
    assert float(top["held_out_r_ci95_low"]) < float(top["held_out_r"]) < float(top["held_out_r_ci95_high"])
    assert (float(top["held_out_auroc"]), int(top["held_out_n_prompts"])) == (held["auroc"], held["n_prompts"])
    assert float(top["held_out_auroc_ci95_high"]) == held["auroc_ci95"][1]
    assert {r["association_provenance"] for r in rows} == {"synthetic"}
    for row, feat in zip(rows, toy_report["features"], strict=True):
        assert {k: _num(row[k]) for k in _expected(feat)} == _expected(feat)


def test_labels_with_commas_quotes_and_newlines_survive_the_round_trip(seed_report: dict, tmp_path: Path) -> None:
    report = copy.deepcopy(seed_report)
    tricky = 'units, "metres"\nand feet; ünïcode'
    report["features"][0]["label"] = tricky  # an edited label, to exercise quoting
    _, rows = _read(write_features_csv(report, tmp_path / "q.csv"))
    assert rows[0]["label"] == tricky and len(rows) == len(report["features"])


def test_a_report_with_no_features_gives_just_the_header(seed_report: dict, tmp_path: Path) -> None:
    header, rows = _read(write_features_csv(seed_report | {"features": []}, tmp_path / "empty.csv"))
    assert tuple(header) == CSV_COLUMNS and rows == []


def test_cli_inspect_csv_out_writes_the_table_and_names_it(tmp_path: Path, capsys: pytest.CaptureFixture) -> None:
    target = tmp_path / "tables" / "ranked.csv"
    code = main(["inspect", "--model", "toy/a", "--criterion", "mentions a unit", "--backend", "toy",
                 "--top-k", "5", "--out", str(tmp_path / "run"), "--csv-out", str(target), "--json"])
    assert code == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["paths"]["csv"] == str(target)
    report = json.loads((tmp_path / "run" / "report.json").read_text())
    _, rows = _read(target)
    assert [r["feature_id"] for r in rows] == [f["feature_id"] for f in report["features"]]
