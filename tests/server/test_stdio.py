"""The real transport: `interp-agent serve` as a subprocess over stdio, and the MCP Inspector CLI."""

from __future__ import annotations

import json
import shutil
import subprocess
import sys
from pathlib import Path

import pytest
from mcp import Client, StdioServerParameters

SERVE = [sys.executable, "-m", "interp_agent.cli", "serve"]


@pytest.mark.anyio
@pytest.mark.parametrize("mode", ["legacy", "2026-07-28"])
async def test_serve_over_stdio_answers_a_real_client(workspace: Path, mode: str) -> None:
    params = StdioServerParameters(command=SERVE[0], args=[*SERVE[1:], "--workspace", str(workspace)])
    async with Client(params, mode=mode) as client:
        tools = (await client.list_tools()).tools
        assert "plan_scale" in {t.name for t in tools}
        r = await client.call_tool("plan_scale", {"model_params": "135M", "tokens": "10M", "d_model": "576"})
        assert not r.is_error and r.structured_content["route"]
        bad = await client.call_tool("plan_scale", {"model_params": "x"})
        assert bad.is_error
        again = await client.call_tool("job_list", {})
        assert not again.is_error


def _inspector(workspace: Path, *args: str) -> dict:
    cmd = ["npx", "-y", "@modelcontextprotocol/inspector", "--cli", *SERVE, "--workspace", str(workspace), *args]
    proc = subprocess.run(cmd, capture_output=True, text=True, timeout=240)
    assert proc.returncode == 0, proc.stderr[-2000:]
    return json.loads(proc.stdout)


@pytest.mark.skipif(shutil.which("npx") is None, reason="npx (Node.js) is not installed")
def test_the_mcp_inspector_cli_lists_and_calls_tools(workspace: Path) -> None:
    listed = _inspector(workspace, "--method", "tools/list")
    assert {"inspect", "plan_scale", "job_status"} <= {t["name"] for t in listed["tools"]}
    called = _inspector(
        workspace, "--method", "tools/call", "--tool-name", "plan_scale",
        "--tool-arg", "model_params=7B", "--tool-arg", "tokens=100M", "--tool-arg", "d_model=4096",
    )
    assert called.get("isError") in (None, False)
    assert called["structuredContent"]["route"] in {"single_gpu", "multi_gpu", "cluster"}
