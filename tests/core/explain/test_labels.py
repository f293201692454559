"""Labels: importing explanations from Neuronpedia, Goodfire and feature JSONL; label tables; Neuronpedia export."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from interp_agent.core.bridges.dashboards import cards_from_payload, read_export
from interp_agent.core.bridges.neuronpedia import NeuronpediaClient
from interp_agent.core.errors import ValidationError
from interp_agent.core.explain.explainers import TokenExplainer
from interp_agent.core.explain.explanations import (
    MAX_EXPLANATION_CHARS,
    Author,
    Explanation,
    Metric,
    Score,
    ScoredExplanation,
)
from interp_agent.core.explain.labels import (
    LABEL_SCHEMA,
    NEURONPEDIA_EXPLANATION_FIELDS,
    explanations_from_cards,
    explanations_from_neuronpedia,
    from_feature_jsonl,
    from_goodfire,
    read_label_table,
    to_neuronpedia_explanations,
    write_label_table,
    write_neuronpedia_explanations,
)
from interp_agent.core.formats.features import FeatureRecord, write_features

FIXTURES = Path(__file__).resolve().parents[2] / "fixtures" / "neuronpedia"
BATCH = FIXTURES / "saedashboard_batch-1_gpt2-small_0-res-jb.json"
SINGLE = FIXTURES / "saedashboard_feature_gpt2-small_res-jb_f15.json"


def score(method, auroc=0.8, judge=None) -> Score:
    return Score(method, Metric(auroc, (auroc - 0.1, auroc + 0.05)), Metric(0.7), Metric(0.6), 12, 30,
                 Metric(0.52, (0.4, 0.6)), Metric(0.5, (0.45, 0.55)), Metric(auroc - 0.52, (0.1, 0.4)), judge)


def items() -> list[ScoredExplanation]:
    a = Explanation("SAE:L0:F2", 'fires on "rain", "snow"', Author("local_tokens", "token-frequency v1"), (1, 2))
    b = Explanation("SAE:L0:F3", "food words, such as bread", Author("chat", "some-model", "a note, with a comma"))
    return [ScoredExplanation(a, (score("embedding"), score("detection", 0.9, "smollm2-135m (weak local judge)"))),
            ScoredExplanation(b, ())]


def live_answer(feature: dict, explanations: list[dict]) -> dict:
    """A SAEDashboard fixture feature in the shape of Neuronpedia's live feature API answer."""
    acts = [{"tokens": a["tokens"], "values": a["values"]} for a in feature["activations"][:3]]
    return {"modelId": "gpt2-small", "layer": "0-res-jb", "index": str(feature["feature_index"]),
            "frac_nonzero": feature["frac_nonzero"], "explanations": explanations, "activations": acts}


# --- the label table ------------------------------------------------------------------------


@pytest.mark.parametrize("suffix", [".parquet", ".csv"])
def test_label_table_round_trips(tmp_path, suffix):
    path = write_label_table(tmp_path / f"labels{suffix}", items())
    rows = read_label_table(path)
    assert [r["feature_id"] for r in rows] == ["SAE:L0:F2", "SAE:L0:F3"]
    assert list(rows[0]) == LABEL_SCHEMA.names
    first, second = rows
    assert (first["explanation"], first["author_kind"], first["author_name"]) == (
        'fires on "rain", "snow"', "local_tokens", "token-frequency v1")
    assert first["embedding_auroc"] == pytest.approx(0.8)
    assert (first["embedding_auroc_ci_low"], first["embedding_auroc_ci_high"]) == pytest.approx((0.7, 0.85))
    assert first["embedding_null_auroc"] == pytest.approx(0.52)
    assert first["embedding_margin_ci_low"] == pytest.approx(0.1)
    assert first["embedding_judge"] is None and first["detection_judge"] == "smollm2-135m (weak local judge)"
    assert (first["detection_n_positive"], first["detection_n_negative"]) == (12, 30)
    assert first["fuzzing_auroc"] is None and first["output_n_positive"] is None
    assert second["author_note"] == "a note, with a comma"
    assert all(second[f"{m}_auroc"] is None for m in ("embedding", "detection", "fuzzing", "output"))


