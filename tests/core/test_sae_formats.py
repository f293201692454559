"""SAE files: SAE Lens folders round-trip and agree with sae-lens itself; sparsify folders read as TopK SAEs."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch

from interp_agent.core.errors import InputFileError, ValidationError
from interp_agent.core.sae import SaeWeights, load_sae, load_sae_lens, load_sparsify, save_sae_lens

D_IN, D_SAE, K = 16, 40, 5
HOOK = "blocks.2.hook_resid_post"


def _weights(architecture: str, seed: int = 0) -> SaeWeights:
    """Random float32-exact weights; JumpReLU thresholds straddle zero so the ReLU inside JumpReLU matters."""
    rng = np.random.default_rng(seed)
    f32 = lambda *shape: rng.normal(0, 0.5, shape).astype(np.float32).astype(np.float64)  # noqa: E731
    return SaeWeights(
        hookpoint=HOOK, W_enc=f32(D_IN, D_SAE), b_enc=f32(D_SAE), W_dec=f32(D_SAE, D_IN), b_dec=f32(D_IN),
        threshold=f32(D_SAE) if architecture == "jumprelu" else None, architecture=architecture,
        k=K if architecture == "topk" else None,
    )


def _acts(n: int = 64, seed: int = 1) -> np.ndarray:
    return np.random.default_rng(seed).normal(0, 1, (n, D_IN)).astype(np.float32)


@pytest.mark.parametrize("architecture", ["standard", "topk", "jumprelu"])
def test_saving_then_loading_an_sae_lens_folder_gives_back_the_same_weights_and_codes(
    tmp_path: Path, architecture: str
) -> None:
    sae = _weights(architecture)
    folder = save_sae_lens(tmp_path / "sae", sae, model_name="toy/model", extra_metadata={"run": "r1"})
    assert sorted(p.name for p in folder.iterdir()) == ["cfg.json", "sae_weights.safetensors"]  # no temp files left
    back = load_sae_lens(folder)
    for name in ("W_enc", "b_enc", "W_dec", "b_dec", "threshold"):
        np.testing.assert_array_equal(getattr(back, name), getattr(sae, name))
    assert (back.hookpoint, back.architecture, back.k) == (HOOK, architecture, sae.k)
    assert back.metadata["model_name"] == "toy/model" and back.metadata["interp_agent"] == {"run": "r1"}
    np.testing.assert_array_equal(back.encode(_acts()), sae.encode(_acts()))
    assert load_sae(folder).hookpoint == HOOK


def test_jumprelu_zeroes_a_negative_pre_activation_even_above_its_negative_threshold() -> None:
    sae = SaeWeights(hookpoint=HOOK, W_enc=np.eye(2), b_enc=np.zeros(2), W_dec=np.eye(2), b_dec=np.zeros(2),
                     threshold=np.array([-1.0, 0.5]), architecture="jumprelu", k=None)
    np.testing.assert_array_equal(sae.encode(np.array([[-0.5, 0.4], [2.0, 0.6]])), [[0.0, 0.0], [2.0, 0.6]])


def test_weights_with_inconsistent_shapes_or_a_topk_without_k_are_refused() -> None:
    sae = _weights("standard")
    with pytest.raises(ValidationError, match=r"W_dec has shape \(16, 40\), expected \(40, 16\)"):
        SaeWeights(hookpoint=HOOK, W_enc=sae.W_enc, b_enc=sae.b_enc, W_dec=sae.W_dec.T, b_dec=sae.b_dec,
                   threshold=None, architecture="standard", k=None)
    with pytest.raises(ValidationError, match="needs k >= 1"):
        SaeWeights(hookpoint=HOOK, W_enc=sae.W_enc, b_enc=sae.b_enc, W_dec=sae.W_dec, b_dec=sae.b_dec,
                   threshold=None, architecture="topk", k=None)


@pytest.mark.parametrize("architecture", ["standard", "topk", "jumprelu"])
def test_sae_lens_loads_what_we_save_and_encodes_and_decodes_as_we_do(tmp_path: Path, architecture: str) -> None:
    sae_lens = pytest.importorskip("sae_lens")
    ours = _weights(architecture)
    folder = save_sae_lens(tmp_path / "sae", ours, model_name="toy/model", extra_metadata={"run": "r1"})
    theirs = sae_lens.SAE.load_from_disk(folder)
    assert theirs.cfg.architecture() == architecture and theirs.cfg.metadata.hook_name == HOOK
    assert theirs.cfg.metadata.model_name == "toy/model" and theirs.cfg.metadata.interp_agent == {"run": "r1"}
    x = _acts()
    with torch.no_grad():
        codes = theirs.encode(torch.from_numpy(x))
        decoded = theirs.decode(codes)
    expected = ours.encode(x.astype(np.float64))
    assert (expected > 0).sum(1).min() > 0  # the comparison is not between all-zero codes
    torch.testing.assert_close(codes, torch.from_numpy(expected).float(), atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(decoded, torch.from_numpy(expected @ ours.W_dec + ours.b_dec).float(),
                               atol=1e-5, rtol=1e-5)


def _sae_lens_model(kind: str) -> tuple[object, str]:
    """An sae-lens SAE with random parameters and the writer sae-lens uses for it."""
    from sae_lens import JumpReLUSAE, JumpReLUSAEConfig, StandardSAE, StandardSAEConfig, TopKSAE, TopKSAEConfig
    from sae_lens.saes.sae import SAEMetadata
    from sae_lens.saes.topk_sae import TopKTrainingSAE, TopKTrainingSAEConfig

    meta = SAEMetadata(hook_name=HOOK, model_name="toy/model")
    base = {"d_in": D_IN, "d_sae": D_SAE, "metadata": meta}
    sae, writer = {
        "standard, b_dec not subtracted": (StandardSAE(StandardSAEConfig(**base, apply_b_dec_to_input=False)),
                                           "save_model"),
        "topk, rescaled by decoder norm": (
            TopKSAE(TopKSAEConfig(**base, k=K, rescale_acts_by_decoder_norm=True, apply_b_dec_to_input=False)),
            "save_model"),
        "topk training, inference save": (
            TopKTrainingSAE(TopKTrainingSAEConfig(**base, k=K, rescale_acts_by_decoder_norm=True)),
            "save_inference_model"),
        "jumprelu": (JumpReLUSAE(JumpReLUSAEConfig(**base)), "save_model"),
    }[kind]
    torch.manual_seed(0)
    with torch.no_grad():
        for p in sae.parameters():
            p.copy_(torch.randn_like(p) * 0.5)  # decoder rows far from unit norm, thresholds of both signs
    return sae, writer


@pytest.mark.parametrize("kind", ["standard, b_dec not subtracted", "topk, rescaled by decoder norm",
                                  "topk training, inference save", "jumprelu"])
def test_a_folder_written_by_sae_lens_loads_and_encodes_as_sae_lens_does(tmp_path: Path, kind: str) -> None:
    pytest.importorskip("sae_lens")
    sae, writer = _sae_lens_model(kind)
    getattr(sae, writer)(tmp_path / "sae")
    ours = load_sae(tmp_path / "sae")
    x = _acts()
    with torch.no_grad():
        codes = sae.encode(torch.from_numpy(x))
        decoded = sae.decode(codes)
    got = ours.encode(x.astype(np.float64))
    assert (got > 0).sum(1).min() > 0
    torch.testing.assert_close(torch.from_numpy(got).float(), codes, atol=1e-5, rtol=1e-5)
    torch.testing.assert_close(torch.from_numpy(got @ ours.W_dec + ours.b_dec).float(), decoded, atol=1e-5, rtol=1e-5)
    assert ours.hookpoint == HOOK and ours.metadata["model_name"] == "toy/model"
    if kind.startswith("standard"):
        assert ours.metadata["folded"] == ["apply_b_dec_to_input"]


def _write_sparsify(folder: Path, *, seed: int = 0, dtype: torch.dtype = torch.float32, **cfg: object) -> Path:
    """A folder in sparsify's layout (SparseCoder.save_to_disk: safetensors of the module, cfg + d_in)."""
    from safetensors.torch import save_file

    g = torch.Generator().manual_seed(seed)
    tensors = {"encoder.weight": torch.randn(D_SAE, D_IN, generator=g), "encoder.bias": torch.randn(D_SAE, generator=g),
               "W_dec": torch.randn(D_SAE, D_IN, generator=g), "b_dec": torch.randn(D_IN, generator=g)}
    if cfg.pop("W_skip", False):
        tensors["W_skip"] = torch.zeros(D_IN, D_IN)
    folder.mkdir(parents=True)
    save_file({n: t.to(dtype) for n, t in tensors.items()}, str(folder / "sae.safetensors"))
    full = {"activation": "topk", "expansion_factor": 32, "normalize_decoder": True, "num_latents": D_SAE, "k": K,
            "multi_topk": False, "skip_connection": False, "transcode": False, "d_in": D_IN, **cfg}
    (folder / "cfg.json").write_text(json.dumps(full))
    return folder


