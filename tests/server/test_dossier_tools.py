"""The investigation tools through an in-memory MCP client: dossiers filled by jobs, read, planned, and refused."""

from __future__ import annotations

import json
from pathlib import Path

import anyio
import pytest
from mcp import Client

from interp_agent.server.errors import error_payload

pytestmark = pytest.mark.anyio


def error_of(result) -> dict:
    assert result.is_error, result
    assert result.structured_content is None
    return error_payload(result)


async def _toy_inspect(client: Client, model: str, dossier: str, wait: float = 40) -> dict:
    r = await client.call_tool("inspect", {"model": model, "criterion": "c", "backend": "toy", "dossier": dossier,
                                           "wait_seconds": wait})
    assert not r.is_error, r
    return r.structured_content


async def test_a_job_given_a_dossier_files_its_claims_and_the_dossier_reads_as_json_markdown_and_html(
    server, workspace: Path
) -> None:
    async with Client(server) as client:
        out = await _toy_inspect(client, "toy/model-a", "toy-study")
        assert out["job"]["state"] == "completed", out["job"]
        assert any(a["tool"] == "plan_evidence" and a["arguments"] == {"dossier": "toy-study"}
                   for a in out["next_actions"])
        listing = (await client.call_tool("dossier", {})).structured_content
        assert [d["name"] for d in listing["dossiers"]] == ["toy-study"]
        read = await client.call_tool("dossier", {"name": "toy-study"})
        assert not read.is_error, read
        body = read.structured_content["dossier"]
        assert body["criterion"] == "c" and body["n_claims"] >= 5
        top = body["claims"][0]
        # the toy backend plants intervention rows too (labelled synthetic): its top claims reach the causal rung
        assert top["grade"] == "causal" and top["rungs"]["held_out"] == "reached"
        assert body["missing_runs"] == []
        uris = read.structured_content["resources"]
        assert uris == [f"interp-agent://dossiers/toy-study{s}" for s in (".json", ".md", ".html")]
        as_json = json.loads((await client.read_resource(uris[0])).contents[0].text)
        assert as_json["schema_version"] == "interp-agent.dossier.v1" and as_json["claims"]
        md = (await client.read_resource(uris[1])).contents[0].text
        assert top["feature_id"] in md and "interp-agent://runs/" in md
        html = (await client.read_resource(uris[2])).contents[0].text
        assert html.lstrip().lower().startswith("<!doctype html") and top["feature_id"] in html


async def test_plan_evidence_names_calls_the_tools_accept(server, workspace: Path) -> None:
    async with Client(server) as client:
        out = await _toy_inspect(client, "toy/model-a", "planned")
        plan = await client.call_tool("plan_evidence", {"dossier": "planned"})
        assert not plan.is_error, plan
        content = plan.structured_content
        assert content["missing"], content  # a toy report has no causal or explained rung
        for step in content["steps"]:
            assert step["tool"] in {"inspect", "intervene", "explain", "match", "feature_evidence",
                                    "score_explanation"}
            assert step["estimated_seconds"] is not None and step["estimate_basis"]
        by_report = await client.call_tool("plan_evidence", {"report": out["job"]["run_id"]})
        assert not by_report.is_error, by_report
        assert by_report.structured_content["missing"]


async def test_two_jobs_filing_into_one_dossier_at_once_lose_nothing(server, workspace: Path) -> None:
    async with Client(server) as client:
        outs = [await _toy_inspect(client, m, "shared", wait=0) for m in ("toy/model-a", "toy/model-b")]
        with anyio.fail_after(120):
            while True:
                states = [(await client.call_tool("job_status", {"job_id": o["job"]["job_id"]}))
                          .structured_content["job"]["state"] for o in outs]
                if all(s != "working" for s in states):
                    break
                await anyio.sleep(0.2)
        assert states == ["completed", "completed"]
        body = (await client.call_tool("dossier", {"name": "shared", "claims": 1000})).structured_content["dossier"]
        assert {c["model"] for c in body["claims"]} == {"toy/model-a", "toy/model-b"}
        per_model = {m: sum(c["model"] == m for c in body["claims"]) for m in ("toy/model-a", "toy/model-b")}
        assert per_model["toy/model-a"] == per_model["toy/model-b"] >= 5


