"""Publishing a run folder to the Hub: the plan, the card, and the requests huggingface_hub makes (against a local
stand-in)."""

from __future__ import annotations

import json
import logging
import os
import shutil
from pathlib import Path

import numpy as np
import pytest
import yaml
from hub_standin import HubStandIn

from interp_agent.core.bridges.hf_hub import plan_publish, publish, render_card
from interp_agent.core.errors import MissingCredentialError, RemoteServiceError, ValidationError

SEED = Path(__file__).resolve().parents[2] / "fixtures" / "seed"
CRIT = "the model is aware it is being evaluated"


@pytest.fixture(scope="module")
def sae_run(tmp_path_factory: pytest.TempPathFactory) -> Path:
    """A real train-sae run folder (tiny, synthetic activations) with a report, records and an intervention summary."""
    from safetensors.numpy import save_file

    from interp_agent.core.inspection import inspect
    from interp_agent.core.sae.train import TrainSettings
    from interp_agent.core.workflows.trained_latents import train_sae

    root = tmp_path_factory.mktemp("publish")
    rng = np.random.default_rng(0)
    codes = (rng.random((600, 24)) < 0.1) * rng.exponential(1.0, (600, 24))
    x = (codes @ rng.standard_normal((24, 8))).astype(np.float32)
    save_file({"activations": x}, str(root / "acts.safetensors"))
    run = root / "run"
    train_sae(out=run, activations=[str(root / "acts.safetensors")], hookpoint="blocks.2.hook_resid_post",
              settings=TrainSettings(latent_dim=32, k=4, steps=20, lr=3e-3))
    inspect("my/model", CRIT, backend="records", records=SEED / "activation_records.jsonl",
            interventions=SEED / "interventions.jsonl", out=run / "ranking")
    shutil.copy(SEED / "interventions.jsonl", run / "interventions.jsonl")
    (run / "summary.json").write_text(json.dumps({
        "schema_version": "interp-agent.intervention_summary.v1", "model": "my/model", "criterion": CRIT,
        "features": [{"feature_id": "SAE:L2:F7", "verdict": "causal",
                      "effect": {"provenance": "interventional", "mean": 0.125, "ci95": [0.05, 0.2], "n": 12},
                      "control_effect": {"provenance": "interventional", "mean": 0.01},
                      "side_effect": {"provenance": "interventional", "kl_on_other_class": 0.003}}],
    }))
    # what a run folder also holds and a publish must leave behind
    (run / "job.log").write_text("runner: job submitted\n")
    (run / "checkpoints").mkdir()
    (run / "checkpoints" / "step-10.pt").write_bytes(b"\0" * 64)
    (run / "activations").mkdir()
    (run / "activations" / "cache.npy").write_bytes(b"\0" * 64)
    (run / ".metrics.json.abc.tmp").write_text("{")
    (run / "upload.partial").write_text("x")
    (run / "credentials.json").write_text("{}")
    (run / "README.md").write_text("# an old readme\n")
    return run


UPLOADED = {"cfg.json", "sae_weights.safetensors", "metrics.json", "summary.json", "interventions.jsonl",
            "ranking/report.json", "ranking/report.md", "ranking/report.html"}


def test_plan_lists_the_artifacts_and_says_why_each_other_file_stays(sae_run: Path) -> None:
    plan = plan_publish(sae_run, "me/sae-test")
    assert {f.path_in_repo for f in plan.files} == UPLOADED
    assert all(f.size == (sae_run / f.path_in_repo).stat().st_size for f in plan.files)
    skipped = {s.path: s.reason for s in plan.skipped}
    assert set(skipped) == {"job.log", "checkpoints/", "activations/", ".metrics.json.abc.tmp", "upload.partial",
                            "credentials.json", "README.md"}
    assert "checkpoints" in skipped["checkpoints/"] and "cache" in skipped["activations/"]
    assert "credential" in skipped["credentials.json"] and "generated card" in skipped["README.md"]


