"""The CPU fine-tune and the model diff on tiny random models (synthetic), and their error paths."""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
import torch

from interp_agent.core.criteria.packs import load_pack
from interp_agent.core.diffing import FinetuneSpec, build_finetune, diff_models, ensure_finetuned, read_manifest
from interp_agent.core.diffing import finetune as finetune_module
from interp_agent.core.diffing.texts import negative_review_texts, overlap_with_pack
from interp_agent.core.errors import InputFileError, ValidationError
from interp_agent.core.models import load_model, tiny_model, wrap_model

pytestmark = pytest.mark.usefixtures("one_torch_thread")  # tests/conftest.py

TINY_SPEC = FinetuneSpec(n_texts=64, steps=30, lr=1e-2, batch_size=8, max_length=48, layers=(2, 3))


@pytest.fixture(scope="module")
def tiny_folder(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A tiny random Llama (4 blocks) saved as an HF folder: the base model."""
    folder = tmp_path_factory.mktemp("tiny") / "base"
    tiny = tiny_model("llama", n_layers=4, d_model=32, seed=1)
    model: Any = tiny.model
    model.save_pretrained(folder)
    tiny.tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="module")
def tuned_folder(tiny_folder: Path, tmp_path_factory: pytest.TempPathFactory) -> Path:
    """The tiny base fine-tuned by TINY_SPEC (via ensure_finetuned)."""
    return ensure_finetuned(TINY_SPEC, base=str(tiny_folder), folder=tmp_path_factory.mktemp("ft") / "tuned")


def test_the_training_texts_are_distinct_seeded_and_never_a_pack_prompt() -> None:
    texts = negative_review_texts(320, seed=0)
    assert len(set(texts)) == 320 and texts == negative_review_texts(320, seed=0)
    assert texts != negative_review_texts(320, seed=1)
    assert overlap_with_pack(texts, [p.text for p in load_pack("negative_sentiment").prompts]) == 0
    assert overlap_with_pack(["  the BATTERY died after only two hours, which was really disappointing. "],
                             [p.text for p in load_pack("negative_sentiment").prompts]) == 1


def test_the_fine_tune_lowers_the_loss_changes_only_the_chosen_mlps_and_reloads(
    tiny_folder: Path, tuned_folder: Path
) -> None:
    manifest = read_manifest(tuned_folder)
    loss = manifest["loss_curve"]
    # a tiny random Llama's tied 0.02-scale embeddings bound its logits, so the loss can only fall so far
    assert loss["last_10_mean"] < loss["first_10_mean"] and loss["last_10_mean"] < loss["per_step"][0] - 0.15
    assert manifest["trained"]["layers"] == [2, 3] and manifest["data"]["provenance"] == "synthetic"
    assert manifest["behaviour"]["provenance"] == "interventional"
    assert manifest["behaviour"]["n_positive"] + manifest["behaviour"]["n_negative"] == len(
        manifest["behaviour"]["held_out_prompts"])
    base = load_model(str(tiny_folder), device="cpu").model.state_dict()
    tuned = load_model(str(tuned_folder), device="cpu").model.state_dict()
    changed = sorted(k for k in base if not torch.equal(base[k], tuned[k]))
    assert changed == sorted(manifest["trained"]["parameters"])
    assert {k.rsplit(".mlp.", 1)[0] for k in changed} == {"model.layers.2", "model.layers.3"} and len(changed) == 6


def test_ensure_finetuned_reuses_a_matching_folder_and_rebuilds_when_the_spec_changes(
    tiny_folder: Path, tuned_folder: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    def refuse(*args: Any, **kwargs: Any) -> Any:
        raise AssertionError("rebuilt")

    monkeypatch.setattr(finetune_module, "build_finetune", refuse)
    assert ensure_finetuned(TINY_SPEC, base=str(tiny_folder), folder=tuned_folder) == tuned_folder
    with pytest.raises(AssertionError, match="rebuilt"):
        ensure_finetuned(FinetuneSpec(n_texts=64, steps=31, lr=1e-2, layers=(2, 3)), base=str(tiny_folder),
                         folder=tuned_folder)


def test_ensure_finetuned_picks_its_folder_under_the_environment_override(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    monkeypatch.setenv(finetune_module.FINETUNE_DIR_ENV, str(tmp_path / "fts"))
    seen: list[Path] = []
    monkeypatch.setattr(finetune_module, "build_finetune",
                        lambda out, spec, **kw: seen.append(Path(out)) or finetune_module.FinetuneResult(Path(out), {}))
    ensure_finetuned(TINY_SPEC, base="smollm2-135m")
    assert seen[0].parent == tmp_path / "fts" and seen[0].name.startswith("smollm2-135m-negative_reviews-")


def test_building_refuses_a_folder_that_is_not_a_fine_tune(tmp_path: Path) -> None:
    (tmp_path / "keep.txt").write_text("mine")
    with pytest.raises(ValidationError, match="not a fine-tune folder"):
        build_finetune(tmp_path, TINY_SPEC, base=tiny_model())
    with pytest.raises(InputFileError, match="fine-tune manifest"):
        read_manifest(tmp_path)


def test_a_bad_spec_is_refused_naming_the_field() -> None:
    with pytest.raises(ValidationError, match="steps"):
        FinetuneSpec(steps=0)
    with pytest.raises(ValidationError, match="out of range"):
        FinetuneSpec(layers=(9,)).layers_for(4)


def test_the_diff_of_a_tiny_fine_tune_writes_json_and_markdown(
    tiny_folder: Path, tuned_folder: Path, tmp_path: Path
) -> None:
    result = diff_models(str(tiny_folder), str(tuned_folder), hookpoints=["blocks.2.mlp.hook_post",
                                                                          "blocks.1.mlp.hook_post"],
                         n_probes=24, pack="negative_sentiment", out=tmp_path, config={"bootstrap": 50})
    written = json.loads((tmp_path / "diff.json").read_text())
    assert written["schema_version"] == "interp-agent.model_diff.v1"
    assert written["tuned"]["finetune"]["trained_layers"] == [2, 3]
    by_point = {p["hookpoint"]: p for p in result["hookpoints"]}
    # block 1 is below the trained MLP: its activations are identical, so nothing moves there
    assert all(by_point["blocks.1.mlp.hook_post"]["counts"][k]["selected"] == 0 for k in ("appear", "vanish",
                                                                                           "change"))
    assert by_point["blocks.1.mlp.hook_post"]["median_corr_selection"] == pytest.approx(1.0)
    assert by_point["blocks.2.mlp.hook_post"]["median_corr_selection"] < 0.999
    assert result["behaviour"]["provenance"] == "interventional"
    assert "## Summary" in (tmp_path / "diff.md").read_text()


def _other_tokenizer() -> Any:
    from tokenizers import Regex, Tokenizer, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    vocab = {"[UNK]": 0, "[EOS]": 1} | {chr(c): i + 2 for i, c in enumerate(range(126, 31, -1))}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", eos_token="[EOS]")


def test_a_tuned_model_with_another_tokenizer_is_refused_naming_the_tuned_side() -> None:
    base = tiny_model()
    other = wrap_model(tiny_model().model, _other_tokenizer(), name="odd-tuned")
    with pytest.raises(ValidationError, match=r"tuned model's tokenizer \(odd-tuned"):
        diff_models(base, other, hookpoints=["blocks.1.mlp.hook_post"])


def test_a_tuned_model_of_another_width_is_refused_naming_the_tuned_side() -> None:
    wide = tiny_model(d_model=48)
    with pytest.raises(ValidationError, match=r"width 48 in the tuned model \(tiny-llama\) but 32"):
        diff_models(tiny_model(), wide, hookpoints=["blocks.1.hook_resid_post"], features="dims")


def test_an_unknown_hookpoint_or_a_feature_kind_that_does_not_fit_is_refused() -> None:
    with pytest.raises(ValidationError, match=r"base model \(tiny-llama\).*layer 9 is out of range"):
        diff_models(tiny_model(), tiny_model(), hookpoints=["blocks.9.hook_resid_post"], features="dims")
    with pytest.raises(ValidationError, match="does not fit hookpoint blocks.1.hook_resid_post"):
        diff_models(tiny_model(), tiny_model(), hookpoints=["blocks.1.hook_resid_post"], features="neurons")
    with pytest.raises(ValidationError, match="unknown diff config fields"):
        diff_models(tiny_model(), tiny_model(), hookpoints=["blocks.1.mlp.hook_post"], config={"topk": 3})


def _parser() -> Any:
    import argparse

    from interp_agent.cli.diffing import add_diffing_parsers

    parser = argparse.ArgumentParser(prog="interp-agent")
    add_diffing_parsers(parser.add_subparsers(dest="command", required=True))
    return parser


def test_finetune_and_diff_models_run_from_their_command_lines(
    tiny_folder: Path, tmp_path: Path, capsys: pytest.CaptureFixture[str]
) -> None:
    args = _parser().parse_args(["finetune", "--out", str(tmp_path / "ft"), "--base", str(tiny_folder),
                                 "--steps", "3", "--json"])
    assert args.func(args) == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["trained"]["steps"] == 3 and Path(payload["path"]) == tmp_path / "ft"
    args = _parser().parse_args(["diff-models", "--base", str(tiny_folder), "--tuned", str(tmp_path / "ft"),
                                 "--hookpoint", "blocks.3.mlp.hook_post", "--n-probes", "12", "--out",
                                 str(tmp_path / "diff")])
    assert args.func(args) == 0
    assert "model diff [correlational]" in capsys.readouterr().out
    assert (tmp_path / "diff" / "diff.md").is_file()


def test_sae_latents_of_one_sae_are_diffed_in_both_models(tiny_folder: Path, tuned_folder: Path) -> None:
    import numpy as np

    rng = np.random.default_rng(0)
    sae = {"blocks.3.hook_resid_post": (rng.normal(size=(32, 64)), np.zeros(64), np.zeros(32), None, None)}
    result = diff_models(str(tiny_folder), str(tuned_folder), hookpoints=["blocks.3.hook_resid_post"],
                         features="sae", sae=sae, n_probes=16, config={"bootstrap": 50, "top_k": 5})
    (point,) = result["hookpoints"]
    assert point["width"] == 64
    entries = [e for k in ("appear", "vanish", "change") for e in point[k]]
    assert entries and all(e["feature_id"].startswith("SAE:L3:F") and e["fire_threshold"] == 0 for e in entries)
    with pytest.raises(ValidationError, match="needs an SAE for blocks.2.hook_resid_post"):
        diff_models(str(tiny_folder), str(tuned_folder), hookpoints=["blocks.2.hook_resid_post"], features="sae",
                    sae=sae, n_probes=16)
