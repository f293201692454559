"""Harvesting pooled activations and activation records on tiny random models."""

from __future__ import annotations

import numpy as np
import pytest
import torch

from interp_agent.core.errors import ValidationError
from interp_agent.core.formats.parquet import iter_parquet_records, read_feature_table
from interp_agent.core.formats.prompts import ScoredPrompt
from interp_agent.core.formats.records import FeatureMeta, read_records
from interp_agent.core.models import (
    SaeParams,
    capture,
    encode_sae,
    harvest,
    harvest_records,
    tiny_model,
    write_harvested_records,
)
from interp_agent.core.models.hookpoints import model_layout

HOOKS = ["blocks.0.hook_resid_post", "blocks.1.mlp.hook_post", "blocks.2.hook_resid_post"]
SHORT = "the cat sat"
LONG = "a much longer sentence that forces plenty of padding onto the short one"


@pytest.fixture(params=["llama", "gpt2"])
def lm(request):
    return tiny_model(request.param, n_layers=4, d_model=32, vocab_size=100, seed=0)


def _token_acts(lm, text: str, hookpoint: str) -> torch.Tensor:
    """Reference: the [seq, width] activation of one unpadded text."""
    ids = lm.tokenizer(text, return_tensors="pt")["input_ids"]
    with torch.no_grad(), capture(lm.model, [hookpoint]) as acts:
        lm.model(input_ids=ids)
    return acts[hookpoint][0][0]


@pytest.mark.parametrize("pooling", ["mean", "max", "last", "token"])
def test_padding_does_not_change_pooled_activations(lm, pooling):
    alone = harvest(lm, [SHORT], HOOKS, pooling=pooling)
    batched = harvest(lm, [LONG, SHORT, LONG[:20]], HOOKS, pooling=pooling, batch_size=3)
    for name in HOOKS:
        rows = batched[name].row_prompt == 1
        torch.testing.assert_close(batched[name].acts[rows], alone[name].acts, rtol=1e-5, atol=1e-5)