async def test_bad_dossier_calls_get_clear_errors(server, workspace: Path) -> None:
    async with Client(server) as client:
        bad_name = await client.call_tool("inspect", {"model": "toy/a", "criterion": "c", "backend": "toy",
                                                      "dossier": "../escape"})
        assert error_of(bad_name)["code"] == "invalid_argument"
        unknown = error_of(await client.call_tool("dossier", {"name": "nope"}))
        assert "nope" in unknown["message"] and "dossier=NAME" in unknown["hint"]
        neither = error_of(await client.call_tool("plan_evidence", {}))
        assert "one of them" in neither["message"]
        zero = error_of(await client.call_tool("investigate", {"pack": "measurement_unit", "max_forward_passes": 0}))
        assert "budget of zero" in zero["message"] and zero["hint"]
        no_prompts = error_of(await client.call_tool("investigate", {"model": "smollm2-135m"}))
        assert "needs prompts" in no_prompts["message"]
        folder = workspace / "dossiers"
        folder.mkdir(exist_ok=True)
        (folder / "broken.json").write_text('{"schema_version": "interp-agent.dossier.v1",\n  "name": "broken",\n  ,}')
        broken = error_of(await client.call_tool("dossier", {"name": "broken"}))
        assert "broken.json:3:" in broken["message"] and "not valid JSON" in broken["message"]
        listing = (await client.call_tool("dossier", {})).structured_content["dossiers"]
        assert any(d["name"] == "broken" and "broken.json:3:" in d["error"] for d in listing)


async def test_a_claim_whose_run_was_deleted_is_kept_and_flagged(server, workspace: Path) -> None:
    import shutil

    async with Client(server) as client:
        out = await _toy_inspect(client, "toy/model-a", "gone")
        before = (await client.call_tool("dossier", {"name": "gone", "claims": 1000})).structured_content["dossier"]
        shutil.rmtree(workspace / "runs" / out["job"]["run_id"])
        after = (await client.call_tool("dossier", {"name": "gone", "claims": 1000})).structured_content["dossier"]
        assert after["n_claims"] == before["n_claims"]
        assert after["missing_runs"] and all(m["reason"] == "run folder not found" for m in after["missing_runs"])


async def test_following_the_plan_raises_the_grades(server, workspace: Path) -> None:
    """Two toy models in one dossier: the plan's match call, sent as it is, lifts claims to the transferred rung."""
    async with Client(server) as client:
        for model in ("toy/model-a", "toy/model-b"):
            assert (await _toy_inspect(client, model, "two-toys"))["job"]["state"] == "completed"
        before = (await client.call_tool("dossier", {"name": "two-toys", "claims": 1000})).structured_content
        assert not any(c["grade"] == "transferred" for c in before["dossier"]["claims"])
        plan = (await client.call_tool("plan_evidence", {"dossier": "two-toys"})).structured_content
        step = next(s for s in plan["steps"] if s["tool"] == "match")
        assert step["arguments"]["dossier"] == "two-toys" and "transferred" in step["supplies"]
        done = await client.call_tool("match", step["arguments"] | {"wait_seconds": 40})
        assert not done.is_error and done.structured_content["job"]["state"] == "completed", done
        after = (await client.call_tool("dossier", {"name": "two-toys", "claims": 1000})).structured_content
        raised = [c for c in after["dossier"]["claims"] if c["grade"] == "transferred"]
        assert raised and after["dossier"]["n_claims"] > before["dossier"]["n_claims"]
        again = (await client.call_tool("plan_evidence", {"dossier": "two-toys"})).structured_content
        assert not any(s["tool"] == "match" for s in again["steps"])  # the rung is there: not planned again
