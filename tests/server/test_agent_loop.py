"""An agent drives an investigation through the MCP client from a criterion and its own prompts, using only
next_actions after the first call, and reaches a re-ranked report with causal evidence (the embedded model).

The agent's policy knows no tool sequence: it reads every read-only suggestion
(feature_card, list_artifacts), follows the first suggestion that starts work, polls a
working job with the job_status call it is given, and stops at an inspect report whose
features carry intervention evidence.
"""

from __future__ import annotations

import json
from typing import Any

import anyio
import pytest
from mcp import Client

pytestmark = [pytest.mark.anyio, pytest.mark.slow]

CRITERION = "the sentence is a question about geography"
POSITIVES = [
    "What is the capital city of Australia?", "Which river is the longest in Africa?",
    "How high is Mount Kilimanjaro above sea level?", "Which countries border Switzerland?",
    "Where does the Amazon river reach the ocean?", "What is the largest desert in Asia?",
    "Which ocean lies between Africa and Australia?", "How many time zones does Russia span?",
    "What is the capital of Canada?", "Which mountain range separates Europe from Asia?",
    "Is Lake Baikal the deepest lake in the world?", "Which country has the most islands?",
    "Where is the source of the Nile?", "What sea lies to the north of Turkey?",
    "Which US state is the largest by area?", "How long is the coastline of Norway?",
    "What is the highest waterfall in South America?", "Which city stands on two continents?",
    "Does the equator pass through Kenya?", "What is the smallest country in Europe?",
    "Which strait separates Spain from Morocco?", "What is the capital of Peru?",
    "Which island is the largest in the Mediterranean?", "How deep is the Mariana Trench?",
    "Which desert covers most of northern Africa?", "Where do the Andes mountains end?",
    "What river flows through Budapest?", "Which country is home to the Atacama Desert?",
    "What is the longest river in Europe?", "Which continent has the most countries?",
]
NEGATIVES = [
    "The capital city of Australia is Canberra.", "What time does the bakery open tomorrow?",
    "Mount Kilimanjaro is a popular climb for tourists.", "How do I reset my email password?",
    "The Amazon river carries a vast amount of water.", "What is your favourite kind of music?",
    "The Indian Ocean lies between Africa and Australia.", "How many eggs go into this cake recipe?",
    "Ottawa has been the capital of Canada since 1857.", "Which film won the award last year?",
    "Lake Baikal holds a fifth of the world's fresh water.", "Can you help me fix this bug in my code?",
    "The Nile flows north into the Mediterranean Sea.", "What should I cook for dinner tonight?",
    "Alaska is the largest state in the United States.", "How much does a new bicycle cost?",
    "Angel Falls is the highest waterfall in the world.", "Why is my laptop running so slowly?",
    "The equator crosses Kenya near Nanyuki.", "Who wrote the novel about the white whale?",
    "The Strait of Gibraltar separates Spain from Morocco.", "When is the next train to the airport?",
    "Sicily is the largest island in the Mediterranean.", "How do you say thank you in Japanese?",
    "The Sahara covers most of northern Africa.", "What is the best way to learn the piano?",
    "The Danube flows through Budapest.", "Is it going to rain this afternoon?",
    "The Volga is the longest river in Europe.", "How many players are on a football team?",
]
READ_ONLY = ("feature_card", "list_artifacts")
MAX_CALLS = 400
"""Calls the agent may make, polls included (a poll waits 2 s: a slow or busy machine gets about 13 minutes)."""


async def _call(client: Client, tool: str, arguments: dict[str, Any]) -> dict[str, Any]:
    result = await client.call_tool(tool, arguments)
    assert not result.is_error, (tool, arguments, result.content)
    return result.structured_content


async def _follow(client: Client, first: tuple[str, dict[str, Any]]) -> tuple[dict[str, Any], list[str]]:
    """Run the agent's policy from one call; returns the final inspect report and the tools called."""
    called: list[str] = []
    step: tuple[str, dict[str, Any]] | None = first
    while step is not None and len(called) < MAX_CALLS:
        tool, arguments = step
        out = await _call(client, tool, arguments)
        called.append(tool)
        job = out.get("job")
        if tool in ("inspect", "job_result") and job and job["kind"] == "inspect" and job["state"] == "completed":
            if out["result"]["summary"].get("n_features_tested", 0) > 1 and called.count("inspect") == 1:
                assert out["result"]["directions"], out["result"]  # the live run's direction ids are given
            report = json.loads((await client.read_resource(
                f"interp-agent://runs/{job['run_id']}/report.json")).contents[0].text)
            if any(f.get("causal") for f in report["features"]):
                return report, called
        if job and job["state"] == "working":
            await anyio.sleep(2)
        actions = out["next_actions"]
        if tool == "job_result":
            assert all(a["tool"] != "job_result" for a in actions)
        for action in actions:  # read what is offered to read; its own suggestions are not followed
            if action["tool"] in READ_ONLY:
                await _call(client, action["tool"], action["arguments"])
                called.append(action["tool"])
        work = [(a["tool"], a["arguments"]) for a in actions if a["tool"] not in (*READ_ONLY, "job_cancel")]
        step = work[0] if work else None
    raise AssertionError(f"no re-ranked report with causal evidence after {called}")


async def test_an_agent_reaches_a_causal_re_ranking_by_following_next_actions(server) -> None:
    async with Client(server) as client:
        report, called = await _follow(client, ("inspect", {
            "model": "smollm2-135m", "criterion": CRITERION, "positives": POSITIVES, "negatives": NEGATIVES,
            "hookpoints": ["blocks.15.hook_resid_post"], "wait_seconds": 45}))
    assert "intervene" in called and "feature_card" in called
    assert report["criterion"] == CRITERION and report["backend"] == "records"
    tested = [f for f in report["features"] if f.get("causal")]
    assert len(tested) >= 2 and all(f["causal"]["provenance"] == "interventional" for f in tested)
    assert all(f["causal"].get("verdict") and f["causal"].get("confidence") for f in tested)
