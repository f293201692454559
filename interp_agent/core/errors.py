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

from pathlib import Path


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
