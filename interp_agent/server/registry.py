"""Registering a tool: a pydantic input model, a pydantic output model, a handler, honest annotations.

Adding a tool is one :class:`ToolSpec`. The registry turns the input model's fields into
the tool's parameters (so the published inputSchema carries every description, range
and enum), publishes the output model as outputSchema, validates the arguments with the
input model, and maps errors to structured tool results in one place.
"""

from __future__ import annotations

import copy
import inspect
import json
from collections.abc import Awaitable, Callable
from dataclasses import dataclass
from typing import Annotated, Any

from mcp.server.mcpserver import Context, MCPServer
from mcp.types import CallToolResult, TextContent, ToolAnnotations
from pydantic import BaseModel
from pydantic_core import PydanticUndefined

from interp_agent.server.errors import from_exception

Handler = Callable[[Any, Context], Awaitable[BaseModel]]


@dataclass(frozen=True, slots=True)
class ToolSpec:
    """One MCP tool."""

    name: str
    """snake_case tool name."""
    description: str
    """When to use it, units, cost, whether it starts a job, and the next step."""
    input_model: type[BaseModel]
    """Arguments; its fields become the tool's parameters."""
    output_model: type[BaseModel]
    """Result; published as outputSchema and returned as structuredContent."""
    handler: Handler
    """async (validated input, context) -> output model instance."""
    annotations: ToolAnnotations
    """Honest hints: readOnly, destructive, idempotent, openWorld."""
    title: str | None = None
    """Human-readable title."""


def add_tool(server: MCPServer, spec: ToolSpec) -> None:
    """Register ``spec`` on ``server``."""
    params = [inspect.Parameter("ctx", inspect.Parameter.KEYWORD_ONLY, annotation=Context)]
    for name, field in spec.input_model.model_fields.items():
        default = inspect.Parameter.empty if field.is_required() else field.get_default(call_default_factory=True)
        meta = copy.copy(field)  # descriptions and constraints; the default travels as the parameter's
        meta.default, meta.default_factory = PydanticUndefined, None
        params.append(
            inspect.Parameter(name, inspect.Parameter.KEYWORD_ONLY, annotation=Annotated[field.annotation, meta],
                              default=default)
        )

    async def call(ctx: Context, **arguments: Any) -> CallToolResult:
        try:
            validated = spec.input_model(**arguments)
            output = await spec.handler(validated, ctx)
        except Exception as exc:  # noqa: BLE001 - mapped to a tool error; the server keeps serving
            return from_exception(spec.name, exc)
        payload = output.model_dump(mode="json")
        return CallToolResult(content=[TextContent(type="text", text=json.dumps(payload))], structured_content=payload)

    call.__signature__ = inspect.Signature(params, return_annotation=Annotated[CallToolResult, spec.output_model])
    call.__name__ = spec.name
    call.__doc__ = spec.description
    server.add_tool(call, name=spec.name, title=spec.title, description=spec.description, annotations=spec.annotations)
