"""Universality: SAEs trained per (model, layer, seed), matched on held-out probe tokens, tabulated and written.

The models here are tiny random Llamas (synthetic); the real-model table is in docs/universality.md.
"""

from __future__ import annotations

import json

import numpy as np
import pytest

from interp_agent.cli import main
from interp_agent.core.crossmodel.universality import (
    UniversalitySettings,
    default_pairs,
    render_table,
    universality,
    write_universality,
)
from interp_agent.core.errors import ValidationError
from interp_agent.core.models.loading import tiny_model

SMALL = UniversalitySettings(train_tokens=1500, probe_prompts=16, max_length=24, expansion=2, k=4, steps=150,
                             batch_size=128, null_permutations=2)


@pytest.fixture(scope="module")
def models():
    return {"base": tiny_model(n_layers=2, d_model=32, seed=0), "tuned": tiny_model(n_layers=2, d_model=32, seed=1)}


def test_the_three_rows_are_measured_on_held_out_probes_and_written(models, tmp_path):
    pairs = default_pairs("base", 0, 1, "tuned")
    assert [p.kind for p in pairs] == ["seeds", "layers", "finetune"]
    result = universality(pairs, SMALL, models=models)
    rows = {r["kind"]: r for r in result["rows"]}
    assert set(rows) == {"seeds", "layers", "finetune"}
    for r in rows.values():
        assert 0 < r["n_latents_left"] <= 64 and 0.0 <= r["fraction_above_null"] <= 1.0
        assert r["n_above_null"] <= r["n_matches"] <= min(r["n_latents_left"], r["n_latents_right"])
        assert -1.0 <= r["median_decoder_cosine"] <= 1.0
        assert r["provenance"] == "synthetic"
    assert rows["seeds"]["literature_shared_fraction"] == [0.30, 0.53]
    assert rows["layers"]["literature_shared_fraction"] is None
    # four SAEs for three rows, every row seed 0 against seed 1: all rows share base@L0/seed0 on the left
    assert sorted(f["sae"] for f in result["saes"]) == ["base@L0/seed0", "base@L0/seed1", "base@L1/seed1",
                                                        "tuned@L0/seed1"]
    assert all(np.isfinite(f["probe_fvu"]) for f in result["saes"])
    json_path, md_path = write_universality(result, tmp_path / "u")
    assert json.loads(json_path.read_text())["schema_version"] == "interp-agent.universality.v1"
    assert "| seeds: L0 seed 0 vs seed 1 |" in md_path.read_text()
    assert render_table(result).count("\n") == 5


def test_bad_settings_and_pairs_are_errors():
    with pytest.raises(ValidationError, match="other_layer = layer"):
        default_pairs("m", 3, 3)
    with pytest.raises(ValidationError, match="probe_prompts"):
        UniversalitySettings(probe_prompts=4)
    with pytest.raises(ValidationError, match="at least one pair"):
        universality([])


def test_universality_command_prints_the_table(monkeypatch, tmp_path, capsys, models):
    import interp_agent.core.models as core_models

    monkeypatch.setattr(core_models, "load_model", lambda name: models["base"])
    code = main(["universality", "--out", str(tmp_path / "u"), "--model", "base", "--layer", "1", "--other-layer",
                 "-1", "--tokens", "1000", "--probe-prompts", "12", "--max-length", "24", "--steps", "60", "--k", "4",
                 "--null-permutations", "1"])
    assert code == 0
    out = capsys.readouterr().out
    assert "| seeds: L1 seed 0 vs seed 1 |" in out and "layers" not in out.split("wrote")[0]
    assert (tmp_path / "u" / "universality.json").is_file() and (tmp_path / "u" / "universality.md").is_file()
