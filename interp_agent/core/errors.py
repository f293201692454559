"""Errors a caller can act on.

Every error carries a message that says what was wrong, the value, and what to do.
Input-file errors name the file, the line and the field.

    InterpAgentError
    ├── InputFileError          a file could not be read or parsed (file, line, field)
    ├── ValidationError         an argument or combination of arguments is invalid
    ├── MissingDependencyError  an optional package is needed (names the extra)
    ├── ModelUnavailableError   a model's weights cannot be found or fetched (says how to get them)
    ├── RemoteServiceError      a remote service (Neuronpedia, Goodfire) is unreachable, refused or answered badly
    ├── MissingCredentialError  a credential the action needs is not set (names the variable, never a value)
    └── EvidenceError           the evidence cannot support the requested analysis
"""

from __future__ import annotations

import re
from pathlib import Path
from typing import Any

_UNSET: Any = object()

ARG_PATTERN = re.compile(r"`([a-z_]+)(?:=([^`]*))?`")
"""How messages name an argument: `name` or `name=value` in backticks (see ``arg``)."""


def arg(name: str, value: Any = _UNSET) -> str:
    """An argument named in a message, as the caller spells it: `records`, or `backend='hf'` with a value.

    Messages use the Python API's and the MCP tools' argument names; the command line shows
    each as its flag instead (``--records``, ``--backend hf``), so every surface names its own
    argument (see ``render_args``).
    """
    return f"`{name}`" if value is _UNSET else f"`{name}={value!r}`"


def render_args(text: str, flag_of: Any) -> str:
    """``text`` with each `name` / `name=value` turned into ``flag_of(name)`` (and its value)."""

    def one(m: re.Match[str]) -> str:
        flag = flag_of(m.group(1))
        value = m.group(2)
        if value is None or value == "True":
            return flag
        return f"{flag} {value.strip(chr(39))}" if not value.startswith(("[", "(")) else f"{flag} {value}"

    return ARG_PATTERN.sub(one, text)


class InterpAgentError(Exception):
    """Base class of every error interp-agent raises on purpose."""

    code = "interp_agent_error"

    def __init__(self, message: str, *, hint: str | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.hint = hint

    def __str__(self) -> str:
        return self.message if not self.hint else f"{self.message} ({self.hint})"


class InputFileError(InterpAgentError):
    """A file is missing, unreadable or malformed; names file, line and field."""

    code = "bad_input_file"

    def __init__(
        self,
        path: str | Path,
        message: str,
        *,
        line: int | None = None,
        field: str | None = None,
        hint: str | None = None,
    ) -> None:
        where = str(path) if line is None else f"{path}:{line}"
        if field is not None:
            where += f": field '{field}'"
        super().__init__(f"{where}: {message}", hint=hint)
        self.path = str(path)
        self.line = line
        self.field = field


class ValidationError(InterpAgentError, ValueError):
    """An argument, or a combination of arguments, is invalid."""

    code = "invalid_argument"


class MissingDependencyError(InterpAgentError, ImportError):
    """An optional dependency is not installed."""

    code = "missing_dependency"

    def __init__(self, package: str, extra: str, purpose: str) -> None:
        super().__init__(
            f"{purpose} needs the package '{package}', which is not installed",
            hint=f"pip install 'interp-agent[{extra}]'",
        )
        self.package = package
        self.extra = extra


class ModelUnavailableError(InterpAgentError):
    """A model's weights are neither cached nor reachable; the message says how to get them."""

    code = "model_unavailable"


class RemoteServiceError(InterpAgentError):
    """A remote service is unreachable, refused the request, or answered with something unusable.

    The message names the service, the URL (never a credential) and what to do instead.
    """

    code = "remote_service_error"


class MissingCredentialError(InterpAgentError):
    """A credential (HF_TOKEN, NEURONPEDIA_API_KEY) is needed and not set; names the variable, never a value."""

    code = "missing_credential"


class EvidenceError(InterpAgentError):
    """The evidence given cannot support the analysis asked for."""

    code = "insufficient_evidence"


DEFAULT_HINTS: dict[str, str] = {
    "invalid_argument": "fix the argument the message names and call again; the tool's inputSchema gives each "
    "field's type, range and allowed values",
    "bad_input_file": "fix or replace the file at the place the message names, then call again",
    "missing_dependency": "install the package the message names into the server's environment, then restart it",
    "model_unavailable": "use the embedded model 'smollm2-135m', or a local folder that holds the weights",
    "remote_service_error": "check that the service is reachable and retry; the message says what it answered",
    "missing_credential": "set the environment variable the message names where the server runs, then restart it",
    "insufficient_evidence": "give more prompts or records (the message says what is missing), then call again",
    "job_not_found": "call job_list to see the jobs this workspace has and their job_id",
    "internal_error": "retry once; if it fails again, read the job's job.log and report it",
    "worker_died": "start the job again (or job_resume it if its kind keeps checkpoints); job.log has the details",
}
"""What to do about an error raised without a hint of its own, by code: every error tells a next step."""

FALLBACK_HINT = "read the message, fix what it names and call again"


def error_info(exc: BaseException) -> dict[str, Any]:
    """``{code, message, hint}`` of an exception: its own for an InterpAgentError, ``internal_error`` otherwise."""
    if isinstance(exc, InterpAgentError):
        hint = exc.hint or DEFAULT_HINTS.get(exc.code, FALLBACK_HINT)
        return {"code": exc.code, "message": exc.message, "hint": hint}
    return {"code": "internal_error", "message": f"{type(exc).__name__}: {exc}" if str(exc) else repr(exc),
            "hint": DEFAULT_HINTS["internal_error"]}