def _sparsify_encode(folder: Path, x: torch.Tensor) -> torch.Tensor:
    """sparsify's SparseCoder.encode (fused_encoder): relu of the affine map of x - b_dec, then top-k, dense codes."""
    from safetensors.torch import load_file

    t = {n: v.float() for n, v in load_file(str(folder / "sae.safetensors")).items()}
    pre = torch.relu(torch.nn.functional.linear(x - t["b_dec"], t["encoder.weight"], t["encoder.bias"]))
    values, indices = pre.topk(K, dim=-1, sorted=False)
    return torch.zeros_like(pre).scatter(-1, indices, values)


def test_a_sparsify_layer_folder_reads_as_a_topk_sae_on_the_residual_stream_after_that_layer(tmp_path: Path) -> None:
    folder = _write_sparsify(tmp_path / "run" / "layers.3")
    sae = load_sae(folder)
    assert (sae.hookpoint, sae.layer, sae.architecture, sae.k) == ("blocks.3.hook_resid_post", 3, "topk", K)
    assert sae.metadata["hookpoint_source"] == "inferred from the folder name 'layers.3'"
    x = torch.from_numpy(_acts())
    torch.testing.assert_close(torch.from_numpy(sae.encode(x.double().numpy())).float(), _sparsify_encode(folder, x),
                               atol=1e-5, rtol=1e-5)
    assert load_sae(tmp_path / "run").hookpoint == "blocks.3.hook_resid_post"  # the run folder holds one SAE


