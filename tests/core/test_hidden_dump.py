"""Hidden-state dumps (npy, safetensors, torch .pt, interp-lab JSONL) become records and SAE training sets.

The dumps are synthetic (seeded Gaussian noise with one planted dimension that tracks the
label), so the ranking has a known answer.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from interp_agent.cli import main
from interp_agent.core.errors import InputFileError
from interp_agent.core.formats.hidden_dump import convert_hidden_dump, pool
from interp_agent.core.formats.records import read_records
from interp_agent.core.inspection import inspect

N, T, D, PLANTED = 48, 4, 16, 5


def _dump(tmp_path: Path) -> tuple[np.ndarray, Path]:
    rng = np.random.default_rng(0)
    scores = (np.arange(N) % 2).astype(np.float64)
    acts_NTD = rng.normal(size=(N, T, D)).astype(np.float32)
    acts_NTD[:, :, PLANTED] += 2.5 * scores[:, None]
    manifest = tmp_path / "manifest.json"
    manifest.write_text(json.dumps({"model": "synthetic/dump", "layer": 3, "prompts": [
        {"prompt_id": f"q{i}", "text": f"prompt {i}", "criterion_score": s} for i, s in enumerate(scores)]}))
    return acts_NTD, manifest


def test_an_npy_dump_becomes_records_that_inspect_ranks_with_the_planted_dim_first(tmp_path: Path) -> None:
    acts, manifest = _dump(tmp_path)
    np.save(tmp_path / "h.npy", acts)
    info = convert_hidden_dump(tmp_path / "h.npy", out=tmp_path / "r.jsonl", manifest=manifest)
    records, _ = read_records(info["paths"]["records"])
    assert len(records) == N and records[0].feature_ids[PLANTED] == f"L3:D{PLANTED}"
    assert records[0].activations[PLANTED] == pytest.approx(float(acts[0, T - 1, PLANTED]))  # last token pooled
    result = inspect(model="synthetic/dump", criterion="planted label", records=info["paths"]["records"])
    assert result.report["features"][0]["feature_id"] == f"L3:D{PLANTED}"


def test_safetensors_and_pt_dumps_name_their_hookpoints_and_agree(tmp_path: Path) -> None:
    import torch
    from safetensors.numpy import save_file

    acts, manifest = _dump(tmp_path)
    save_file({"blocks.3.hook_resid_post": acts, "blocks.4.hook_resid_post": acts * 2}, str(tmp_path / "h.safetensors"))
    torch.save({"blocks.3.hook_resid_post": torch.from_numpy(acts)}, tmp_path / "h.pt")
    a = convert_hidden_dump(tmp_path / "h.safetensors", out=tmp_path / "a.jsonl", manifest=manifest, pooling="mean")
    b = convert_hidden_dump(tmp_path / "h.pt", out=tmp_path / "b", manifest=manifest, pooling="mean")  # Parquet
    assert set(a["hookpoints"]) == {"blocks.3.hook_resid_post", "blocks.4.hook_resid_post"}
    ra, _ = read_records(a["paths"]["records"])
    assert "L4:D0" in ra[0].feature_ids
    mean = pool(acts, np.full(N, T), "mean")  # tokens 1.. (position 0 excluded)
    assert ra[1].activations[PLANTED] == pytest.approx(float(acts[1, 1:, PLANTED].mean()), rel=1e-6)
    assert mean[1, PLANTED] == pytest.approx(ra[1].activations[PLANTED], rel=1e-6)
    assert Path(b["paths"]["records"]).is_dir()


def test_a_training_folder_trains_a_tiny_sae_through_the_train_sae_reader(tmp_path: Path) -> None:
    from interp_agent.core.sae.data import from_activations

    acts, manifest = _dump(tmp_path)
    np.save(tmp_path / "h.npy", acts)
    info = convert_hidden_dump(tmp_path / "h.npy", out=tmp_path / "train", to="training", manifest=manifest)
    cache = from_activations([info["paths"]["blocks.3.hook_resid_post"]], tmp_path / "cache")
    assert cache.d_in == D and cache.n_train + cache.n_held_out == N * (T - 1)  # position 0 dropped
    code = main(["train-sae", "--activations", info["paths"]["blocks.3.hook_resid_post"], "--latent-dim", "32",
                 "--k", "4", "--steps", "20", "--batch-size", "32", "--out", str(tmp_path / "sae")])
    assert code == 0 and (tmp_path / "sae" / "sae_weights.safetensors").is_file()


def test_an_interp_lab_hidden_dump_jsonl_with_a_scored_prompt_dataset_is_read(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    lines = [{"prompt_index": i, "layer": layer, "hidden": rng.normal(size=(2, 4)).tolist()}
             for i in range(3) for layer in (2, 5)]
    (tmp_path / "dump.jsonl").write_text("\n".join(json.dumps(x) for x in lines))
    (tmp_path / "prompts.jsonl").write_text("\n".join(json.dumps(
        {"prompt_id": f"p{i}", "text": f"t{i}", "criterion_score": float(i)}) for i in range(3)))
    info = convert_hidden_dump(tmp_path / "dump.jsonl", out=tmp_path / "r.jsonl", manifest=tmp_path / "prompts.jsonl")
    assert info["hookpoints"] == {"blocks.2.hook_resid_post": 4, "blocks.5.hook_resid_post": 4}
    records, _ = read_records(tmp_path / "r.jsonl")
    assert [r.prompt_id for r in records] == ["p0", "p1", "p2"] and "L5:D3" in records[0].feature_ids


def test_a_count_mismatch_names_both_the_manifest_and_the_dump(tmp_path: Path) -> None:
    acts, manifest = _dump(tmp_path)
    np.save(tmp_path / "h.npy", acts[:-2])
    with pytest.raises(InputFileError) as exc:
        convert_hidden_dump(tmp_path / "h.npy", out=tmp_path / "r.jsonl", manifest=manifest)
    text = str(exc.value)
    assert str(manifest) in text and str(tmp_path / "h.npy") in text
    assert f"{N} entries" in text and f"{N - 2} rows" in text


def test_a_pt_file_holding_more_than_tensors_is_refused(tmp_path: Path) -> None:
    import torch

    torch.save({"acts": torch.zeros(2, 3), "cfg": {"lr": 1.0}}, tmp_path / "h.pt")
    with pytest.raises(InputFileError, match="not a tensor or a dict of tensors|weights_only"):
        convert_hidden_dump(tmp_path / "h.pt", out=tmp_path / "r.jsonl", hookpoint="blocks.1.hook_resid_post")


def test_keep_first_keeps_position_zero_for_dumps_without_a_bos(tmp_path: Path) -> None:
    acts, manifest = _dump(tmp_path)
    np.save(tmp_path / "h.npy", acts)
    lengths = np.full(N, T)
    assert np.allclose(pool(acts, lengths, "mean", keep_first=True), acts.mean(axis=1), atol=1e-6)
    assert np.allclose(pool(acts, lengths, "mean"), acts[:, 1:].mean(axis=1), atol=1e-6)
    info = convert_hidden_dump(tmp_path / "h.npy", out=tmp_path / "train", to="training", manifest=manifest,
                               keep_first=True)
    from safetensors.numpy import load_file

    rows = load_file(info["paths"]["blocks.3.hook_resid_post"])["activations"]
    assert rows.shape == (N * T, D) and info["keep_first"] is True
    assert np.array_equal(rows[:T], acts[0])
