"""Dossier names: safe file names, so a name can never leave the dossiers folder."""

from __future__ import annotations

import re

from interp_agent.core.errors import ValidationError

NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$"
"""Letters, digits, '.', '-' and '_', starting with a letter or digit, at most 80 characters (the server's
``DOSSIER_NAME_PATTERN``)."""
_NAME = re.compile(NAME_PATTERN)


def check_name(name: object) -> str:
    """``name`` when it is a valid dossier name; ValidationError saying what to use otherwise."""
    if not isinstance(name, str) or not _NAME.match(name):
        raise ValidationError(f"dossier name {name!r} is not a safe file name",
                              hint="use letters, digits, '.', '-' and '_' (starting with a letter or digit, "
                                   "at most 80 characters), e.g. 'units-l15'")
    return name