def test_label_table_rejects_an_unknown_suffix(tmp_path):
    with pytest.raises(ValidationError, match=r"labels\.tsv.*\.parquet or \.csv"):
        write_label_table(tmp_path / "labels.tsv", items())


def test_label_table_leaves_no_temporary_file_and_replaces_the_old_one(tmp_path):
    for suffix in (".parquet", ".csv"):
        path = tmp_path / f"labels{suffix}"
        write_label_table(path, items())
        write_label_table(path, items()[:1])
        assert len(read_label_table(path)) == 1
    assert sorted(p.name for p in tmp_path.iterdir()) == ["labels.csv", "labels.parquet"]


# --- Neuronpedia export ---------------------------------------------------------------------


def test_neuronpedia_export_uses_neuronpedia_field_names():
    rows = to_neuronpedia_explanations(items(), model_id="gpt2-small", source_id="0-res-jb")
    assert [tuple(r) for r in rows] == [NEURONPEDIA_EXPLANATION_FIELDS] * 2
    first = rows[0]
    assert (first["modelId"], first["layer"], first["index"]) == ("gpt2-small", "0-res-jb", "2")
    assert first["description"] == 'fires on "rain", "snow"' and first["explanationModelName"] == "token-frequency v1"
    assert first["typeName"] == "interp-agent_local-tokens"
    assert [s["explanationScoreTypeName"] for s in first["scores"]] == [
        "interp-agent_embedding-auroc", "interp-agent_detection-auroc"]
    assert first["scores"][1]["explanationScoreModelName"] == "smollm2-135m (weak local judge)"
    details = json.loads(first["scores"][0]["jsonDetails"])
    assert details["null_random_explanation"] == pytest.approx(0.52) and details["n_positive"] == 12
    assert rows[1]["scores"] == []


def test_neuronpedia_export_reads_back_through_the_neuronpedia_bridge():
    batch = json.loads(BATCH.read_text())
    exported = to_neuronpedia_explanations(items()[:1], model_id="gpt2-small", source_id="0-res-jb")
    cards = cards_from_payload(live_answer(batch["features"][0], exported), {"kind": "neuronpedia"})
    assert cards[0].feature_id == "SAE:L0:F2" and cards[0].label == 'fires on "rain", "snow"'
    back = explanations_from_cards(cards)
    assert back[0].text == 'fires on "rain", "snow"'
    assert "explainer model token-frequency v1" in back[0].author.note


def test_neuronpedia_export_refuses_ids_that_are_not_latents_of_the_source():
    odd = [Explanation(fid, "x words", Author("human", "me")) for fid in ("L3:D7", "SAE:L5:F1", "toy:weather")]
    with pytest.raises(ValidationError, match=r"3 feature id\(s\).*L3:D7, SAE:L5:F1, toy:weather"):
        to_neuronpedia_explanations(odd, model_id="gpt2-small", source_id="0-res-jb")
    fine = [Explanation("SAE:F9", "x words", Author("human", "me")), Explanation("SAE:0-res-jb:F4", "y", Author(
        "human", "me"))]
    assert [r["index"] for r in to_neuronpedia_explanations(fine, model_id="m", source_id="0-res-jb")] == ["9", "4"]
    with pytest.raises(ValidationError, match="source_id"):
        to_neuronpedia_explanations(fine, model_id="m", source_id="bad id/with slash")


@pytest.mark.parametrize("suffix", [".json", ".jsonl"])
def test_neuronpedia_explanations_are_written_as_json_or_jsonl(tmp_path, suffix):
    path = write_neuronpedia_explanations(tmp_path / f"np{suffix}", items(), model_id="gpt2-small",
                                          source_id="0-res-jb")
    text = path.read_text()
    rows = json.loads(text) if suffix == ".json" else [json.loads(line) for line in text.splitlines()]
    assert [r["index"] for r in rows] == ["2", "3"]
    with pytest.raises(ValidationError, match=r"\.json or \.jsonl"):
        write_neuronpedia_explanations(tmp_path / "np.txt", items(), model_id="gpt2-small", source_id="0-res-jb")


# --- imports --------------------------------------------------------------------------------


