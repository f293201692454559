"""SAE-latent targets: an SAE Lens folder is read, and interventions act on the latent through the SAE."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
import torch
from safetensors.numpy import save_file

from interp_agent.core.errors import InputFileError, ValidationError
from interp_agent.core.formats.prompts import ScoredPrompt
from interp_agent.core.interventions import InterveneConfig, parse_target, run_interventions
from interp_agent.core.interventions.edits import sae_edit_fn
from interp_agent.core.models import tiny_model
from interp_agent.core.sae import load_sae_lens


def _write_sae(folder: Path, d_in: int = 32, d_sae: int = 64, seed: int = 0) -> Path:
    rng = np.random.default_rng(seed)
    folder.mkdir(parents=True, exist_ok=True)
    save_file({
        "W_enc": rng.normal(0, 0.3, (d_in, d_sae)).astype(np.float32),
        "W_dec": rng.normal(0, 0.3, (d_sae, d_in)).astype(np.float32),
        "b_enc": np.zeros(d_sae, np.float32) + 0.1,
        "b_dec": rng.normal(0, 0.1, d_in).astype(np.float32),
    }, str(folder / "sae_weights.safetensors"))
    (folder / "cfg.json").write_text(json.dumps({"d_in": d_in, "d_sae": d_sae, "architecture": "standard",
                                                 "dtype": "float32",
                                                 "metadata": {"hook_name": "blocks.1.hook_resid_post"}}))
    return folder


def test_an_sae_lens_folder_loads_and_bad_folders_name_what_is_missing(tmp_path: Path) -> None:
    sae = load_sae_lens(_write_sae(tmp_path / "sae"))
    assert sae.hookpoint == "blocks.1.hook_resid_post" and sae.layer == 1 and sae.W_enc.shape == (32, 64)
    (tmp_path / "bad").mkdir()
    with pytest.raises(InputFileError, match="cfg.json: file not found"):
        load_sae_lens(tmp_path / "bad")
    with pytest.raises(ValidationError, match="no SAE for layer 3"):
        parse_target("SAE:L3:F1", {}, saes={1: sae})


def test_ablating_a_latent_removes_exactly_its_decoder_contribution(tmp_path: Path) -> None:
    sae = load_sae_lens(_write_sae(tmp_path / "sae"))
    target = parse_target("SAE:L1:F5", {}, saes={1: sae})
    x = torch.randn(2, 4, 32, dtype=torch.float64)
    out = sae_edit_fn("ablate", target.sae, 0.0)(x.clone())
    a = np.maximum((x.numpy() - sae.b_dec) @ sae.W_enc[:, 5] + sae.b_enc[5], 0.0)
    expected = x.numpy() - a[..., None] * sae.W_dec[5]
    expected[:, 0] = x.numpy()[:, 0]  # the first position is never edited
    torch.testing.assert_close(out, torch.from_numpy(expected))
    # clamping writes (value - activation) * decoder row: the latent's contribution becomes value * row
    clamped = sae_edit_fn("clamp", target.sae, 3.0)(x.clone())
    delta = (clamped - x).numpy()[:, 1:]
    torch.testing.assert_close(torch.from_numpy(delta), torch.from_numpy((3.0 - a[:, 1:, None]) * sae.W_dec[5]))


class _TokenProbability:
    """Behaviour score for plumbing tests on a random model: next-token probability of one token."""

    def __init__(self, token_id: int) -> None:
        self.token_id = token_id

    def score(self, model, tokenizer, texts):
        enc = tokenizer(list(texts), return_tensors="pt", padding=True)
        with torch.no_grad():
            logits = model(**enc).logits
        last = enc["attention_mask"].sum(1) - 1
        return torch.softmax(logits[torch.arange(len(texts)), last], -1)[:, self.token_id].numpy()


def test_interventions_on_an_sae_latent_run_with_controls_on_a_tiny_model(tmp_path: Path) -> None:
    loaded = tiny_model("llama", n_layers=2, d_model=32, vocab_size=100, seed=0)
    sae = load_sae_lens(_write_sae(tmp_path / "sae"))
    target = parse_target("SAE:L1:F7", {}, saes={1: sae})
    rng = np.random.default_rng(1)
    words = ["abc", "de", "fgh", "ij", "klm", "nop", "qr", "stu"]
    prompts = [ScoredPrompt(f"p{i}", " ".join(rng.choice(words, 4)), float(i % 2)) for i in range(48)]
    calibration, held = prompts[:32], prompts[32:]
    for mode in ("ablate", "steer"):
        run = run_interventions(loaded, [target], _TokenProbability(5), calibration=calibration, held_out=held,
                                criterion="c", model_name="tiny",
                                config=InterveneConfig(mode=mode, strengths=(1.0, 2.0)))
        ids = {r.feature_id for r in run.records}
        assert "SAE:L1:F7" in ids
        assert {r.control_type for r in run.records if r.control_type} == {"random_direction", "random_feature"}
        summary = run.features[0]
        assert summary["verdict"] in {"causal", "weak", "no_effect", "contradicts"}
        assert summary["hookpoint"] == "blocks.1.hook_resid_post"
        assert np.isfinite(summary["effect"]["mean"])
