"""The real transport: `interp-agent serve` as a subprocess over stdio (the Inspector CLI: test_inspector.py)."""

from __future__ import annotations

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
