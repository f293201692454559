"""Activation matching: correlation, assignment and null on constructed arrays; sides, errors; the real model."""

from __future__ import annotations

import json

import numpy as np
import pytest

from interp_agent.cli import main
from interp_agent.core.crossmodel.activations import (
    correlation_matrix,
    derangement_rows,
    match_activations,
    match_sides,
)
from interp_agent.core.crossmodel.harvest import Probes, harvest_sides, load_probes
from interp_agent.core.crossmodel.sides import FeatureActivations, Side, side_from_dict
from interp_agent.core.errors import ValidationError
from interp_agent.core.matching import write_matches
from interp_agent.core.models.loading import tiny_model

N_PROMPTS, N_TOKENS = 60, 20


def _rows() -> tuple[np.ndarray, np.ndarray, tuple[str, ...]]:
    row_prompt = np.repeat(np.arange(N_PROMPTS), N_TOKENS)
    token_index = np.tile(np.arange(1, N_TOKENS + 1), N_PROMPTS)
    return row_prompt, token_index, tuple("x" for _ in row_prompt)


def _fa(acts: np.ndarray, name: str) -> FeatureActivations:
    row_prompt, token_index, tokens = _rows()
    return FeatureActivations(tuple(f"{name}{i}" for i in range(acts.shape[1])), acts.astype(np.float32), row_prompt,
                              token_index, tokens, "token", {"label": name, "model": name}, synthetic=True)


def _noise(seed: int, n_features: int = 40) -> np.ndarray:
    return np.random.default_rng(seed).standard_normal((N_PROMPTS * N_TOKENS, n_features))


def test_assignment_recovers_a_permuted_noisy_copy_and_every_pair_is_above_null():
    X = _noise(0)
    perm = np.random.default_rng(1).permutation(X.shape[1])
    Y = X[:, perm] + 0.7 * _noise(2)
    result = match_activations(_fa(X, "a"), _fa(Y, "b"), seed=0)
    inverse = np.argsort(perm)
    for m in result["matches"]:
        assert m["right_feature_id"] == f"b{inverse[int(m['left_feature_id'][1:])]}"
        assert m["above_null"] and m["mutual_nearest"]
        assert m["provenance"] == {"activation": "synthetic"}
    assert result["summary"]["n_matches"] == X.shape[1]
    assert result["summary"]["fraction_above_null"] == 1.0
    assert 0.75 < result["summary"]["mean_held_out_similarity"] < 0.9  # 1 / sqrt(1 + 0.7²) ≈ 0.82


def test_independent_noise_has_almost_no_pair_above_null():
    result = match_activations(_fa(_noise(0), "a"), _fa(_noise(5), "b"), seed=0)
    assert result["summary"]["n_above_null"] <= 1
    assert abs(result["summary"]["mean_held_out_similarity"]) < 0.05
    assert result["null"]["quantile"] == 0.99 and result["null"]["rows"] == "held_out"


def test_a_feature_shared_only_by_position_is_not_above_the_null():
    # both sides carry the same function of token position: the derangement keeps positions, so the null sees it too
    _, token_index, _ = _rows()
    pos = np.sin(token_index / 3.0)[:, None]
    X = np.hstack([pos + 0.3 * _noise(0, 1), _noise(1, 9)])
    Y = np.hstack([pos + 0.3 * _noise(2, 1), _noise(3, 9)])
    result = match_activations(_fa(X, "a"), _fa(Y, "b"), seed=0)
    pair = next(m for m in result["matches"] if m["left_feature_id"] == "a0")
    assert pair["right_feature_id"] == "b0" and pair["held_out_similarity"] > 0.8
    assert not pair["above_null"]


def test_streamed_correlation_matches_numpy_corrcoef():
    X, Y = _noise(0, 7), _noise(1, 5) + _noise(0, 5)
    expected = np.corrcoef(X.T, Y.T)[:7, 7:]
    np.testing.assert_allclose(correlation_matrix(X.astype(np.float32), Y.astype(np.float32), chunk_rows=97),
                               expected, atol=1e-5)


def test_the_null_pairs_whole_prompts_with_other_prompts_aligned_by_position():
    row_prompt = np.array([0, 0, 0, 1, 1, 2, 2, 2, 2])
    li, ri = derangement_rows(row_prompt, np.random.default_rng(0))
    assert len(set(row_prompt[li].tolist())) == 3
    assert np.all(row_prompt[li] != row_prompt[ri])
    starts = {0: 0, 1: 3, 2: 5}
    assert np.array_equal(li - np.array([starts[p] for p in row_prompt[li]]),
                          ri - np.array([starts[p] for p in row_prompt[ri]]))


