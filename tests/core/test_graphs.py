"""Attribution graphs of a report: both edge kinds kept apart, the Neuronpedia form valid against its schema."""

from __future__ import annotations

import json
from pathlib import Path

import jsonschema
import pytest

from interp_agent.core.errors import InputFileError, ValidationError
from interp_agent.core.graph_edges import FEATURE_EFFECTS_SCHEMA, validate_graph
from interp_agent.core.graphs import add_feature_edges, build_graph, export_graph, parse_feature_id, to_neuronpedia
from interp_agent.core.inspection import inspect

_SCHEMA_NAME = Path("neuronpedia") / "neuronpedia_graph-schema.json"
_IN_REPO = Path(__file__).resolve().parents[1] / "fixtures" / _SCHEMA_NAME
SCHEMA = _IN_REPO if _IN_REPO.is_file() else Path(__file__).resolve().parents[3] / "shared" / "fixtures" / _SCHEMA_NAME
"""Neuronpedia's Draft-7 graph schema: a copy in tests/fixtures when there is one, else the shared fixtures beside
the repo."""
CRIT = "the model is aware it is being evaluated"


@pytest.fixture(scope="module")
def schema() -> dict:
    if not SCHEMA.is_file():
        pytest.fail(f"missing the Neuronpedia graph schema {SCHEMA}")
    return json.loads(SCHEMA.read_text())


@pytest.fixture(scope="module")
def seed_report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    seed = Path(__file__).resolve().parents[1] / "fixtures" / "seed"
    out = tmp_path_factory.mktemp("seed-report")
    inspect("my/model", CRIT, backend="records", records=seed / "activation_records.jsonl",
            interventions=seed / "interventions.jsonl", out=out)
    return out / "report.json"


@pytest.fixture(scope="module")
def toy_report(tmp_path_factory: pytest.TempPathFactory) -> Path:
    out = tmp_path_factory.mktemp("toy-report")
    inspect("toy/a", "mentions a unit", backend="toy", out=out)
    return out / "report.json"


def test_native_graph_keeps_correlational_and_interventional_edges_apart(seed_report: Path, tmp_path: Path) -> None:
    graph = export_graph(seed_report, tmp_path / "g.json")
    assert json.loads((tmp_path / "g.json").read_text()) == graph
    assert graph["schema_version"] == "interp-agent.graph.v1" and graph["synthetic"] is False
    assert graph["criterion"] == CRIT and graph["model"] == "my/model"
    report = json.loads(seed_report.read_text())
    features = [n for n in graph["nodes"] if n["kind"] == "feature"]
    assert [n["id"] for n in features] == [f["feature_id"] for f in report["features"]]
    assert [n for n in graph["nodes"] if n["kind"] == "criterion"] == [
        {"id": "criterion", "kind": "criterion", "label": CRIT, "layer": None}]
    top = next(n for n in features if n["id"] == "L18:F104921")
    assert (top["layer"], top["index"], top["feature_kind"]) == (18, 104921, "dictionary feature")
    edges = [e for e in graph["edges"] if e["source"] == "L18:F104921"]
    assert sorted(e["evidence"] for e in edges) == ["correlational", "interventional"]
    corr = next(e for e in edges if e["evidence"] == "correlational")
    causal = next(e for e in edges if e["evidence"] == "interventional")
    feature = report["features"][0]
    # held-out has 1 row
    assert corr["split"] == "train" and corr["weight"] == feature["association"]["train"]["pearson_r"]
    assert corr["provenance"] == "correlational" and "ci95" not in corr
    assert causal["weight"] == feature["causal"]["mean_effect"] and causal["ci95"] == feature["causal"]["ci95"]
    assert causal["provenance"] == "interventional" and "split" not in causal
    assert graph["summary"] == {"n_features": 3, "n_correlational_edges": 3, "n_interventional_edges": 3,
                                "n_coactivation_edges": 0, "n_feature_effect_edges": 0}
    assert {e["kind"] for e in graph["edges"]} == {"feature_criterion"}
    assert "nothing tested" in graph["feature_edges"]["coactivation"]["note"]  # 1 held-out prompt
    validate_graph(json.loads((tmp_path / "g.json").read_text()))
    assert graph["provenance"]["inputs"][0]["role"] == "report"