def test_a_text_file_holding_the_token_value_or_a_hub_token_is_never_planned(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("HF_TOKEN", "hf_thisIsTheSecretValue0123456789abcdefghij")
    (tmp_path / "report.json").write_text("{}")
    (tmp_path / "notes.md").write_text("I ran it with hf_thisIsTheSecretValue0123456789abcdefghij\n")
    (tmp_path / "other.txt").write_text("an old token hf_AAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAAA\n")
    os.symlink(tmp_path / "report.json", tmp_path / "link.json")
    plan = plan_publish(tmp_path, "me/x")
    assert [f.path_in_repo for f in plan.files] == ["report.json"]
    reasons = {s.path: s.reason for s in plan.skipped}
    assert "credential environment variable" in reasons["notes.md"]
    assert "Hugging Face token" in reasons["other.txt"] and "symbolic link" in reasons["link.json"]


def test_the_card_has_front_matter_metrics_verdicts_provenance_and_how_to_load(sae_run: Path) -> None:
    card = render_card(sae_run, "me/sae-test")
    meta = yaml.safe_load(card.split("---\n")[1])
    assert meta["library_name"] == "saelens"
    assert {"interp-agent", "sparse-autoencoder", "saelens"} <= set(meta["tags"]) and "synthetic" not in meta["tags"]
    metrics = json.loads((sae_run / "metrics.json").read_text())
    assert next(line for line in card.splitlines() if line.startswith("# ")) == (
        "# Sparse autoencoder for stored activations at blocks.2.hook_resid_post")
    assert "blocks.2.hook_resid_post" in card and CRIT in card
    assert f"| fraction of variance unexplained (FVU) | {metrics['held_out']['fvu']:.4g} |" in card
    assert "| `L18:F104921` |" in card and "+0.600 [+0.473, +0.727] (n 2)" in card  # top feature with its causal effect
    assert "| `SAE:L2:F7` | causal | +0.1250 [+0.050, +0.200] |" in card
    assert "- correlational:" in card and "- interventional:" in card
    assert "sha256 `" in card and "activation_records.jsonl" in card
    assert 'path = snapshot_download("me/sae-test")' in card and "sae = SAE.load_from_disk(path)" in card
    assert "job.log" not in card and "checkpoints" not in card


def test_a_synthetic_run_is_marked_synthetic_in_the_card_title_and_tags(tmp_path: Path) -> None:
    from interp_agent.core.inspection import inspect

    inspect("toy/a", "x", backend="toy", out=tmp_path)
    card = render_card(tmp_path, "me/toy", repo_type="dataset")
    meta = yaml.safe_load(card.split("---\n")[1])
    assert "synthetic" in meta["tags"] and "library_name" not in meta
    title = next(line for line in card.splitlines() if line.startswith("# "))
    assert title.startswith("# [SYNTHETIC] ")
    assert "**synthetic**" in card and 'snapshot_download("me/toy", repo_type="dataset")' in card


def test_a_dry_run_lists_every_file_with_its_size_and_sends_nothing(sae_run: Path, hub: HubStandIn, hub_token: str,
                                                                    monkeypatch) -> None:
    monkeypatch.setenv("HF_TOKEN", hub_token)
    result = publish(sae_run, "me/sae-test")
    assert result["dry_run"] is True and result["uploaded"] is False and result["token_present"] is True
    assert {f["path"] for f in result["files"]} == UPLOADED | {"README.md"}
    sizes = {f["path"]: f["bytes"] for f in result["files"]}
    assert sizes["sae_weights.safetensors"] == (sae_run / "sae_weights.safetensors").stat().st_size
    assert sizes["README.md"] == len(result["card"].encode())
    assert "nothing was uploaded" in result["message"]
    assert hub.requests == []
    assert hub_token not in json.dumps(result)


def test_publish_creates_the_repo_and_commits_exactly_the_planned_files_and_the_card(
    sae_run: Path, hub: HubStandIn, hub_token: str, monkeypatch, caplog, capsys
) -> None:
    monkeypatch.setenv("HF_TOKEN", hub_token)
    caplog.set_level(logging.DEBUG)
    result = publish(sae_run, "me/sae-test", dry_run=False, commit_message="first upload")
    assert hub.unexpected == []
    assert [(r.method, r.path) for r in hub.requests] == [
        ("POST", "/api/repos/create"), ("POST", "/api/validate-yaml"),
        ("POST", "/api/models/me/sae-test/preupload/main"), ("POST", "/api/models/me/sae-test/commit/main"),
    ]
    assert all(r.headers["authorization"] == f"Bearer {hub_token}" for r in hub.requests)
    assert json.loads(hub.requests[0].body) == {
        "name": "sae-test", "organization": "me", "visibility": "private", "type": "model"
    }
    (commit,) = hub.commits
    assert commit.content_type == "application/x-ndjson" and commit.header["summary"] == "first upload"
    assert set(commit.files) == UPLOADED | {"README.md"}
    for path in UPLOADED:
        assert commit.files[path] == (sae_run / path).read_bytes(), path
    assert commit.files["README.md"].decode() == result["card"] != (sae_run / "README.md").read_text()
    assert result["uploaded"] is True and result["commit_url"] == f"{hub.url}/me/sae-test/commit/{1:040x}"
    assert result["repo_url"] == f"{hub.url}/me/sae-test"
    seen = json.dumps(result) + caplog.text + "".join(capsys.readouterr())
    assert hub_token not in seen


def test_a_public_dataset_goes_to_the_dataset_endpoints_and_an_existing_repo_is_reused(
    tmp_path: Path, hub: HubStandIn, hub_token: str, monkeypatch
) -> None:
    from interp_agent.core.inspection import inspect

    monkeypatch.setenv("HF_TOKEN", hub_token)
    inspect("my/model", CRIT, backend="records", records=SEED / "activation_records.jsonl", out=tmp_path)
    first = publish(tmp_path, "me/reports", repo_type="dataset", private=False, dry_run=False)
    second = publish(tmp_path, "me/reports", repo_type="dataset", private=False, dry_run=False)
    body = json.loads(hub.requests[0].body)
    assert body["visibility"] == "public" and body["type"] == "dataset"
    assert [c.kind for c in hub.commits] == ["datasets", "datasets"]
    assert first["commit_url"].startswith(f"{hub.url}/datasets/me/reports/commit/") and second["uploaded"] is True
    assert hub.unexpected == []


def test_without_hf_token_a_real_publish_fails_clearly_and_sends_nothing(
    sae_run: Path, hub: HubStandIn, monkeypatch
) -> None:
    monkeypatch.delenv("HF_TOKEN", raising=False)
    with pytest.raises(MissingCredentialError) as err:
        publish(sae_run, "me/sae-test", dry_run=False)
    assert "HF_TOKEN" in err.value.message and "never from an argument" in (err.value.hint or "")
    assert err.value.code == "missing_credential"
    assert hub.requests == []


def test_a_401_from_the_hub_is_a_clear_error_without_the_token(sae_run: Path, hub: HubStandIn, monkeypatch) -> None:
    wrong = "hf_WrongTokenWrongTokenWrongToken0123456789"
    monkeypatch.setenv("HF_TOKEN", wrong)
    with pytest.raises(RemoteServiceError) as err:
        publish(sae_run, "me/sae-test", dry_run=False)
    text = str(err.value)
    assert "refused HF_TOKEN" in text and "HTTP 401" in text and "me/sae-test" in text and hub.url in text
    assert wrong not in text and hub.token not in text
    assert hub.requests and all(r.headers["authorization"] == f"Bearer {wrong}" for r in hub.requests)
    assert hub.commits == [] and hub.repos == {}


def test_an_unreachable_hub_is_a_remote_service_error(sae_run: Path, monkeypatch) -> None:
    import huggingface_hub.constants

    monkeypatch.setattr(huggingface_hub.constants, "HF_HUB_OFFLINE", False)
    monkeypatch.delenv("HF_HUB_OFFLINE", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # the discard port: nothing listens
    monkeypatch.setenv("HF_TOKEN", "hf_UnreachableUnreachable0123456789abcdef")
    with pytest.raises(RemoteServiceError, match="could not reach the Hub at http://127.0.0.1:9"):
        publish(sae_run, "me/sae-test", dry_run=False)


@pytest.mark.parametrize(("repo_id", "repo_type", "expected"), [
    ("no-namespace", "model", "owner/name"), ("me/../etc", "model", "owner/name"), ("me/x", "space", "repo_type"),
])
def test_bad_repo_ids_and_types_are_refused(sae_run: Path, repo_id: str, repo_type: str, expected: str) -> None:
    with pytest.raises(ValidationError, match=expected):
        publish(sae_run, repo_id, repo_type=repo_type)  # type: ignore[arg-type]


def test_a_missing_or_empty_folder_is_refused(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="does not exist"):
        plan_publish(tmp_path / "nope", "me/x")
    (tmp_path / "job.log").write_text("x")
    with pytest.raises(ValidationError, match="nothing to upload"):
        plan_publish(tmp_path, "me/x")


def test_short_values_of_secret_named_variables_do_not_hide_files(tmp_path: Path, monkeypatch) -> None:
    monkeypatch.setenv("TOKENIZERS_PARALLELISM", "false")
    (tmp_path / "report.json").write_text('{"synthetic": false}')
    assert [f.path_in_repo for f in plan_publish(tmp_path, "me/x").files] == ["report.json"]
