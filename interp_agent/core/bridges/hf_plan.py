"""Which files of a run folder a Hugging Face Hub publish uploads, and which stay behind and why.

    plan_publish(path, repo_id)   the plan: files going up (path in the repo, bytes), files skipped, with why
    check_repo(repo_id, type)     the repo id and type rules

Local only (no network, no ``huggingface_hub``). ``hf_card`` renders a plan's README.md and
``hf_hub`` uploads it; both import this module, neither imports the other's internals.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from interp_agent.core.errors import ValidationError
from interp_agent.core.secrets import secret_values

RepoType = Literal["model", "dataset"]
REPO_TYPES: tuple[str, ...] = ("model", "dataset")

CARD_NAME = "README.md"
"""Path in the repo of the generated card."""

_REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,95}/[A-Za-z0-9][A-Za-z0-9_.-]{0,95}$")

_SKIP_DIRS: dict[str, str] = {
    "checkpoints": "training checkpoints (optimiser state): internal, resumable runs only",
    "activations": "activation cache: internal and large; re-harvest instead",
    "__pycache__": "Python bytecode cache",
    ".interp-agent": "job state of a workspace",
}
_SKIP_NAMES: dict[str, str] = {
    "job.log": "the job runner's log: internal, may name local paths",
    CARD_NAME: "replaced by the generated card",
    "sleep.checkpoint": "diagnostic job checkpoint",
}
_TEMP_SUFFIXES = (".tmp", ".partial", ".lock", ".swp")
_SECRET_NAME = re.compile(
    r"(^\.env(\..*)?$)|(\.(pem|key|p12|pfx)$)|(^id_(rsa|dsa|ecdsa|ed25519))|(^\.?(netrc|npmrc|pypirc)$)"
    r"|((^|[._-])((hf|api|access|auth)[_-]?tokens?|secrets?|passwords?|credentials?|api[_-]?keys?)([._-]|$))",
    re.IGNORECASE,
)
_TEXT_SUFFIXES = (".json", ".jsonl", ".md", ".html", ".txt", ".log", ".yaml", ".yml", ".toml", ".csv", ".cfg", ".ini",
                  ".py", ".sh", ".env")
_HF_TOKEN_PATTERN = re.compile(rb"hf_[A-Za-z0-9]{30,}")
_SCAN_LIMIT = 64 << 20
"""Text files up to this size are scanned for credential values; larger ones are checked by name only."""
_MIN_SCANNED_SECRET = 12
"""Shorter values of secret-named variables are not searched for (TOKENIZERS_PARALLELISM=false is no credential)."""


@dataclass(frozen=True, slots=True)
class PlannedFile:
    """One file that a publish uploads."""

    path_in_repo: str
    """POSIX path relative to the run folder, the same in the repo."""
    size: int
    """Bytes."""
    local_path: Path
    """Where it is on this machine."""


@dataclass(frozen=True, slots=True)
class SkippedFile:
    """One file of the run folder that stays behind."""

    path: str
    """POSIX path relative to the run folder."""
    reason: str
    """Why it is not uploaded."""


@dataclass(frozen=True, slots=True)
class PublishPlan:
    """What a publish of one run folder uploads, and what it leaves out."""

    folder: Path
    """The run folder."""
    repo_id: str
    """``owner/name`` on the Hub."""
    repo_type: RepoType
    """model or dataset."""
    files: tuple[PlannedFile, ...]
    """Files uploaded, sorted by path; the generated README.md comes on top of these."""
    skipped: tuple[SkippedFile, ...]
    """Files left behind, with the reason."""

    def __post_init__(self) -> None:
        check_repo(self.repo_id, self.repo_type)

    @property
    def total_bytes(self) -> int:
        """Bytes of the planned files (the card not included)."""
        return sum(f.size for f in self.files)

    def to_json(self) -> dict[str, Any]:
        """The plan as JSON (no local paths beyond the folder)."""
        return {
            "folder": str(self.folder), "repo_id": self.repo_id, "repo_type": self.repo_type,
            "files": [{"path": f.path_in_repo, "bytes": f.size} for f in self.files],
            "skipped": [{"path": s.path, "reason": s.reason} for s in self.skipped],
            "total_bytes": self.total_bytes,
        }


def check_repo(repo_id: str, repo_type: str) -> None:
    """Raise ValidationError unless ``repo_id`` is ``owner/name`` and ``repo_type`` is model or dataset."""
    bad = not isinstance(repo_id, str) or not _REPO_ID.match(repo_id)
    if bad or ".." in repo_id or repo_id.endswith((".git", "-", ".")):
        raise ValidationError(
            f"repo_id must be 'owner/name' (letters, digits, '-', '_', '.'; at most 96 each), got {repo_id!r}",
            hint="e.g. my-user/smollm2-unit-features",
        )
    if repo_type not in REPO_TYPES:
        raise ValidationError(f"repo_type must be one of {', '.join(REPO_TYPES)}, got {repo_type!r}")


def _skip_reason(rel: Path, entry: Path, secrets: list[bytes]) -> str | None:
    for part in rel.parts[:-1]:
        if part in _SKIP_DIRS:
            return _SKIP_DIRS[part]
        if part.startswith("."):
            return "inside a hidden folder"
    name = rel.name
    if entry.is_symlink():
        return "symbolic link: not followed"
    if not entry.is_file():
        return "not a regular file"
    if name in _SKIP_NAMES and (name != CARD_NAME or len(rel.parts) == 1):
        return _SKIP_NAMES[name]
    if name.endswith(_TEMP_SUFFIXES):
        return "temporary file"
    if name.startswith("."):
        return "hidden file (atomic-write temporaries start with '.')"
    if _SECRET_NAME.search(name):
        return "name looks like a credential file"
    if name.lower().endswith(_TEXT_SUFFIXES) and entry.stat().st_size <= _SCAN_LIMIT:
        data = entry.read_bytes()
        if any(s in data for s in secrets):
            return "contains the value of a credential environment variable"
        if _HF_TOKEN_PATTERN.search(data):
            return "contains what looks like a Hugging Face token"
    return None


def plan_publish(path: str | Path, repo_id: str, repo_type: RepoType = "model") -> PublishPlan:
    """Which files of the run folder ``path`` a publish uploads, with sizes, and which it skips and why.

    Skipped: checkpoints/ and activations/ caches, job.log, hidden and temporary files,
    symbolic links, a README.md at the top (the generated card replaces it), files whose
    name looks like a credential, and text files that contain a credential's value.

    Raises:
        ValidationError: bad repo id or type, ``path`` is not a folder, or nothing is left to upload.
    """
    check_repo(repo_id, repo_type)
    folder = Path(path).expanduser()
    if not folder.is_dir():
        what = "does not exist" if not folder.exists() else "is not a folder"
        raise ValidationError(f"publish path {str(folder)!r} {what}", hint="give a run folder (e.g. runs/<run_id>)")
    folder = folder.resolve()
    secrets = [s.encode() for s in secret_values() if len(s) >= _MIN_SCANNED_SECRET]
    files: list[PlannedFile] = []
    skipped: list[SkippedFile] = []
    for entry in sorted(folder.rglob("*")):
        if entry.is_dir() and not entry.is_symlink():
            continue
        rel = entry.relative_to(folder)
        reason = _skip_reason(rel, entry, secrets)
        if reason is None:
            files.append(PlannedFile(rel.as_posix(), entry.stat().st_size, entry))
        else:
            skipped.append(SkippedFile(rel.as_posix(), reason))
    if not files:
        raise ValidationError(f"publish path {str(folder)!r} holds nothing to upload ({len(skipped)} file(s) skipped)",
                              hint="publish a run folder with reports, records or an SAE")
    return PublishPlan(folder=folder, repo_id=repo_id, repo_type=repo_type, files=tuple(files),
                       skipped=tuple(_fold(skipped)))


def _fold(skipped: list[SkippedFile]) -> list[SkippedFile]:
    """One entry per skipped folder (checkpoints/, activations/, hidden ones) instead of one per file inside it."""
    out: list[SkippedFile] = []
    seen: set[str] = set()
    for s in skipped:
        parts = s.path.split("/")
        folder_reason = s.reason in _SKIP_DIRS.values() or s.reason == "inside a hidden folder"
        if len(parts) > 1 and folder_reason:
            # the first folder on the path that is skipped as a whole
            depth = next(i for i, p in enumerate(parts[:-1]) if p in _SKIP_DIRS or p.startswith("."))
            key = "/".join(parts[: depth + 1]) + "/"
            if key not in seen:
                seen.add(key)
                out.append(SkippedFile(key, s.reason))
            continue
        out.append(s)
    return out


__all__ = ["CARD_NAME", "REPO_TYPES", "PlannedFile", "PublishPlan", "RepoType", "SkippedFile", "check_repo",
           "plan_publish"]
