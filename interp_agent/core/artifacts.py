"""Writing artifacts safely and stamping them with provenance.

Every output is written to a temporary file in the destination folder and renamed
into place, so a reader never sees a half-written file. Every JSON artifact carries a
``schema_version`` and a ``provenance`` block (tool version, platform, input hashes).
"""

from __future__ import annotations

import contextlib
import datetime as _dt
import hashlib
import json
import math
import os
import platform
import shutil
import sys
import tempfile
from collections.abc import Iterator
from pathlib import Path
from typing import IO, Any, Literal

from interp_agent._version import __version__

Provenance = Literal["correlational", "interventional", "synthetic", "imported", "semantic"]
"""Where a number comes from.

- correlational: measured association between activations and criterion scores.
- interventional: measured effect of an intervention on a behaviour score.
- synthetic: produced by a synthetic/toy generator; not a measurement of any model.
- imported: copied from an input file as its author stated it; not re-measured here.
- semantic: similarity of texts (labels, explanations) by a sentence encoder.
"""


def schema_version(name: str) -> str:
    """The schema version string of an interp-agent artifact, e.g. ``interp-agent.inspection_report.v1``."""
    return f"interp-agent.{name}.v1"


def sha256_of(path: str | Path, *, chunk: int = 1 << 20) -> str:
    """SHA-256 of a file, or of every file under a folder in sorted order."""
    p = Path(path)
    digest = hashlib.sha256()
    files = sorted(q for q in p.rglob("*") if q.is_file()) if p.is_dir() else [p]
    for f in files:
        if p.is_dir():
            digest.update(str(f.relative_to(p)).encode())
        with open(f, "rb") as fh:
            while block := fh.read(chunk):
                digest.update(block)
    return digest.hexdigest()


def run_provenance(inputs: dict[str, str | Path | None]) -> dict[str, Any]:
    """Provenance block: tool version, time, platform and the SHA-256 of each named input."""
    return {
        "tool": "interp-agent",
        "tool_version": __version__,
        "created_utc": _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat(),
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "inputs": [
            {"role": role, "path": str(path), "sha256": sha256_of(path)}
            for role, path in inputs.items()
            if path is not None
        ],
    }


def _file_mode() -> int:
    mask = os.umask(0)
    os.umask(mask)
    return 0o666 & ~mask


_FILE_MODE = _file_mode()


@contextlib.contextmanager
def atomic_open(path: str | Path, mode: str = "w", encoding: str | None = "utf-8") -> Iterator[IO[Any]]:
    """Open a temporary file beside ``path``; rename it onto ``path`` only if the block succeeds."""
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{target.name}.", suffix=".tmp", dir=target.parent)
    try:
        os.chmod(tmp, _FILE_MODE)  # mkstemp makes 0600; give the file the mode a plain open would
        with os.fdopen(fd, mode, encoding=None if "b" in mode else encoding) as fh:
            yield fh
            fh.flush()
            os.fsync(fh.fileno())
        os.replace(tmp, target)
    except BaseException:
        with contextlib.suppress(FileNotFoundError):
            os.unlink(tmp)
        raise


def clean_json(value: Any) -> Any:
    """Recursively replace NaN and infinities with None so the output is strict JSON."""
    if isinstance(value, float):
        return float(value) if math.isfinite(value) else None
    if isinstance(value, dict):
        return {k: clean_json(v) for k, v in value.items()}
    if isinstance(value, (list, tuple)):
        return [clean_json(v) for v in value]
    if hasattr(value, "item") and callable(value.item):  # numpy scalar
        return clean_json(value.item())
    return value


def write_json(path: str | Path, payload: Any) -> Path:
    """Write strict JSON (no NaN) atomically; returns the path."""
    with atomic_open(path) as fh:
        json.dump(clean_json(payload), fh, indent=2, allow_nan=False)
        fh.write("\n")
    return Path(path)


def write_text(path: str | Path, text: str) -> Path:
    """Write a text file atomically; returns the path."""
    with atomic_open(path) as fh:
        fh.write(text)
    return Path(path)


def replace_dir(tmp: Path, target: Path) -> None:
    """Move the finished folder ``tmp`` to ``target``, replacing an earlier ``target`` (renamed aside first,
    removed after), so ``target`` is never half-written."""
    old = None
    if target.exists():
        old = target.with_name(f".{target.name}.old.{os.getpid()}")
        os.replace(target, old)
    os.replace(tmp, target)
    if old is not None:
        shutil.rmtree(old, ignore_errors=True)
