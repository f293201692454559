"""Human sizes in and out: ``"70B"`` parameters, ``"64GB"`` shards, ``"1.5 TB"`` in a report.

Counts use decimal suffixes (k = 10**3, M = 10**6, B or G = 10**9, T = 10**12) and binary
ones (Ki, Mi, Gi, Ti = powers of 1024), so ``"1M"`` latents is 1,000,000 and ``"1Mi"`` is
1,048,576. Bytes use decimal units (kB, MB, GB, TB, PB = powers of 1000, as disk and GPU
vendors do) and binary ones (KiB, MiB, GiB, TiB, PiB); a bare ``B`` means bytes.
Suffixes are case-insensitive.
"""

from __future__ import annotations

import math
import re
from typing import Literal

from interp_agent.core.errors import ValidationError

SizeKind = Literal["count", "bytes"]
"""What a size measures: a plain count (parameters, tokens, latents) or a number of bytes."""

_DECIMAL = {"k": 1e3, "m": 1e6, "g": 1e9, "t": 1e12, "p": 1e15}
_BINARY = {"ki": 2.0**10, "mi": 2.0**20, "gi": 2.0**30, "ti": 2.0**40, "pi": 2.0**50}

_COUNT_SUFFIXES: dict[str, float] = {"": 1.0, "k": 1e3, "m": 1e6, "b": 1e9, "g": 1e9, "t": 1e12,
                                      "ki": _BINARY["ki"], "mi": _BINARY["mi"], "gi": _BINARY["gi"],
                                      "ti": _BINARY["ti"]}
_BYTE_SUFFIXES: dict[str, float] = {"": 1.0, "b": 1.0}
for _p, _v in _DECIMAL.items():
    _BYTE_SUFFIXES[_p] = _BYTE_SUFFIXES[_p + "b"] = _v
for _p, _v in _BINARY.items():
    _BYTE_SUFFIXES[_p] = _BYTE_SUFFIXES[_p + "b"] = _v

_EXAMPLES: dict[str, str] = {
    "count": "'70B', '1.5B', '1T', '16384', '2k', '1M', '1Mi' (= 2**20), '1e9'",
    "bytes": "'64GB', '512MiB', '1.5TB', '4096', '2GiB'",
}

_NUMBER = re.compile(r"^\s*([+-]?(?:\d[\d_]*)?\.?\d[\d_]*(?:[eE][+-]?\d+)?)\s*([A-Za-z]*)\s*$")


def parse_size(text: str | int | float, *, kind: SizeKind) -> float:
    """Read a human size such as ``"70B"``, ``"1M"``, ``"64GB"`` or ``"512MiB"`` as a number.

    Args:
        text: a non-negative number, or a string of a number with an optional suffix.
        kind: ``"count"`` (B = billion) or ``"bytes"`` (B = byte).

    Returns:
        The size as a float (a count, or a number of bytes).

    Raises:
        ValidationError: the value is not a finite non-negative size of that kind.
    """
    if kind not in _EXAMPLES:
        raise ValidationError(f"kind must be 'count' or 'bytes', got {kind!r}")
    if isinstance(text, bool) or not isinstance(text, (str, int, float)):
        raise ValidationError(
            f"a size must be a number or a string, got {text!r} ({type(text).__name__})", hint=f"e.g. {_EXAMPLES[kind]}"
        )
    if isinstance(text, (int, float)):
        value = float(text)
    else:
        match = _NUMBER.match(text)
        suffixes = _COUNT_SUFFIXES if kind == "count" else _BYTE_SUFFIXES
        if not match or match.group(2).lower() not in suffixes:
            raise ValidationError(
                f"cannot read {text!r} as a size in {'bytes' if kind == 'bytes' else 'a count'}",
                hint=f"write a number with an optional suffix, e.g. {_EXAMPLES[kind]}",
            )
        value = float(match.group(1).replace("_", "")) * suffixes[match.group(2).lower()]
    if not math.isfinite(value) or value < 0:
        raise ValidationError(f"a size must be finite and not negative, got {text!r}", hint=f"e.g. {_EXAMPLES[kind]}")
    return value


def _scaled(value: float, steps: list[tuple[float, str]], unit_one: str) -> str:
    for factor, suffix in steps:
        if abs(value) >= factor:
            return f"{value / factor:.3g}{suffix}"
    return f"{value:.3g}{unit_one}"


def format_count(value: float) -> str:
    """A count for people: ``1.5e9`` → ``"1.5B"``, ``16384`` → ``"16.4k"``."""
    return _scaled(value, [(1e12, "T"), (1e9, "B"), (1e6, "M"), (1e3, "k")], "")


def format_bytes(value: float) -> str:
    """A byte count for people in decimal units: ``2.304e9`` → ``"2.3 GB"``."""
    return _scaled(value, [(1e15, " PB"), (1e12, " TB"), (1e9, " GB"), (1e6, " MB"), (1e3, " kB")], " B")
