"""The command line: happy paths on the seed inputs, one-line errors with exit code 2."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from interp_agent.cli import main

CRIT = "the model is aware it is being evaluated"


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_inspect_records_with_interventions_writes_three_reports(seed_dir: Path, tmp_path: Path, capsys) -> None:
    code, out, _ = run(
        capsys, "inspect", "--model", "my/model", "--criterion", CRIT, "--backend", "records",
        "--records", str(seed_dir / "activation_records.jsonl"), "--interventions",
        str(seed_dir / "interventions.jsonl"),
        "--held-out-fraction", "0.3", "--out", str(tmp_path / "r"), "--json",
    )
    assert code == 0
    result = json.loads(out)
    assert {p.name for p in (tmp_path / "r").iterdir()} == {"report.json", "report.md", "report.html"}
    report = json.loads((tmp_path / "r" / "report.json").read_text())
    assert report["schema_version"] == "interp-agent.inspection_report.v1"
    assert [f["rank"] for f in report["features"]] == list(range(1, len(report["features"]) + 1))
    for f in report["features"]:
        assert {"feature_id", "rank", "importance", "association", "specificity", "stability", "causal",
                "provenance"} <= set(f)
        assert f["association"]["provenance"] == "correlational"
        assert f["provenance"]["association"] == "correlational"
    ablated = next(f for f in report["features"] if f["feature_id"] == "L18:F104921")
    assert ablated["causal"]["provenance"] == "interventional" and ablated["causal"]["n"] == 2
    assert result["top"][0]["feature_id"] == report["features"][0]["feature_id"]
    assert any("control" in w for w in report["warnings"])  # the seed has no control rows: said so


def test_inspect_features_backend_ranks_by_label_similarity(seed_dir: Path, tmp_path: Path, capsys) -> None:
    code, out, _ = run(
        capsys, "inspect", "--model", "my/model", "--criterion", "the prompt is a constructed benchmark test",
        "--backend", "features", "--features", str(seed_dir / "features.jsonl"), "--out", str(tmp_path / "f"), "--json",
    )
    assert code == 0
    report = json.loads((tmp_path / "f" / "report.json").read_text())
    assert report["features"][0]["feature_id"] == "L18:F104921"
    f = report["features"][0]
    assert f["association"] is None and f["importance_components"]["semantic"]["provenance"] == "semantic"
    assert f["imported"]["causal_effects"]["criterion"] == 0.78
    assert any("measures no association" in w for w in report["warnings"])


def test_toy_backend_labels_every_number_synthetic(tmp_path: Path, capsys) -> None:
    code, _, _ = run(
        capsys, "inspect", "--model", "toy/a", "--criterion", "x", "--backend", "toy", "--out", str(tmp_path)
    )
    assert code == 0
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["synthetic"] is True

    def provenances(node):
        if isinstance(node, dict):
            for k, v in node.items():
                if k == "provenance" and isinstance(v, str):
                    yield v
                elif k == "provenance" and isinstance(v, dict):
                    yield from (x for x in v.values() if x is not None)
                else:
                    yield from provenances(v)
        elif isinstance(node, list):
            for v in node:
                yield from provenances(v)

    seen = set(provenances(report["features"]))
    assert seen == {"synthetic"}
    assert "SYNTHETIC" in (tmp_path / "report.html").read_text()
    rows = [json.loads(line) for line in (tmp_path / "toy-records.jsonl").read_text().splitlines()]
    assert rows and all(row["synthetic"] is True for row in rows)


def test_match_and_convert_commands(seed_dir: Path, tmp_path: Path, capsys) -> None:
    for name in ("a", "b"):
        assert run(capsys, "inspect", "--model", f"toy/{name}", "--criterion", "x", "--backend", "toy",
                   "--out", str(tmp_path / name))[0] == 0
    code, out, _ = run(capsys, "match", "--left", str(tmp_path / "a" / "report.json"), "--right", str(tmp_path / "b"),
                       "--out", str(tmp_path / "m" / "matches.json"), "--json")
    assert code == 0
    assert json.loads(out)["summary"]["n_matches"] > 0
    assert (tmp_path / "m" / "matches.md").is_file()
    code, _, _ = run(capsys, "convert", str(seed_dir / "activation_records.jsonl"), str(tmp_path / "ds"))
    assert code == 0 and (tmp_path / "ds" / "activations.parquet").is_file()
    code, _, _ = run(capsys, "convert", str(tmp_path / "ds"), str(tmp_path / "back.jsonl"))
    assert code == 0 and len((tmp_path / "back.jsonl").read_text().splitlines()) == 4


def test_two_matches_into_one_folder_keep_both_markdown_files(tmp_path: Path, capsys) -> None:
    from interp_agent.api import inspect

    for name in ("a", "b", "c"):
        inspect(f"toy/{name}", "x", backend="toy", out=tmp_path / name)
    printed = {}
    for right in ("b", "c"):
        out = tmp_path / "m" / f"a_vs_{right}.json"
        code, stdout, _ = run(capsys, "match", "--left", str(tmp_path / "a"), "--right", str(tmp_path / right),
                              "--out", str(out), "--no-text", "--json")
        assert code == 0
        printed[right] = json.loads(stdout)["paths"]

    assert sorted(p.name for p in (tmp_path / "m").iterdir()) == ["a_vs_b.json", "a_vs_b.md",
                                                                 "a_vs_c.json", "a_vs_c.md"]
    assert printed["c"] == {"json": str(tmp_path / "m" / "a_vs_c.json"), "md": str(tmp_path / "m" / "a_vs_c.md")}
    assert "toy/b" in (tmp_path / "m" / "a_vs_b.md").read_text()
    assert "toy/c" in (tmp_path / "m" / "a_vs_c.md").read_text()


@pytest.mark.parametrize(
    ("argv", "expected"),
    [
        (["inspect", "--model", "m", "--criterion", "c", "--records", "{bad}", "--out", "{out}"],
         "bad.jsonl:2: malformed JSON"),
        (["inspect", "--model", "m", "--criterion", "c", "--out", "{out}"], "no evidence given"),
        (["inspect", "--model", "m", "--criterion", "c", "--backend", "records", "--out", "{out}"],
         "the records backend needs --records"),
        (["inspect", "--model", "m", "--criterion", "c", "--records", "{missing}", "--out", "{out}"],
         "nope.jsonl' does not exist"),
        (["inspect", "--model", "m", "--criterion", "c", "--backend", "nonsense", "--out", "{out}"], "invalid choice"),
        (["inspect", "--model", "m", "--criterion", "c", "--backend", "neuronpedia", "--out", "{out}"],
         "no Neuronpedia features given"),
        (["inspect", "--model", "m", "--criterion", "c", "--records", "{bad}", "--held-out-fraction", "2",
          "--out", "{out}"],
         "held_out_fraction must be in (0, 1)"),
        (["match", "--left", "{missing}", "--right", "{missing}", "--out", "{out}/m.json"], "nope.jsonl"),
        (["train-sae", "--out", "{out}"], "give exactly one source"),
        (["train-sae", "--activations", "{missing}", "--out", "{out}"], "nope.jsonl: file not found"),
        (["train-sae", "--records", "{bad}", "--out", "{out}"], "bad.jsonl:2: malformed JSON"),
        (["train-sae", "--model", "smollm2-135m", "--pack", "french", "--out", "{out}"], "needs --hookpoint"),
    ],
)
def test_bad_input_exits_2_with_one_line(tmp_path: Path, capsys, argv: list[str], expected: str) -> None:
    bad = tmp_path / "bad.jsonl"
    bad.write_text('{"prompt_id": "a", "criterion_score": 1, "features": {}}\n{"prompt_id": \n')
    subs = {"{bad}": str(bad), "{out}": str(tmp_path / "out"), "{missing}": str(tmp_path / "nope.jsonl")}
    argv = [subs.get(a, a.replace("{out}", str(tmp_path / "out"))) for a in argv]
    with pytest.raises(SystemExit) if "invalid choice" in expected else _noop():
        code = main(argv)
        assert code == 2
    err = capsys.readouterr().err
    assert expected in err
    assert len(err.strip().splitlines()) == 1
    assert not (tmp_path / "out" / "report.json").exists()


class _noop:
    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def test_doctor_reports_extras_and_loads_the_encoder(capsys) -> None:
    code, out, _ = run(capsys, "doctor", "--json")
    assert code == 0
    report = json.loads(out)
    assert report["extras"]["core"] is True
    assert report["sentence_encoder"]["loads"] is True and report["sentence_encoder"]["dim"] == 384
    assert report["embedded_model"]["loads"] is True and report["embedded_model"]["d_model"] == 576


def test_demo_writes_reports_and_matches(tmp_path: Path, capsys) -> None:
    code, out, _ = run(capsys, "demo", "--synthetic", "--out", str(tmp_path), "--json")
    assert code == 0
    summary = json.loads(out)
    assert summary["synthetic"] is True
    for name in ("model-a", "model-b"):
        assert (tmp_path / name / "report.html").is_file()
    matches = json.loads((tmp_path / "matches.json").read_text())
    # the planted concepts are matched across the two toy models by their shared concept number
    true_pairs = [m for m in matches["matches"] if "concept" in (m["left_label"] or "")]
    assert true_pairs and all(m["left_label"] == m["right_label"] for m in true_pairs)


def test_console_script_runs_in_a_subprocess() -> None:
    proc = subprocess.run([sys.executable, "-m", "interp_agent.cli", "--version"], capture_output=True, text=True)
    assert proc.returncode == 0 and proc.stdout.startswith("interp-agent ")


def test_records_that_say_they_are_synthetic_make_a_synthetic_report(tmp_path: Path, capsys) -> None:
    examples = Path(__file__).resolve().parents[1] / "examples" / "synthetic"
    code, out, _ = run(capsys, "inspect", "--model", "toy/model-a", "--criterion", "the next token should be a "
                                                                                   "physical measurement unit",
                       "--records", str(examples / "records.jsonl"), "--interventions",
                       str(examples / "interventions.jsonl"),
                       "--out", str(tmp_path), "--json")
    assert code == 0
    report = json.loads((tmp_path / "report.json").read_text())
    assert report["synthetic"] is True and report["warnings"][0].startswith("SYNTHETIC")
    assert report["features"][0]["association"]["provenance"] == "synthetic"
    assert (tmp_path / "report.json").stat().st_mode & 0o044  # readable by others, like a plain open()


def test_jobs_resume_queues_a_failed_job_again_and_refuses_unknown_or_completed_ones(tmp_path: Path, capsys) -> None:
    from interp_agent.jobs import JobRunner

    runner = JobRunner(tmp_path / "ws")
    failed = runner.wait(runner.submit("sleep", {"seconds": 0.1, "steps": 2, "fail": True}).job_id, 30)
    completed = runner.wait(runner.submit("sleep", {"seconds": 0.05, "steps": 1}).job_id, 30)
    assert (failed.state, completed.state) == ("failed", "completed")
    ws = str(tmp_path / "ws")

    code, out, _ = run(capsys, "jobs", "resume", failed.job_id, "--workspace", ws, "--json")
    assert code == 0
    job = json.loads(out)
    assert job["job_id"] == failed.job_id and job["state"] == "working"
    assert job["attempts"] == 2 and job["error"] is None
    again = runner.wait(failed.job_id, 30)  # fail=true fails on every attempt
    assert again.state == "failed" and again.attempts == 2
    assert "runner: job resumed, attempt 2" in runner.log_path(failed.job_id).read_text()

    for job_id, expected in (
        ("no-such-job-id", "no job 'no-such-job-id'"), (completed.job_id, "is completed; only a failed")
    ):
        code, out, err = run(capsys, "jobs", "resume", job_id, "--workspace", ws)
        assert code == 2 and out == ""
        assert err.startswith("interp-agent: error: ") and expected in err and len(err.strip().splitlines()) == 1
    code, _, err = run(capsys, "jobs", "resume", "--workspace", ws)
    assert code == 2 and "jobs resume needs a JOB_ID" in err


def test_train_sae_on_stored_activations(tmp_path: Path, capsys) -> None:
    import numpy as np
    from safetensors.numpy import save_file

    rng = np.random.default_rng(0)
    atoms = rng.standard_normal((48, 16))
    x = ((rng.random((3_000, 48)) < 0.08) * rng.exponential(1.0, (3_000, 48)) @ atoms).astype(np.float32)
    save_file({"activations": x}, str(tmp_path / "acts.safetensors"))  # synthetic activations
    code, out, _ = run(capsys, "train-sae", "--activations", str(tmp_path / "acts.safetensors"), "--hookpoint",
                       "blocks.2.hook_resid_post", "--latent-dim", "64", "--k", "4", "--steps", "60", "--lr", "3e-3",
                       "--out", str(tmp_path / "sae"), "--json")
    assert code == 0
    payload = json.loads(out)
    assert payload["metrics"]["sae"]["d_sae"] == 64 and 0 < payload["metrics"]["held_out"]["fvu"] < 1
    assert "history" not in payload["metrics"]["training"]
    assert {Path(p).name for p in payload["paths"].values()} == {"cfg.json", "sae_weights.safetensors", "metrics.json"}
    code, out, _ = run(capsys, "train-sae", "--activations", str(tmp_path / "acts.safetensors"), "--hookpoint",
                       "blocks.2.hook_resid_post", "--architecture", "relu", "--latent-dim", "32", "--steps", "30",
                       "--out", str(tmp_path / "relu"))
    assert code == 0 and "relu SAE, 16 -> 32 latents, at blocks.2.hook_resid_post" in out and "held-out" in out


def test_publish_dry_run_lists_every_file_and_its_size_and_uploads_nothing(seed_dir: Path, tmp_path: Path, capsys,
                                                                            monkeypatch) -> None:
    monkeypatch.delenv("HF_TOKEN", raising=False)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens there: a request would fail the test
    assert run(capsys, "inspect", "--model", "my/model", "--criterion", CRIT, "--records",
               str(seed_dir / "activation_records.jsonl"), "--out", str(tmp_path / "r"))[0] == 0
    (tmp_path / "r" / "job.log").write_text("internal\n")
    code, out, _ = run(capsys, "publish", "--path", str(tmp_path / "r"), "--repo-id", "me/reports",
                       "--repo-type", "dataset",
                       "--card-out", str(tmp_path / "card.md"))
    assert code == 0 and out.startswith("DRY RUN: nothing was uploaded")
    for name in ("report.json", "report.md", "report.html"):
        assert f"{(tmp_path / 'r' / name).stat().st_size:>12,}  {name}" in out
    assert "README.md  (generated card)" in out and "skipped  job.log" in out and "HF_TOKEN not set" in out
    assert (tmp_path / "card.md").read_text().startswith("---\n")
    code, out, _ = run(capsys, "publish", "--path", str(tmp_path / "r"), "--repo-id", "me/reports", "--json")
    assert code == 0 and json.loads(out)["uploaded"] is False
    code, out, err = run(capsys, "publish", "--path", str(tmp_path / "r"), "--repo-id", "me/reports", "--no-dry-run")
    assert code == 2 and out == "" and "HF_TOKEN" in err and len(err.strip().splitlines()) == 1


def test_export_graph_writes_native_and_neuronpedia_graphs(seed_dir: Path, tmp_path: Path, capsys) -> None:
    assert run(capsys, "inspect", "--model", "my/model", "--criterion", CRIT, "--records",
               str(seed_dir / "activation_records.jsonl"), "--interventions", str(seed_dir / "interventions.jsonl"),
               "--out", str(tmp_path / "r"))[0] == 0
    code, out, _ = run(
        capsys, "export-graph", "--report", str(tmp_path / "r" / "report.json"), "--out", str(tmp_path / "g.json")
    )
    assert code == 0 and "3 correlational and 3 interventional edges" in out
    assert json.loads((tmp_path / "g.json").read_text())["schema_version"] == "interp-agent.graph.v1"
    code, out, _ = run(capsys, "export-graph", "--report", str(tmp_path / "r"), "--format", "neuronpedia",
                       "--top-k", "2",
                       "--out", str(tmp_path / "np.json"), "--json")
    assert code == 0 and json.loads(out)["graph"]["metadata"]["scan"] == "my/model"
    assert len(json.loads((tmp_path / "np.json").read_text())["links"]) == 4
    code, out, err = run(
        capsys, "export-graph", "--report", str(tmp_path / "nope.json"), "--out", str(tmp_path / "x.json")
    )
    assert code == 2 and "nope.json" in err and not (tmp_path / "x.json").exists()


def test_inspect_text_and_json_rows_carry_held_out_intervals_and_notes(seed_dir: Path, tmp_path: Path, capsys) -> None:
    argv = ["inspect", "--model", "toy/a", "--criterion", "x", "--backend", "toy", "--out", str(tmp_path / "t")]
    code, text, _ = run(capsys, *argv)
    assert code == 0
    assert "Prompts: 400, one row each: 280 train, 120 held-out" in text
    assert "r held-out [95% CI]" in text and "AUROC held-out [95% CI]" in text
    report = json.loads((tmp_path / "t" / "report.json").read_text())
    held = report["features"][0]["association"]["held_out"]
    lo, hi = held["pearson_r_ci95"]
    assert f"{held['pearson_r']:+.3f} [{lo:+.2f}, {hi:+.2f}]" in text
    code, out, _ = run(capsys, *argv, "--json")
    top = json.loads(out)["top"][0]
    assert top["r_held_out_ci95"] == held["pearson_r_ci95"] and top["auroc_held_out_ci95"] == held["auroc_ci95"]
    assert top["n_held_out_prompts"] == 120 and top["held_out_excludes_chance"] is True
    code, text, _ = run(capsys, "inspect", "--model", "my/model", "--criterion", CRIT, "--backend", "records",
                        "--records", str(seed_dir / "activation_records.jsonl"), "--out", str(tmp_path / "s"))
    assert "Prompts: 4, one row each: 3 train, 1 held-out" in text
    assert "note: no held-out statistics: the held-out split has 1 row (1 prompt)" in text
    assert "warning: no reported feature has held-out statistics" in text
