"""compile_criterion and score_prompts through the real MCP protocol (an in-memory client).

The tools are registered on a bare MCPServer here (app.py wiring is the integrator's); the encoder is the
real all-MiniLM-L6-v2 and the prompts are a built-in pack copied into the workspace.
"""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
from mcp import Client
from mcp.server.mcpserver import MCPServer

from interp_agent.core.criteria import load_pack

pytestmark = pytest.mark.anyio


@pytest.fixture
def criteria_server(workspace: Path) -> MCPServer:
    from interp_agent.jobs import JobRunner
    from interp_agent.server.registry import add_tool
    from interp_agent.server.state import ServerState
    from interp_agent.server.tools import criteria

    state = ServerState(workspace=workspace.resolve(), read_roots=(), runner=JobRunner(workspace))
    server = MCPServer("criteria-test")
    for spec in criteria.specs(state):
        add_tool(server, spec)
    return server


def _error(result) -> dict:
    assert result.is_error
    return json.loads(result.content[0].text)["error"]


async def test_the_brief_then_a_pack_compiles_and_scores_through_the_tools(criteria_server, workspace) -> None:
    pack = load_pack("question")
    shutil.copy(pack.path, workspace / "inputs" / "question.jsonl")
    (workspace / "inputs" / "new.txt").write_text("Where is the station?\nThe station is closed today.\n")
    async with Client(criteria_server) as client:
        brief = (await client.call_tool("compile_criterion", {"criterion": pack.criterion})).structured_content
        assert brief["brief"]["gates"]["near_duplicates"] and brief["passed"] is None
        r = await client.call_tool("compile_criterion", {"criterion": pack.criterion,
                                                         "prompts": "inputs/question.jsonl", "out": "criteria/q"})
        out = r.structured_content
        assert not r.is_error and out["passed"] and out["dataset"] == "criteria/q/prompts.jsonl"
        assert (workspace / "criteria" / "q" / "criterion_set.json").is_file()
        nxt = out["next_actions"][0]
        assert nxt["tool"] == "score_prompts" and nxt["arguments"]["train"] == "criteria/q"
        s = await client.call_tool("score_prompts", {**nxt["arguments"], "prompts": "inputs/new.txt",
                                                     "binarize": 0.5})
        scored = s.structured_content
        assert not s.is_error and [row["criterion_score"] for row in scored["rows"]] == [1.0, 0.0]
        assert scored["held_out_accuracy"] > 0.8 and (workspace / scored["scored_prompts"]).is_file()


async def test_a_confounded_set_is_an_error_naming_the_gate_and_prompts(criteria_server, workspace) -> None:
    pack = load_pack("question")
    pos = [p.text + " indeed" for p in pack.prompts if p.criterion_score][:25]
    neg = [p.text for p in pack.prompts if not p.criterion_score][:25]
    async with Client(criteria_server) as client:
        err = _error(await client.call_tool("compile_criterion", {"criterion": pack.criterion, "positives": pos,
                                                                  "negatives": neg}))
        assert err["code"] == "invalid_argument" and "lexical_confound" in err["message"]
        assert "'indeed'" in err["message"] and "allow_failures" in err["hint"]
        kept = await client.call_tool("compile_criterion", {"criterion": pack.criterion, "positives": pos,
                                                            "negatives": neg, "allow_failures": True})
        assert "lexical_confound" in kept.structured_content["failed_gates"]
        outside = _error(await client.call_tool("compile_criterion", {"criterion": pack.criterion, "positives": pos,
                                                                      "negatives": neg, "out": "/tmp/elsewhere"}))
        assert "outside the workspace" in outside["message"]
        missing = _error(await client.call_tool("score_prompts", {"prompts": "inputs/none.txt", "scorer": "question"}))
        assert "does not exist" in missing["message"]
