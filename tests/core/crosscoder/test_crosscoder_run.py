"""``train_crosscoder`` end to end on two tiny random llama folders that share a tokenizer (synthetic
activations, real plumbing): the saved folder, metrics, exclusivity table, an ordinary inspection report
ranking the latents, the CLI, and a refused run that leaves ``out`` as it was. One slow test runs the real
embedded SmolLM2-135M at two layers."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

import pytest

from interp_agent.cli.crosscoder import add_crosscoder_parsers
from interp_agent.core.crosscoder import load_crosscoder, train_crosscoder
from interp_agent.core.errors import ValidationError
from interp_agent.core.models.loading import tiny_model


def _save_tiny(folder: Path, *, seed: int, d_model: int = 32) -> str:
    loaded = tiny_model(seed=seed, d_model=d_model)
    loaded.model.save_pretrained(folder)  # pyright: ignore[reportCallIssue]  # a transformers model
    loaded.tokenizer.save_pretrained(folder)
    return str(folder)


@pytest.fixture(scope="module")
def folders(tmp_path_factory: pytest.TempPathFactory) -> dict[str, str]:
    root = tmp_path_factory.mktemp("models")
    return {"base": _save_tiny(root / "base", seed=0), "tuned": _save_tiny(root / "tuned", seed=1),
            "wide": _save_tiny(root / "wide", seed=2, d_model=48)}


SMALL = {"latent_dim": 64, "k": 4, "steps": 60, "batch_size": 256, "max_length": 32, "max_texts": 80, "lr": 3e-3}


@pytest.fixture(scope="module")
def run(folders: dict[str, str], tmp_path_factory: pytest.TempPathFactory) -> dict:
    out = tmp_path_factory.mktemp("runs") / "xc"
    return train_crosscoder(out=out, models=[folders["base"], folders["tuned"]],
                            hookpoints=["blocks.1.hook_resid_post"], pack="french", **SMALL)  # type: ignore[arg-type]


def test_a_run_writes_the_dictionary_learning_folder_metrics_and_exclusivity(run: dict) -> None:
    out = Path(run["out"])
    assert {"ae.pt", "config.json", "metrics.json", "exclusivity.json", "records.jsonl", "report"} <= {
        p.name for p in out.iterdir()}
    model, config = load_crosscoder(out)
    assert model.encoder.weight.shape == (2, 32, 64)
    assert config["trainer"]["dict_class"] == "BatchTopKCrossCoder" and config["trainer"]["layer"] == 1
    assert [s["hookpoint"] for s in config["interp_agent"]["sources"]] == ["blocks.1.hook_resid_post"] * 2
    metrics = json.loads((out / "metrics.json").read_text())
    assert metrics["held_out"]["provenance"] == "correlational"
    assert set(metrics["held_out"]["fvu"]) == set(run["sources"])
    assert all(0 < v < 1 for v in metrics["held_out"]["fvu"].values())
    assert metrics["data"]["n_held_out_tokens"] > 0 and metrics["data"]["texts"]["synthetic"] is True
    table = json.loads((out / "exclusivity.json").read_text())
    assert len(table["latents"]) == 64 and table["provenance"] == "correlational"
    assert not list(out.parent.glob(".xc.*"))  # the temporary folder was swapped in


def test_the_latents_are_ranked_in_an_ordinary_inspection_report(run: dict) -> None:
    out = Path(run["out"])
    report = json.loads((out / "report" / "report.json").read_text())
    assert report["features"] and all(f["feature_id"].startswith("SAE:crosscoder:F") for f in report["features"])
    assert run["ranking"]["criterion"] == "the text is written in French"
    assert ".xc." not in (out / "report" / "report.json").read_text()  # names the final folder, not the temporary one
    first = json.loads((out / "records.jsonl").read_text().splitlines()[0])
    assert first["model"].startswith("crosscoder(") and first["features"]


def test_a_refused_run_leaves_out_as_it_was(folders: dict[str, str], tmp_path: Path) -> None:
    out = tmp_path / "xc"
    out.mkdir()
    (out / "keep.txt").write_text("earlier run")
    with pytest.raises(ValidationError, match="has width 48"):
        train_crosscoder(out=out, models=[folders["base"], folders["wide"]], hookpoints=["blocks.0.hook_resid_post"],
                         **SMALL)  # type: ignore[arg-type]
    assert [p.name for p in tmp_path.iterdir()] == ["xc"] and (out / "keep.txt").read_text() == "earlier run"


def test_bad_combinations_are_refused_before_any_model_loads(tmp_path: Path) -> None:
    with pytest.raises(ValidationError, match="exactly one source"):
        train_crosscoder(out=tmp_path / "x", hookpoints=["blocks.0.hook_resid_post"])
    with pytest.raises(ValidationError, match="one model at one hookpoint"):
        train_crosscoder(out=tmp_path / "x", models=["/nowhere"], hookpoints=["blocks.0.hook_resid_post"])
    with pytest.raises(ValidationError, match="needs `criterion`"):
        train_crosscoder(out=tmp_path / "x", models=["a", "b"], hookpoints=["h"], dataset="d.jsonl")
    assert not (tmp_path / "x").exists()


def test_the_cli_trains_one_model_at_two_hookpoints(folders: dict[str, str], tmp_path: Path,
                                                    capsys: pytest.CaptureFixture[str]) -> None:
    parser = argparse.ArgumentParser()
    add_crosscoder_parsers(parser.add_subparsers(dest="command"))  # type: ignore[arg-type]
    args = parser.parse_args(["train-crosscoder", "--model", folders["base"], "--hookpoints",
                              "blocks.0.hook_resid_post", "blocks.1.hook_resid_post", "--out", str(tmp_path / "xc"),
                              "--latent-dim", "64", "--k", "4", "--steps", "30", "--batch-size", "256",
                              "--max-texts", "40", "--max-length", "32", "--json"])
    assert args.func(args) == 0
    payload = json.loads(capsys.readouterr().out)
    assert len(payload["sources"]) == 2 and payload["ranking"] is None
    assert (tmp_path / "xc" / "ae.pt").is_file()


@pytest.mark.slow
def test_the_embedded_model_at_two_layers_reconstructs_held_out_tokens(tmp_path: Path) -> None:
    from interp_agent.core.models import load_model

    name = load_model().name
    result = train_crosscoder(out=tmp_path / "xc", models=[name], hookpoints=["blocks.8.hook_resid_post",
                              "blocks.9.hook_resid_post"], latent_dim=512, k=16, steps=120, batch_size=512,
                              max_texts=60, max_length=48, pack="french", lr=2e-3)
    fvu = result["held_out"]["fvu"]
    assert len(fvu) == 2 and all(v < 0.6 for v in fvu.values()), fvu
    assert result["ranking"]["top"] and result["exclusivity"]["shared"] > 0


def test_stored_arrays_train_with_rows_held_out(tmp_path: Path) -> None:
    import numpy as np

    rng = np.random.default_rng(0)
    base = rng.normal(size=(3000, 16)).astype(np.float32)
    np.save(tmp_path / "base.npy", base)
    np.save(tmp_path / "chat.npy", (base + 0.1 * rng.normal(size=base.shape)).astype(np.float32))
    result = train_crosscoder(out=tmp_path / "xc", activations=[str(tmp_path / "base.npy"),
                              str(tmp_path / "chat.npy")], latent_dim=32, k=4, steps=40, batch_size=256)
    assert result["held_out"]["n_tokens"] == 300 and result["ranking"] is None
    assert set(result["held_out"]["fvu"]) == {str(tmp_path / "base.npy"), str(tmp_path / "chat.npy")}