def test_neuronpedia_export_validates_against_the_schema(seed_report: Path, tmp_path: Path, schema: dict) -> None:
    doc = export_graph(seed_report.parent, tmp_path / "np.json", format="neuronpedia")
    jsonschema.Draft7Validator.check_schema(schema)
    jsonschema.Draft7Validator(schema).validate(json.loads((tmp_path / "np.json").read_text()))
    ids = [n["node_id"] for n in doc["nodes"]]
    assert len(ids) == len(set(ids)) and "18_104921_0" in ids
    logits = [n for n in doc["nodes"] if n["feature_type"] == "logit"]
    assert [n["node_id"] for n in logits] == ["23_0_0", "23_1_0"]  # layers 9..21 known: nLayers 22, logits at 23
    assert "correlational" in logits[0]["clerp"] and "interventional" in logits[1]["clerp"]
    pairs = [(link["source"], link["target"]) for link in doc["links"]]
    assert len(pairs) == len(set(pairs)) == 6
    kinds = {link["target"]: {link["interp_agent"]["evidence"]} for link in doc["links"]}
    assert kinds == {"23_0_0": {"correlational"}, "23_1_0": {"interventional"}}
    assert doc["metadata"]["interp_agent"]["link_weights"].keys() == {"correlational", "interventional"}


def test_a_synthetic_report_makes_a_synthetic_graph(toy_report: Path, schema: dict) -> None:
    graph = build_graph(json.loads(toy_report.read_text()), top_k=5)
    validate_graph(json.loads(json.dumps(graph)))
    assert graph["synthetic"] is True and len([n for n in graph["nodes"] if n["kind"] == "feature"]) == 5
    assert {e["provenance"] for e in graph["edges"]} == {"synthetic"}
    assert {e["evidence"] for e in graph["edges"]} == {"correlational", "interventional"}
    np_doc = to_neuronpedia(graph)
    jsonschema.Draft7Validator(schema).validate(np_doc)
    assert np_doc["metadata"]["slug"].startswith("synthetic-")
    assert np_doc["metadata"]["info"]["description"].startswith("SYNTHETIC")
    assert all(n["clerp"].startswith("[SYNTHETIC]") for n in np_doc["nodes"])


def test_directions_and_colliding_indices_get_unique_neuronpedia_ids(schema: dict) -> None:
    report = {"schema_version": "interp-agent.inspection_report.v1", "model": "m", "criterion": "c", "synthetic": False,
              "live": {"model_info": {"n_layers": 30}},
              "features": [
                  {"feature_id": "direction:contrast@blocks.15.hook_resid_post", "rank": 1, "importance": 1.0,
                   "association": {"held_out": {"pearson_r": 0.7, "n": 30}, "train": {"pearson_r": 0.8, "n": 70}}},
                  {"feature_id": "L15:D5", "rank": 2, "importance": 0.5, "association": None, "causal": None},
                  {"feature_id": "L15:N5", "rank": 3, "importance": 0.4,
                   "causal": {"mean_effect": float("nan")}},
                  {"feature_id": "SAE:L15:F5", "rank": 4, "importance": 0.3}]}
    graph = build_graph(report)
    validate_graph(json.loads(json.dumps(graph)))
    assert graph["n_layers"] == 30
    assert [e["split"] for e in graph["edges"]] == ["held_out"]
    doc = to_neuronpedia(graph)
    jsonschema.Draft7Validator(schema).validate(json.loads(json.dumps(doc)))
    ids = [n["node_id"] for n in doc["nodes"]]
    assert ids == ["15_-2_0", "15_5_0", "15_-3_0", "15_-4_0", "31_0_0"]
    assert doc["nodes"][0]["feature"] is None and doc["nodes"][2]["feature"] == 5
    assert len(doc["links"]) == 1


@pytest.mark.parametrize(("feature_id", "expected"), [
    ("SAE:L3:F17", (3, 17, "sae latent")), ("SAE:res-jb:F17", (None, 17, "sae latent")),
    ("L2:D9", (2, 9, "residual dimension")), ("L2:N9", (2, 9, "mlp neuron")),
    ("direction:contrast@blocks.4.hook_resid_post", (4, None, "direction")), ("weird", (None, None, "feature")),
])
def test_feature_ids_name_their_layer_and_index(feature_id: str, expected: tuple) -> None:
    assert parse_feature_id(feature_id) == expected


