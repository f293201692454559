"""Keeping credentials out of outputs, errors and logs.

Credentials are reported as present or absent, never by value. The values of
environment variables whose names contain TOKEN, KEY, SECRET or PASSWORD (any case,
e.g. ``HF_TOKEN``, ``NEURONPEDIA_API_KEY``) are replaced by ``[REDACTED]`` in every error
string, progress message and log line interp-agent writes.
"""

from __future__ import annotations

import os
import re
from collections.abc import Mapping

SECRET_NAME = re.compile(r"TOKEN|KEY|SECRET|PASSWORD", re.IGNORECASE)
"""Environment variable names whose values are treated as secrets."""

MIN_SECRET_LENGTH = 4
"""Shorter values (``1``, ``yes``) are left alone: redacting them would garble text, not protect it."""

REDACTED = "[REDACTED]"


def secret_values(environ: Mapping[str, str] | None = None) -> list[str]:
    """The values of secret-named variables in ``environ`` (default ``os.environ``), longest first."""
    env = os.environ if environ is None else environ
    values = {v for k, v in env.items() if SECRET_NAME.search(k) and len(v) >= MIN_SECRET_LENGTH}
    return sorted(values, key=len, reverse=True)


def redact(text: str, environ: Mapping[str, str] | None = None) -> str:
    """``text`` with every secret value replaced by ``[REDACTED]``."""
    for value in secret_values(environ):
        text = text.replace(value, REDACTED)
    return text
