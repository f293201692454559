"""An hf inspect harvests its prompts once: dims, neurons, SAE latents, directions and token highlights."""

from __future__ import annotations

import math
from pathlib import Path
from typing import Any

import numpy as np
import pytest

from interp_agent.core.criteria import load_pack
from interp_agent.core.models import harvest, tiny_model
from interp_agent.core.sae.lens import SaeWeights, save_sae_lens

PACK = "measurement_unit"
HOOKS = ["blocks.1.hook_resid_post", "blocks.2.mlp.hook_post"]
SAE_HOOK = "blocks.0.hook_resid_post"


def _sae(folder: Path, d_in: int, d_sae: int = 24) -> Path:
    rng = np.random.default_rng(0)
    w = rng.normal(size=(d_in, d_sae)).astype(np.float32)
    weights = SaeWeights(hookpoint=SAE_HOOK, W_enc=w, b_enc=np.zeros(d_sae, np.float32), W_dec=w.T.copy(),
                         b_dec=np.zeros(d_in, np.float32), threshold=None, architecture="standard", k=None)
    return save_sae_lens(folder, weights, model_name="tiny-llama")


@pytest.fixture()
def counted(monkeypatch: pytest.MonkeyPatch) -> tuple[Any, list[int]]:
    loaded = tiny_model("llama", n_layers=3, d_model=32, vocab_size=100, seed=0)
    monkeypatch.setattr("interp_agent.core.models.load_model", lambda *args, **kwargs: loaded)
    calls: list[int] = []
    loaded.model.register_forward_pre_hook(lambda module, args: calls.append(1))
    return loaded, calls


def test_an_hf_inspect_with_an_sae_and_token_highlights_runs_one_forward_pass_per_batch(
    tmp_path: Path, counted: tuple[Any, list[int]]
) -> None:
    from interp_agent.core.inspection import inspect
    from interp_agent.core.ranking import RankingConfig

    loaded, calls = counted
    result = inspect("tiny-llama", "", backend="hf", pack=PACK, hookpoints=HOOKS, sae=_sae(tmp_path / "sae", 32),
                     out=tmp_path / "out", config=RankingConfig(top_k=10))
    n_prompts = len(load_pack(PACK).prompts)
    assert len(calls) == math.ceil(n_prompts / 16)  # one harvest pass, batches of 16
    ids = {f["feature_id"] for f in result.report["features"]}
    assert any(i.startswith("SAE:L0:F") for i in ids), sorted(ids)
    highlighted = [e for f in result.report["features"] for e in f["examples"] if e.get("tokens")]
    assert highlighted and all(isinstance(t[1], float) for e in highlighted for t in e["tokens"])


def test_token_highlights_equal_a_separate_token_harvest_of_the_example(
    tmp_path: Path, counted: tuple[Any, list[int]]
) -> None:
    from interp_agent.core.live import add_token_highlights, harvest_for_inspection

    loaded, _ = counted
    live = harvest_for_inspection("tiny-llama", None, out=tmp_path, pack=PACK, hookpoints=HOOKS)
    text = load_pack(PACK).prompts[3].text
    features = [{"feature_id": "L1:D5",
                 "examples": [{"prompt_id": load_pack(PACK).prompts[3].prompt_id, "text": text}]},
                {"feature_id": "L2:N7", "examples": [{"text": text}]}]
    add_token_highlights(live, features)
    for fid, hook, col in (("L1:D5", HOOKS[0], 5), ("L2:N7", HOOKS[1], 7)):
        got = harvest(loaded, [text], [hook], pooling="token")[hook]
        tokens = next(f for f in features if f["feature_id"] == fid)["examples"][0]["tokens"]
        assert [t for t, _ in tokens] == got.tokens
        np.testing.assert_allclose([v for _, v in tokens], got.acts[:, col], rtol=1e-4, atol=1e-5)


def test_a_live_inspect_over_the_token_memory_budget_is_refused_before_any_forward_pass(
    tmp_path: Path, counted: tuple[Any, list[int]], monkeypatch: pytest.MonkeyPatch
) -> None:
    from interp_agent.core.errors import ValidationError
    from interp_agent.core.live import harvest_for_inspection

    _, calls = counted
    monkeypatch.setattr("interp_agent.core.live.TOKEN_MEMORY_BUDGET", 10_000)  # bytes
    with pytest.raises(ValidationError, match=r"per-token activations.*budget") as err:
        harvest_for_inspection("tiny-llama", None, out=tmp_path, pack=PACK, hookpoints=HOOKS)
    assert "fewer hookpoints" in (err.value.hint or "")
    assert calls == []
