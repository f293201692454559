"""Property test: arguments generated from each tool's own input schema never break the server."""

from __future__ import annotations

import anyio
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st
from mcp import Client

from interp_agent.server import build_server
from interp_agent.server.errors import error_payload

# job-starting tools get wait_seconds 0 so generated calls do not sit waiting on jobs
_NO_WAIT = {"inspect", "match"}


def from_schema(schema: dict, defs: dict | None = None) -> st.SearchStrategy:
    """Values valid under the JSON Schema subset pydantic emits for tool inputs."""
    defs = defs if defs is not None else schema.get("$defs", {})
    if "$ref" in schema:
        return from_schema(defs[schema["$ref"].rsplit("/", 1)[-1]], defs)
    if "enum" in schema:
        return st.sampled_from(schema["enum"])
    if "anyOf" in schema:
        return st.one_of([from_schema(s, defs) for s in schema["anyOf"]])
    kind = schema.get("type")
    if kind == "object":
        props = schema.get("properties", {})
        required = set(schema.get("required", []))
        return st.fixed_dictionaries(
            {k: from_schema(v, defs) for k, v in props.items() if k in required},
            optional={k: from_schema(v, defs) for k, v in props.items() if k not in required},
        )
    if kind == "string":
        return st.text(min_size=schema.get("minLength", 0), max_size=min(schema.get("maxLength", 40), 40))
    if kind == "integer":
        return st.integers(schema.get("minimum"), schema.get("maximum"))
    if kind == "number":
        lo = schema.get("minimum", schema.get("exclusiveMinimum"))
        hi = schema.get("maximum", schema.get("exclusiveMaximum"))
        return st.floats(lo, hi, allow_nan=False, allow_infinity=False,
                         exclude_min="exclusiveMinimum" in schema, exclude_max="exclusiveMaximum" in schema)
    if kind == "boolean":
        return st.booleans()
    if kind == "null":
        return st.none()
    return st.none()


def test_random_schema_valid_and_invalid_arguments_always_get_an_answer(tmp_path) -> None:
    server = build_server(tmp_path / "ws")

    async def tool_schemas() -> dict:
        async with Client(server) as client:
            return {t.name: t.input_schema for t in (await client.list_tools()).tools}

    schemas = anyio.run(tool_schemas)
    calls = st.sampled_from(sorted(schemas)).flatmap(
        lambda name: st.tuples(
            st.just(name),
            st.one_of(
                from_schema(schemas[name]),  # valid by the schema
                st.dictionaries(st.sampled_from(sorted(schemas[name].get("properties", {})) or ["x"]),
                                st.one_of(st.none(), st.integers(), st.text(max_size=20), st.floats(allow_nan=True))),
            ),
        )
    )

    @settings(max_examples=60, deadline=None, suppress_health_check=[HealthCheck.too_slow, HealthCheck.data_too_large])
    @given(calls)
    def check(call: tuple[str, dict]) -> None:
        name, args = call
        if name in _NO_WAIT and isinstance(args.get("wait_seconds"), (int, float)):
            args["wait_seconds"] = 0

        async def go() -> None:
            async with Client(server) as client:
                result = await client.call_tool(name, args)
                if result.is_error:
                    assert result.structured_content is None
                    error = error_payload(result)
                    assert error["code"] and error["message"]
                else:
                    assert isinstance(result.structured_content, dict)
                assert not (await client.call_tool("job_list", {"limit": 1})).is_error  # still serving

        anyio.run(go)

    try:
        check()
    finally:
        from interp_agent.jobs import JobRunner

        runner = JobRunner(tmp_path / "ws")
        for job in runner.list(limit=200, state="working"):
            runner.cancel(job.job_id)
