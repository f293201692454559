"""Steering vectors as artifacts: export the edit intervene chose, read the GGUF back with gguf, generate with it.

The integration tests run a real inspect + intervene on the embedded SmolLM2-135M (the contrast
direction at blocks.15, steered at the strength intervene chooses on calibration prompts). The
unit tests use tiny random models and hand-written intervention records, labelled synthetic.
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from interp_agent.core.errors import InputFileError, ValidationError
from interp_agent.core.formats.interventions import InterventionRecord, write_interventions
from interp_agent.core.steering import SteeringVector, apply_steering, export_steering, load_steering, save_steering
from interp_agent.core.steering.controlvector import gguf_layer

PACK = "measurement_unit"
FID = "direction:contrast@blocks.15.hook_resid_post"
PROMPTS = ["The weather today is", "My favourite food is", "The meeting starts at"]
"""Prompts outside the pack (so outside intervene's calibration split)."""


@pytest.fixture(scope="module")
def steer_run(tmp_path_factory: pytest.TempPathFactory, one_torch_thread) -> dict:
    """A real inspect (one hookpoint) and intervene (steer the contrast direction) on the embedded model."""
    from interp_agent.core.inspection import inspect
    from interp_agent.core.live import intervene
    from interp_agent.core.ranking import RankingConfig

    root = tmp_path_factory.mktemp("steer")
    report = inspect("smollm2-135m", "", backend="hf", pack=PACK, hookpoints=["blocks.15.hook_resid_post"],
                     out=root / "inspect", config=RankingConfig(top_k=5))
    result = intervene("smollm2-135m", None, pack=PACK, report=report.paths["json"], features=[FID],
                       strengths=(1.0,), out=root / "intervene")
    return {"root": root, "report": Path(report.paths["json"]), "run": root / "intervene",
            "entry": result.summary["features"][0]}


@pytest.fixture(scope="module")
def embedded(steer_run):
    from interp_agent.core.models import load_model

    return load_model("smollm2-135m")


def _records(path: Path, *, feature: str, hookpoint: str, model: str, mode: str = "steer", value: float = 2.0) -> Path:
    """Hand-written intervention rows of one feature (synthetic), as intervene writes them."""
    rows = [InterventionRecord(feature_id=feature, intervention="steer" if mode == "steer" else "ablate",
                               baseline_score=0.1, intervention_score=0.3, model=model, criterion="c",
                               prompt_id=f"p{i}", metadata={"mode": mode, "hookpoint": hookpoint, "value": value,
                                                            "strength": 1.0, "split": "held_out", "synthetic": True})
            for i in range(3)]
    return write_interventions(path / "interventions.jsonl", rows)


@pytest.mark.slow
def test_export_keeps_the_strength_intervene_chose_and_the_direction_inspect_saved(steer_run, tmp_path: Path) -> None:
    from interp_agent.core.live import load_directions

    out = export_steering(interventions=steer_run["run"], feature=FID, out=tmp_path / "v.safetensors")
    vec = load_steering(out.path)
    entry = steer_run["entry"]
    assert entry["mode"] == "steer" and entry["verdict"] == "causal"
    assert vec.strength == pytest.approx(entry["value"], rel=1e-12)  # never re-chosen
    hook, saved = load_directions(steer_run["report"].parent)[FID]
    np.testing.assert_allclose(vec.directions[0], saved / np.linalg.norm(saved), rtol=0, atol=1e-6)
    assert vec.hookpoints == (hook,) == ("blocks.15.hook_resid_post",)
    assert (vec.model, vec.d_model, vec.unit_norm, vec.synthetic) == ("smollm2-135m", 576, True, False)
    prov = vec.provenance
    assert prov["strength_source"] == "chosen by intervene on calibration prompts"
    assert prov["chosen_on"]["prompts"] == "calibration split" and prov["chosen_on"]["n_calibration"] > 0
    assert prov["direction"]["report_sha256"] and prov["evidence"]["verdict"] == "causal"
    assert len(prov["evidence"]["held_out_prompt_ids"]) == entry["effect"]["n"]


@pytest.mark.slow
def test_the_gguf_export_is_a_llama_cpp_control_vector_read_back_by_gguf(steer_run, tmp_path: Path) -> None:
    import gguf

    out = export_steering(interventions=steer_run["run"], feature=FID, out=tmp_path / "v.gguf")
    reader = gguf.GGUFReader(str(out.path))
    fields = {k: f.contents() for k, f in reader.fields.items()}
    assert fields["general.architecture"] == "controlvector"
    assert fields["controlvector.model_hint"] == "llama" and fields["controlvector.layer_count"] == 1
    (tensor,) = reader.tensors
    assert tensor.name == "direction.15" and tensor.tensor_type == gguf.GGMLQuantizationType.F32
    vec = out.vector
    np.testing.assert_array_equal(np.asarray(tensor.data), vec.added(0))  # pre-multiplied by the strength
    assert float(np.linalg.norm(tensor.data)) == pytest.approx(abs(steer_run["entry"]["value"]), rel=1e-5)
    back = load_steering(out.path)
    assert back.strength == vec.strength and back.hookpoints == vec.hookpoints
    np.testing.assert_allclose(back.directions, vec.directions, atol=1e-6)


@pytest.mark.slow
def test_steering_changes_the_text_and_the_kl_while_scale_zero_changes_nothing(steer_run, embedded,
                                                                              tmp_path: Path) -> None:
    path = export_steering(interventions=steer_run["run"], feature=FID, out=tmp_path / "v.safetensors").path
    steered = apply_steering(embedded, path, PROMPTS, max_new_tokens=12)
    assert steered["provenance"] == "interventional" and steered["n_changed"] >= 1
    assert steered["mean_kl_next_token"] > 0.01 and steered["mean_kl_generated"] > 0.01
    assert all(r["kl_next_token"] > 0 for r in steered["prompts"])
    off = apply_steering(embedded, path, PROMPTS, max_new_tokens=12, scale=0.0)
    assert off["n_changed"] == 0 and off["mean_kl_next_token"] < 1e-6 and off["mean_kl_generated"] < 1e-6
    assert [r["unsteered"] for r in off["prompts"]] == [r["unsteered"] for r in steered["prompts"]]
    gguf_path = export_steering(interventions=steer_run["run"], feature=FID, out=tmp_path / "v.gguf").path
    as_llama = apply_steering(embedded, gguf_path, PROMPTS, max_new_tokens=4, positions="all")
    assert as_llama["settings"]["positions"] == "all" and as_llama["mean_kl_next_token"] > 0.01


@pytest.mark.slow
def test_a_report_other_than_the_one_intervene_read_is_refused(steer_run, tmp_path: Path) -> None:
    import shutil

    other = tmp_path / "other"
    shutil.copytree(steer_run["report"].parent, other)
    (other / "report.json").write_text((other / "report.json").read_text() + "\n")
    with pytest.raises(ValidationError, match="not the report intervene used"):
        export_steering(interventions=steer_run["run"], feature=FID, report=other, out=tmp_path / "v.safetensors")


def test_a_vector_for_another_width_is_refused_naming_both_shapes(tmp_path: Path, one_torch_thread) -> None:
    from interp_agent.core.models.loading import tiny_model

    u = np.zeros((1, 576), np.float32)
    u[0, 3] = 1.0
    path = save_steering(SteeringVector("smollm2-135m", 576, ("blocks.1.hook_resid_post",), u, 8.0, "L1:D3",
                                        synthetic=True), tmp_path / "v.safetensors")
    with pytest.raises(ValidationError, match=r"d_model 576 for smollm2-135m, model d_model 32 \(tiny-gpt2\)"):
        apply_steering(tiny_model("gpt2", d_model=32), path, ["abc"])


def test_a_vector_for_another_model_of_the_same_width_is_refused(tmp_path: Path, one_torch_thread) -> None:
    from interp_agent.core.models.loading import tiny_model

    u = np.eye(32, dtype=np.float32)[:1]
    vec = SteeringVector("smollm2-135m", 32, ("blocks.1.hook_resid_post",), u, 8.0, "L1:D0", synthetic=True)
    with pytest.raises(ValidationError, match=r"for smollm2-135m \(d_model 32\), model tiny-llama \(d_model 32\)"):
        apply_steering(tiny_model("llama", d_model=32), vec, ["abc"])


def test_a_tiny_model_is_steered_and_scale_zero_leaves_it_alone(one_torch_thread) -> None:
    from interp_agent.core.models.loading import tiny_model

    loaded = tiny_model("llama", n_layers=2, d_model=32, seed=1)
    rng = np.random.default_rng(0)
    d = rng.normal(size=(1, 32))
    vec = SteeringVector("tiny-llama", 32, ("blocks.0.hook_resid_post",), (d / np.linalg.norm(d)).astype(np.float32),
                         40.0, "direction:random", synthetic=True)
    on = apply_steering(loaded, vec, ["abcabc", "xyz"], max_new_tokens=6)
    assert on["mean_kl_next_token"] > 1e-3 and on["synthetic"] is True  # a random model is near uniform
    off = apply_steering(loaded, vec, ["abcabc", "xyz"], max_new_tokens=6, scale=0.0)
    assert off["mean_kl_next_token"] == pytest.approx(0.0, abs=1e-7) and off["n_changed"] == 0


def test_a_corrupt_or_foreign_file_is_refused_with_its_name(tmp_path: Path) -> None:
    garbage = tmp_path / "garbage.safetensors"
    garbage.write_bytes(b"\x00\x01 not a tensor file")
    with pytest.raises(InputFileError, match="garbage.safetensors: not a readable safetensors file"):
        load_steering(garbage)
    good = save_steering(SteeringVector("m", 4, ("blocks.2.hook_resid_post",), np.eye(4, dtype=np.float32)[:1],
                                        1.5, "L2:D0", synthetic=True), tmp_path / "good.safetensors")
    truncated = tmp_path / "truncated.safetensors"
    truncated.write_bytes(good.read_bytes()[:-6])
    with pytest.raises(InputFileError, match="truncated.safetensors"):
        load_steering(truncated)
    from safetensors.numpy import save_file

    save_file({"W_dec": np.zeros((2, 4), np.float32)}, str(tmp_path / "sae.safetensors"))
    with pytest.raises(InputFileError, match="not an interp-agent steering vector") as info:
        load_steering(tmp_path / "sae.safetensors")
    assert info.value.field == "schema_version"
    with pytest.raises(InputFileError, match="no such file"):
        load_steering(tmp_path / "missing.safetensors")


def test_a_vector_round_trips_through_safetensors_with_its_metadata(tmp_path: Path) -> None:
    rng = np.random.default_rng(1)
    d = rng.normal(size=(2, 8))
    vec = SteeringVector("m", 8, ("blocks.2.hook_resid_post", "blocks.4.hook_resid_pre"),
                         (d / np.linalg.norm(d, axis=1, keepdims=True)).astype(np.float32), -3.25, "direction:x",
                         positions="all", synthetic=True, provenance={"source": "test", "n": [1, 2]})
    back = load_steering(save_steering(vec, tmp_path / "v.safetensors"))
    assert back.describe() == vec.describe()
    np.testing.assert_array_equal(back.directions, vec.directions)


def test_llama_cpp_layer_indices_follow_its_loader() -> None:
    assert gguf_layer("blocks.15.hook_resid_post") == 15
    assert gguf_layer("blocks.5.hook_resid_pre") == 4  # resid_pre of block 5 is block 4's output
    with pytest.raises(ValidationError, match=r"direction\.0"):
        gguf_layer("blocks.0.hook_resid_post")
    with pytest.raises(ValidationError, match=r"direction\.0"):
        gguf_layer("blocks.1.hook_resid_pre")
    with pytest.raises(ValidationError, match="no llama.cpp control-vector equivalent"):
        gguf_layer("blocks.3.hook_attn_out")


def test_a_foreign_control_vector_reads_as_strength_one_at_every_position(tmp_path: Path) -> None:
    import gguf

    writer = gguf.GGUFWriter(str(tmp_path / "cv.gguf"), "controlvector")
    writer.add_string("controlvector.model_hint", "llama")
    writer.add_uint32("controlvector.layer_count", 2)
    for k in (3, 7):
        writer.add_tensor(f"direction.{k}", np.full(16, k, np.float32))
    writer.write_header_to_file()
    writer.write_kv_data_to_file()
    writer.write_tensors_to_file()
    writer.close()
    vec = load_steering(tmp_path / "cv.gguf")
    assert vec.hookpoints == ("blocks.3.hook_resid_post", "blocks.7.hook_resid_post")
    assert (vec.model, vec.strength, vec.positions, vec.unit_norm) == (None, 1.0, "all", False)
    np.testing.assert_array_equal(vec.added(1), np.full(16, 7, np.float32))


def test_export_needs_a_strength_when_the_run_chose_none(tmp_path: Path) -> None:
    _records(tmp_path, feature="L3:D7", hookpoint="blocks.3.hook_resid_post", model="smollm2-135m", mode="ablate",
             value=0.0)
    with pytest.raises(ValidationError, match="no steering strength chosen by intervene"):
        export_steering(interventions=tmp_path, feature="L3:D7", out=tmp_path / "v.safetensors")
    out = export_steering(interventions=tmp_path, feature="L3:D7", strength=5.0, out=tmp_path / "v.safetensors")
    vec = load_steering(out.path)
    assert vec.provenance["strength_source"] == "given by the user" and vec.strength == 5.0
    assert vec.d_model == 576 and vec.directions[0, 7] == 1.0 and vec.synthetic is True
    with pytest.raises(ValidationError, match="has no .non-control. rows"):
        export_steering(interventions=tmp_path, feature="L3:D8", strength=1.0, out=tmp_path / "w.safetensors")


def test_an_sae_latent_exports_its_decoder_row_at_the_chosen_latent_value(tmp_path: Path,
                                                                          write_explain_inputs) -> None:
    from interp_agent.core.sae import load_sae

    write_explain_inputs(tmp_path, n_passages=1)
    _records(tmp_path, feature="SAE:L1:F5", hookpoint="blocks.1.hook_resid_post", model=str(tmp_path / "model"),
             value=2.0)
    out = export_steering(interventions=tmp_path / "interventions.jsonl", feature="SAE:L1:F5", sae=tmp_path / "sae",
                          out=tmp_path / "v.safetensors")
    row = load_sae(tmp_path / "sae").W_dec[5]
    assert out.vector.strength == pytest.approx(2.0 * np.linalg.norm(row))
    np.testing.assert_allclose(out.vector.added(0), 2.0 * row, rtol=1e-5, atol=1e-6)
    with pytest.raises(ValidationError, match="SAE latent"):
        export_steering(interventions=tmp_path, feature="SAE:L1:F5", out=tmp_path / "w.safetensors")


def test_gguf_export_refuses_block_zero_with_the_reason(tmp_path: Path) -> None:
    _records(tmp_path, feature="L0:D1", hookpoint="blocks.0.hook_resid_post", model="smollm2-135m")
    with pytest.raises(ValidationError, match="llama.cpp's loader rejects"):
        export_steering(interventions=tmp_path, feature="L0:D1", out=tmp_path / "v.gguf")
    assert not (tmp_path / "v.gguf").exists()
    assert json.loads((tmp_path / "interventions.jsonl").read_text().splitlines()[0])["feature_id"] == "L0:D1"


def test_the_cli_exports_a_gguf_and_refuses_a_steer_without_prompts(tmp_path: Path, capsys) -> None:
    from interp_agent.cli import EXIT_BAD_INPUT, main

    _records(tmp_path, feature="L3:D7", hookpoint="blocks.3.hook_resid_post", model="smollm2-135m", value=-4.0)
    out = tmp_path / "cv.gguf"
    assert main(["export-steering", "--interventions", str(tmp_path), "--feature", "L3:D7", "--out", str(out),
                 "--json"]) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["format"] == "gguf" and payload["gguf_read_back"]["tensors"][0]["name"] == "direction.3"
    assert payload["vector"]["strength"] == -4.0 and load_steering(out).added(0)[7] == -4.0
    assert main(["steer", str(out)]) == EXIT_BAD_INPUT
    assert "no prompts" in capsys.readouterr().err


def test_the_embedded_model_and_the_hub_checkpoint_it_quantises_are_one_model() -> None:
    from interp_agent.core.steering.apply import same_model

    assert same_model("HuggingFaceTB/SmolLM2-135M-Instruct", "smollm2-135m")
    assert same_model("smollm2-135m-instruct", "SmolLM2-135M")
    assert not same_model("HuggingFaceTB/SmolLM2-360M-Instruct", "smollm2-135m")
