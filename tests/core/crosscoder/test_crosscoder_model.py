"""The BatchTopK crosscoder and its training loop: exactly k × batch latents active in training,
a threshold at inference, training lowers the held-out FVU, determinism; saving in dictionary_learning's
layout and loading it back. Activations here are synthetic (random planted dictionaries)."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from interp_agent.core.crosscoder import (
    BatchTopKCrossCoder,
    CrosscoderShape,
    CrosscoderTraining,
    fit_crosscoder,
    held_out_metrics,
    load_crosscoder,
    save_crosscoder,
)
from interp_agent.core.crosscoder.io import STATE_KEYS
from interp_agent.core.errors import InputFileError, ValidationError


def planted_pairs(n: int = 6000, d: int = 16, seed: int = 0) -> np.ndarray:
    """Synthetic paired activations: 12 shared sparse directions in both sources, B scaled ×3 and offset."""
    rng = np.random.default_rng(seed)
    D = rng.normal(size=(12, d))
    D /= np.linalg.norm(D, axis=1, keepdims=True)
    codes = (rng.random((n, 12)) < 0.15) * rng.exponential(1.0, (n, 12))
    a = codes @ D + 0.05 * rng.normal(size=(n, d))
    b = 3.0 * (codes @ D) + 1.0 + 0.05 * rng.normal(size=(n, d))
    return np.stack([a, b], axis=1).astype(np.float32)


SHAPE = CrosscoderShape(n_sources=2, d=16, latent_dim=48, k=3)
TRAINING = CrosscoderTraining(batch_size=256, steps=150, lr=3e-3, seed=1)


@pytest.fixture(scope="module")
def trained() -> tuple[BatchTopKCrossCoder, dict, np.ndarray]:
    acts = planted_pairs()
    model, fit = fit_crosscoder(acts[:5000], SHAPE, TRAINING)
    return model, fit, acts[5000:]


def test_batch_topk_keeps_exactly_k_times_batch_latents() -> None:
    model = BatchTopKCrossCoder(SHAPE, generator=torch.Generator().manual_seed(0))
    with torch.no_grad():
        model.encoder.bias.fill_(0.5)  # every pre-activation positive: more candidates than k × batch
    x = torch.randn(64, 2, 16)
    f = model.select_batch_topk(model.pre_relu(model.normalise(x)))
    assert int((f > 0).sum()) == SHAPE.k * 64
    assert (f > 0).sum(1).max() > SHAPE.k  # per token it varies: the budget is over the batch


def test_encoder_and_decoder_have_dictionary_learning_shapes() -> None:
    model = BatchTopKCrossCoder(SHAPE)
    state = model.state_dict()
    assert set(state) == set(STATE_KEYS)
    assert state["encoder.weight"].shape == (2, 16, 48) and state["encoder.bias"].shape == (48,)
    assert state["decoder.weight"].shape == (2, 48, 16) and state["decoder.bias"].shape == (2, 16)
    assert state["activation_mean"].shape == (2, 16) and state["activation_global_scale"].shape == (2,)
    assert state["k"].dtype == torch.int32 and int(state["k"]) == 3
    assert state["threshold"].shape == () and int(state["code_normalization_id"]) == 1


def test_training_lowers_held_out_fvu_on_every_source(trained: tuple) -> None:
    model, fit, held = trained
    untrained = BatchTopKCrossCoder(SHAPE, generator=torch.Generator().manual_seed(1))
    untrained.set_normaliser(torch.as_tensor(held.mean(0)), torch.as_tensor(held.std(0)))
    before = held_out_metrics(untrained, held, ["A", "B"])["fvu"]
    after = held_out_metrics(model, held, ["A", "B"])
    assert fit["history"][-1]["loss"] < 0.5 * fit["history"][0]["loss"]
    for name in ("A", "B"):
        assert after["fvu"][name] < 0.2 < before[name]
    assert after["provenance"] == "correlational"


def test_inference_threshold_gives_about_k_active_latents(trained: tuple) -> None:
    model, _, held = trained
    assert float(model.threshold) > 0
    l0 = held_out_metrics(model, held, ["A", "B"])["l0"]
    assert 0.5 * SHAPE.k < l0 < 2 * SHAPE.k


def test_training_is_deterministic_for_a_seed(trained: tuple) -> None:
    model, _, _ = trained
    again, _ = fit_crosscoder(planted_pairs()[:5000], SHAPE, TRAINING)
    for key, value in model.state_dict().items():
        torch.testing.assert_close(again.state_dict()[key], value, rtol=0, atol=0)


def test_save_then_load_round_trips_exactly(trained: tuple, tmp_path: Path) -> None:
    model, _, held = trained
    paths = save_crosscoder(tmp_path / "xc", model, {"trainer": {"dict_class": "BatchTopKCrossCoder"}})
    loaded, config = load_crosscoder(tmp_path / "xc")
    for key, value in model.state_dict().items():
        torch.testing.assert_close(loaded.state_dict()[key], value, rtol=0, atol=0)
    x = torch.as_tensor(held[:200])
    torch.testing.assert_close(loaded.encode(x), model.encode(x), rtol=0, atol=0)
    assert config["trainer"]["dict_class"] == "BatchTopKCrossCoder"
    assert config["interp_agent"]["schema_version"] == "interp-agent.crosscoder.v1"
    assert json.loads(paths["config"].read_text())["trainer"] == config["trainer"]
    assert sorted(p.name for p in (tmp_path / "xc").iterdir()) == ["ae.pt", "config.json"]


def test_saved_state_dict_is_plain_tensors_that_torch_loads_with_weights_only(trained: tuple, tmp_path: Path) -> None:
    model, _, _ = trained
    save_crosscoder(tmp_path / "xc", model, {})
    state = torch.load(tmp_path / "xc" / "ae.pt", weights_only=True)  # what from_pretrained does
    assert tuple(state) == tuple(model.state_dict())
    assert state["encoder.weight"].shape == (2, 16, 48)  # (num_layers, activation_dim, dict_size)


def test_saving_again_replaces_the_folder_whole(trained: tuple, tmp_path: Path) -> None:
    model, _, _ = trained
    (tmp_path / "xc").mkdir()
    (tmp_path / "xc" / "stale.txt").write_text("old")
    save_crosscoder(tmp_path / "xc", model, {})
    assert not (tmp_path / "xc" / "stale.txt").exists()
    assert [p.name for p in tmp_path.iterdir()] == ["xc"]  # no temporary folder left behind


def test_loading_a_folder_without_weights_names_the_folder(tmp_path: Path) -> None:
    with pytest.raises(InputFileError, match="no ae.pt"):
        load_crosscoder(tmp_path)


def test_shape_refuses_one_source_and_k_above_latent_dim() -> None:
    with pytest.raises(ValidationError, match="at least 2 sources"):
        CrosscoderShape(1, 16, 48, 3)
    with pytest.raises(ValidationError, match="k must satisfy"):
        CrosscoderShape(2, 16, 48, 49)


def test_training_refuses_activations_of_the_wrong_shape() -> None:
    with pytest.raises(ValidationError, match=r"expected \[n_tokens, 2, 16\]"):
        fit_crosscoder(np.zeros((100, 3, 16), np.float32), SHAPE, TRAINING)