def test_dead_features_are_dropped_with_a_note():
    X = _noise(0, 6)
    X[:, 2] = 0.0
    result = match_activations(_fa(X, "a"), _fa(_noise(0, 6), "b"))
    assert result["summary"]["n_dead_left"] == 1 and result["summary"]["n_left"] == 5
    assert "a2" in result["unmatched_left"]
    assert any("dead" in n for n in result["notes"])


def test_a_side_with_no_live_feature_is_an_error_naming_it():
    with pytest.raises(ValidationError, match="right side"):
        match_activations(_fa(_noise(0, 3), "a"), _fa(np.zeros((N_PROMPTS * N_TOKENS, 3)), "b"))


def test_rows_that_do_not_line_up_are_an_error_naming_the_right_side():
    left, right = _fa(_noise(0, 3), "a"), _fa(_noise(1, 3), "b")
    shifted = FeatureActivations(right.feature_ids, right.acts_RF, right.row_prompt, right.token_index + 1,
                                 right.tokens, "token", right.side)
    with pytest.raises(ValidationError, match="right side.*pooling='mean'"):
        match_activations(left, shifted)


def test_side_from_dict_names_the_side_for_unknown_keys_and_bad_hookpoints():
    with pytest.raises(ValidationError, match="right side has unknown key"):
        side_from_dict({"model": "m", "hookpoint": "blocks.1.hook_resid_post", "layer": 3}, "right")
    with pytest.raises(ValidationError, match="left side: unknown hookpoint"):
        side_from_dict({"model": "m", "hookpoint": "blocks.x"}, "left")
    with pytest.raises(ValidationError, match="right side: features='neurons'"):
        side_from_dict({"model": "m", "hookpoint": "blocks.1.hook_resid_post", "features": "neurons"}, "right")
    with pytest.raises(ValidationError, match="left side: Side.sae"):
        side_from_dict({"model": "m", "hookpoint": "blocks.1.hook_resid_post", "features": "sae"}, "left")
    side = side_from_dict({"model": "m", "hookpoint": "blocks.1.mlp.hook_post", "features": "neurons"})
    assert side.name == "m@blocks.1.mlp.hook_post:neurons"


@pytest.fixture(scope="module")
def tiny():
    return {"tiny": tiny_model(n_layers=2, d_model=32, seed=0)}


def _probes(n: int = 24) -> Probes:
    return load_probes("builtin", max_prompts=n, seed=0)


def test_an_absent_feature_id_is_an_error_naming_the_side(tiny):
    left = Side("tiny", "blocks.0.hook_resid_post")
    right = Side("tiny", "blocks.1.hook_resid_post", feature_ids=("L1:D3", "L1:D99"))
    with pytest.raises(ValidationError, match=r"right side .* has no feature\(s\) \['L1:D99'\]"):
        harvest_sides([("left", left), ("right", right)], _probes(), max_length=16, models=tiny)


def test_an_sae_latent_against_a_direction_and_an_sae_of_the_wrong_width(tiny, tmp_path):
    from interp_agent.core.sae.lens import SaeWeights, save_sae_lens

    rng = np.random.default_rng(0)
    W_enc = rng.standard_normal((32, 8))
    weights = SaeWeights("blocks.1.hook_resid_post", W_enc, np.zeros(8), W_enc.T.copy(), np.zeros(32), None,
                         "standard", None)
    save_sae_lens(tmp_path / "sae", weights)
    left = Side("tiny", "blocks.1.hook_resid_post", "sae", sae=str(tmp_path / "sae"))
    right = Side("tiny", "blocks.1.hook_resid_post", "direction", directions={"d3": W_enc[:, 3].tolist()})
    fl, fr = harvest_sides([("left", left), ("right", right)], _probes(), max_length=16, models=tiny)
    assert fl.feature_ids[3] == "SAE:L1:F3" and fr.feature_ids == ("direction:d3@blocks.1.hook_resid_post",)
    assert fl.side["n_massive_rows_dropped"] == fr.side["n_massive_rows_dropped"]
    assert np.array_equal(fl.row_prompt, fr.row_prompt)
    result = match_activations(fl, fr)
    assert result["summary"]["n_matches"] == 1 and result["provenance"]["synthetic"]
    narrow = SaeWeights("blocks.1.hook_resid_post", W_enc[:16], np.zeros(8), W_enc[:16].T.copy(), np.zeros(16), None,
                        "standard", None)
    save_sae_lens(tmp_path / "narrow", narrow)
    with pytest.raises(ValidationError, match="left side: the SAE .* reads d_in=16, but blocks.1.hook_resid_post"):
        harvest_sides([("left", Side("tiny", "blocks.1.hook_resid_post", "sae", sae=str(tmp_path / "narrow"))),
                       ("right", right)], _probes(), max_length=16, models=tiny)
    wide = Side("tiny", "blocks.1.hook_resid_post", "direction", directions={"d": [1.0] * 33})
    with pytest.raises(ValidationError, match="right side: direction 'd' has 33 entries"):
        harvest_sides([("left", left), ("right", wide)], _probes(), max_length=16, models=tiny)


