"""Formats: the seed files load unchanged, round trips lose nothing, bad input names file, line and field."""

from __future__ import annotations

import json
from pathlib import Path

import pytest

from interp_agent.core.artifacts import atomic_open, write_json
from interp_agent.core.errors import InputFileError
from interp_agent.core.formats import (
    ActivationRecord,
    FeatureMeta,
    jsonl_to_parquet,
    parquet_to_jsonl,
    read_features,
    read_interventions,
    read_records,
    read_scored_prompts,
    write_features,
    write_interventions,
    write_parquet_dataset,
    write_records,
    write_scored_prompts,
)

SHARED_SEED = Path(__file__).resolve().parents[3] / "shared" / "seed-examples"


def test_vendored_seed_files_equal_the_shared_originals(seed_dir: Path) -> None:
    if not SHARED_SEED.is_dir():
        pytest.skip("the shared seed folder is not beside this checkout")
    for f in seed_dir.glob("*.jsonl"):
        assert f.read_bytes() == (SHARED_SEED / f.name).read_bytes(), f.name


def test_seed_activation_records_load_with_list_features_and_metadata(seed_dir: Path) -> None:
    rows, meta = read_records(seed_dir / "activation_records.jsonl")
    assert len(rows) == 4
    assert rows[0].prompt_id == "eval-1" and rows[0].criterion_score == 1.0
    assert dict(zip(rows[0].feature_ids, rows[0].activations, strict=True))["L18:F104921"] == 0.92
    assert meta["L18:F104921"].label == "constructed benchmark or test scenario"
    assert meta["L18:F104921"].decoder_signature == (0.1, -0.4, 0.3, 0.2)
    assert meta["L9:F101"].decoder_signature is None


def test_seed_features_interventions_and_prompts_load(seed_dir: Path) -> None:
    feats = read_features(seed_dir / "features.jsonl")
    assert [f.feature_id for f in feats] == ["L18:F104921", "L21:F55012"]
    assert feats[0].causal_effects["criterion"] == 0.78 and feats[0].layer == 18
    inter = read_interventions(seed_dir / "interventions.jsonl")
    assert [r.intervention for r in inter] == ["ablate", "ablate", "amplify", "ablate"]
    # ablate: a drop means 'promotes'; amplify: a rise means 'promotes'
    assert inter[0].signed_effect == pytest.approx(0.92 - 0.31)
    assert inter[2].signed_effect == pytest.approx(0.81 - 0.62)
    assert inter[3].signed_effect == pytest.approx(0.08 - 0.39)
    prompts = read_scored_prompts(seed_dir / "hf_prompts_measurements.jsonl")
    assert len(prompts) == 12 and sum(p.criterion_score for p in prompts) == 6


def test_features_map_and_list_forms_read_the_same(tmp_path: Path) -> None:
    a = tmp_path / "map.jsonl"
    a.write_text(json.dumps({"prompt_id": "p", "criterion_score": 1, "features": {"f1": 0.5, "f2": 2}}) + "\n")
    b = tmp_path / "list.jsonl"
    b.write_text(json.dumps({"prompt_id": "p", "criterion_score": 1, "features": [
        {"feature_id": "f1", "activation": 0.5}, {"feature_id": "f2", "activation": 2}]}) + "\n")
    (ra,), _ = read_records(a)
    (rb,), _ = read_records(b)
    assert ra == rb


def _records() -> tuple[list[ActivationRecord], dict[str, FeatureMeta]]:
    rows = [
        ActivationRecord("p1", 1.0, ("f1", "f2"), (0.1234567890123, -3.5), text="alpha", model="m"),
        ActivationRecord("p1", 1.0, ("f2",), (7.0,), text="alpha", model="m", token_index=3, token=" unit"),
        ActivationRecord("p2", 0.0, (), (), text="beta", model="m", split="held_out", extra={"note": [1, 2]}),
    ]
    meta = {
        "f1": FeatureMeta(label="first", layer=4, decoder_signature=(0.5, -0.25)), "f2": FeatureMeta(explanation="x")
    }
    return rows, meta


def test_records_round_trip_through_jsonl_and_parquet_without_loss(tmp_path: Path) -> None:
    rows, meta = _records()
    write_records(tmp_path / "a.jsonl", rows, meta)
    back, back_meta = read_records(tmp_path / "a.jsonl")
    assert back == rows
    jsonl_to_parquet(tmp_path / "a.jsonl", tmp_path / "ds")
    parquet_to_jsonl(tmp_path / "ds", tmp_path / "b.jsonl")
    again, again_meta = read_records(tmp_path / "b.jsonl")
    assert again == rows
    assert {k: v.to_json() for k, v in again_meta.items()} == {k: v.to_json() for k, v in meta.items()}
    assert json.loads((tmp_path / "ds" / "meta.json").read_text())["n_nonzero"] == 3


def test_seed_records_round_trip_through_parquet(seed_dir: Path, tmp_path: Path) -> None:
    rows, meta = read_records(seed_dir / "activation_records.jsonl")
    jsonl_to_parquet(seed_dir / "activation_records.jsonl", tmp_path / "ds")
    parquet_to_jsonl(tmp_path / "ds", tmp_path / "back.jsonl")
    back, back_meta = read_records(tmp_path / "back.jsonl")
    assert back == rows
    assert {k: v.to_json() for k, v in back_meta.items()} == {k: v.to_json() for k, v in meta.items()}


