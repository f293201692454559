"""The inspect tool with backend 'neuronpedia': refs pass through to the job, files must be in the workspace."""

from __future__ import annotations

import socket

import pytest
from mcp import Client

from interp_agent.server.errors import error_payload

pytestmark = pytest.mark.anyio


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


async def test_a_file_outside_the_workspace_is_refused(server) -> None:
    async with Client(server) as client:
        r = await client.call_tool("inspect", {"model": "gpt2-small", "criterion": "c", "backend": "neuronpedia",
                                               "neuronpedia": ["/etc/passwd"]})
        assert r.is_error and error_payload(r)["code"] == "path_outside_workspace"


async def test_a_ref_reaches_the_job_and_an_unreachable_hub_fails_it_with_the_reason(server, monkeypatch) -> None:
    monkeypatch.setenv("NEURONPEDIA_BASE_URL", f"http://127.0.0.1:{_closed_port()}")
    monkeypatch.setenv("NEURONPEDIA_API_KEY", "np-tool-secret-value")
    async with Client(server) as client:
        r = await client.call_tool("inspect", {"model": "gpt2-small", "criterion": "c", "backend": "neuronpedia",
                                               "neuronpedia": ["gpt2-small@6-res_scefr-ajt:650"], "wait_seconds": 30})
        assert not r.is_error
        job = r.structured_content["job"]
        assert job["state"] == "failed", job
        assert "unreachable" in job["error"] and "np-tool-secret-value" not in str(r.structured_content)
