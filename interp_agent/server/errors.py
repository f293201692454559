"""The one place where exceptions become tool results.

A caller's mistake (an InterpAgentError, or arguments that fail the input schema) comes
back as ``isError`` with a structured ``{code, message, hint}``. Anything else is logged
with its traceback to stderr and returned sanitised as ``internal_error``.
"""

from __future__ import annotations

import json
import logging

import pydantic
from mcp.types import CallToolResult, TextContent

from interp_agent.core.errors import InterpAgentError
from interp_agent.core.secrets import redact
from interp_agent.server.models import ToolErrorInfo

log = logging.getLogger("interp_agent.server")


def error_result(code: str, message: str, hint: str | None = None) -> CallToolResult:
    """A tool result with isError and a structured error."""
    info = ToolErrorInfo(code=code, message=redact(message), hint=redact(hint) if hint else None)
    payload = {"error": info.model_dump()}
    return CallToolResult(content=[TextContent(type="text", text=json.dumps(payload))], structured_content=payload, is_error=True)


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