def test_features_interventions_and_prompts_round_trip(seed_dir: Path, tmp_path: Path) -> None:
    feats = read_features(seed_dir / "features.jsonl")
    write_features(tmp_path / "f.jsonl", feats)
    assert read_features(tmp_path / "f.jsonl") == feats
    inter = read_interventions(seed_dir / "interventions.jsonl")
    write_interventions(tmp_path / "i.jsonl", inter)
    assert read_interventions(tmp_path / "i.jsonl") == inter
    prompts = read_scored_prompts(seed_dir / "hf_prompts_measurements.jsonl")
    write_scored_prompts(tmp_path / "p.jsonl", prompts)
    assert read_scored_prompts(tmp_path / "p.jsonl") == prompts


@pytest.mark.parametrize(
    ("line", "reader", "where"),
    [
        ('{"prompt_id": "a", "criterion_score": 1, "features": {"f": 1}', read_records, ":2: malformed JSON"),
        ('{"prompt_id": "a", "criterion_score": NaN, "features": {}}', read_records, ":2: malformed JSON: NaN"),
        ('{"prompt_id": "a", "criterion_score": 1, "features": {"f": Infinity}}', read_records,
         ":2: malformed JSON: NaN"),
        ('{"prompt_id": "a", "features": {"f": 1}}', read_records, ":2: field 'criterion_score': required"),
        ('{"prompt_id": "a", "criterion_score": 1, "features": {"f": "hi"}}', read_records, ":2: field 'features.f'"),
        ('{"prompt_id": "a", "criterion_score": 1, "features": [{"activation": 1}]}', read_records,
         ":2: field 'features[0].feature_id'"),
        ('{"prompt_id": "a", "criterion_score": 1, "features": 3}', read_records, ":2: field 'features'"),
        ('{"feature_id": "f", "intervention": "explode", "baseline_score": 0, "intervention_score": 1}',
         read_interventions, ":2: field 'intervention': unknown intervention 'explode'"),
        ('{"feature_id": "f", "intervention": "ablate", "baseline_score": 0}', read_interventions,
         ":2: field 'intervention_score': required"),
        ('{"prompt_id": "a", "text": "x"}', read_scored_prompts, ":2: field 'criterion_score'"),
        ('[1, 2]', read_features, ":2: expected a JSON object"),
    ],
)
def test_bad_input_names_file_line_and_field(tmp_path: Path, line: str, reader, where: str) -> None:
    good = {
        read_records: '{"prompt_id": "ok", "criterion_score": 0, "features": {}}',
        read_interventions: (
            '{"feature_id": "f", "intervention": "ablate", "baseline_score": 0, "intervention_score": 1}'
        ),
        read_scored_prompts: '{"prompt_id": "ok", "text": "t", "criterion_score": 0}',
        read_features: '{"feature_id": "ok"}',
    }[reader]
    path = tmp_path / "bad.jsonl"
    path.write_text(good + "\n" + line + "\n")
    with pytest.raises(InputFileError) as info:
        reader(path)
    assert f"{path}{where}" in str(info.value)
    assert info.value.line == 2


def test_duplicate_prompt_id_names_both_lines(tmp_path: Path) -> None:
    path = tmp_path / "dup.jsonl"
    row = '{"prompt_id": "same", "criterion_score": 1, "features": {}}'
    path.write_text(row + "\n\n" + row + "\n")
    with pytest.raises(
        InputFileError, match=r"dup.jsonl:3: field 'prompt_id': duplicate prompt_id 'same' \(first on line 1\)"
    ):
        read_records(path)
    prompts = tmp_path / "p.jsonl"
    prompts.write_text(
        '{"prompt_id": 1, "text": "a", "criterion_score": 1}\n{"prompt_id": "1", "text": "b", "criterion_score": 0}\n'
    )
    with pytest.raises(InputFileError, match="p.jsonl:2: field 'prompt_id': duplicate"):
        read_scored_prompts(prompts)


def test_token_rows_of_one_prompt_are_not_duplicates(tmp_path: Path) -> None:
    path = tmp_path / "tok.jsonl"
    path.write_text(
        '{"prompt_id": "p", "token_index": 0, "criterion_score": 1, "features": {}}\n'
        '{"prompt_id": "p", "token_index": 1, "criterion_score": 1, "features": {}}\n'
    )
    rows, _ = read_records(path)
    assert [r.token_index for r in rows] == [0, 1]


def test_missing_file_and_empty_file_are_clear_errors(tmp_path: Path) -> None:
    with pytest.raises(InputFileError, match="file not found"):
        read_records(tmp_path / "nope.jsonl")
    (tmp_path / "empty.jsonl").write_text("\n")
    with pytest.raises(InputFileError, match="no activation records"):
        read_records(tmp_path / "empty.jsonl")


def test_a_failed_write_leaves_neither_the_target_nor_a_temp_file(tmp_path: Path) -> None:
    target = tmp_path / "out.json"
    write_json(target, {"v": 1})
    with pytest.raises(RuntimeError):
        with atomic_open(target) as fh:
            fh.write('{"v": 2, "half')
            raise RuntimeError("interrupted")
    assert json.loads(target.read_text()) == {"v": 1}
    assert sorted(p.name for p in tmp_path.iterdir()) == ["out.json"]


def test_a_failed_parquet_write_leaves_no_folder(tmp_path: Path) -> None:
    def rows():
        yield ActivationRecord("p", 1.0, ("f",), (1.0,))
        raise RuntimeError("source died")

    with pytest.raises(RuntimeError):
        write_parquet_dataset(tmp_path / "ds", rows())
    assert list(tmp_path.iterdir()) == []


def test_output_json_is_strict_even_when_values_are_nan(tmp_path: Path) -> None:
    write_json(tmp_path / "x.json", {"a": float("nan"), "b": [float("inf"), 1.0]})
    assert json.loads((tmp_path / "x.json").read_text()) == {"a": None, "b": [None, 1.0]}
