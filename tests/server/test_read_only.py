"""``serve --read-only``: publishing and destructive tools are not served, and the server says so."""

from __future__ import annotations

import sys
from pathlib import Path

import pytest
from mcp import Client, StdioServerParameters

from interp_agent.server import build_server
from interp_agent.server.app import tool_specs
from interp_agent.server.errors import error_payload
from interp_agent.server.read_only import LEAVES_THE_WORKSPACE, hidden_reason, split_read_only
from interp_agent.server.state import ServerState

pytestmark = pytest.mark.anyio

HIDDEN = {"publish", "job_cancel"}
"""What read-only mode hides today; a new tool that publishes or destroys must be added here on purpose."""


@pytest.fixture
def read_only_server(workspace: Path):
    return build_server(workspace, read_only=True)


def _specs(workspace: Path) -> list:
    return tool_specs(ServerState(workspace=workspace, read_roots=(), runner=None))  # pyright: ignore[reportArgumentType]


def test_the_rule_hides_exactly_the_publishing_and_destructive_tools(workspace: Path) -> None:
    specs = _specs(workspace)
    kept, hidden = split_read_only(specs)
    assert set(hidden) == HIDDEN
    assert hidden["publish"] == LEAVES_THE_WORKSPACE["publish"] and "destructive" in hidden["job_cancel"]
    assert all(not s.annotations.destructive_hint for s in kept)
    assert {s.name for s in kept} | set(hidden) == {s.name for s in specs}
    assert [s.name for s in specs if hidden_reason(s)] == [s.name for s in specs if s.name in HIDDEN]


async def test_read_only_lists_no_hidden_tool_and_says_why_in_its_instructions(read_only_server, server) -> None:
    async with Client(read_only_server) as client:
        names = {t.name for t in (await client.list_tools()).tools}
        instructions = client.instructions or ""
    async with Client(server) as full:
        all_names = {t.name for t in (await full.list_tools()).tools}
        assert "READ-ONLY" not in (full.instructions or "")
    assert names == all_names - HIDDEN and "job_status" in names and "inspect" in names
    assert "READ-ONLY MODE" in instructions
    assert "publish (uploads a run folder to the Hugging Face Hub" in instructions and "job_cancel" in instructions


async def test_a_hidden_tool_called_by_name_fails_as_unknown(read_only_server) -> None:
    async with Client(read_only_server) as client:
        r = await client.call_tool("publish", {"path": "inputs", "repo_id": "me/x"})
        err = error_payload(r)
        message, hint = str(err["message"]), str(err["hint"])
        assert r.is_error and err["code"] == "unknown_tool" and "'publish'" in message
        assert "publish" not in hint and "inspect" in hint
        cancel = await client.call_tool("job_cancel", {"job_id": "whatever"})
        assert error_payload(cancel)["code"] == "unknown_tool"


async def test_tools_that_stay_still_work_and_never_suggest_a_hidden_tool(read_only_server) -> None:
    async with Client(read_only_server) as client:
        r = await client.call_tool("inspect", {"model": "toy/a", "criterion": "mentions a unit", "backend": "toy",
                                               "wait_seconds": 0})
        assert not r.is_error
        out = r.structured_content
        assert out["job"]["state"] == "working"  # just submitted: its next actions would otherwise offer job_cancel
        suggested = {a["tool"] for a in out["next_actions"]}
        assert suggested == {"job_status"}


async def test_capabilities_reports_the_served_tools_and_what_read_only_hid(read_only_server, server) -> None:
    async with Client(read_only_server) as client:
        r = await client.call_tool("capabilities", {"probe_accelerators": False})
        assert not r.is_error
        out = r.structured_content
        served = {t.name for t in (await client.list_tools()).tools}
    assert out["read_only"] is True and set(out["hidden_tools"]) == HIDDEN and set(out["mcp_tools"]) == served
    assert {b["name"] for b in out["backends"]} >= {"records", "toy", "hf"} and "run" in out["cli_commands"]
    assert all(set(c) == {"present", "used_for"} for c in out["credentials"].values())
    async with Client(server) as full:
        plain = (await full.call_tool("capabilities", {})).structured_content
    assert plain["read_only"] is False and plain["hidden_tools"] == {} and "publish" in plain["mcp_tools"]


async def test_serve_read_only_over_stdio_hides_publish(workspace: Path) -> None:
    params = StdioServerParameters(command=sys.executable,
                                   args=["-m", "interp_agent.cli", "serve", "--workspace", str(workspace),
                                         "--read-only"])
    async with Client(params) as client:
        names = {t.name for t in (await client.list_tools()).tools}
        assert not names & HIDDEN and "capabilities" in names and "plan_scale" in names
        r = await client.call_tool("publish", {"path": "inputs", "repo_id": "me/x"})
        assert r.is_error and error_payload(r)["code"] == "unknown_tool"
