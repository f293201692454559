"""The explanation tools through MCP: an explain job, feature_evidence, score_explanation, judge_explanation.

The model is a tiny random Llama saved into the workspace (its activations are synthetic) and the
SAE is random; what is tested is the protocol: blinded tasks, held-out scoring, errors as isError.
"""

from __future__ import annotations

import json

import anyio
import pytest
from mcp import Client

pytestmark = pytest.mark.anyio


async def _finished(client: Client, out: dict) -> dict:
    job = out["job"]
    for _ in range(240):
        if job["state"] != "working":
            break
        await anyio.sleep(0.5)
        job = (await client.call_tool("job_status", {"job_id": job["job_id"]})).structured_content["job"]
    assert job["state"] == "completed", job
    return (await client.call_tool("job_result", {"job_id": job["job_id"]})).structured_content


def _error(result) -> dict:
    assert result.is_error
    return json.loads(result.content[0].text)["error"]


async def test_the_agent_explains_scores_and_judges_through_the_tools(server, workspace,
                                                                      write_explain_inputs) -> None:
    write_explain_inputs(workspace)
    async with Client(server) as client:
        r = await client.call_tool("explain", {"model": "model", "sae": "sae", "corpus": "corpus.txt",
                                               "max_contexts": 400, "context_length": 16, "n_features": 4,
                                               "wait_seconds": 40})
        out = await _finished(client, r.structured_content)
        run_id = out["job"]["run_id"]
        rows = out["result"]["summary"]["features"]
        assert rows and out["next_actions"][0]["tool"] == "feature_evidence"
        fid = rows[0]["feature_id"]
        ev = (await client.call_tool("feature_evidence", out["next_actions"][0]["arguments"])).structured_content
        evidence = ev["evidence"]
        assert evidence["feature_id"] == fid and evidence["top"] and ev["explanations"]
        held = json.loads((workspace / "runs" / run_id / "explain.json").read_text())["n_held_out_contexts"]
        assert held > 0 and evidence["held_out_examples"]
        scored = await client.call_tool("score_explanation", {**ev["next_actions"][0]["arguments"],
                                                             "explanation": "weather words such as rain and snow"})
        s = scored.structured_content
        assert s["scores"][0]["method"] == "embedding" and s["scores"][0]["auroc"]["ci95"]
        task = s["task"]
        assert task["items"] and all(set(item) == {"item_id", "text"} for item in task["items"])
        shown = set(evidence["shown_contexts"])
        key = json.loads((workspace / ".explain_tasks" / f"{task['task_id']}.json").read_text())["key"]
        assert not shown & set(key["contexts"].values())  # blinded items are held out, never shown
        assert f"{task['task_id']}" not in json.dumps((await client.call_tool("list_artifacts", {})).structured_content)
        answers = {item["item_id"]: 1.0 for item in task["items"]}
        graded = (await client.call_tool("judge_explanation", {"task_id": task["task_id"], "answers": answers,
                                                               "null_answers": answers})).structured_content
        assert graded["score"]["method"] == "detection" and graded["score"]["judge"] == "agent"
        assert graded["score"]["balanced_accuracy"]["value"] == pytest.approx(0.5)  # "all fire" is chance
        saved = [json.loads(line) for line in (workspace / "runs" / run_id / "explanations.jsonl").open()]
        mine = [x for x in saved if x["author"]["kind"] == "agent"]
        assert [s["method"] for s in mine[0]["scores"]] == ["embedding", "detection"]
        again = await client.call_tool("judge_explanation", {"task_id": task["task_id"], "answers": answers})
        assert "not a pending" in _error(again)["message"]


async def test_explanation_tool_errors_come_back_as_tool_errors(server, workspace) -> None:
    async with Client(server) as client:
        bad_run = _error(await client.call_tool("feature_evidence", {"run_id": "nope"}))
        assert bad_run["code"] == "invalid_argument" and "explain job" in bad_run["hint"]
        empty = await client.call_tool("score_explanation", {"run_id": "nope", "feature_id": "SAE:L1:F0",
                                                             "explanation": "   "})
        assert "explanation" in _error(empty)["message"]
        no_task = _error(await client.call_tool("judge_explanation", {"task_id": "tNOPE", "answers": {}}))
        assert "task_id" in no_task["message"]
        judged = _error(await client.call_tool("explain", {"hookpoint": "blocks.1.hook_resid_post",
                                                           "scorers": ["detection"]}))
        assert "judge" in judged["message"]
        missing = _error(await client.call_tool("explain", {"sae": "missing-sae"}))
        assert missing["code"] in ("invalid_argument", "path_outside_workspace", "bad_input_file")
