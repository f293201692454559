"""train_sae end to end: stored activations, activation records and the embedded model in,
an SAE Lens folder, held-out metrics and latent records out."""

from __future__ import annotations

import json

import numpy as np
import pytest
import torch
from sae_planted import planted

from interp_agent.core.errors import ValidationError
from interp_agent.core.sae import load_sae
from interp_agent.core.sae.train import TrainSettings
from interp_agent.core.workflows.trained_latents import TrainProgress, train_progress_fraction, train_sae

FAST = dict(steps=150, batch_size=256, lr=3e-3, latent_dim=96, k=4)


def test_from_stored_activations(tmp_path) -> None:  # noqa: ANN001
    x, _ = planted(n=6_000)
    np.save(tmp_path / "acts.npy", x)
    phases: list[str] = []
    shown: list[tuple[float, str]] = []
    shown_progress = TrainProgress(lambda fraction, message: shown.append((fraction, message)))

    def progress(phase: str, done: int, total: int | None) -> None:
        phases.append(phase)
        shown_progress(phase, done, total)

    result = train_sae(out=tmp_path / "sae", activations=tmp_path / "acts.npy", hookpoint="blocks.3.hook_resid_post",
                       settings=TrainSettings(**FAST), progress=progress, on_point=shown_progress.point)
    m = result.metrics
    assert m["sae"] == {"architecture": "topk", "saved_as": "topk", "d_in": 32, "d_sae": 96, "k": 4,
                        "hookpoint": "blocks.3.hook_resid_post", "model": None}
    held = m["held_out"]
    assert held["n_rows"] == m["data"]["n_held_out_rows"] > 300
    assert held["fvu"] < 0.5 and held["l0"] == pytest.approx(4.0, abs=0.05)
    assert m["splice"] is None and "stored activations" in m["records"]
    assert m["training"]["steps"] == 150 and m["training"]["history"][-1]["step"] == 150
    assert {"read", "train", "evaluate", "done"} <= set(phases)
    fractions = [f for f, _ in shown]
    assert fractions == sorted(fractions) and fractions[-1] == 1.0
    last_step, last_message = shown[-3]  # then the evaluation and done
    assert last_step == train_progress_fraction("train", 150, 150) == 0.85
    assert last_message.startswith("step 150/150 loss ") and " fvu " in last_message and last_message.endswith("l0 4.0")
    assert [m for _, m in shown[-2:]] == ["held-out reconstruction", "done"]
    on_disk = json.loads((tmp_path / "sae" / "metrics.json").read_text())
    assert on_disk["held_out"]["fvu"] == held["fvu"]
    assert not (tmp_path / "sae" / "activations").exists() and not (tmp_path / "sae" / "checkpoints").exists()
    # the saved SAE reproduces the held-out FVU reported
    sae = load_sae(tmp_path / "sae")
    assert sae.hookpoint == "blocks.3.hook_resid_post" and sae.k == 4
    recon = sae.encode(x.astype(np.float64)) @ sae.W_dec + sae.b_dec
    fvu_all = ((x - recon) ** 2).sum() / ((x - x.mean(0)) ** 2).sum()
    assert fvu_all < 0.5


def test_sae_lens_loads_the_trained_sae_and_encodes_the_same(tmp_path) -> None:  # noqa: ANN001
    sae_lens = pytest.importorskip("sae_lens")
    x, _ = planted(n=4_000)
    np.save(tmp_path / "acts.npy", x)
    for arch in ("topk", "batchtopk", "relu", "jumprelu"):
        out = tmp_path / arch
        train_sae(out=out, activations=tmp_path / "acts.npy", hookpoint="blocks.3.hook_resid_post",
                  settings=TrainSettings(**{**FAST, "steps": 60, "architecture": arch, "sparsity_coefficient": 0.3}))
        theirs = sae_lens.SAE.load_from_disk(str(out))
        ours = load_sae(out)
        xt = torch.tensor(x[:500])
        np.testing.assert_allclose(theirs.encode(xt).detach().numpy(), ours.encode(x[:500].astype(np.float64)),
                                   rtol=1e-4, atol=1e-4, err_msg=arch)


def test_from_records_writes_latent_records_that_inspect_ranks(tmp_path) -> None:  # noqa: ANN001
    from interp_agent.core.inspection import inspect

    x, _ = planted(n=1_200, d=16, n_atoms=32)
    rng = np.random.default_rng(1)
    label = rng.random(400) < 0.5
    lines = []
    for p in range(400):
        for t in range(3):
            row = x[p * 3 + t] + (3.0 * label[p]) * (np.arange(16) == 5)  # criterion shows up along dim 5
            lines.append({"prompt_id": f"p{p}", "criterion_score": float(label[p]), "token_index": t,
                          "features": {f"L4:D{d}": float(v) for d, v in enumerate(row)}})
    path = tmp_path / "records.jsonl"
    path.write_text("\n".join(json.dumps(r) for r in lines))
    result = train_sae(out=tmp_path / "sae", records=path, hookpoint="blocks.4.hook_resid_post",
                       settings=TrainSettings(**{**FAST, "latent_dim": 48}))
    assert result.metrics["data"]["feature_ids"][:3] == ["L4:D0", "L4:D1", "L4:D2"]
    written = [json.loads(line) for line in result.paths["records"].read_text().splitlines()]
    assert len(written) == 1_200
    assert {(r["prompt_id"], r["token_index"]) for r in written} == {(f"p{p}", t) for p in range(400) for t in range(3)}
    assert all(fid.startswith("SAE:L4:F") for r in written for fid in r["features"])
    assert max(len(r["features"]) for r in written) <= 4  # topk: k latents at most per row
    report = inspect("synthetic", "dimension 5 is raised", backend="records", records=result.paths["records"]).report
    top = report["features"][0]
    assert top["feature_id"].startswith("SAE:L4:F")
    auroc = top["association"]["held_out"]["auroc"]
    assert max(auroc, 1 - auroc) > 0.8  # a latent tracks the planted criterion on held-out prompts


