"""The live-model tools end to end through MCP: an hf inspect job, then an intervene job on its report."""

from __future__ import annotations

import pytest
from mcp import Client

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


async def test_hf_inspect_then_intervene_through_mcp(server) -> None:
    async with Client(server) as client:
        r = await client.call_tool("inspect", {"model": "smollm2-135m", "backend": "hf", "pack": "measurement_unit",
                                               "hookpoints": ["blocks.15.hook_resid_post"], "top_k": 5,
                                               "wait_seconds": 50})
        out = r.structured_content
        if out["job"]["state"] == "working":  # a slow machine: follow the job
            for _ in range(120):
                status = await client.call_tool("job_status", {"job_id": out["job"]["job_id"]})
                if status.structured_content["job"]["state"] != "working":
                    break
                import anyio

                await anyio.sleep(1)
            out = (await client.call_tool("job_result", {"job_id": out["job"]["job_id"]})).structured_content
            assert out["job"]["state"] == "completed", out
        else:
            assert out["job"]["state"] == "completed", out
        run_id = out["job"]["run_id"]
        iv = await client.call_tool("intervene", {"model": "smollm2-135m", "pack": "measurement_unit", "report": run_id,
                                                  "features": ["direction:contrast@blocks.15.hook_resid_post"],
                                                  "strengths": [-1.0], "wait_seconds": 50})
        job = iv.structured_content["job"]
        for _ in range(180):
            if job["state"] != "working":
                break
            import anyio

            await anyio.sleep(1)
            job = (await client.call_tool("job_status", {"job_id": job["job_id"]})).structured_content["job"]
        assert job["state"] == "completed", job
        result = (await client.call_tool("job_result", {"job_id": job["job_id"]})).structured_content["result"]
        assert result["features"][0]["verdict"] == "causal"
        assert result["scorer"]["auroc"] > 0.8