def test_a_bad_report_path_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(InputFileError, match="missing.json"):
        export_graph(tmp_path / "missing.json", tmp_path / "g.json")
    bad = tmp_path / "bad.json"
    bad.write_text("{not json")
    with pytest.raises(InputFileError, match=r"bad.json:1"):
        export_graph(bad, tmp_path / "g.json")
    other = tmp_path / "other.json"
    other.write_text(json.dumps({"schema_version": "interp-agent.graph.v1"}))
    with pytest.raises(InputFileError, match="other.json.*schema_version"):
        export_graph(other, tmp_path / "g.json")
    assert not (tmp_path / "g.json").exists()


def test_bad_format_and_top_k_are_refused(seed_report: Path, tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="format"):
        export_graph(seed_report, tmp_path / "g.json", format="dot")  # type: ignore[arg-type]
    with pytest.raises(ValidationError, match="top_k"):
        export_graph(seed_report, tmp_path / "g.json", top_k=0)


def test_feature_links_join_feature_nodes_and_a_pair_is_linked_once(toy_report: Path, tmp_path: Path,
                                                                     schema: dict) -> None:
    """Feature-effect rows written by hand on a synthetic report: how the three edge kinds travel to both forms."""
    graph = build_graph(json.loads(toy_report.read_text()), top_k=3)
    a, b, c = (n["id"] for n in graph["nodes"] if n["kind"] == "feature")
    row = {"schema_version": FEATURE_EFFECTS_SCHEMA, "source": a, "target": b, "mean_effect": -0.4, "effect_sd": -0.8,
           "ci95": [-0.6, -0.2], "n": 30, "split": "held_out", "mode": "mean_ablate", "synthetic": True,
           "control": {"type": "random_direction", "n": 4, "effects": [0.01, -0.02, 0.0, 0.03], "mean": 0.005,
                       "sd": 0.02, "max_abs": 0.03}, "beats_controls": True}
    outside = row | {"source": b, "target": "absent"}  # an end outside the graph: left out, and counted
    (tmp_path / "fe.jsonl").write_text(json.dumps(row) + "\n" + json.dumps(outside) + "\n")
    coact = [{"kind": "coactivation", "source": min(x, y), "target": max(x, y), "directed": False,
              "evidence": "correlational", "provenance": "synthetic", "statistic": "pearson_r", "weight": r,
              "ci95": [r - 0.1, r + 0.1], "split": "held_out", "n": 30, "p_value": 0.001, "q_value": 0.002}
             for (x, y), r in (((a, b), 0.6), ((b, c), -0.5))]
    native = export_graph(toy_report, tmp_path / "g.json", top_k=3, coactivation=False,
                          feature_effects=tmp_path / "fe.jsonl", validate=True)
    effects = [e for e in native["edges"] if e["kind"] == "feature_effect"]
    assert [(e["source"], e["target"], e["weight"], e["provenance"]) for e in effects] == [(a, b, -0.8, "synthetic")]
    assert native["feature_edges"]["feature_effects"]["n_left_out"] == 1
    both = add_feature_edges(native, coact)
    validate_graph(json.loads(json.dumps(both)))
    doc = to_neuronpedia(both)
    jsonschema.Draft7Validator(schema).validate(json.loads(json.dumps(doc)))
    ids = {n["interp_agent"].get("feature_id"): n["node_id"] for n in doc["nodes"]}
    links = {(link["source"], link["target"]): link for link in doc["links"]}
    assert len(links) == len(doc["links"])
    ab = links[(ids[a], ids[b])]
    assert ab["interp_agent"]["kind"] == "feature_effect" and ab["weight"] == -0.8
    assert ab["interp_agent"]["coactivation"]["weight"] == 0.6  # the same pair's co-activation rides along
    bc = links[(ids[min(b, c)], ids[max(b, c)])]
    assert bc["interp_agent"]["kind"] == "coactivation" and bc["weight"] == -0.5
    assert set(doc["metadata"]["interp_agent"]["link_weights"]) >= {"coactivation", "feature_effect"}
    with pytest.raises(ValidationError, match="feature -> feature"):
        add_feature_edges(native, [coact[0] | {"target": "criterion"}])
