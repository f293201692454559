"""Feature → feature edges: co-activation on held-out prompts only, and ablation effects on the embedded model."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import jsonschema
import numpy as np
import pytest
from scipy import stats

from interp_agent.core.errors import InputFileError, ValidationError
from interp_agent.core.feature_effects import pair_statistics
from interp_agent.core.graph_edges import (
    FEATURE_EFFECTS_SCHEMA,
    coactivation_edges,
    native_schema,
    read_feature_effects,
    split_activations,
    validate_graph,
)
from interp_agent.core.graphs import export_graph
from interp_agent.core.inspection import inspect

NP_SCHEMA = Path(__file__).resolve().parents[1] / "fixtures" / "neuronpedia" / "neuronpedia_graph-schema.json"
CRIT = "the text is about weather"


@pytest.fixture(scope="module")
def np_schema() -> dict:
    return json.loads(NP_SCHEMA.read_text())


def _planted_records(path: Path, n: int = 200) -> Path:
    """SYNTHETIC records: on held-out rows ``L1:D0`` and ``L2:D1`` co-vary (r ~ 0.8); on training rows ``L1:D0`` and
    ``L2:D2`` do instead. ``L3:D3`` is noise throughout, and every feature tracks the score a little."""
    rng = np.random.default_rng(0)
    rows = []
    for i in range(n):
        split = "held_out" if i % 2 else "train"
        score = float(i % 4 < 2)
        shared = rng.normal()
        acts = {"L1:D0": shared + 0.5 * score, "L2:D1": rng.normal(), "L2:D2": rng.normal(), "L3:D3": rng.normal()}
        partner = "L2:D1" if split == "held_out" else "L2:D2"
        acts[partner] = 0.8 * shared + 0.6 * rng.normal() + 0.3 * score
        rows.append({"model": "toy/m", "prompt_id": f"p{i}", "text": f"prompt {i}", "criterion_score": score,
                     "split": split, "features": acts, "synthetic": True})
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


@pytest.fixture(scope="module")
def planted_report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    folder = tmp_path_factory.mktemp("planted")
    records = _planted_records(folder / "records.jsonl")
    inspect("toy/m", CRIT, backend="records", records=records, out=folder / "r")
    return folder / "r" / "report.json"


def test_coactivation_is_measured_on_held_out_prompts_only(planted_report: Path, tmp_path: Path) -> None:
    graph = export_graph(planted_report, tmp_path / "g.json", validate=True)
    coact = [e for e in graph["edges"] if e["kind"] == "coactivation"]
    pairs = {(e["source"], e["target"]) for e in coact}
    assert ("L1:D0", "L2:D1") in pairs  # the held-out partner
    assert ("L1:D0", "L2:D2") not in pairs  # the training partner: never evidence
    info = graph["feature_edges"]["coactivation"]
    assert info["split"] == "held_out" and info["n_prompts"] == 100 and info["n_pairs_tested"] == 6
    edge = next(e for e in coact if e["target"] == "L2:D1")
    rows = [json.loads(line) for line in (planted_report.parent.parent / "records.jsonl").read_text().splitlines()]
    held = [r["features"] for r in rows if r["split"] == "held_out"]
    ref: Any = stats.pearsonr([f["L1:D0"] for f in held], [f["L2:D1"] for f in held])
    assert edge["weight"] == pytest.approx(ref.statistic, abs=1e-12)
    assert edge["p_value"] == pytest.approx(ref.pvalue, rel=1e-6, abs=1e-300)
    assert edge["ci95"] == pytest.approx(list(ref.confidence_interval(0.95)), abs=1e-9)
    assert edge["directed"] is False and edge["provenance"] == "synthetic" and edge["n"] == 100
    assert all(e["source"] < e["target"] for e in coact) and all(e["q_value"] <= 0.05 for e in coact)
    criterion_edges = [e for e in graph["edges"] if e["kind"] == "feature_criterion"]
    assert len(criterion_edges) == graph["summary"]["n_correlational_edges"] == 4
    assert graph["summary"]["n_coactivation_edges"] == len(coact)


def test_the_bh_threshold_and_the_training_split_are_refused_as_evidence(planted_report: Path) -> None:
    records = planted_report.parent.parent / "records.jsonl"
    ids = ["L1:D0", "L2:D1", "L2:D2", "L3:D3"]
    held = split_activations(records, ids, held_out_fraction=0.3, split_salt="interp-agent")
    loose, _ = coactivation_edges(held, alpha=1.0)
    strict, info = coactivation_edges(held, alpha=1e-12)
    assert len(loose) == info["n_pairs_tested"] == 6 and len(strict) < len(loose)
    assert all(e["q_value"] <= 1e-12 for e in strict)
    train = split_activations(records, ids, held_out_fraction=0.3, split_salt="interp-agent", split="train")
    with pytest.raises(ValidationError, match="held-out prompts only"):
        coactivation_edges(train)
    with pytest.raises(ValidationError, match="alpha"):
        coactivation_edges(held, alpha=0.0)


def test_a_report_without_usable_records_says_why_and_keeps_its_criterion_edges(
    planted_report: Path, tmp_path: Path, seed_dir: Path
) -> None:
    report = json.loads(planted_report.read_text())
    report["provenance"]["inputs"][0]["sha256"] = "0" * 64
    changed = tmp_path / "report.json"
    changed.write_text(json.dumps(report))
    graph = export_graph(changed, tmp_path / "g.json")
    assert "changed since" in graph["feature_edges"]["coactivation"]["skipped"]
    assert graph["summary"]["n_coactivation_edges"] == 0 and graph["summary"]["n_correlational_edges"] == 4
    given = export_graph(changed, tmp_path / "g2.json", records=planted_report.parent.parent / "records.jsonl")
    assert given["summary"]["n_coactivation_edges"] > 0
    with pytest.raises(InputFileError, match="nope.jsonl"):
        export_graph(changed, tmp_path / "g3.json", records=tmp_path / "nope.jsonl")


def test_bad_feature_effect_files_name_the_file_and_line(tmp_path: Path) -> None:
    good = {"schema_version": FEATURE_EFFECTS_SCHEMA, "source": "a", "target": "b", "mean_effect": 0.1,
            "ci95": [0.0, 0.2], "n": 5, "control": {"type": "random_direction", "n": 2, "effects": [0, 0], "mean": 0}}
    f = tmp_path / "fe.jsonl"
    f.write_text(json.dumps(good) + "\n{oops\n")
    with pytest.raises(InputFileError, match=r"fe.jsonl:2"):
        read_feature_effects(f)
    f.write_text(json.dumps(good | {"schema_version": "interp-agent.graph.v1"}) + "\n")
    with pytest.raises(InputFileError, match=r"fe.jsonl:1.*schema_version"):
        read_feature_effects(f)
    f.write_text(json.dumps({k: v for k, v in good.items() if k != "control"}) + "\n")
    with pytest.raises(InputFileError, match="control"):
        read_feature_effects(f)
    with pytest.raises(InputFileError, match="missing.jsonl"):
        read_feature_effects(tmp_path / "missing.jsonl")


def test_pair_statistics_compare_the_effect_with_its_control_distribution() -> None:
    rng = np.random.default_rng(1)
    clean = rng.normal(size=40)
    ablated = clean - 1.0 + 0.1 * rng.normal(size=40)
    controls = [clean + 0.05 * rng.normal(size=40) for _ in range(6)]
    s = pair_statistics(clean, ablated, controls, resamples=500, seed=0)
    assert s["mean_effect"] == pytest.approx(float((ablated - clean).mean()))
    assert s["ci95"][0] < s["mean_effect"] < s["ci95"][1] < 0
    assert s["control"]["n"] == 6 and abs(s["control"]["mean"]) < 0.05 and s["z_vs_controls"] < -10
    assert s["p_vs_controls"] == pytest.approx(1 / 7) and s["excess_ci95"][1] < 0
    assert s["effect_sd"] == pytest.approx(s["mean_effect"] / clean.std(ddof=1))


def test_the_native_schema_is_valid_draft_7_and_rejects_a_malformed_edge(planted_report: Path, tmp_path: Path) -> None:
    jsonschema.Draft7Validator.check_schema(native_schema())
    graph = json.loads(json.dumps(export_graph(planted_report, tmp_path / "g.json")))
    validate_graph(graph)
    bad = json.loads(json.dumps(graph))
    next(e for e in bad["edges"] if e["kind"] == "coactivation")["split"] = "train"
    with pytest.raises(ValidationError, match="edges/"):
        validate_graph(bad)
    bad = json.loads(json.dumps(graph))
    bad["edges"][0]["kind"] = "attribution"
    with pytest.raises(ValidationError, match="schema"):
        validate_graph(bad)


# --- live: the embedded SmolLM2-135M ---------------------------------------------------------------------------

UP = "direction:contrast@blocks.5.hook_resid_post"
DOWN = "direction:contrast@blocks.12.hook_resid_post"


@pytest.fixture(scope="module")
def live_report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    from interp_agent.core.ranking import RankingConfig

    out = tmp_path_factory.mktemp("live-report")
    inspect("smollm2-135m", "", backend="hf", pack="measurement_unit", out=out,
            hookpoints=["blocks.5.hook_resid_post", "blocks.12.hook_resid_post"], config=RankingConfig(top_k=20))
    return out / "report.json"


@pytest.mark.slow
def test_feature_effects_on_the_embedded_model_become_directed_graph_edges(
    live_report: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str], np_schema: dict
) -> None:
    from interp_agent.cli import main

    report = json.loads(live_report.read_text())
    ranked = {f["feature_id"]: f for f in report["features"]}
    assert UP in ranked and DOWN in ranked and "L12:D15" in ranked, list(ranked)
    argv = ["feature-effects", "--model", "smollm2-135m", "--report", str(live_report), "--controls", "6",
            "--feature", UP, "--feature", DOWN, "--feature", "L12:D15", "--out", str(tmp_path / "fe")]
    assert main(argv) == 0
    assert "2 pairs on" in capsys.readouterr().out
    rows = read_feature_effects(tmp_path / "fe" / "feature_effects.jsonl")
    summary = json.loads((tmp_path / "fe" / "feature_effects_summary.json").read_text())
    assert [(r["source"], r["target"]) for r in rows] == [(UP, DOWN), (UP, "L12:D15")]
    assert [(p["source"], p["target"]) for p in summary["excluded_pairs"]] == [(DOWN, "L12:D15")]
    assert "overlap of their directions" in summary["excluded_pairs"][0]["reason"]
    # the clean reading of each downstream feature reproduces the report's records
    assert max(summary["reading_vs_records_max_abs"].values()) < 1e-3
    n_held = ranked[DOWN]["association"]["held_out"]["n"]
    for r in rows:
        assert r["n"] == n_held and r["mode"] == "mean_ablate" and r["control"]["n"] == 6
        assert r["ci95"][0] <= r["mean_effect"] <= r["ci95"][1]
    direct = rows[0]  # removing the layer-5 concept lowers the layer-12 concept, far beyond random directions
    assert direct["mean_effect"] < 0 and direct["beats_controls"] is True, direct
    graph_file, np_file = tmp_path / "g.json", tmp_path / "np.json"
    assert main(["export-graph", "--report", str(live_report), "--top-k", "20", "--feature-effects",
                 str(tmp_path / "fe" / "feature_effects.jsonl"), "--validate", "--out", str(graph_file)]) == 0
    graph = json.loads(graph_file.read_text())
    effects = [e for e in graph["edges"] if e["kind"] == "feature_effect"]
    assert [(e["source"], e["target"]) for e in effects] == [(UP, DOWN), (UP, "L12:D15")]
    assert all(e["directed"] and e["provenance"] == "interventional" for e in effects)
    assert effects[0]["mean_effect"] == direct["mean_effect"] and effects[0]["control"] == direct["control"]
    assert graph["feature_edges"]["coactivation"]["n_prompts"] == n_held
    assert main(["export-graph", "--report", str(live_report), "--top-k", "20", "--format", "neuronpedia",
                 "--feature-effects", str(tmp_path / "fe" / "feature_effects.jsonl"), "--out", str(np_file)]) == 0
    doc = json.loads(np_file.read_text())
    jsonschema.Draft7Validator(np_schema).validate(doc)
    feature_links = [link for link in doc["links"] if link["interp_agent"]["kind"] != "feature_criterion"]
    node_of = {n["interp_agent"].get("feature_id"): n["node_id"] for n in doc["nodes"]}
    assert {(link["source"], link["target"]) for link in feature_links if link["interp_agent"]["kind"] ==
            "feature_effect"} == {(node_of[UP], node_of[DOWN]), (node_of[UP], node_of["L12:D15"])}
    ends = [(link["source"], link["target"]) for link in doc["links"]]
    assert len(ends) == len(set(ends))
