"""The manifest of a sharded harvest (``core.shards``): what was harvested, and every finished shard with its
files' hashes; reading its shards' token rows and records folders.

A harvest folder holds ``manifest.json`` and ``shards/shard-NNNNN/``. Each shard folder has
``activations.safetensors`` (dense float32 token activations and the int tensors naming each
row's prompt or context, token position and token id) and, for scored prompts, ``records/``
(a Parquet records dataset, ``core.formats.parquet``). The manifest is rewritten atomically
after every finished shard, so a killed harvest leaves a manifest of the shards it finished.

:func:`open_manifest` verifies every shard file against its recorded size and SHA-256 and
names the first one that is missing or differs.
"""

from __future__ import annotations

import json
from collections.abc import Iterator
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import numpy as np

from interp_agent.core.artifacts import schema_version, sha256_of, write_json
from interp_agent.core.errors import InputFileError, ValidationError

MANIFEST = "manifest.json"
SHARDS_DIR = "shards"
ACTIVATIONS_FILE = "activations.safetensors"
RECORDS_DIR = "records"
SCHEMA = schema_version("harvest_manifest")
REBUILD_HINT = "re-run the same harvest (interp-agent harvest ... --out on this folder) to rebuild it"


@dataclass(frozen=True, slots=True)
class ShardEntry:
    """One finished shard."""

    name: str
    """Folder name under ``shards/``, e.g. ``shard-00003``."""
    index: int
    """Position of the shard in the harvest (0-based)."""
    start: int
    """First prompt (or context) index of the shard in the input."""
    stop: int
    """One past the last prompt (or context) index."""
    n_rows: int
    """Rows of ``activations.safetensors`` (tokens kept: every position but the first)."""
    n_tokens: int
    """Tokens run through the model (every position, the first included)."""
    files: dict[str, dict[str, Any]]
    """Relative path (inside the shard folder) -> ``{sha256, bytes}``."""
    seconds: float
    """Wall-clock seconds the worker spent on the shard (harvest and writing)."""
    worker: str = ""
    """Which worker made it (``local`` or a Ray actor's id)."""

    def to_json(self) -> dict[str, Any]:
        """The manifest entry."""
        return {"name": self.name, "index": self.index, "start": self.start, "stop": self.stop,
                "n_rows": self.n_rows, "n_tokens": self.n_tokens, "files": self.files,
                "seconds": self.seconds, "worker": self.worker}

    @classmethod
    def from_json(cls, row: dict[str, Any]) -> ShardEntry:
        """Read a manifest entry."""
        return cls(row["name"], int(row["index"]), int(row["start"]), int(row["stop"]), int(row["n_rows"]),
                   int(row["n_tokens"]), dict(row["files"]), float(row["seconds"]), str(row.get("worker", "")))


@dataclass(frozen=True, slots=True)
class Manifest:
    """A harvest folder's manifest (``manifest.json``)."""

    folder: Path
    """The harvest folder."""
    identity: dict[str, Any]
    """What was harvested: model, hookpoint, d_in, dtype, mode, pooling, max_length or context_length, shard
    size, and the source (kind, path or name, digests). A rerun with a different identity is refused."""
    n_shards: int
    """Shards the harvest is cut into."""
    shards: list[ShardEntry] = field(default_factory=list)
    """Finished shards, in shard order."""

    @property
    def complete(self) -> bool:
        """Whether every shard is finished."""
        return len(self.shards) == self.n_shards

    @property
    def model(self) -> str:
        """Model name."""
        return str(self.identity["model"])

    @property
    def hookpoint(self) -> str:
        """Hookpoint harvested (TransformerLens name)."""
        return str(self.identity["hookpoint"])

    @property
    def d_in(self) -> int:
        """Width of the activations."""
        return int(self.identity["d_in"])

    @property
    def has_records(self) -> bool:
        """Whether each shard holds a records dataset (scored prompts)."""
        return bool(self.identity.get("records"))

    def shard_dir(self, shard: ShardEntry) -> Path:
        """The folder of one shard."""
        return self.folder / SHARDS_DIR / shard.name

    def totals(self) -> dict[str, Any]:
        """Sums over the finished shards."""
        return {"n_shards_done": len(self.shards), "n_shards": self.n_shards,
                "n_rows": sum(s.n_rows for s in self.shards), "n_tokens": sum(s.n_tokens for s in self.shards),
                "n_units": sum(s.stop - s.start for s in self.shards),
                "bytes": sum(int(f["bytes"]) for s in self.shards for f in s.files.values()),
                "seconds": round(sum(s.seconds for s in self.shards), 4)}

    def to_json(self) -> dict[str, Any]:
        """The manifest object."""
        return {"schema_version": SCHEMA, **self.identity, "n_shards": self.n_shards, "complete": self.complete,
                "shards": [s.to_json() for s in self.shards], "totals": self.totals()}

    def write(self) -> Path:
        """Write ``manifest.json`` atomically."""
        return write_json(self.folder / MANIFEST, self.to_json())


IDENTITY_KEYS = ("model", "hookpoint", "d_in", "dtype", "mode", "pooling", "max_length", "context_length",
                 "shard_size", "records", "source", "positions")


