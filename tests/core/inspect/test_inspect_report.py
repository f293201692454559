"""The typed report writes today's report.json (v1) exactly, and its steps return new objects."""

from __future__ import annotations

import hashlib
import json
import re
from pathlib import Path

import numpy as np
import pytest

from interp_agent.core.artifacts import write_json
from interp_agent.core.inspect.report import FeatureEvidence, InspectionReport, relabel_synthetic
from interp_agent.core.inspection import inspect

ROOT = Path(__file__).resolve().parents[3]
SEED = ROOT / "tests" / "fixtures" / "seed"
SYNTHETIC = ROOT / "examples" / "synthetic"
CRIT = "the next token is a measurement unit"
BATCH = ROOT / "tests" / "fixtures" / "neuronpedia" / "saedashboard_batch-1_gpt2-small_0-res-jb.json"


class _WordEncoder:
    """Bag-of-words unit vectors; stands in for all-MiniLM-L6-v2 (ordering by shared words is enough here)."""

    def encode(self, texts: list[str]) -> np.ndarray:
        out = np.zeros((len(texts), 64), dtype=np.float32)
        for i, text in enumerate(texts):
            for word in re.findall(r"[a-z]+", text.lower()):
                out[i, int(hashlib.sha256(word.encode()).hexdigest(), 16) % 64] += 1.0
        return out / np.maximum(np.linalg.norm(out, axis=1, keepdims=True), 1e-9)


@pytest.fixture
def stand_in_encoder(monkeypatch: pytest.MonkeyPatch, tmp_path: Path) -> None:
    import interp_agent.core.matching.text as text

    monkeypatch.setenv("INTERP_AGENT_CACHE", str(tmp_path / "cache"))
    monkeypatch.setattr(text, "load_text_encoder", lambda: _WordEncoder())


RUNS = {
    "records": dict(model="gpt2-small", criterion=CRIT, backend="records", records=SEED / "activation_records.jsonl",
                    features=SEED / "features.jsonl", interventions=SEED / "interventions.jsonl",
                    allow_intervention_criterion_mismatch=True),
    "records_synthetic_files": dict(model="toy/model-a", criterion="mentions a measurement unit", backend="records",
                                    records=SYNTHETIC / "records.jsonl", features=SYNTHETIC / "features.jsonl",
                                    interventions=SYNTHETIC / "interventions.jsonl"),
    "toy": dict(model="toy/model-a", criterion="mentions a measurement unit", backend="toy"),
    "features": dict(model="gpt2-small", criterion=CRIT, backend="features", features=SEED / "features.jsonl",
                     interventions=SEED / "interventions.jsonl", allow_intervention_criterion_mismatch=True),
    "neuronpedia_cards": dict(model="gpt2-small", criterion="contingent conditions", backend="neuronpedia",
                              neuronpedia=[BATCH]),
}


@pytest.mark.parametrize("name", sorted(RUNS))
def test_a_written_report_read_back_and_written_again_is_the_same_json(
    name: str, stand_in_encoder: None, tmp_path: Path
) -> None:
    out = tmp_path / name
    result = inspect(out=out, **RUNS[name])  # type: ignore[arg-type]
    written = (out / "report.json").read_bytes()
    again = InspectionReport.from_json(json.loads(written)).to_json()
    assert write_json(tmp_path / "again.json", again).read_bytes() == written
    assert result.inspection is not None and result.inspection.to_json() == result.report
    assert json.dumps(result.report) == json.dumps(again)  # same keys in the same order


def test_toy_and_synthetic_input_reports_are_labelled_synthetic_throughout(tmp_path: Path) -> None:
    for name in ("toy", "records_synthetic_files"):
        report = inspect(out=tmp_path / name, **RUNS[name]).report  # type: ignore[arg-type]
        assert report["synthetic"] is True and report["warnings"][0].startswith("SYNTHETIC")
        for row in report["features"]:
            assert set(row["provenance"].values()) <= {"synthetic", None}
        if report["controls"]:
            assert report["controls"]["provenance"] == "synthetic"


def test_relabelling_returns_a_new_tree_and_leaves_its_input_alone() -> None:
    row = {"a": {"provenance": "correlational"}, "provenance": {"x": "imported", "y": None},
           "list": [{"provenance": "interventional"}]}
    before = json.dumps(row)
    out = relabel_synthetic(row)
    assert json.dumps(row) == before
    assert out == {"a": {"provenance": "synthetic"}, "provenance": {"x": "synthetic", "y": None},
                   "list": [{"provenance": "synthetic"}]}


def test_a_feature_row_keeps_keys_v1_does_not_name_and_its_json_is_a_copy(tmp_path: Path) -> None:
    report = inspect(out=tmp_path / "r", **RUNS["records"]).report  # type: ignore[arg-type]
    row = dict(report["features"][0]) | {"future_field": [1, 2]}
    feature = FeatureEvidence.from_json(row)
    assert feature.extra == {"future_field": [1, 2]} and feature.to_json() == row
    out = feature.to_json()
    out["examples"].clear()
    out["provenance"]["association"] = "changed"
    assert feature.examples and feature.provenance["association"] == "correlational"
    assert feature.marked_synthetic().provenance["association"] == "synthetic"
    assert feature.provenance["association"] == "correlational"
