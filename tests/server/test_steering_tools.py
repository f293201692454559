"""The steering tools through MCP: export_steering and apply_steering, happy paths and errors as isError.

The model is a tiny random Llama saved into the workspace and the intervention rows are
hand-written (both synthetic, labelled so); what is tested is the protocol, the paths and the
refusals. The tools are registered on a server of their own (app.py wires them separately).
"""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from mcp import Client

from interp_agent.core.formats.interventions import InterventionRecord, write_interventions

pytestmark = pytest.mark.anyio

RUN_ID = "iv-test"
FEATURE = "L1:D3"


@pytest.fixture
def steering_server(workspace: Path, write_explain_inputs, one_torch_thread):
    """A server with only the steering tools, over a workspace holding a tiny model and an intervene-like run."""
    from mcp.server.mcpserver import MCPServer

    from interp_agent.jobs import JobRunner
    from interp_agent.server.registry import add_tool
    from interp_agent.server.state import ServerState
    from interp_agent.server.tools import steering

    write_explain_inputs(workspace, n_passages=1)
    run = workspace / "runs" / RUN_ID
    rows = [InterventionRecord(feature_id=FEATURE, intervention="steer", baseline_score=0.1, intervention_score=0.4,
                               model=str(workspace / "model"), criterion="c", prompt_id=f"p{i}",
                               metadata={"mode": "steer", "hookpoint": "blocks.1.hook_resid_post", "value": 30.0,
                                         "strength": 2.0, "split": "held_out", "synthetic": True})
            for i in range(3)]
    write_interventions(run / "interventions.jsonl", rows)
    server = MCPServer("steering-test")
    for spec in steering.specs(ServerState(workspace=workspace, read_roots=(), runner=JobRunner(workspace))):
        add_tool(server, spec)
    return server


def _error(result) -> dict:
    assert result.is_error
    return json.loads(result.content[0].text)["error"]


async def test_a_run_is_exported_in_both_formats_and_applied_side_by_side(steering_server, workspace: Path) -> None:
    async with Client(steering_server) as client:
        r = await client.call_tool("export_steering", {"interventions": RUN_ID, "feature_id": FEATURE})
        out = r.structured_content
        assert not r.is_error, out
        assert out["path"] == f"runs/{RUN_ID}/steering_L1_D3.safetensors" and (workspace / out["path"]).is_file()
        assert out["uri"] == f"interp-agent://runs/{RUN_ID}/steering_L1_D3.safetensors"
        vec = out["vector"]
        assert vec["strength"] == 30.0 and vec["d_model"] == 32 and vec["synthetic"] is True
        assert vec["provenance"]["strength_source"] == "chosen by intervene on calibration prompts"
        g = (await client.call_tool("export_steering", {"interventions": f"runs/{RUN_ID}", "feature_id": FEATURE,
                                                        "format": "gguf", "out": "cv/steer.gguf"})).structured_content
        assert g["path"] == "cv/steer.gguf" and g["uri"] is None and "--control-vector cv/steer.gguf" in g["llama_cpp"]
        assert g["gguf_read_back"]["tensors"][0]["name"] == "direction.1"
        args = out["next_actions"][0]["arguments"] | {"prompts": ["abcabc", "xyz"], "max_new_tokens": 5}
        a = (await client.call_tool("apply_steering", args)).structured_content
        assert a["provenance"] == "interventional" and len(a["prompts"]) == 2
        assert a["mean_kl_next_token"] > 0 and set(a["prompts"][0]) >= {"unsteered", "steered", "kl_next_token"}
        zero = (await client.call_tool("apply_steering", args | {"scale": 0.0})).structured_content
        assert zero["mean_kl_next_token"] == pytest.approx(0.0, abs=1e-7) and zero["n_changed"] == 0


async def test_steering_errors_come_back_as_tool_errors_naming_what_to_fix(steering_server, workspace: Path) -> None:
    from interp_agent.core.steering import SteeringVector, save_steering

    save_steering(SteeringVector("smollm2-135m", 576, ("blocks.1.hook_resid_post",), np.eye(576, dtype=np.float32)[:1],
                                 5.0, "L1:D0", synthetic=True), workspace / "wide.safetensors")
    async with Client(steering_server) as client:
        wide = _error(await client.call_tool("apply_steering", {"vector": "wide.safetensors", "prompts": ["abc"],
                                                                "model": str(workspace / "model")}))
        assert wide["code"] == "invalid_argument"
        assert "d_model 576 for smollm2-135m, model d_model 32" in wide["message"]
        missing = _error(await client.call_tool("export_steering", {"interventions": RUN_ID, "feature_id": "L1:D4"}))
        assert "L1:D3" in missing["hint"]
        outside = _error(await client.call_tool("export_steering", {"interventions": RUN_ID, "feature_id": FEATURE,
                                                                    "out": "/tmp/elsewhere.safetensors"}))
        assert outside["code"] == "path_outside_workspace"
        (workspace / "junk.safetensors").write_bytes(b"junk")
        junk = _error(await client.call_tool("apply_steering", {"vector": "junk.safetensors", "prompts": ["abc"]}))
        assert junk["code"] == "bad_input_file" and "junk.safetensors" in junk["message"]
