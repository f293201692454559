"""inspect with backend 'saelens' through MCP: a local SAE Lens folder in the workspace, and a missing SAE."""

from __future__ import annotations

import json
from pathlib import Path

import anyio
import numpy as np
import pytest
from mcp import Client

from interp_agent.core.sae.lens import SaeWeights, save_sae_lens
from interp_agent.server.errors import error_payload

pytestmark = [pytest.mark.anyio, pytest.mark.slow]


async def _finish(client: Client, out: dict) -> dict:
    job = out["job"]
    for _ in range(180):
        if job["state"] != "working":
            break
        await anyio.sleep(1)
        job = (await client.call_tool("job_status", {"job_id": job["job_id"]})).structured_content["job"]
    return (await client.call_tool("job_result", {"job_id": job["job_id"]})).structured_content


async def test_saelens_inspect_job_ranks_the_latents_of_a_workspace_sae(server, workspace: Path) -> None:
    rng = np.random.default_rng(2)
    W = rng.normal(size=(576, 64)) / 24.0
    save_sae_lens(workspace / "inputs" / "sae", SaeWeights("blocks.2.hook_resid_post", W, np.zeros(64), W.T.copy(),
                                                           np.zeros(576), None, "standard", None))
    async with Client(server) as client:
        r = await client.call_tool("inspect",
                                   {"model": "smollm2-135m", "backend": "saelens", "pack": "measurement_unit",
                                               "sae": "inputs/sae", "top_k": 200, "wait_seconds": 50})
        assert not r.is_error, r
        out = await _finish(client, r.structured_content)
        assert out["job"]["state"] == "completed", out
        report = json.loads((workspace / "runs" / out["job"]["run_id"] / "report.json").read_text())
        assert report["backend"] == "saelens" and report["live"]["hookpoints"] == ["blocks.2.hook_resid_post"]
        assert any(f["feature_id"].startswith("SAE:L2:F") for f in report["features"])

        bad = await client.call_tool("inspect",
                                     {"model": "smollm2-135m", "backend": "saelens", "pack": "measurement_unit",
                                                 "wait_seconds": 30})
        err = error_payload(bad)  # refused at submission, naming the tool's arguments
        assert "`saelens_release`" in err["message"] and "`sae`" in err["message"] and "--" not in err["message"]
