"""A committed snapshot of every tool's schema and annotations: drift fails the suite.

After an intended change, regenerate: INTERP_AGENT_UPDATE_SNAPSHOT=1 pytest tests/server/test_schemas.py
"""

from __future__ import annotations

import json
import os
from pathlib import Path

import pytest
from mcp import Client

pytestmark = pytest.mark.anyio

SNAPSHOT = Path(__file__).parent / "tool_schemas.json"


async def test_tool_schemas_match_the_committed_snapshot(server) -> None:
    async with Client(server) as client:
        tools = (await client.list_tools()).tools
    current = {
        t.name: {
            "title": t.title,
            "description": t.description,
            "input_schema": t.input_schema,
            "output_schema": t.output_schema,
            "annotations": t.annotations.model_dump(mode="json", exclude_none=True) if t.annotations else None,
        }
        for t in sorted(tools, key=lambda t: t.name)
    }
    if os.environ.get("INTERP_AGENT_UPDATE_SNAPSHOT") == "1":
        SNAPSHOT.write_text(json.dumps(current, indent=2, sort_keys=True) + "\n")
    committed = json.loads(SNAPSHOT.read_text())
    assert sorted(current) == sorted(committed), "tools were added or removed"
    for name in current:
        assert current[name] == committed[name], f"the schema of {name} drifted from tests/server/tool_schemas.json"