def test_the_real_dashboard_fixtures_hold_no_explanations_and_import_none():
    assert read_export(BATCH) and read_export(SINGLE)
    assert explanations_from_neuronpedia([BATCH, SINGLE]) == []


def test_neuronpedia_explanations_import_from_a_saved_api_answer(tmp_path):
    batch = json.loads(BATCH.read_text())
    answers = [live_answer(batch["features"][0], [
        {"description": "the token 'the' after commas", "explanationModelName": "gpt-4o-mini",
         "typeName": "oai_token-act-pair"},
        {"description": "a second, human explanation", "explanationModelName": None, "typeName": None}]),
        live_answer(batch["features"][1], [{"description": "x" * 500 + ". tail"}])]
    path = tmp_path / "answers.json"
    path.write_text(json.dumps(answers))
    got = explanations_from_neuronpedia(path, client=NeuronpediaClient(cache_dir=False))
    assert [(e.feature_id, e.author.kind, e.author.name) for e in got] == [
        ("SAE:L0:F2", "imported", "neuronpedia")] * 2 + [("SAE:L0:F3", "imported", "neuronpedia")]
    assert "explainer model gpt-4o-mini" in got[0].author.note and "oai_token-act-pair" in got[0].author.note
    assert str(path) in got[0].author.note and "explainer model" not in got[1].author.note
    assert len(got[2].text) <= MAX_EXPLANATION_CHARS and "cut to" in got[2].author.note
    assert all(e.shown_contexts == () for e in got)


def test_goodfire_labels_import_with_the_bridge_ids(tmp_path):
    features = [{"uuid": "u1", "label": "Weather words", "max_activation_strength": 3.0, "index_in_sae": 11},
                {"uuid": "u2", "label": "Cooking", "max_activation_strength": 2.0, "index_in_sae": 12}]
    got = from_goodfire(features, model="meta-llama/Llama-3.1-8B-Instruct")
    assert [(e.feature_id, e.text, e.author.name) for e in got] == [
        ("SAE:L19:F11", "Weather words", "goodfire"), ("SAE:L19:F12", "Cooking", "goodfire")]
    path = tmp_path / "goodfire.json"
    path.write_text(json.dumps({"features": features}))
    assert [e.feature_id for e in from_goodfire(path, layer=3)] == ["SAE:L3:F11", "SAE:L3:F12"]


def test_feature_jsonl_labels_import_with_the_file_name_as_author(tmp_path):
    path = write_features(tmp_path / "mine.jsonl", [
        FeatureRecord("L3:F1", label="weather", explanation="fires on weather words", source="sae"),
        FeatureRecord("L3:F2", label="food"), FeatureRecord("L3:F3")])
    got = from_feature_jsonl(path)
    assert [(e.feature_id, e.text) for e in got] == [
        ("L3:F1", "weather"), ("L3:F1", "fires on weather words"), ("L3:F2", "food")]
    assert {(e.author.kind, e.author.name) for e in got} == {("imported", "mine.jsonl")}
    assert got[0].author.note == "source sae"


def test_feature_jsonl_of_neuronpedia_cards_keeps_the_explainer_model(tmp_path):
    from interp_agent.core.bridges.cards import write_cards

    batch = json.loads(BATCH.read_text())
    cards = cards_from_payload(live_answer(batch["features"][0], [
        {"description": "commas", "explanationModelName": "gpt-4o-mini", "typeName": "oai_token-act-pair"}]),
        {"kind": "neuronpedia"})
    got = from_feature_jsonl(write_cards(tmp_path / "cards.jsonl", cards))
    assert [(e.feature_id, e.text, e.author.name) for e in got] == [("SAE:L0:F2", "commas", "cards.jsonl")]
    assert "explainer model gpt-4o-mini" in got[0].author.note


def test_token_explanations_go_straight_into_a_label_table(evidence, tmp_path):
    explanations = [TokenExplainer().explain(f, evidence.contexts) for f in evidence.features.values()]
    rows = read_label_table(write_label_table(tmp_path / "t.csv", [ScoredExplanation(e) for e in explanations]))
    assert [r["feature_id"] for r in rows] == list(evidence.features)
    assert rows[-1]["explanation"] == "never fires on the corpus"