def manifest_path(path: str | Path) -> Path | None:
    """``manifest.json`` of a harvest folder (or the file itself), or None when ``path`` is not a harvest."""
    p = Path(path)
    if p.is_dir() and (p / MANIFEST).is_file():
        return p / MANIFEST
    if p.is_file() and p.name == MANIFEST:
        return p
    return None


def is_manifest(path: str | Path) -> bool:
    """Whether ``path`` is a harvest folder or its ``manifest.json``."""
    return manifest_path(path) is not None


def read_manifest(path: str | Path) -> Manifest:
    """Read a manifest without checking its shards (see :func:`open_manifest`).

    Raises:
        InputFileError: no manifest, not JSON, or another schema.
    """
    mpath = manifest_path(path)
    if mpath is None:
        raise InputFileError(path, f"not a harvest folder (no {MANIFEST})",
                             hint="make one with: interp-agent harvest --model M --hookpoint H ... --out DIR")
    try:
        row = json.loads(mpath.read_text())
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputFileError(mpath, f"cannot be read as JSON: {exc}", hint=REBUILD_HINT) from exc
    if not isinstance(row, dict) or row.get("schema_version") != SCHEMA:
        found = row.get("schema_version") if isinstance(row, dict) else None
        raise InputFileError(mpath, f"schema_version is {found!r}, expected {SCHEMA!r}", field="schema_version")
    try:
        identity = {k: row.get(k) for k in IDENTITY_KEYS}
        shards = sorted((ShardEntry.from_json(s) for s in row["shards"]), key=lambda s: s.index)
        return Manifest(mpath.parent, identity, int(row["n_shards"]), shards)
    except (KeyError, TypeError, ValueError) as exc:
        raise InputFileError(mpath, f"malformed manifest: {exc!r}", hint=REBUILD_HINT) from exc


def shard_problem(manifest: Manifest, shard: ShardEntry) -> tuple[Path, str] | None:
    """The first file of a finished shard that does not match the manifest, and why; None when all match."""
    folder = manifest.shard_dir(shard)
    for rel, info in shard.files.items():
        f = folder / rel
        if not f.is_file():
            return f, "missing"
        if f.stat().st_size != int(info["bytes"]):
            return f, f"corrupt: {f.stat().st_size} bytes, the manifest records {info['bytes']}"
        if sha256_of(f) != info["sha256"]:
            return f, "corrupt: its SHA-256 differs from the manifest's"
    return None


def open_manifest(path: str | Path, *, verify: bool = True) -> Manifest:
    """A complete harvest, every shard file checked against its recorded size and hash.

    Raises:
        InputFileError: no manifest; a shard not finished; a shard file missing, corrupt or changed
            (the file is named).
    """
    manifest = read_manifest(path)
    done = {s.index for s in manifest.shards}
    missing = [i for i in range(manifest.n_shards) if i not in done]
    if missing:
        raise InputFileError(manifest.folder / SHARDS_DIR / f"shard-{missing[0]:05d}",
                             f"shard not finished ({len(missing)} of {manifest.n_shards} shards missing)",
                             hint=REBUILD_HINT)
    if verify:
        for shard in manifest.shards:
            problem = shard_problem(manifest, shard)
            if problem is not None:
                raise InputFileError(problem[0], f"file of shard {shard.name} is {problem[1]}", hint=REBUILD_HINT)
    return manifest


def iter_shard_activations(manifest: Manifest) -> Iterator[dict[str, np.ndarray]]:
    """Each shard's tensors (``activations`` [n, d_in] float32, ``prompt_index``, ``token_index``, ``token_ids``,
    ``prompt_fnv``), in shard order.

    Raises:
        InputFileError: a shard file cannot be read as safetensors (named).
    """
    from safetensors.numpy import load_file

    for shard in manifest.shards:
        path = manifest.shard_dir(shard) / ACTIVATIONS_FILE
        try:
            tensors = load_file(str(path))
        except Exception as exc:  # noqa: BLE001 - safetensors raises several types for a damaged file
            raise InputFileError(path, f"shard {shard.name} cannot be read: {exc}", hint=REBUILD_HINT) from exc
        if tensors["activations"].shape != (shard.n_rows, manifest.d_in):
            raise InputFileError(path, f"shard {shard.name} holds activations of shape "
                                 f"{tensors['activations'].shape}, the manifest says ({shard.n_rows}, {manifest.d_in})",
                                 hint=REBUILD_HINT)
        yield tensors


def record_folders(path: str | Path) -> list[Path]:
    """The records datasets of a verified harvest's shards, in shard order.

    Raises:
        InputFileError: a shard missing or corrupt (see ``open_manifest``).
        ValidationError: a corpus harvest, which has no records (no criterion scores).
    """
    manifest = open_manifest(path)
    if not manifest.has_records:
        raise ValidationError(
            f"the harvest in {manifest.folder} is of a corpus ({manifest.identity['mode']}): it has token "
            "activations but no per-prompt records (no criterion scores) to rank",
            hint="harvest scored prompts (--dataset or --pack) for inspect; use this one for train-sae or explain")
    return [manifest.shard_dir(s) / RECORDS_DIR for s in manifest.shards]
