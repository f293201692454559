"""The compact feature rows of ``inspect`` and ``job_result`` carry held-out intervals and notes."""

from __future__ import annotations

import json

import pytest
from mcp import Client

pytestmark = pytest.mark.anyio

CRIT = "the model is aware it is being evaluated"


async def test_inspect_and_job_result_rows_carry_held_out_intervals_and_the_reports_numbers(server) -> None:
    async with Client(server) as client:
        r = await client.call_tool("inspect", {"model": "toy/model", "criterion": "mentions a unit", "backend": "toy",
                                               "wait_seconds": 50})
        assert not r.is_error, r.content
        out = r.structured_content
        assert out["job"]["state"] == "completed", out
        report = json.loads((await client.read_resource(out["result"]["report"])).contents[0].text)
        again = (await client.call_tool("job_result", {"job_id": out["job"]["job_id"]})).structured_content
    assert again["result"]["top"] == out["result"]["top"]
    for row, feature in zip(out["result"]["top"], report["features"], strict=False):
        held = feature["association"]["held_out"]
        assert row["r_held_out_ci95"] == held["pearson_r_ci95"] and row["auroc_held_out_ci95"] == held["auroc_ci95"]
        assert row["n_held_out_prompts"] == held["n_prompts"] == report["summary"]["n_held_out_prompts"]
        assert row["held_out_excludes_chance"] == held["ci_excludes_chance"]
        assert row["held_out_prompts_needed"] == feature["association"]["held_out_power"]["prompts_needed_at_train_r"]
        assert row["notes"] == feature["notes"]
    assert out["result"]["top"][0]["held_out_excludes_chance"] is True  # the planted features are clear


async def test_a_held_out_split_too_small_comes_back_as_a_note_with_the_prompts_needed(server) -> None:
    async with Client(server) as client:
        r = await client.call_tool("inspect", {"model": "my/model", "criterion": CRIT,
                                               "records": "inputs/activation_records.jsonl", "wait_seconds": 40})
        out = r.structured_content
    assert out["job"]["state"] == "completed", out
    top = out["result"]["top"][0]
    assert top["r_held_out"] is None and top["r_held_out_ci95"] is None and top["n_held_out_prompts"] == 1
    assert top["held_out_prompts_needed"] >= 4
    assert top["notes"][0].startswith("no held-out statistics: the held-out split has 1 row (1 prompt)")
    assert out["result"]["warnings"][0].startswith("no reported feature has held-out statistics")
