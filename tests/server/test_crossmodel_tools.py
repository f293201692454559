"""The cross-model tools through an in-memory MCP client: activation matches, validation, diffing, crosscoders."""

from __future__ import annotations

import json
from pathlib import Path

import pytest
from mcp import Client

from interp_agent.jobs import JobRunner
from interp_agent.server.errors import error_payload

pytestmark = pytest.mark.anyio

L10 = {"hookpoint": "blocks.10.hook_resid_post", "feature_ids": [f"L10:D{i}" for i in range(12)]}
L11 = {"hookpoint": "blocks.11.hook_resid_post", "feature_ids": [f"L11:D{i}" for i in range(12)]}


def error_of(result) -> dict:
    assert result.is_error, result
    assert result.structured_content is None
    return error_payload(result)


@pytest.mark.parametrize(("tool", "arguments", "words"), [
    ("match", {"left_side": L10, "right_side": L11}, ["fingerprint", "left and right"]),
    ("match", {"method": "activations", "left": "run-a", "right": "run-b"}, ["left_side and right_side"]),
    ("match", {"method": "activations", "left_side": L10, "right_side": L11 | {"features": "neurons"}},
     ["right side", "not an MLP hidden site"]),
    ("match", {"method": "activations", "left_side": L10 | {"hookpoint": "blocks.10.resid"}, "right_side": L11},
     ["left side", "blocks.10.resid"]),
    ("validate_matches", {"matches": "no-such-run", "pack": "question"}, ["no-such-run", "no match run"]),
    ("diff_models", {"tuned": "finetune:default", "hookpoints": ["blocks.3.hook_resid_post"], "pack": "question",
                     "dataset": "inputs/x.jsonl"}, ["not both"]),
    ("train_crosscoder", {"hookpoints": ["blocks.3.hook_resid_post"]}, ["two or more sources", "1 model(s)"]),
    ("train_crosscoder", {"models": ["smollm2-135m", "finetune:default"],
                          "hookpoints": ["blocks.3.hook_resid_post", "blocks.4.hook_resid_post"]},
     ["two or more sources", "2 hookpoint(s)"]),
])
async def test_bad_cross_model_calls_are_refused_with_what_was_wrong(server, tool: str, arguments: dict,
                                                                     words: list[str]) -> None:
    async with Client(server) as client:
        err = error_of(await client.call_tool(tool, arguments))
    assert err["code"] == "invalid_argument", err
    assert all(w in err["message"] for w in words), err
    assert err["hint"], err


async def test_validate_matches_names_a_feature_absent_from_its_report(server, workspace: Path) -> None:
    async with Client(server) as client:
        a = await client.call_tool("inspect", {"model": "toy/model-a", "criterion": "c", "backend": "toy",
                                               "wait_seconds": 40})
        b = await client.call_tool("inspect", {"model": "toy/model-b", "criterion": "c", "backend": "toy",
                                               "wait_seconds": 40})
        m = await client.call_tool("match", {"left": a.structured_content["job"]["run_id"],
                                             "right": b.structured_content["job"]["run_id"], "use_text": False,
                                             "wait_seconds": 40})
        assert m.structured_content["job"]["state"] == "completed", m.structured_content["job"]
        path = workspace / "runs" / m.structured_content["job"]["run_id"] / "matches.json"
        doc = json.loads(path.read_text())
        doc["matches"][0]["left_feature_id"] = "L3:D999"
        (workspace / "inputs" / "edited.json").write_text(json.dumps(doc))
        err = error_of(await client.call_tool("validate_matches", {"matches": "inputs/edited.json",
                                                                   "pack": "question"}))
    assert "left feature 'L3:D999' is not in the left report" in err["message"], err
    assert "left_report" in err["hint"], err


@pytest.mark.slow
async def test_activation_matches_validate_with_interventions_and_file_into_a_dossier(server, workspace: Path
                                                                                       ) -> None:
    """Two layers of the embedded model matched on measured activations, then the top pair tested causally."""
    async with Client(server) as client:
        m = await client.call_tool("match", {"method": "activations", "left_side": L10, "right_side": L11,
                                             "max_prompts": 24, "min_similarity": 0.0, "wait_seconds": 0})
        assert not m.is_error, m
        runner = JobRunner(workspace)
        record = runner.wait(m.structured_content["job"]["job_id"], timeout=600)
        assert record.state == "completed", runner.log_path(record.job_id).read_text()[-3000:]
        matches = json.loads((workspace / "runs" / record.run_id / "matches.json").read_text())
        assert matches["method"] == "activations" and matches["provenance"]["left_model"] == "smollm2-135m"
        top = matches["matches"][0]
        # one layer up, the residual stream keeps its basis: the best pair is a dim and the same dim one layer on
        assert top["left_feature_id"].split(":D")[1] == top["right_feature_id"].split(":D")[1]
        assert top["above_null"] and top["held_out_similarity"] > matches["null"]["threshold"]
        v = await client.call_tool("validate_matches", {"matches": record.run_id, "pack": "measurement_unit",
                                                        "top": 1, "strengths": [1.0], "dossier": "layers",
                                                        "wait_seconds": 0})
        assert not v.is_error, v
        done = runner.wait(v.structured_content["job"]["job_id"], timeout=900)
        assert done.state == "completed", runner.log_path(done.job_id).read_text()[-3000:]
        result = runner.result(done.job_id)
        pair = result["pairs"][0]
        assert pair["grade"] in {"similar", "same_direction", "equivalent", "opposite"}
        assert pair["left"]["ci95"] is not None and pair["right"]["ci95"] is not None
        assert result["summary"]["n_pairs"] == 1 and result["summary"][pair["grade"]] == 1
        assert result["validation_json"].endswith("validation/validation.json")
        doc = json.loads(Path(result["validation_json"]).read_text())
        assert doc["pairs"][0]["grade"] == pair["grade"]
        read = await client.call_tool("dossier", {"name": "layers"})
        claims = read.structured_content["dossier"]["claims"]
        assert any(c["kind"] == "corresponds" for c in claims), claims
