"""import_interp_lab and convert_hidden_dump through an in-memory MCP client: real interp-lab files, a real dump."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import numpy as np
import pytest
from mcp import Client

from interp_agent.server.errors import error_payload

pytestmark = pytest.mark.anyio

FIXTURES = Path(__file__).resolve().parents[1] / "fixtures" / "interp_lab"


def _copy(workspace: Path, name: str) -> str:
    shutil.copy(FIXTURES / name, workspace / "inputs" / name)
    return f"inputs/{name}"


async def test_an_interp_lab_report_becomes_a_run_that_feature_card_reads(server, workspace: Path) -> None:
    path = _copy(workspace, "report_records_3_1_0.json")
    async with Client(server) as client:
        result = await client.call_tool("import_interp_lab", {"path": path})
        out = result.structured_content
        assert not result.is_error and out["kind"] == "report", out
        assert out["schema_version"] == "interp-lab.inspection_report.v1" and out["summary"]["n_features"] > 0
        report = json.loads((workspace / "runs" / out["run_id"] / "report.json").read_text())
        assert report["provenance"]["imported_from"]["kind"] == "interp-lab"
        assert f"interp-agent://runs/{out['run_id']}/report.json" in out["files"]
        card = (await client.call_tool("feature_card", {"run_id": out["run_id"]})).structured_content
        assert card["card"]["feature_id"] == report["features"][0]["feature_id"]


async def test_an_unknown_schema_version_names_the_versions_read(server, workspace: Path) -> None:
    doc = json.loads((FIXTURES / "report_records_3_1_0.json").read_text())
    (workspace / "inputs" / "future.json").write_text(json.dumps(doc | {"schema_version":
                                                                         "interp-lab.inspection_report.v9"}))
    async with Client(server) as client:
        result = await client.call_tool("import_interp_lab", {"path": "inputs/future.json"})
        error = error_payload(result)
        assert result.is_error and "v9" in error["message"], error
        assert "interp-lab.inspection_report.v1" in error["message"] + error["hint"], error
        outside = error_payload(await client.call_tool("import_interp_lab", {"path": "/etc/hostname"}))
        assert outside["code"] == "path_outside_workspace"


async def test_a_hidden_dump_becomes_records_and_a_shape_mismatch_names_both(server, workspace: Path) -> None:
    rng = np.random.default_rng(0)
    np.save(workspace / "inputs" / "hidden.npy", rng.normal(size=(6, 8)).astype(np.float32))
    prompts = [{"text": f"prompt {i}", "criterion_score": float(i % 2)} for i in range(6)]
    manifest = {"prompts": prompts, "model": "dumped-model", "hookpoint": "blocks.2.hook_resid_post"}
    (workspace / "inputs" / "manifest.json").write_text(json.dumps(manifest))
    async with Client(server) as client:
        result = await client.call_tool("convert_hidden_dump", {"src": "inputs/hidden.npy",
                                                                "manifest": "inputs/manifest.json"})
        out = result.structured_content
        assert not result.is_error, error_payload(result)
        assert out["n_prompts"] == 6 and out["hookpoints"] == {"blocks.2.hook_resid_post": 8}
        assert out["next_actions"][0]["tool"] == "inspect"
        records = (workspace / "runs" / out["run_id"] / "records.jsonl").read_text().splitlines()
        assert len(records) == 6
        manifest["prompts"] = prompts[:5]
        (workspace / "inputs" / "manifest.json").write_text(json.dumps(manifest))
        bad = error_payload(await client.call_tool("convert_hidden_dump", {"src": "inputs/hidden.npy",
                                                                           "manifest": "inputs/manifest.json"}))
        assert "6" in bad["message"] and "5" in bad["message"], bad
