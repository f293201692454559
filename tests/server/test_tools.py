"""Every tool through an in-memory MCP client: happy path and error path, both protocol revisions."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mcp import Client, MCPError

from interp_agent.server.errors import error_payload

pytestmark = pytest.mark.anyio

CRIT = "the model is aware it is being evaluated"
MODES = ["legacy", "2026-07-28"]  # the 2025-11-25 handshake and the modern revision


def error_of(result) -> dict:
    """The {code, message, hint} of an error result: JSON in its text block, no structuredContent."""
    assert result.is_error, result
    assert result.structured_content is None  # clients check structuredContent against the outputSchema
    return error_payload(result)


@pytest.mark.parametrize("mode", MODES)
async def test_both_protocol_revisions_list_every_tool_with_schemas(server, mode: str) -> None:
    async with Client(server, mode=mode) as client:
        assert client.protocol_version == ("2025-11-25" if mode == "legacy" else mode)
        tools = {t.name: t for t in (await client.list_tools()).tools}
        assert set(tools) == {"profile_env", "plan_scale", "inspect", "intervene", "match", "train_sae", "job_status",
                              "job_result",
                              "job_cancel", "job_resume", "job_list", "list_artifacts", "publish", "feature_card",
                              "explain", "feature_evidence", "score_explanation", "judge_explanation",
                              "investigate", "dossier", "plan_evidence", "validate_matches", "diff_models",
                              "train_crosscoder", "harvest", "capabilities", "import_interp_lab",
                              "convert_hidden_dump", "export_steering", "apply_steering", "compile_criterion",
                              "score_prompts"}
        for tool in tools.values():
            assert tool.output_schema and tool.output_schema["type"] == "object"
            assert tool.annotations is not None and tool.annotations.read_only_hint is not None
            assert len(tool.description) > 60
        assert tools["job_list"].annotations.read_only_hint is True
        assert tools["job_cancel"].annotations.destructive_hint is True
        resume = tools["job_resume"].annotations
        assert (resume.read_only_hint, resume.destructive_hint, resume.idempotent_hint) == (False, False, False)
        backend = tools["inspect"].input_schema["properties"]["backend"]  # optional: inferred when left out
        assert [b.get("enum") for b in backend["anyOf"]] == [
            ["records", "features", "toy", "hf", "neuronpedia", "saelens", "jsonl"], None]
        assert backend["default"] is None


async def test_plan_scale_answers_with_a_route_and_its_formulas(server) -> None:
    async with Client(server) as client:
        r = await client.call_tool("plan_scale", {"model_params": "70B", "tokens": "1B", "d_model": "8192",
                                                  "selected_layers": 4, "latent_dim": "131072"})
        assert not r.is_error
        out = r.structured_content
        assert out["route"] in {"single_gpu", "multi_gpu", "cluster"}
        assert out["notes"] and out["plan"]["schema_version"] == "interp-agent.scale_plan.v1"
        bad = await client.call_tool("plan_scale", {"model_params": "lots", "tokens": "1B", "d_model": "8192"})
        err = error_of(bad)
        assert err["code"] == "invalid_argument" and "lots" in err["message"]


async def test_plan_scale_with_a_calibration_file_predicts_seconds_and_launch_commands(
    server, workspace: Path, synthetic_calibration
) -> None:
    cal = synthetic_calibration(1000.0, 10_000.0)
    (workspace / "cal.json").write_text(json.dumps(cal))
    async with Client(server) as client:
        r = await client.call_tool("plan_scale", {"model_params": "135M", "tokens": "10M", "d_model": "576",
                                                  "latent_dim": "4608", "calibration": "cal.json", "workers": 2})
        assert not r.is_error
        measured = r.structured_content["plan"]["measured"]
        assert measured["harvest"]["seconds"] == 5000.0 and measured["harvest"]["workers"] == 2
        assert r.structured_content["headline"]["measured_total_seconds"] == measured["total_seconds"]
        assert measured["commands"]["sae_training"].startswith("torchrun ")
        err = error_of(await client.call_tool("plan_scale", {"model_params": "135M", "tokens": "10M", "d_model": "576",
                                                             "calibration": "/etc/passwd"}))
        assert err["code"] == "path_outside_workspace"


async def test_profile_env_reports_credentials_as_booleans_only(server, workspace: Path, monkeypatch) -> None:
    monkeypatch.setenv("HF_TOKEN", "hf_secretvalue_123456")
    async with Client(server) as client:
        r = await client.call_tool("profile_env", {"save_to": "env.json"})
        assert not r.is_error
        assert r.structured_content["credentials"]["HF_TOKEN"] is True
        assert "hf_secretvalue_123456" not in json.dumps(r.structured_content)
        assert (workspace / "env.json").is_file()
        assert "hf_secretvalue_123456" not in (workspace / "env.json").read_text()
        err = error_of(await client.call_tool("profile_env", {"save_to": "/etc/passwd-copy.json"}))
        assert err["code"] == "path_outside_workspace"


async def test_inspect_runs_as_a_job_and_returns_the_result_when_waited_for(server, workspace: Path) -> None:
    async with Client(server) as client:
        r = await client.call_tool("inspect", {
            "model": "my/model", "criterion": CRIT, "records": "inputs/activation_records.jsonl",
            "interventions": "inputs/interventions.jsonl", "wait_seconds": 40,
        })
        assert not r.is_error, r.content
        out = r.structured_content
        assert out["job"]["state"] == "completed", out
        run_id = out["job"]["run_id"]
        assert out["result"]["top"][0]["feature_id"]
        assert out["result"]["report"] == f"interp-agent://runs/{run_id}/report.json"
        assert f"interp-agent://runs/{run_id}/report.html" in out["resources"]
        report = await client.read_resource(out["result"]["report"])
        assert json.loads(report.contents[0].text)["schema_version"] == "interp-agent.inspection_report.v1"
        listed = await client.call_tool("list_artifacts", {"run_id": run_id})
        assert {a["file"] for a in listed.structured_content["artifacts"]} >= {"report.json", "report.html", "job.log"}


async def test_inspect_errors_are_structured(server) -> None:
    async with Client(server) as client:
        err = error_of(
            await client.call_tool("inspect", {"model": "m", "criterion": "c", "records": "../../etc/passwd"})
        )
        assert err["code"] == "path_outside_workspace" and err["hint"]
        err = error_of(await client.call_tool("inspect", {"model": "m", "criterion": "c", "records": "nope.jsonl"}))
        assert err["code"] == "invalid_argument" and "does not exist" in err["message"]
        err = error_of(await client.call_tool("inspect", {"model": "m", "criterion": "c", "backend": "magic"}))
        assert err["code"] == "invalid_argument" and "backend" in err["message"]
        err = error_of(await client.call_tool("inspect", {"model": "m", "criterion": "c", "top_k": 0}))
        assert "top_k" in err["message"]


async def test_a_call_missing_its_evidence_is_refused_at_once_naming_the_arguments(server) -> None:
    async with Client(server) as client:
        err = error_of(await client.call_tool("inspect", {"model": "m", "criterion": "c", "wait_seconds": 30}))
        assert err["code"] == "invalid_argument" and "no evidence given" in err["message"]
        assert "`records`" in err["hint"] and "`dataset`" in err["hint"] and "--" not in err["message"] + err["hint"]
        jobs = (await client.call_tool("job_list", {})).structured_content["jobs"]
        assert jobs == []  # nothing was submitted


async def test_a_job_that_fails_reports_why_with_code_and_hint(server, workspace: Path) -> None:
    line = (workspace / "inputs" / "activation_records.jsonl").read_text().splitlines()[0]
    (workspace / "inputs" / "one.jsonl").write_text(line + "\n")  # one record: only the ranking can refuse it
    async with Client(server) as client:
        r = await client.call_tool("inspect", {"model": "my/model", "criterion": "c", "records": "inputs/one.jsonl",
                                               "wait_seconds": 30})
        out = r.structured_content
        assert out["job"]["state"] == "failed"
        info = out["job"]["error_info"]
        assert info["code"] == "insufficient_evidence" and info["message"] in out["job"]["error"] and info["hint"]
        res = await client.call_tool("job_result", {"job_id": out["job"]["job_id"]})
        assert res.structured_content["result"] is None and res.structured_content["job"]["error_info"] == info
        assert [a["tool"] for a in res.structured_content["next_actions"]] == ["list_artifacts"]


async def test_match_two_toy_reports_by_run_id(server) -> None:
    async with Client(server) as client:
        runs = []
        for model in ("toy/model-a", "toy/model-b"):
            r = await client.call_tool(
                "inspect", {"model": model, "criterion": "c", "backend": "toy", "wait_seconds": 40}
            )
            assert r.structured_content["job"]["state"] == "completed"
            assert r.structured_content["result"]["synthetic"] is True
            table = await client.read_resource(r.structured_content["result"]["csv"])  # every ranked feature
            assert table.contents[0].text.startswith("rank,feature_id")
            runs.append(r.structured_content["job"]["run_id"])
        m = await client.call_tool("match", {"left": runs[0], "right": runs[1], "use_text": False, "wait_seconds": 40})
        out = m.structured_content
        assert out["job"]["state"] == "completed", out
        assert out["result"]["summary"]["n_matches"] > 0
        md = await client.read_resource(out["result"]["matches_md"])
        assert "Feature matches" in md.contents[0].text
        err = error_of(await client.call_tool("match", {"left": "nope", "right": runs[1]}))
        assert err["code"] == "invalid_argument"


async def test_job_tools_follow_a_job_and_reject_unknown_ids(server) -> None:
    async with Client(server) as client:
        r = await client.call_tool("inspect", {"model": "toy/a", "criterion": "c", "backend": "toy"})
        job_id = r.structured_content["job"]["job_id"]
        assert r.structured_content["job"]["state"] == "working"
        status = await client.call_tool("job_status", {"job_id": job_id})
        assert status.structured_content["job"]["job_id"] == job_id
        listed = await client.call_tool("job_list", {"limit": 5})
        assert job_id in [j["job_id"] for j in listed.structured_content["jobs"]]
        cancelled = await client.call_tool("job_cancel", {"job_id": job_id})
        assert cancelled.structured_content["job"]["state"] in {"cancelled", "completed"}
        err = error_of(await client.call_tool("job_status", {"job_id": "no-such-job-id"}))
        assert err["code"] == "job_not_found"
        err = error_of(await client.call_tool("job_result", {"job_id": "x"}))
        assert err["code"] == "invalid_argument"


async def test_job_resume_continues_a_cancelled_resumable_job_and_refuses_other_jobs(server, workspace: Path) -> None:
    from interp_agent.jobs import JobRunner

    runner = JobRunner(workspace)  # the diagnostic sleep kind has no tool: submit it directly
    job = runner.submit("sleep", {"seconds": 0.6, "steps": 6, "checkpoint": True})
    runner.cancel(job.job_id)
    async with Client(server) as client:
        status = (await client.call_tool("job_status", {"job_id": job.job_id})).structured_content
        assert status["job"]["state"] == "cancelled" and status["job"]["attempts"] == 1
        assert status["next_actions"][0] == {"tool": "job_resume", "arguments": {"job_id": job.job_id},
                                             "why": "continue the job from its newest checkpoint"}
        r = await client.call_tool("job_resume", {"job_id": job.job_id})
        assert not r.is_error, r.content
        out = r.structured_content
        assert out["job"]["state"] == "working" and out["job"]["attempts"] == 2 and out["job"]["error"] is None
        assert out["job"]["run_id"] == job.run_id and f"interp-agent://runs/{job.run_id}/job.log" in out["resources"]
        assert runner.wait(job.job_id, 30).state == "completed"
        done = (await client.call_tool("job_result", {"job_id": job.job_id})).structured_content
        assert done["job"]["attempts"] == 2 and done["result"]["steps"] == 6

        err = error_of(await client.call_tool("job_resume", {"job_id": job.job_id}))
        assert err["code"] == "invalid_argument" and "is completed" in err["message"] and err["hint"]
        line = (workspace / "inputs" / "activation_records.jsonl").read_text().splitlines()[0]
        (workspace / "inputs" / "one.jsonl").write_text(line + "\n")  # one record: the job fails while ranking
        failed = await client.call_tool("inspect", {"model": "my/model", "criterion": "c", "wait_seconds": 30,
                                                    "records": "inputs/one.jsonl"})
        failed_id = failed.structured_content["job"]["job_id"]
        failed_status = (await client.call_tool("job_status", {"job_id": failed_id})).structured_content
        assert failed_status["job"]["state"] == "failed"
        assert failed_status["job"]["error_info"]["code"] and failed_status["job"]["error_info"]["hint"]
        assert [a["tool"] for a in failed_status["next_actions"]] == ["list_artifacts"]
        err = error_of(await client.call_tool("job_resume", {"job_id": failed_id}))
        assert err["code"] == "invalid_argument" and "cannot be resumed" in err["message"] and "sleep" in err["hint"]
        err = error_of(await client.call_tool("job_resume", {"job_id": "no-such-job-id"}))
        assert err["code"] == "job_not_found"


async def test_unknown_tool_and_missing_resource_do_not_break_the_server(server) -> None:
    async with Client(server) as client:
        err = error_of(await client.call_tool("no_such_tool", {}))
        assert err["code"] == "unknown_tool" and "inspect" in err["hint"]
        with pytest.raises(MCPError, match="no artifact 'report.json' in run 'nope'"):
            await client.read_resource("interp-agent://runs/nope/report.json")
        assert (await client.call_tool("job_list", {})).is_error is False


async def test_progress_notifications_reach_a_caller_that_asked(server) -> None:
    seen: list[tuple[float, str | None]] = []

    async def on_progress(progress: float, total: float | None, message: str | None) -> None:
        seen.append((progress, message))

    async with Client(server) as client:
        r = await client.call_tool("inspect",
                                   {"model": "toy/a", "criterion": "c", "backend": "toy", "wait_seconds": 40},
                                   progress_callback=on_progress)
        assert r.structured_content["job"]["state"] == "completed"
    assert len(seen) >= 2 and seen[-1][0] == pytest.approx(1.0)


async def test_the_investigation_prompt_is_served(server) -> None:
    async with Client(server) as client:
        prompts = await client.list_prompts()
        assert [p.name for p in prompts.prompts] == ["investigation_loop"]
        got = await client.get_prompt("investigation_loop", {"criterion": "mentions of lengths", "model": "gpt2"})
        text = got.messages[0].content.text
        assert "mentions of lengths" in text and "profile_env" in text and "held_out_supported" in text


async def test_listing_tools_reject_bad_arguments(server) -> None:
    async with Client(server) as client:
        err = error_of(await client.call_tool("job_list", {"limit": 0}))
        assert err["code"] == "invalid_argument" and "limit" in err["message"]
        err = error_of(await client.call_tool("job_list", {"state": "exploded"}))
        assert "state" in err["message"]
        err = error_of(await client.call_tool("list_artifacts", {"run_id": "../etc"}))
        assert err["code"] == "invalid_argument" and "run id" in err["message"]
        ok = await client.call_tool("list_artifacts", {})
        assert ok.structured_content["artifacts"] == []


def test_server_logs_redact_credentials(monkeypatch) -> None:
    import logging

    from interp_agent.server.app import RedactingFormatter

    monkeypatch.setenv("NEURONPEDIA_API_KEY", "np-very-secret-value")
    record = logging.LogRecord("x", logging.ERROR, __file__, 1, "calling with %s", ("np-very-secret-value",), None)
    line = RedactingFormatter("%(message)s").format(record)
    assert "np-very-secret-value" not in line and "[REDACTED]" in line


async def test_intervene_rejects_calls_without_prompts_or_features(server) -> None:
    async with Client(server) as client:
        err = error_of(await client.call_tool("intervene", {"model": "smollm2-135m", "features": ["L15:D1"]}))
        assert err["code"] == "invalid_argument" and "dataset" in err["message"]
        err = error_of(await client.call_tool("intervene", {"model": "smollm2-135m", "pack": "french"}))
        assert "report" in err["message"]
        err = error_of(await client.call_tool("intervene", {"model": "m", "pack": "french", "mode": "explode"}))
        assert "mode" in err["message"]


async def test_caller_examples_become_a_dataset_in_the_workspace(server, workspace: Path) -> None:
    async with Client(server) as client:
        err = error_of(await client.call_tool("inspect", {"model": "smollm2-135m", "criterion": "c", "backend": "hf",
                                                          "positives": ["a b c"] * 3, "negatives": ["x"]}))
        assert err["code"] == "invalid_argument" and "at least 8" in err["message"]
        pos = [f"The rope is {n}" for n in range(10, 20)]
        neg = [f"The team scored {n}" for n in range(10, 20)]
        r = await client.call_tool("inspect", {"model": "no/such-model-here", "criterion": "a unit comes next",
                                               "backend": "hf", "positives": pos, "negatives": neg, "wait_seconds": 30})
        files = list((workspace / "inputs").glob("examples-*.jsonl"))
        assert len(files) == 1 and len(files[0].read_text().splitlines()) == 20
        job = r.structured_content["job"]
        assert job["state"] == "failed" and "no/such-model-here" in job["error"]  # the model, not the examples, failed


async def test_train_sae_trains_on_workspace_activations_and_serves_its_files(server, workspace: Path) -> None:
    import numpy as np

    rng = np.random.default_rng(0)
    atoms = rng.standard_normal((48, 16))
    x = ((rng.random((3_000, 48)) < 0.08) * rng.exponential(1.0, (3_000, 48)) @ atoms).astype(np.float32)
    np.save(workspace / "inputs" / "acts.npy", x)  # synthetic activations
    async with Client(server) as client:
        r = await client.call_tool("train_sae", {
            "activations": ["inputs/acts.npy"], "hookpoint": "blocks.2.hook_resid_post", "latent_dim": 64, "k": 4,
            "steps": 60, "lr": 3e-3, "wait_seconds": 45,
        })
        out = r.structured_content
        assert not r.is_error and out["job"]["state"] == "completed", out["job"]
        result = out["result"]
        assert result["sae"]["d_sae"] == 64 and result["sae"]["saved_as"] == "topk"
        assert 0 < result["held_out"]["fvu"] < 1 and result["splice"] is None
        assert set(result["files"]) == {"cfg.json", "sae_weights.safetensors", "metrics.json"}
        cfg = json.loads((await client.read_resource(result["files"]["cfg.json"])).contents[0].text)
        assert cfg["d_sae"] == 64 and cfg["metadata"]["hook_name"] == "blocks.2.hook_resid_post"
        assert [a["tool"] for a in out["next_actions"]] == ["list_artifacts"]  # stored activations: no prompts

        err = error_of(await client.call_tool("train_sae", {"hookpoint": "blocks.2.hook_resid_post"}))
        assert err["code"] == "invalid_argument" and "exactly one source" in err["message"]
        err = error_of(await client.call_tool("train_sae", {"activations": ["/etc/passwd"]}))
        assert err["code"] == "path_outside_workspace"
        err = error_of(await client.call_tool("train_sae", {"activations": ["inputs/acts.npy"], "preset": "huge"}))
        assert err["code"] == "invalid_argument"


async def test_publish_is_a_dry_run_by_default_and_fails_clearly_without_a_token(
    server, workspace: Path, monkeypatch
) -> None:
    secret = "hf_ServerTestToken0123456789abcdefghijklmn"
    monkeypatch.setenv("HF_TOKEN", secret)
    monkeypatch.setenv("HF_ENDPOINT", "http://127.0.0.1:9")  # nothing listens: a dry run must not call it
    async with Client(server) as client:
        publish = next(t for t in (await client.list_tools()).tools if t.name == "publish")
        hints = publish.annotations
        assert (hints.read_only_hint, hints.destructive_hint, hints.idempotent_hint,
                hints.open_world_hint) == (False, True, False, True)
        assert "DRY RUN BY DEFAULT" in publish.description and "HF_TOKEN" in publish.description
        assert publish.input_schema["properties"]["dry_run"]["default"] is True

        r = await client.call_tool(
            "inspect", {"model": "toy/a", "criterion": "c", "backend": "toy", "wait_seconds": 40}
        )
        run_id = r.structured_content["job"]["run_id"]
        r = await client.call_tool("publish", {"path": run_id, "repo_id": "me/toy-report", "wait_seconds": 30})
        out = r.structured_content
        assert not r.is_error and out["job"]["state"] == "completed", out["job"]
        result = out["result"]
        assert result["dry_run"] is True and result["uploaded"] is False and result["token_present"] is True
        files = {f["path"]: f["bytes"] for f in result["files"]}
        assert files["report.json"] == (workspace / "runs" / run_id / "report.json").stat().st_size
        assert "README.md" in files
        assert {s["path"] for s in result["skipped"]} == {"job.log"}
        assert result["card_preview"].startswith("---\n") and "[SYNTHETIC]" in result["card_preview"]
        card = await client.read_resource(result["card"])
        assert "## How to load" in card.contents[0].text
        assert secret not in json.dumps(out)
        assert out["next_actions"][0]["tool"] == "publish" and out["next_actions"][0]["arguments"]["dry_run"] is False

        err = error_of(await client.call_tool("publish", {"path": run_id, "repo_id": "no-owner"}))
        assert err["code"] == "invalid_argument" and "owner/name" in err["message"]
        err = error_of(await client.call_tool("publish", {"path": "/etc", "repo_id": "me/x"}))
        assert err["code"] == "path_outside_workspace"
        monkeypatch.delenv("HF_TOKEN")
        r = await client.call_tool(
            "publish", {"path": run_id, "repo_id": "me/toy-report", "dry_run": False, "wait_seconds": 30}
        )
        job = r.structured_content["job"]
        assert job["state"] == "failed" and "HF_TOKEN" in job["error"] and r.structured_content["result"] is None


async def test_harvest_runs_as_a_job_and_its_next_action_trains_an_sae_on_the_shards(server, workspace: Path) -> None:
    async with Client(server) as client:
        r = await client.call_tool("harvest", {"hookpoint": "blocks.3.hook_resid_post", "pack": "question",
                                               "shard_size": 64, "max_length": 32, "wait_seconds": 45})
        assert not r.is_error, r.content
        out = r.structured_content
        assert out["job"]["state"] == "completed", out["job"]
        result = out["result"]
        assert result["complete"] and result["records"] and result["n_shards"] >= 2 and result["d_in"] == 576
        manifest = json.loads((workspace / out["next_actions"][0]["arguments"]["activations"][0] /
                               "manifest.json").read_text())
        assert manifest["totals"]["n_tokens"] == result["totals"]["n_tokens"]
        train = out["next_actions"][0]
        assert train["tool"] == "train_sae" and train["arguments"]["hookpoint"] == "blocks.3.hook_resid_post"
        sae = await client.call_tool("train_sae", train["arguments"] | {"steps": 20, "latent_dim": 256, "k": 8,
                                                                         "batch_size": 64, "wait_seconds": 45})
        assert not sae.is_error, sae.content
        trained = sae.structured_content
        assert trained["job"]["state"] == "completed" and trained["result"]["sae"]["d_in"] == 576
        bad = error_of(await client.call_tool("harvest", {"hookpoint": "blocks.3.hook_resid_post"}))
        assert bad["code"] == "invalid_argument" and "exactly one of" in bad["message"]


async def test_read_roots_are_read_but_never_written(workspace: Path, tmp_path: Path) -> None:
    from interp_agent.server import build_server

    root = tmp_path / "shared"
    root.mkdir()
    async with Client(build_server(workspace, read_roots=(root,))) as client:
        bad = error_of(await client.call_tool("profile_env", {"save_to": str(root / "env.json")}))
        assert "read root" in bad["message"] and "read-only" in bad["message"], bad
        assert not (root / "env.json").exists()
        good = await client.call_tool("profile_env", {"save_to": "env.json"})
        assert not good.is_error and (workspace / "env.json").is_file()
