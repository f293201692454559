"""Strict JSON Lines reading and writing, with errors that name file, line and field."""

from __future__ import annotations

import gzip
import math
from collections.abc import Iterable, Iterator
from pathlib import Path
from typing import Any, Literal, overload

import orjson

from interp_agent.core.artifacts import atomic_open, clean_json
from interp_agent.core.errors import InputFileError


def iter_json_objects(path: str | Path) -> Iterator[tuple[int, dict[str, Any]]]:
    """Yield ``(line_number, object)`` for each non-blank line of a JSONL file (gzipped when it ends in ``.gz``).

    NaN and Infinity are rejected (they are not JSON); a line that is not a JSON object
    stops with an error naming the file and line.
    """
    p = Path(path)
    if not p.is_file():
        raise InputFileError(p, "file not found", hint="check the path; it must be a JSONL file")
    opener: Any = gzip.open if p.name.lower().endswith(".gz") else open
    with opener(p, "rb") as fh:
        for number, raw in enumerate(fh, start=1):
            if not raw.strip():
                continue
            try:
                obj = orjson.loads(raw)
            except orjson.JSONDecodeError as exc:
                detail = str(exc)
                if any(tok in raw for tok in (b"NaN", b"Infinity")):
                    detail = "NaN and Infinity are not valid JSON numbers; write null or a finite number"
                raise InputFileError(p, f"malformed JSON: {detail}", line=number) from None
            if not isinstance(obj, dict):
                raise InputFileError(p, f"expected a JSON object, got {type(obj).__name__}", line=number)
            yield number, obj


def write_jsonl(path: str | Path, rows: Iterable[dict[str, Any]]) -> Path:
    """Write rows as JSONL atomically (strict JSON: NaN becomes null)."""
    with atomic_open(path, "wb", encoding=None) as fh:
        for row in rows:
            fh.write(orjson.dumps(clean_json(row)))
            fh.write(b"\n")
    return Path(path)


class Fields:
    """Typed access to one parsed JSON object, raising errors that name file, line and field."""

    __slots__ = ("obj", "path", "line")

    def __init__(self, obj: dict[str, Any], path: str | Path, line: int) -> None:
        self.obj = obj
        self.path = path
        self.line = line

    def error(self, field: str, message: str, hint: str | None = None) -> InputFileError:
        """An error about ``field`` on this line."""
        return InputFileError(self.path, message, line=self.line, field=field, hint=hint)

    def required(self, field: str) -> Any:
        """The value of a required field."""
        if field not in self.obj or self.obj[field] is None:
            raise self.error(field, "required field is missing")
        return self.obj[field]

    @overload
    def string(self, field: str, *, required: Literal[True] = True, default: str | None = None) -> str: ...
    @overload
    def string(self, field: str, *, required: bool, default: str) -> str: ...
    @overload
    def string(self, field: str, *, required: bool, default: None = None) -> str | None: ...
    def string(self, field: str, *, required: bool = True, default: str | None = None) -> str | None:
        """A string field; integers are accepted and turned into strings (ids)."""
        value = self.required(field) if required else self.obj.get(field, default)
        if value is None:
            return default
        if isinstance(value, bool) or not isinstance(value, (str, int)):
            raise self.error(field, f"expected a string, got {type(value).__name__} {value!r}")
        return str(value)

    @overload
    def number(self, field: str, *, required: Literal[True] = True) -> float: ...
    @overload
    def number(self, field: str, *, required: bool) -> float | None: ...
    def number(self, field: str, *, required: bool = True) -> float | None:
        """A finite number field."""
        value = self.required(field) if required else self.obj.get(field)
        if value is None:
            return None
        return finite(value, self, field)

    @overload
    def integer(self, field: str, *, required: Literal[True]) -> int: ...
    @overload
    def integer(self, field: str, *, required: bool = False) -> int | None: ...
    def integer(self, field: str, *, required: bool = False) -> int | None:
        """An integer field."""
        value = self.required(field) if required else self.obj.get(field)
        if value is None:
            return None
        if isinstance(value, bool) or not isinstance(value, int):
            raise self.error(field, f"expected an integer, got {value!r}")
        return value

    def vector(self, field: str) -> list[float] | None:
        """An optional list of finite numbers."""
        value = self.obj.get(field)
        if value is None:
            return None
        if not isinstance(value, list):
            raise self.error(field, f"expected a list of numbers, got {type(value).__name__}")
        return [finite(v, self, f"{field}[{i}]") for i, v in enumerate(value)]

    def mapping(self, field: str) -> dict[str, Any] | None:
        """An optional JSON object."""
        value = self.obj.get(field)
        if value is None:
            return None
        if not isinstance(value, dict):
            raise self.error(field, f"expected an object, got {type(value).__name__}")
        return value


def finite(value: Any, where: Fields, field: str) -> float:
    """``value`` as a finite float, or an error naming ``field``."""
    if isinstance(value, bool) or not isinstance(value, (int, float)):
        raise where.error(field, f"expected a number, got {value!r}")
    out = float(value)
    if not math.isfinite(out):
        raise where.error(field, f"expected a finite number, got {value!r}")
    return out