def test_mean_pooling_excludes_the_first_position_by_default(lm):
    ref = _token_acts(lm, SHORT, "blocks.2.hook_resid_post").numpy()
    excluded = harvest(lm, [SHORT], ["blocks.2.hook_resid_post"])["blocks.2.hook_resid_post"].acts[0]
    included = harvest(lm, [SHORT], ["blocks.2.hook_resid_post"],
                       exclude_first=False)["blocks.2.hook_resid_post"].acts[0]
    np.testing.assert_allclose(excluded, ref[1:].mean(0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(included, ref.mean(0), rtol=1e-5, atol=1e-6)
    assert not np.allclose(excluded, included)


def test_max_and_last_pooling_match_a_direct_computation(lm):
    ref = _token_acts(lm, LONG, "blocks.1.mlp.hook_post").numpy()
    got_max = harvest(lm, [LONG], ["blocks.1.mlp.hook_post"], pooling="max")["blocks.1.mlp.hook_post"].acts[0]
    got_last = harvest(lm, [LONG], ["blocks.1.mlp.hook_post"], pooling="last")["blocks.1.mlp.hook_post"].acts[0]
    np.testing.assert_allclose(got_max, ref[1:].max(0), rtol=1e-5, atol=1e-6)
    np.testing.assert_allclose(got_last, ref[-1], rtol=1e-5, atol=1e-6)


def test_token_pooling_gives_one_row_per_token_after_the_first_with_its_string(lm):
    got = harvest(lm, [LONG, SHORT], ["blocks.0.hook_resid_post"], pooling="token")["blocks.0.hook_resid_post"]
    n_long, n_short = len(LONG), len(SHORT)  # the tiny tokenizer has one token per character
    assert got.acts.shape == (n_long - 1 + n_short - 1, 32) and got.acts.dtype == np.float32
    assert got.row_prompt.tolist() == [0] * (n_long - 1) + [1] * (n_short - 1)
    assert got.token_index.tolist() == list(range(1, n_long)) + list(range(1, n_short))
    assert "".join(got.tokens[n_long - 1:]) == SHORT[1:]
    np.testing.assert_allclose(got.acts[n_long - 1:], _token_acts(lm, SHORT, "blocks.0.hook_resid_post")[1:].numpy(),
                               rtol=1e-5, atol=1e-6)
    with_first = harvest(lm, [SHORT], ["blocks.0.hook_resid_post"], pooling="token", exclude_first=False)
    assert with_first["blocks.0.hook_resid_post"].token_index.tolist() == list(range(n_short))


def test_rows_come_back_in_the_callers_order_whatever_the_batching(lm):
    texts = [f"text number {i} " + "x" * (i * 7 % 11) for i in range(9)]
    one = harvest(lm, texts, ["blocks.1.hook_resid_post"], batch_size=1)["blocks.1.hook_resid_post"]
    four = harvest(lm, texts, ["blocks.1.hook_resid_post"], batch_size=4)["blocks.1.hook_resid_post"]
    assert one.row_prompt.tolist() == list(range(9))
    torch.testing.assert_close(four.acts, one.acts, rtol=1e-5, atol=1e-5)


def test_progress_is_reported_once_per_batch(lm):
    seen = []
    harvest(lm, [SHORT] * 5, HOOKS, batch_size=2, progress=lambda phase, done, total: seen.append((phase, done, total)))
    assert seen == [("harvesting", 1, 3), ("harvesting", 2, 3), ("harvesting", 3, 3)]


def test_harvest_never_runs_blocks_after_the_deepest_hookpoint_nor_the_lm_head(lm):
    layout = model_layout(lm.model)
    calls = []
    handles = [layout.blocks[3].register_forward_hook(lambda *_: calls.append("block3")),
               lm.model.lm_head.register_forward_hook(lambda *_: calls.append("head"))]
    try:
        harvest(lm, [SHORT, LONG], HOOKS, batch_size=1)
    finally:
        for h in handles:
            h.remove()
    assert calls == []
    assert not layout.blocks[2]._forward_hooks and not layout.blocks[2]._forward_pre_hooks


def test_a_text_with_nothing_left_to_pool_is_a_validation_error(lm):
    with pytest.raises(ValidationError, match="fewer than 2 token"):
        harvest(lm, [SHORT, "x"], HOOKS)
    ok = harvest(lm, [SHORT, "x"], HOOKS, exclude_first=False)
    assert ok[HOOKS[0]].acts.shape == (2, 32)


def test_bad_options_are_validation_errors(lm):
    with pytest.raises(ValidationError, match="pooling"):
        harvest(lm, [SHORT], HOOKS, pooling="median")
    with pytest.raises(ValidationError, match="batch_size"):
        harvest(lm, [SHORT], HOOKS, batch_size=0)
    with pytest.raises(ValidationError, match="hookpoints"):
        harvest(lm, [SHORT], "blocks.0.hook_resid_post")
    with pytest.raises(ValidationError, match="unknown hookpoint"):
        harvest(lm, [SHORT], ["blocks.0.resid"])


def test_max_length_truncates_each_text(lm):
    got = harvest(lm, [LONG], ["blocks.0.hook_resid_post"], pooling="token", max_length=10)
    assert got["blocks.0.hook_resid_post"].token_index.tolist() == list(range(1, 10))


# --- records --------------------------------------------------------------------------

PROMPTS = [
    ScoredPrompt("p0", "the quick brown fox", 1.0, "train"),
    ScoredPrompt("p1", "jumps over", 0.0, "held_out"),
    ScoredPrompt("p2", "the lazy dog sleeps all day long", 0.5),
]


def test_records_carry_residual_dim_and_neuron_feature_ids_with_layers():
    lm = tiny_model("llama", n_layers=4, seed=1)
    meta: dict[str, FeatureMeta] = {}
    records = list(harvest_records(lm, PROMPTS, ["blocks.2.hook_resid_post", "blocks.1.mlp.hook_post"],
                                   feature_metadata=meta))
    assert [r.prompt_id for r in records] == ["p0", "p1", "p2"]
    assert [(r.criterion_score, r.split, r.text, r.model) for r in records][:2] == [
        (1.0, "train", "the quick brown fox", "tiny-llama"), (0.0, "held_out", "jumps over", "tiny-llama")]
    ids = set(records[0].feature_ids)
    assert {f"L2:D{i}" for i in range(32)} <= ids and {f"L1:N{i}" for i in range(64)} <= ids
    assert meta["L2:D5"].layer == 2 and meta["L1:N63"].layer == 1
    dense = harvest(lm, [p.text for p in PROMPTS], ["blocks.2.hook_resid_post"])["blocks.2.hook_resid_post"].acts
    row = dict(zip(records[1].feature_ids, records[1].activations, strict=True))
    np.testing.assert_allclose([row[f"L2:D{i}"] for i in range(32)], dense[1], rtol=1e-6, atol=1e-7)


def test_top_n_keeps_only_the_largest_absolute_activations_per_row():
    lm = tiny_model("gpt2", n_layers=4, seed=2)
    hooks = ["blocks.0.hook_resid_post", "blocks.3.hook_resid_post"]
    sparse = list(harvest_records(lm, PROMPTS, hooks, top_n=5))
    dense = list(harvest_records(lm, PROMPTS, hooks))
    for s, d in zip(sparse, dense, strict=True):
        assert len(s.feature_ids) == 5
        expected = sorted(zip(d.feature_ids, d.activations, strict=True), key=lambda kv: -abs(kv[1]))[:5]
        assert list(s.feature_ids) == [f for f, _ in expected]
        assert list(s.activations) == pytest.approx([a for _, a in expected], rel=1e-6)


def test_token_records_carry_token_index_and_token_and_share_the_prompt_id():
    lm = tiny_model("llama", n_layers=2, seed=3)
    records = list(harvest_records(lm, PROMPTS[:2], ["blocks.1.hook_resid_post"], pooling="token", top_n=3))
    assert [(r.prompt_id, r.token_index) for r in records] == (
        [("p0", i) for i in range(1, len(PROMPTS[0].text))] + [("p1", i) for i in range(1, len(PROMPTS[1].text))])
    assert "".join(r.token for r in records if r.prompt_id == "p1") == PROMPTS[1].text[1:]


def _sae(d_in: int, d_sae: int, seed: int, *, threshold: bool = False, k: int | None = None) -> SaeParams:
    rng = np.random.default_rng(seed)
    return SaeParams(
        rng.normal(0, 1, (d_in, d_sae)).astype(np.float32),
        rng.normal(0, 0.1, d_sae).astype(np.float32),
        rng.normal(0, 0.1, d_in).astype(np.float32),
        np.full(d_sae, 0.5, np.float32) if threshold else None,
        k,
    )


def _manual_sae(x: np.ndarray, sae: SaeParams) -> np.ndarray:
    pre = (x - sae.b_dec) @ sae.W_enc + sae.b_enc
    if sae.threshold is not None:
        return np.where(pre > sae.threshold, np.maximum(pre, 0), 0)
    out = np.maximum(pre, 0)
    if sae.k is not None:
        cut = -np.sort(-pre, axis=-1)[..., sae.k - 1 : sae.k]
        out = np.where(pre >= cut, out, 0)
    return out


@pytest.mark.parametrize("kind", ["relu", "jumprelu", "topk"])
def test_sae_latents_equal_a_manual_encoding_pooled_over_tokens(kind):
    lm = tiny_model("llama", n_layers=3, seed=4)
    hook = "blocks.1.hook_resid_post"
    sae = _sae(32, 48, seed=5, threshold=kind == "jumprelu", k=4 if kind == "topk" else None)
    records = list(harvest_records(lm, PROMPTS, [hook], features="sae", sae={hook: sae}))
    tokens = harvest(lm, [p.text for p in PROMPTS], [hook], pooling="token")[hook]
    for i, record in enumerate(records):
        expected = _manual_sae(tokens.acts[tokens.row_prompt == i].astype(np.float64), sae).mean(0)
        got = np.zeros(48)
        for fid, value in zip(record.feature_ids, record.activations, strict=True):
            assert fid.startswith("SAE:L1:F")
            got[int(fid.split(":F")[1])] = value
        np.testing.assert_allclose(got, expected, rtol=1e-4, atol=1e-4)
        if kind != "relu":
            assert len(record.feature_ids) < 48


def test_encode_sae_topk_keeps_k_latents_per_token():
    sae = _sae(8, 20, seed=6, k=3)
    x = torch.as_tensor(np.random.default_rng(7).normal(size=(5, 8)), dtype=torch.float32)
    z = encode_sae(x, sae)
    assert ((z > 0).sum(-1) <= 3).all()
    np.testing.assert_allclose(z.numpy(), _manual_sae(x.numpy(), sae), rtol=1e-5, atol=1e-5)


def test_direction_features_are_projections_on_the_unit_direction():
    lm = tiny_model("gpt2", n_layers=3, seed=8)
    hooks = ["blocks.0.hook_resid_post", "blocks.2.hook_resid_post"]
    rng = np.random.default_rng(9)
    v, w = rng.normal(size=32), rng.normal(size=32)
    dirs = {"topic": (hooks[1], v * 3.0), "direction:other": (hooks[0], w)}
    records = list(harvest_records(lm, PROMPTS, hooks, features="direction", directions=dirs))
    pooled = harvest(lm, [p.text for p in PROMPTS], hooks)
    for i, record in enumerate(records):
        row = dict(zip(record.feature_ids, record.activations, strict=True))
        assert row["direction:topic"] == pytest.approx(pooled[hooks[1]].acts[i] @ (v / np.linalg.norm(v)), rel=1e-4)
        assert row["direction:other"] == pytest.approx(pooled[hooks[0]].acts[i] @ (w / np.linalg.norm(w)), rel=1e-4)
    with pytest.raises(ValidationError, match="hookpoint, vector"):
        list(harvest_records(lm, PROMPTS, hooks, features="direction", directions={"topic": v}))


def test_sae_inputs_are_checked_against_the_hookpoints():
    lm = tiny_model("llama", n_layers=3, seed=10)
    hook = "blocks.1.hook_resid_post"
    with pytest.raises(ValidationError, match="W_enc has shape"):
        list(harvest_records(lm, PROMPTS, [hook], features="sae", sae={hook: _sae(16, 8, seed=0)}))
    with pytest.raises(ValidationError, match="no SAE given"):
        list(
            harvest_records(lm, PROMPTS, [hook, "blocks.2.hook_resid_post"], features="sae", sae={hook: _sae(32, 8, 0)})
        )


@pytest.mark.parametrize("fmt", ["jsonl", "parquet"])
def test_harvested_records_round_trip_through_the_record_writers(tmp_path, fmt):
    lm = tiny_model("llama", n_layers=3, seed=11)
    hooks = ["blocks.1.hook_resid_post", "blocks.2.mlp.hook_post"]
    out = write_harvested_records(tmp_path / f"records.{fmt}", lm, PROMPTS, hooks, format=fmt, top_n=4)
    expected = list(harvest_records(lm, PROMPTS, hooks, top_n=4))
    if fmt == "jsonl":
        rows, meta = read_records(out)
    else:
        rows = list(iter_parquet_records(out))
        _, meta = read_feature_table(out)
    assert [(r.prompt_id, r.feature_ids) for r in rows] == [(r.prompt_id, r.feature_ids) for r in expected]
    for got, want in zip(rows, expected, strict=True):
        assert got.activations == pytest.approx(want.activations)
    first = rows[0].feature_ids[0]
    assert meta[first].layer == int(first[1:].split(":")[0])


def test_the_model_carries_no_hooks_while_records_are_consumed():
    lm = tiny_model("llama", n_layers=3, seed=12)
    blocks = model_layout(lm.model).blocks
    records = harvest_records(lm, PROMPTS * 20, ["blocks.1.hook_resid_post"], batch_size=2)
    next(records)
    assert all(not b._forward_hooks and not b._forward_pre_hooks for b in blocks)
    with torch.no_grad():
        lm.model(input_ids=torch.tensor([[5, 6, 7]]))  # no StopForward from a leftover hook
    assert len(list(records)) == len(PROMPTS) * 20 - 1