def test_sparsify_mlp_folders_map_to_mlp_out_and_other_names_need_the_hookpoint(tmp_path: Path) -> None:
    assert load_sparsify(_write_sparsify(tmp_path / "layers.7.mlp")).hookpoint == "blocks.7.hook_mlp_out"
    odd = _write_sparsify(tmp_path / "gpt_neox.layers.1")
    with pytest.raises(InputFileError, match=r"gpt_neox\.layers\.1: cannot tell the hookpoint") as err:
        load_sae(odd)
    assert "pass the hookpoint" in str(err.value)
    sae = load_sae(odd, hookpoint="blocks.1.hook_resid_post")
    assert sae.layer == 1 and sae.metadata["hookpoint_source"] == "given"


def test_a_bfloat16_sparsify_folder_reads_its_rounded_values(tmp_path: Path) -> None:
    folder = _write_sparsify(tmp_path / "layers.0", dtype=torch.bfloat16)
    sae = load_sparsify(folder)
    x = torch.from_numpy(_acts())
    torch.testing.assert_close(torch.from_numpy(sae.encode(x.double().numpy())).float(), _sparsify_encode(folder, x),
                               atol=1e-5, rtol=1e-5)


def test_sparsify_transcoders_and_skip_connections_are_refused_by_name(tmp_path: Path) -> None:
    with pytest.raises(InputFileError, match="field 'W_skip'.*skip connection"):
        load_sparsify(_write_sparsify(tmp_path / "a" / "layers.1", W_skip=True))
    with pytest.raises(InputFileError, match="field 'transcode'.*transcoders"):
        load_sparsify(_write_sparsify(tmp_path / "b" / "layers.1", transcode=True))


def test_a_folder_of_several_sparsify_saes_is_refused_with_their_names(tmp_path: Path) -> None:
    for name in ("layers.1", "layers.2"):
        _write_sparsify(tmp_path / "run" / name)
    with pytest.raises(InputFileError, match=r"holds 2 sparsify SAEs: layers\.1, layers\.2"):
        load_sae(tmp_path / "run")


def test_missing_files_are_named(tmp_path: Path) -> None:
    folder = _write_sparsify(tmp_path / "layers.1")
    (folder / "cfg.json").unlink()
    with pytest.raises(InputFileError, match=r"layers\.1/cfg\.json: file not found"):
        load_sae(folder)
    (tmp_path / "empty").mkdir()
    with pytest.raises(InputFileError, match="empty: not an SAE folder") as err:
        load_sae(tmp_path / "empty")
    assert "sae_weights.safetensors" in str(err.value) and "sae.safetensors" in str(err.value)
