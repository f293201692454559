"""Exclusivity checks on constructed (synthetic) cases: a direction planted only in source B comes out
exclusive to B and passes both checks, shared directions do not, and Latent Scaling catches a latent
whose decoder norm says "B only" while source A still carries its direction (Complete Shrinkage)."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from interp_agent.core.crosscoder import (
    BatchTopKCrossCoder,
    CrosscoderShape,
    CrosscoderTraining,
    ExclusivityConfig,
    exclusivity_table,
    fit_crosscoder,
    latent_scaling_betas,
)

D = 24


def planted(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """A and B share 10 directions; B alone has ``u``. Returns activations [n, 2, D], the shared
    directions and u."""
    rng = np.random.default_rng(seed)
    shared = rng.normal(size=(10, D))
    shared /= np.linalg.norm(shared, axis=1, keepdims=True)
    u = rng.normal(size=D)
    u /= np.linalg.norm(u)
    codes = (rng.random((n, 10)) < 0.12) * rng.exponential(1.0, (n, 10))
    only_b = (rng.random(n) < 0.12) * rng.exponential(1.5, n)
    a = codes @ shared + 0.03 * rng.normal(size=(n, D))
    b = codes @ shared + only_b[:, None] * u + 0.03 * rng.normal(size=(n, D))
    return np.stack([a, b], axis=1).astype(np.float32), shared, u


@pytest.fixture(scope="module")
def table_and_dirs() -> tuple[dict, BatchTopKCrossCoder, np.ndarray, np.ndarray]:
    acts, shared, u = planted(16_000)
    model, _ = fit_crosscoder(acts[:14_000], CrosscoderShape(2, D, 32, 2),
                              CrosscoderTraining(batch_size=512, steps=800, lr=3e-2, seed=0))
    return exclusivity_table(model, acts[14_000:], ["A", "B"]), model, shared, u


def _best_latent(model: BatchTopKCrossCoder, direction: np.ndarray, source: int) -> int:
    dec = model.decoder.weight.detach()[source].numpy()  # [m, d]
    cos = dec @ direction / np.maximum(np.linalg.norm(dec, axis=1), 1e-12)
    return int(np.argmax(cos))


def test_the_latent_of_a_direction_only_in_b_is_exclusive_to_b_and_passes_both_checks(table_and_dirs: tuple) -> None:
    table, model, _, u = table_and_dirs
    row = table["latents"][_best_latent(model, u, 1)]
    assert row["exclusive_to"] == "B"
    assert row["passed"] == ["decoder_norm", "latent_scaling"]
    assert row["relative_norm"] > 0.9 and row["norm_diff_minder"] > 0.9
    assert abs(row["nu_error"]) < 0.3 and abs(row["nu_reconstruction"]) < 0.3
    assert row["feature_id"] == f"SAE:crosscoder:F{row['latent']}"


def test_latents_of_shared_directions_are_not_exclusive(table_and_dirs: tuple) -> None:
    table, model, shared, _ = table_and_dirs
    for direction in shared:
        row = table["latents"][_best_latent(model, direction, 0)]
        assert row["exclusive_to"] is None
        assert row["checks"]["decoder_norm"] == "fail"
        assert 0.3 < row["relative_norm"] < 0.7
    assert table["summary"]["exclusive"]["A"] == 0
    assert table["provenance"] == "correlational"


def shrunk_crosscoder(u: np.ndarray) -> BatchTopKCrossCoder:
    """One latent reading u from source B and writing it to B only (A's decoder zero), threshold 0:
    a decoder norm of 'B only' by construction."""
    model = BatchTopKCrossCoder(CrosscoderShape(2, D, 2, 1))
    ut = torch.as_tensor(u, dtype=torch.float32)
    with torch.no_grad():
        model.encoder.weight.zero_()
        model.encoder.weight[1, :, 0] = ut
        model.decoder.weight.zero_()
        model.decoder.weight[1, 0] = ut
        model.decoder.bias.zero_()
        model.threshold.fill_(0.0)
    return model


def test_latent_scaling_flags_a_direction_the_other_source_still_carries() -> None:
    _, _, u = planted(10)
    rng = np.random.default_rng(3)
    c = rng.exponential(1.0, 2000)
    a = 0.8 * c[:, None] * u + 0.01 * rng.normal(size=(2000, D))  # A carries u, the decoder says it does not
    b = c[:, None] * u + 0.01 * rng.normal(size=(2000, D))
    acts = np.stack([a, b], axis=1).astype(np.float32)
    table = exclusivity_table(shrunk_crosscoder(u), acts, ["A", "B"])
    row = table["latents"][0]
    assert row["checks"]["decoder_norm"] == "pass" and row["relative_norm"] == pytest.approx(1.0)
    assert row["checks"]["latent_scaling"] == "fail"
    assert row["nu_error"] == pytest.approx(0.8, abs=0.05)  # A's error holds 0.8 of the latent's direction
    assert row["exclusive_to"] is None and row["tag"] == "decoder_norm_only:B"


def test_beta_is_the_closed_form_least_squares_scale() -> None:
    _, _, u = planted(10)
    rng = np.random.default_rng(4)
    c = rng.exponential(1.0, 500)
    acts = np.stack([0.5 * c[:, None] * u, c[:, None] * u], axis=1).astype(np.float32) \
        + 0.01 * rng.normal(size=(500, 2, D)).astype(np.float32)
    model = shrunk_crosscoder(u)
    betas = latent_scaling_betas(model, acts)
    f = model.encode(torch.as_tensor(acts))[:, 0].double().numpy()
    x_a = acts[:, 0].astype(np.float64)  # the decoder writes nothing to A, so A's error target is A itself
    v = model.decoder.weight.detach()[1, 0].double().numpy()
    expected = (f * (x_a @ v)).sum() / ((v @ v) * (f ** 2).sum())
    assert betas["error"][1, 0, 0] == pytest.approx(expected, rel=1e-6)
    assert np.isnan(betas["error"][1, 0, 1])  # latent 1 never fires


def test_latents_active_on_too_few_held_out_tokens_are_not_scaled() -> None:
    _, _, u = planted(10)
    acts = np.zeros((50, 2, D), np.float32)
    acts[:3, 1] = u  # the latent fires on 3 tokens only
    row = exclusivity_table(shrunk_crosscoder(u), acts, ["A", "B"], ExclusivityConfig(min_active=10))["latents"][0]
    assert row["checks"]["latent_scaling"].startswith("not_run")
    assert row["exclusive_to"] is None
