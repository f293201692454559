"""The embedded SmolLM2-135M: a few real fine-tune steps, then a real diff on ~30 probes (slow)."""

from __future__ import annotations

from pathlib import Path

import pytest

from interp_agent.core.diffing import FinetuneSpec, build_finetune, diff_models


@pytest.mark.slow
def test_a_short_real_fine_tune_moves_only_blocks_from_the_first_trained_one_on(tmp_path: Path) -> None:
    spec = FinetuneSpec(n_texts=32, steps=4, batch_size=4, lr=3e-4)
    built = build_finetune(tmp_path / "ft", spec, base="smollm2-135m", device="cpu")
    assert built.manifest["trained"]["layers"] == [15, 16, 17, 18, 19, 20]
    assert built.manifest["trained"]["n_parameters"] == 6 * 3 * 576 * 1536
    result = diff_models("smollm2-135m", str(built.path), n_probes=30, pack="negative_sentiment",
                         hookpoints=["blocks.10.mlp.hook_post", "blocks.18.mlp.hook_post"],
                         config={"bootstrap": 100}, out=tmp_path / "diff")
    below, inside = result["hookpoints"]
    assert below["median_corr_selection"] == pytest.approx(1.0, abs=1e-6)
    assert sum(c["selected"] for c in below["counts"].values()) == 0 and below["criterion_movers"] == []
    assert inside["median_corr_selection"] < 1 - 1e-4
    assert result["behaviour"]["n_positive"] > 10 and result["behaviour"]["positive"]["change"]["mean"] != 0
    assert (tmp_path / "diff" / "diff.json").is_file()