@pytest.fixture(scope="module")
def real():
    from interp_agent.core.models import load_model

    return load_model()


def test_different_tokenizers_need_mean_pooling_and_then_match(real, tiny):
    models = {"tiny": tiny["tiny"], "smollm2-135m": real}
    left, right = Side("smollm2-135m", "blocks.3.hook_resid_post"), Side("tiny", "blocks.1.hook_resid_post")
    with pytest.raises(ValidationError, match="right side: tiny tokenizes the probes differently.*pooling='mean'"):
        match_sides(left, right, _probes(), max_length=16, models=models)
    result = match_sides(left, right, _probes(), pooling="mean", max_length=16, models=models)
    assert result["summary"]["n_left"] == 576 and result["summary"]["n_right"] == 32
    assert result["summary"]["n_matches"] <= 32


@pytest.mark.slow
def test_two_layers_of_the_embedded_model_match_dimension_to_dimension(real, tmp_path):
    """Real SmolLM2: the residual stream carries most dims from layer 15 to 16 (measured: ~99% above null)."""
    result = match_sides(Side("smollm2-135m", "blocks.15.hook_resid_post"),
                         Side("smollm2-135m", "blocks.16.hook_resid_post"), "builtin", max_prompts=30, max_length=32,
                         models={"smollm2-135m": real})
    s = result["summary"]
    assert s["n_left"] == 576 and s["fraction_above_null"] > 0.9
    same_dim = [m["left_feature_id"][4:] == m["right_feature_id"][4:] for m in result["matches"]]
    assert np.mean(same_dim) > 0.95
    assert not result["provenance"]["synthetic"] and result["provenance"]["probes"]["name"] == "general_en"
    json_path, md_path = write_matches(result, tmp_path / "l15_vs_l16.json")
    written = json.loads(json_path.read_text())
    assert written["method"] == "activations" and written["matches"][0]["provenance"] == {"activation": "correlational"}
    assert "null:" in md_path.read_text()


def test_match_activations_command_writes_matches(monkeypatch, tmp_path, capsys, tiny):
    import interp_agent.core.models as models

    monkeypatch.setattr(models, "load_model", lambda name: tiny["tiny"])
    code = main(["match-activations", "--left-model", "tiny", "--left-hookpoint", "blocks.0.hook_resid_post",
                 "--right-model", "tiny", "--right-hookpoint", "blocks.1.mlp.hook_post", "--right-features", "neurons",
                 "--probes", "french", "--max-length", "16", "--max-prompts", "24", "--out", str(tmp_path / "m.json"),
                 "--json"])
    assert code == 0
    payload = json.loads(capsys.readouterr().out)
    assert payload["summary"]["n_right"] == 64 and (tmp_path / "m.md").is_file()
    assert main(["match-activations", "--left-model", "tiny", "--left-hookpoint", "blocks.0.hook_resid_post",
                 "--right-model", "tiny", "--right-hookpoint", "blocks.0.hook_resid_post", "--right-features",
                 "neurons", "--out", str(tmp_path / "n.json")]) != 0
    assert "right side: features='neurons'" in capsys.readouterr().err
    assert not (tmp_path / "n.json").exists()


def test_a_massive_activation_row_is_dropped_by_norm_alone():
    from interp_agent.core.crossmodel.sides import massive_rows

    acts = np.random.default_rng(0).standard_normal((200, 16))
    acts[17] *= 500.0
    assert np.flatnonzero(massive_rows(acts)).tolist() == [17]
