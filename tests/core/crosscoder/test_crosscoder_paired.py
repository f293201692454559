"""Paired activations from tiny random llamas (synthetic activations): several layers of one model, two
models sharing a tokenizer, and the errors that name the side that is wrong (tokenizer, width, length)."""

from __future__ import annotations

from pathlib import Path
from typing import Any

import numpy as np
import pytest

from interp_agent.core.crosscoder import paired_activations, paired_from_arrays
from interp_agent.core.errors import InputFileError, ValidationError
from interp_agent.core.models.harvest import harvest
from interp_agent.core.models.loading import LoadedModel, tiny_model, wrap_model

TEXTS = ["the cat sat on the mat", "a dog ran far away", "seven small birds", "hello there"]


@pytest.fixture(scope="module")
def tiny() -> LoadedModel:
    return tiny_model(seed=0)


@pytest.fixture(scope="module")
def tiny_other() -> LoadedModel:
    return tiny_model(seed=1)  # same tokenizer and width, other weights: a stand-in fine-tuned copy


def shifted_tokenizer() -> Any:
    """A real character tokenizer whose ids differ from tiny_tokenizer's (every char id shifted by one)."""
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    chars = [chr(c) for c in range(32, 127)]
    vocab = {"[UNK]": 0, "[EOS]": 1} | {ch: (i + 1) % len(chars) + 2 for i, ch in enumerate(chars)}
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    tok.decoder = decoders.Fuse()
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", eos_token="[EOS]", pad_token="[EOS]")


def test_several_layers_of_one_model_stack_on_the_same_tokens(tiny: LoadedModel) -> None:
    paired = paired_activations([(tiny, "blocks.0.hook_resid_post"), (tiny, "blocks.1.hook_resid_post")], TEXTS,
                                max_length=16)
    ref = harvest(tiny, TEXTS, ["blocks.0.hook_resid_post", "blocks.1.hook_resid_post"], pooling="token",
                  max_length=16)
    n_tokens = sum(min(len(t), 16) - 1 for t in TEXTS)  # character tokens, truncated, the first position left out
    assert paired.acts.shape == (n_tokens, 2, 32)
    np.testing.assert_array_equal(paired.acts[:, 0], ref["blocks.0.hook_resid_post"].acts)
    np.testing.assert_array_equal(paired.acts[:, 1], ref["blocks.1.hook_resid_post"].acts)
    assert paired.names == ["tiny-llama@blocks.0.hook_resid_post", "tiny-llama@blocks.1.hook_resid_post"]


def test_two_models_sharing_a_tokenizer_pair_at_one_hookpoint(tiny: LoadedModel, tiny_other: LoadedModel) -> None:
    hook = "blocks.1.hook_resid_post"
    paired = paired_activations([(tiny, hook), (tiny_other, hook)], TEXTS, max_length=16)
    assert paired.acts.shape[1:] == (2, 32)
    assert paired.names == [f"tiny-llama@{hook}#1", f"tiny-llama@{hook}#2"]  # same name twice: numbered
    np.testing.assert_array_equal(paired.acts[:, 1], harvest(tiny_other, TEXTS, [hook], pooling="token",
                                                             max_length=16)[hook].acts)
    assert not np.allclose(paired.acts[:, 0], paired.acts[:, 1])


def test_models_that_tokenise_differently_are_refused_naming_the_side_and_text(tiny: LoadedModel) -> None:
    other = wrap_model(tiny.model, shifted_tokenizer(), name="shifted")
    with pytest.raises(ValidationError, match=r"source 2 \(shifted@blocks.1.hook_resid_post\) tokenises text 0"):
        paired_activations([(tiny, "blocks.1.hook_resid_post"), (other, "blocks.1.hook_resid_post")], TEXTS)


def test_sources_of_different_widths_are_refused_naming_the_source(tiny: LoadedModel) -> None:
    wide = tiny_model(d_model=48, seed=2)
    with pytest.raises(ValidationError, match=r"source tiny-llama@blocks.0.hook_resid_post#2 has width 48"):
        paired_activations([(tiny, "blocks.0.hook_resid_post"), (wide, "blocks.0.hook_resid_post")], TEXTS)
    with pytest.raises(ValidationError, match="has width 64"):  # resid (32) against MLP neurons (64)
        paired_activations([(tiny, "blocks.0.hook_resid_post"), (tiny, "blocks.0.mlp.hook_post")], TEXTS)


def test_one_source_is_refused(tiny: LoadedModel) -> None:
    with pytest.raises(ValidationError, match="at least two sources"):
        paired_activations([(tiny, "blocks.0.hook_resid_post")], TEXTS)


def test_stored_arrays_of_different_lengths_are_refused_naming_which(tmp_path: Path) -> None:
    np.save(tmp_path / "base.npy", np.zeros((100, 8), np.float32))
    np.save(tmp_path / "chat.npy", np.zeros((90, 8), np.float32))
    with pytest.raises(ValidationError, match=r"source .*chat.npy has 90 rows, source .*base.npy has 100"):
        paired_from_arrays([tmp_path / "base.npy", tmp_path / "chat.npy"])


def test_stored_arrays_stack_and_other_widths_are_refused(tmp_path: Path) -> None:
    a, b = np.ones((10, 8), np.float32), 2 * np.ones((10, 8), np.float32)
    paired = paired_from_arrays([a, b], ["base", "chat"])
    assert paired.acts.shape == (10, 2, 8) and paired.names == ["base", "chat"] and paired.row_prompt is None
    with pytest.raises(ValidationError, match="source chat has width 6, source base has width 8"):
        paired_from_arrays([a, np.ones((10, 6), np.float32)], ["base", "chat"])
    with pytest.raises(InputFileError, match="file not found"):
        paired_from_arrays([a, tmp_path / "missing.npy"])
