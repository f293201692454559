"""Each argument mistake an agent made comes back as isError at once, and following its hint succeeds.

The mistakes are those of an agent that drove the server from the tool descriptions alone.
Each case makes the call, checks the error is immediate (no job was submitted), names the
tool argument (never a CLI flag) and carries a hint; then makes the call the hint asks for
and checks it is accepted. Accepted jobs that would load a model are cancelled at once:
what is tested is the check at submission, not the run.
"""

from __future__ import annotations

import json
from pathlib import Path
from typing import Any

import pytest
from mcp import Client

from interp_agent.server.errors import error_payload

pytestmark = pytest.mark.anyio

CRITERION = "the sentence is a question about geography"
POSITIVES = [f"Which river flows through city number {i}?" for i in range(10)]
NEGATIVES = [f"The bakery on street number {i} opens at eight." for i in range(10)]


async def _refused(client: Client, tool: str, arguments: dict[str, Any]) -> dict[str, str]:
    before = len((await client.call_tool("job_list", {})).structured_content["jobs"])
    result = await client.call_tool(tool, arguments)
    assert result.is_error and result.structured_content is None, result
    err = error_payload(result)
    assert err["hint"], err
    assert "--" not in err["message"] + err["hint"], err  # tool arguments are named, not CLI flags
    assert len((await client.call_tool("job_list", {})).structured_content["jobs"]) == before  # refused at once
    return err


async def _accepted(client: Client, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
    result = await client.call_tool(tool, arguments)
    assert not result.is_error, result.content
    job = result.structured_content["job"]
    if job["state"] == "working":
        await client.call_tool("job_cancel", {"job_id": job["job_id"]})
    return result.structured_content


async def test_examples_without_a_backend_run_on_a_live_model(server) -> None:
    async with Client(server) as client:
        out = await _accepted(client, "inspect", {"model": "smollm2-135m", "criterion": CRITERION,
                                                  "positives": POSITIVES, "negatives": NEGATIVES})
        assert out["job"]["kind"] == "inspect"


async def test_examples_with_the_records_backend_are_refused_and_the_hint_names_backend_hf(server) -> None:
    async with Client(server) as client:
        args = {"model": "smollm2-135m", "criterion": CRITERION, "positives": POSITIVES, "negatives": NEGATIVES,
                "backend": "records"}
        err = await _refused(client, "inspect", args)
        assert "`records`" in err["message"] and "`backend='hf'`" in err["hint"]
        await _accepted(client, "inspect", args | {"backend": "hf"})


async def test_a_malformed_hookpoint_is_named_with_its_index_and_the_forms(server) -> None:
    async with Client(server) as client:
        args = {"model": "smollm2-135m", "criterion": CRITERION, "positives": POSITIVES, "negatives": NEGATIVES,
                "hookpoints": ["blocks.15.hook_resid_post", "layer15.resid"]}
        err = await _refused(client, "inspect", args)
        assert "`hookpoints`[1]" in err["message"] and "'layer15.resid'" in err["message"]
        assert "blocks.{L}.hook_resid_post" in err["hint"]
        await _accepted(client, "inspect", args | {"hookpoints": ["blocks.15.hook_resid_post"]})


async def test_a_missing_sae_folder_is_refused_before_the_model_loads(server, workspace: Path) -> None:
    async with Client(server) as client:
        args = {"model": "smollm2-135m", "criterion": CRITERION, "positives": POSITIVES, "negatives": NEGATIVES,
                "sae": "runs/no-such-run"}
        err = await _refused(client, "inspect", args)
        assert "sae" in err["message"] and "does not exist" in err["message"]
        (workspace / "not-an-sae").mkdir()
        err = await _refused(client, "inspect", args | {"sae": "not-an-sae"})
        assert "holds no SAE" in err["message"] and "cfg.json" in err["hint"]
        await _accepted(client, "inspect", {k: v for k, v in args.items() if k != "sae"})


async def test_a_criterion_with_no_prompts_is_refused_naming_what_to_give(server) -> None:
    async with Client(server) as client:
        err = await _refused(client, "inspect", {"model": "smollm2-135m", "criterion": CRITERION, "backend": "hf"})
        assert "none were given" in err["message"] and "`dataset`" in err["hint"] and "`pack`" in err["hint"]
        await _accepted(client, "inspect", {"model": "smollm2-135m", "backend": "hf", "pack": "question"})


async def test_a_dataset_of_one_class_is_refused_naming_the_file(server, workspace: Path) -> None:
    rows = [{"prompt_id": f"p{i}", "text": t, "criterion_score": 1.0} for i, t in enumerate(POSITIVES)]
    (workspace / "inputs" / "one-class.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
    async with Client(server) as client:
        args = {"model": "smollm2-135m", "criterion": CRITERION, "dataset": "inputs/one-class.jsonl"}
        err = await _refused(client, "inspect", args)
        assert err["code"] == "bad_input_file" and "one-class.jsonl" in err["message"]
        assert "other class" in err["hint"]
        rows += [{"prompt_id": f"n{i}", "text": t, "criterion_score": 0.0} for i, t in enumerate(NEGATIVES)]
        (workspace / "inputs" / "one-class.jsonl").write_text("".join(json.dumps(r) + "\n" for r in rows))
        await _accepted(client, "inspect", args)


async def test_intervene_without_features_or_report_names_both(server) -> None:
    async with Client(server) as client:
        err = await _refused(client, "intervene", {"model": "smollm2-135m", "pack": "question"})
        assert "`report`" in err["message"] and "`features`" in err["message"]
        await _accepted(client, "intervene", {"model": "smollm2-135m", "pack": "question",
                                              "features": ["L15:D42"]})


async def test_a_malformed_feature_id_is_reported_as_given_with_the_form_it_likely_meant(server) -> None:
    async with Client(server) as client:
        args = {"model": "smollm2-135m", "pack": "question", "features": ["contrast@blocks.15"]}
        err = await _refused(client, "intervene", args)
        assert "'contrast@blocks.15' is not a feature id" in err["message"]
        assert "direction:contrast@blocks.15.hook_resid_post" in err["message"]
        err = await _refused(client, "intervene", args | {"features": ["SAE:L3:F7"]})
        assert "no SAE was given" in err["message"] and "`sae`" in err["hint"]
        await _accepted(client, "intervene", args | {"features": ["L15:D7"]})
