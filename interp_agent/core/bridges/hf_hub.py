"""Publishing a run folder to the Hugging Face Hub: a plan, a card, one commit.

    plan_publish(path, repo_id)   which files go up (path in the repo, bytes) and which stay, with why
    render_card(path, repo_id)    README.md: YAML front matter, what, model, criterion, metrics, provenance,
                                  how to load (``interp_agent.core.bridges.hf_card``)
    publish(path, repo_id, ...)   a dry run by default (no network, no token needed); otherwise
                                  create_repo(exist_ok=True) and one create_commit of exactly the
                                  planned files plus the generated README.md

The token comes only from the environment variable ``HF_TOKEN``: no function takes a token
argument, and no result, error or log line carries its value. ``HF_ENDPOINT`` is read when
``publish`` runs (huggingface_hub itself reads it once, at import), so a test or a mirror
can point the upload elsewhere. Only this module imports ``huggingface_hub``, and only for a
real upload (the ``publish`` extra).
"""

from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from interp_agent._version import __version__
from interp_agent.core.artifacts import schema_version
from interp_agent.core.bridges.hf_card import render_card
from interp_agent.core.errors import (
    MissingCredentialError,
    MissingDependencyError,
    RemoteServiceError,
    ValidationError,
)
from interp_agent.core.secrets import REDACTED, redact, secret_values

RepoType = Literal["model", "dataset"]
REPO_TYPES: tuple[str, ...] = ("model", "dataset")

TOKEN_ENV = "HF_TOKEN"
"""The one place a Hub token is read from."""

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
    if not isinstance(repo_id, str) or not _REPO_ID.match(repo_id) or ".." in repo_id or repo_id.endswith((".git", "-", ".")):
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
        raise ValidationError(f"publish path {str(folder)!r} holds nothing to upload "
                              f"({len(skipped)} file(s) skipped)", hint="publish a run folder with reports, records or an SAE")
    return PublishPlan(folder=folder, repo_id=repo_id, repo_type=repo_type, files=tuple(files), skipped=tuple(_fold(skipped)))


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


def _hub_offline() -> bool:
    value = os.environ.get("HF_HUB_OFFLINE", "") or os.environ.get("TRANSFORMERS_OFFLINE", "")
    return value.strip().lower() in {"1", "true", "yes", "on"}


def _network_errors() -> tuple[type[BaseException], ...]:
    """Transport-level exception classes of the HTTP clients huggingface_hub may use."""
    found: list[type[BaseException]] = []
    for module, name in (("httpx2", "HTTPError"), ("httpx", "HTTPError"), ("requests", "RequestException")):
        try:
            found.append(getattr(__import__(module), name))
        except (ImportError, AttributeError):
            continue
    return tuple(found)


def _scrub(text: str, token: str) -> str:
    return redact(text).replace(token, REDACTED)


