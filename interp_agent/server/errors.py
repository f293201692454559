"""The one place where exceptions become tool results.

A caller's mistake (an InterpAgentError, or arguments that fail the input schema) comes
back as ``isError`` with a structured ``{code, message, hint}``. Anything else is logged
with its traceback to stderr and returned sanitised as ``internal_error``.

Where the error goes: the JSON ``{"error": {code, message, hint}}`` is the result's one text
block, and an error result carries **no** ``structuredContent``. Every tool publishes an
outputSchema for its success shape, and the spec says structured content must conform to
it; the TypeScript SDK's client (MCP Inspector, Claude Code, Claude Desktop) validates any
structuredContent it receives against that schema, error or not, and rejects the whole
result (-32602) when it does not match. It skips the check when structuredContent is
absent and isError is set, as does the Python SDK's client, so this shape reaches the agent
in both. Widening every outputSchema to admit the error shape would instead weaken the
schema that describes the successful result.
"""

from __future__ import annotations

import json
import logging

import pydantic
from mcp.types import CallToolResult, TextContent

from interp_agent.core.errors import DEFAULT_HINTS, FALLBACK_HINT, InterpAgentError
from interp_agent.core.secrets import redact
from interp_agent.server.models import ToolErrorInfo

log = logging.getLogger("interp_agent.server")




def error_result(code: str, message: str, hint: str | None = None) -> CallToolResult:
    """A tool result with isError and a structured error (always with a hint)."""
    hint = hint or DEFAULT_HINTS.get(code, FALLBACK_HINT)
    info = ToolErrorInfo(code=code, message=redact(message), hint=redact(hint))
    payload = {"error": info.model_dump()}
    return CallToolResult(content=[TextContent(type="text", text=json.dumps(payload))], is_error=True)


def error_payload(result: CallToolResult) -> dict[str, str | None]:
    """The ``{code, message, hint}`` of an error result, read back from its text block."""
    if not result.is_error:
        raise ValueError("error_payload: the result is not an error (is_error is false)")
    text = next(block.text for block in result.content if isinstance(block, TextContent))
    return json.loads(text)["error"]


def from_exception(tool: str, exc: BaseException) -> CallToolResult:
    """Map an exception raised by a tool to its result."""
    if isinstance(exc, InterpAgentError):
        log.info("tool %s: %s", tool, redact(str(exc)))
        return error_result(exc.code, exc.message, exc.hint)
    if isinstance(exc, pydantic.ValidationError):
        return validation_result(tool, exc)
    log.error("tool %s raised an unexpected error", tool, exc_info=exc)
    return error_result(
        "internal_error",
        f"{tool} failed unexpectedly ({type(exc).__name__}); the server logged the details to stderr and keeps serving",
        "retry once; if it fails again, report the server log",
    )


def validation_result(tool: str, exc: pydantic.ValidationError) -> CallToolResult:
    """Arguments that fail the input schema: name each field and what it needs."""
    problems = []
    for err in exc.errors():
        field = ".".join(str(p) for p in err["loc"]) or "(arguments)"
        problems.append(f"{field}: {err['msg']}")
    return error_result(
        "invalid_argument",
        f"{tool}: " + "; ".join(problems),
        "check the tool's inputSchema for each field's type, range and allowed values",
    )