def test_exactly_one_source_is_required(tmp_path) -> None:  # noqa: ANN001
    with pytest.raises(ValidationError, match="exactly one source"):
        train_sae(out=tmp_path)
    with pytest.raises(ValidationError, match="hookpoint"):
        train_sae(out=tmp_path, model="smollm2-135m", pack="french")
    with pytest.raises(ValidationError, match="unknown preset"):
        train_sae(out=tmp_path, activations=tmp_path / "x.npy", settings=TrainSettings(preset="huge"))


@pytest.mark.slow
def test_from_the_embedded_model_with_splice_metrics_and_records(tmp_path) -> None:  # noqa: ANN001
    from interp_agent.core.inspection import inspect

    result = train_sae(out=tmp_path / "sae", model="smollm2-135m", pack="measurement_unit",
                       hookpoint="blocks.10.hook_resid_post",
                       settings=TrainSettings(steps=60, batch_size=128, expansion_factor=1.0, k=16, max_length=48))
    m = result.metrics
    assert m["sae"]["d_in"] == 576 and m["sae"]["d_sae"] == 576
    splice = m["splice"]
    assert splice["n_predictions"] > 50
    # splicing the SAE in costs less than mean-ablating the layer, and more than nothing
    assert splice["ce_loss_clean"] < splice["ce_loss_spliced"] < splice["ce_loss_mean_ablated"]
    assert 0 < splice["loss_recovered"] <= 1 and splice["kl_clean_to_spliced"] > 0
    assert m["held_out"]["fvu"] < 1.0
    report = inspect("smollm2-135m", "measurement units", backend="records", records=result.paths["records"]).report
    assert report["features"][0]["feature_id"].startswith("SAE:L10:F")
    assert report["features"][0]["association"]["held_out"]["n"] > 0


@pytest.mark.slow
def test_causal_out_ranks_latents_on_training_prompts_and_steers_them_on_held_out_ones(tmp_path) -> None:  # noqa: ANN001
    with pytest.raises(ValidationError, match="`causal_out` needs"):
        train_sae(out=tmp_path / "x", model="smollm2-135m", dataset=tmp_path / "p.txt",
                  hookpoint="blocks.10.hook_resid_post",
                  causal_out=tmp_path / "c")
    result = train_sae(out=tmp_path / "sae", model="smollm2-135m", pack="measurement_unit",
                       hookpoint="blocks.15.hook_resid_post", causal_out=tmp_path / "causal",
                       settings=TrainSettings(steps=60, batch_size=128, expansion_factor=1.0, k=16, max_length=48))
    features = result.causal["features"]
    assert 1 <= len(features) <= 3 and all(f["feature_id"].startswith("SAE:L15:F") for f in features)
    summary = json.loads((tmp_path / "causal" / "summary.json").read_text())
    assert summary["settings"]["held_out_fraction"] == 0.3  # the ranking's split: chosen on train, measured on held-out
    report = json.loads((tmp_path / "causal" / "report" / "report.json").read_text())
    steered = {f["feature_id"] for f in features}
    assert any(f["causal"] is not None for f in report["features"] if f["feature_id"] in steered)
    assert result.metrics["causal"]["features"] == features


def test_training_progress_rises_phase_by_phase_with_a_message_per_event() -> None:
    shown: list[tuple[float, str]] = []
    progress = TrainProgress(lambda fraction, message: shown.append((fraction, message)), model="smollm2-135m")
    progress("load", 0, 1)
    progress("harvest", 44, 88)
    progress("harvest", 88, 88)
    progress("resume", 120, 300)
    progress("train", 120, 300)
    progress.point({"step": 150.0, "loss": 0.01052, "mse": 0.01, "fvu": 0.0351, "l0": 16.0, "dead_fraction": 0.0})
    progress("train", 150, 300)
    for event in (("evaluate", 0, 2), ("evaluate", 1, 2), ("records", 0, 1), ("causal", 0, 1), ("done", 1, 1)):
        progress(*event)
    assert [m for _, m in shown] == [
        "loading smollm2-135m", "harvest: 44/88", "harvest: 88/88", "resuming from checkpoint at step 120",
        "step 120/300", "step 150/300 loss 0.01052 fvu 0.035 l0 16.0", "held-out reconstruction",
        "splicing the SAE into the model on held-out prompts", "activation records of the trained latents",
        "ranking latents on the training split, steering the best on held-out prompts", "done",
    ]
    fractions = [f for f, _ in shown]
    assert fractions == sorted(fractions) and fractions[0] == 0.0 and fractions[-1] == 1.0
    assert fractions[5] == pytest.approx(0.5)  # half the steps: 15% + 70% / 2
    reading = [train_progress_fraction("read", n, None) for n in (0, 8_192, 10**6, 10**9)]
    assert reading == sorted(reading) and reading[0] == 0.0 and reading[-1] < train_progress_fraction("train", 0, 300)