def publish(
    path: str | Path,
    repo_id: str,
    *,
    repo_type: RepoType = "model",
    dry_run: bool = True,
    private: bool = True,
    commit_message: str | None = None,
) -> dict[str, Any]:
    """Publish the run folder ``path`` to the Hub repo ``repo_id`` with a generated card, in one commit.

    A dry run (the default) plans the files, renders the card and returns both without any
    network call. Otherwise the token is read from the environment variable HF_TOKEN (only
    there), the repo is created when missing (``private`` applies only then) and the planned
    files plus README.md go up in one commit.

    Returns:
        ``{schema_version, dry_run, uploaded, repo_id, repo_type, private, endpoint,
        token_present, files: [{path, bytes, generated?}], skipped: [{path, reason}],
        total_bytes, card, repo_url, commit_url, commit_oid, message}``.

    Raises:
        ValidationError: bad arguments, nothing to upload, or offline mode is set.
        MissingCredentialError: not a dry run and HF_TOKEN is not set.
        MissingDependencyError: huggingface_hub is not installed.
        RemoteServiceError: the Hub refused the token or the upload, or could not be reached.
    """
    plan = plan_publish(path, repo_id, repo_type)
    card = render_card(plan.folder, repo_id, repo_type=repo_type, plan=plan)
    card_bytes = card.encode("utf-8")
    token = os.environ.get(TOKEN_ENV, "").strip()
    endpoint = os.environ.get("HF_ENDPOINT", "").strip().rstrip("/") or None
    files = [{"path": f.path_in_repo, "bytes": f.size} for f in plan.files]
    files.append({"path": CARD_NAME, "bytes": len(card_bytes), "generated": True})
    result: dict[str, Any] = {
        "schema_version": schema_version("publish"), "tool_version": __version__, "dry_run": bool(dry_run),
        "uploaded": False, "repo_id": repo_id, "repo_type": repo_type, "private": bool(private),
        "endpoint": endpoint or "https://huggingface.co", "token_present": bool(token), "folder": str(plan.folder),
        "files": files, "skipped": plan.to_json()["skipped"], "total_bytes": plan.total_bytes + len(card_bytes),
        "card": card, "repo_url": None, "commit_url": None, "commit_oid": None,
    }
    if dry_run:
        result["message"] = (f"dry run: nothing was uploaded; {len(files)} files ({result['total_bytes']:,} bytes) would go to "
                             f"{repo_type} repo {repo_id}" + ("" if token else f"; set {TOKEN_ENV} before a real upload"))
        return result
    if not token:
        raise MissingCredentialError(
            f"publishing to {repo_id} needs a Hugging Face token in the environment variable {TOKEN_ENV}, which is not set",
            hint=f"export {TOKEN_ENV}=<a write token from https://huggingface.co/settings/tokens> where the command or "
                 "server runs; it is read only from there, never from an argument",
        )
    if _hub_offline():
        raise ValidationError("HF_HUB_OFFLINE is set: publishing needs the network", hint="unset HF_HUB_OFFLINE for this command")
    try:
        from huggingface_hub import CommitOperationAdd, HfApi
        from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled
    except ImportError:
        raise MissingDependencyError("huggingface_hub", "publish", "publishing to the Hugging Face Hub") from None

    api = HfApi(endpoint=endpoint, token=token, library_name="interp-agent", library_version=__version__)
    where = f"the Hub at {api.endpoint}"
    operations = [CommitOperationAdd(path_in_repo=f.path_in_repo, path_or_fileobj=str(f.local_path)) for f in plan.files]
    operations.append(CommitOperationAdd(path_in_repo=CARD_NAME, path_or_fileobj=card_bytes))
    message = commit_message or f"interp-agent {__version__}: publish {plan.folder.name} ({len(files)} files)"
    try:
        repo_url = api.create_repo(repo_id, repo_type=repo_type, private=private, exist_ok=True)
        commit = api.create_commit(repo_id, operations, commit_message=message, repo_type=repo_type)
    except HfHubHTTPError as exc:
        status = getattr(getattr(exc, "response", None), "status_code", None)
        first = _scrub(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__, token)
        if status in (401, 403):
            raise RemoteServiceError(
                f"{where} refused {TOKEN_ENV} for {repo_type} repo {repo_id} (HTTP {status}): {first}",
                hint=f"check that {TOKEN_ENV} is a write token for the namespace {repo_id.split('/')[0]!r}",
            ) from None
        raise RemoteServiceError(f"{where} rejected the upload to {repo_id} (HTTP {status}): {first}",
                                 hint="nothing is committed when a commit fails; fix the cause and publish again") from None
    except OfflineModeIsEnabled:
        raise ValidationError("huggingface_hub is in offline mode (HF_HUB_OFFLINE was set when it was imported)",
                              hint="unset HF_HUB_OFFLINE and start the command or server again") from None
    except _network_errors() as exc:
        raise RemoteServiceError(f"could not reach {where}: {type(exc).__name__}: {_scrub(str(exc), token)}",
                                 hint="check the network, or HF_ENDPOINT if you use a mirror") from None
    except ValueError as exc:  # huggingface_hub reports a card the Hub rejects as ValueError
        raise RemoteServiceError(f"{where} rejected the upload to {repo_id}: {_scrub(str(exc), token)}") from None
    result.update(uploaded=True, repo_url=str(repo_url), commit_url=commit.commit_url, commit_oid=commit.oid,
                  message=f"uploaded {len(files)} files ({result['total_bytes']:,} bytes) to {repo_type} repo {repo_id} "
                          "in one commit" + ("; private applies only when the repo is created" if private else ""))
    return result


__all__ = ["CARD_NAME", "REPO_TYPES", "TOKEN_ENV", "PlannedFile", "PublishPlan", "RepoType", "SkippedFile", "check_repo",
           "plan_publish", "publish", "render_card"]
