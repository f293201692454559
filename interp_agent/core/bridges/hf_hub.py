"""Publishing a run folder to the Hugging Face Hub: a plan, a card, one commit.

    plan_publish(path, repo_id)   which files go up (path in the repo, bytes) and which stay, with why
                                  (``interp_agent.core.bridges.hf_plan``, re-exported here)
    render_card(path, repo_id)    README.md: YAML front matter, what, model, criterion, metrics, provenance,
                                  how to load (``interp_agent.core.bridges.hf_card``, re-exported here)
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
from pathlib import Path
from typing import Any

from interp_agent._version import __version__
from interp_agent.core.artifacts import schema_version
from interp_agent.core.bridges.hf_card import render_card
from interp_agent.core.bridges.hf_plan import (
    CARD_NAME,
    REPO_TYPES,
    PlannedFile,
    PublishPlan,
    RepoType,
    SkippedFile,
    check_repo,
    plan_publish,
)
from interp_agent.core.errors import (
    MissingCredentialError,
    MissingDependencyError,
    RemoteServiceError,
    ValidationError,
)
from interp_agent.core.secrets import REDACTED, redact

TOKEN_ENV = "HF_TOKEN"
"""The one place a Hub token is read from."""


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


def _base_result(
    plan: PublishPlan, card: str, *, repo_id: str, repo_type: RepoType, dry_run: bool, private: bool, token: str,
    endpoint: str | None,
) -> dict[str, Any]:
    """The result as known before any upload: where it goes, the planned files plus the card, and their bytes."""
    card_bytes = card.encode("utf-8")
    files = [{"path": f.path_in_repo, "bytes": f.size} for f in plan.files]
    files.append({"path": CARD_NAME, "bytes": len(card_bytes), "generated": True})
    return {
        "schema_version": schema_version("publish"),
        "tool_version": __version__,
        "dry_run": bool(dry_run),
        "uploaded": False,
        "repo_id": repo_id,
        "repo_type": repo_type,
        "private": bool(private),
        "endpoint": endpoint or "https://huggingface.co",
        "token_present": bool(token),
        "folder": str(plan.folder),
        "files": files,
        "skipped": plan.to_json()["skipped"],
        "total_bytes": plan.total_bytes + len(card_bytes),
        "card": card,
        "repo_url": None,
        "commit_url": None,
        "commit_oid": None,
    }


def _check_can_upload(repo_id: str, token: str) -> None:
    """Refuse a real upload without a token or while offline mode is set."""
    if not token:
        raise MissingCredentialError(
            f"publishing to {repo_id} needs a Hugging Face token in the environment variable {TOKEN_ENV}, "
            "which is not set",
            hint=f"export {TOKEN_ENV}=<a write token from https://huggingface.co/settings/tokens> where the command or "
            "server runs; it is read only from there, never from an argument",
        )
    if _hub_offline():
        raise ValidationError(
            "HF_HUB_OFFLINE is set: publishing needs the network", hint="unset HF_HUB_OFFLINE for this command"
        )


def _http_error(exc: Exception, where: str, repo_id: str, repo_type: str, token: str) -> RemoteServiceError:
    """The error for an HTTP error answer of the Hub: a refused token (401/403) or a rejected upload."""
    status = getattr(getattr(exc, "response", None), "status_code", None)
    first = _scrub(str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__, token)
    if status in (401, 403):
        return RemoteServiceError(
            f"{where} refused {TOKEN_ENV} for {repo_type} repo {repo_id} (HTTP {status}): {first}",
            hint=f"check that {TOKEN_ENV} is a write token for the namespace {repo_id.split('/')[0]!r}",
        )
    return RemoteServiceError(
        f"{where} rejected the upload to {repo_id} (HTTP {status}): {first}",
        hint="nothing is committed when a commit fails; fix the cause and publish again",
    )


def _commit(
    plan: PublishPlan, card: bytes, message: str, *, repo_id: str, repo_type: RepoType, private: bool, token: str,
    endpoint: str | None,
) -> tuple[str, Any]:
    """Create the repo when missing and commit the planned files plus ``card`` as README.md, in one commit.

    Returns:
        The repo URL and huggingface_hub's ``CommitInfo``.
    """
    try:
        from huggingface_hub import CommitOperationAdd, HfApi
        from huggingface_hub.errors import HfHubHTTPError, OfflineModeIsEnabled
    except ImportError:
        raise MissingDependencyError("huggingface_hub", "publish", "publishing to the Hugging Face Hub") from None

    api = HfApi(endpoint=endpoint, token=token, library_name="interp-agent", library_version=__version__)
    where = f"the Hub at {api.endpoint}"
    operations = [
        CommitOperationAdd(path_in_repo=f.path_in_repo, path_or_fileobj=str(f.local_path)) for f in plan.files
    ]
    operations.append(CommitOperationAdd(path_in_repo=CARD_NAME, path_or_fileobj=card))
    try:
        repo_url = api.create_repo(repo_id, repo_type=repo_type, private=private, exist_ok=True)
        commit = api.create_commit(repo_id, operations, commit_message=message, repo_type=repo_type)
    except HfHubHTTPError as exc:
        raise _http_error(exc, where, repo_id, repo_type, token) from None
    except OfflineModeIsEnabled:
        raise ValidationError(
            "huggingface_hub is in offline mode (HF_HUB_OFFLINE was set when it was imported)",
            hint="unset HF_HUB_OFFLINE and start the command or server again",
        ) from None
    except _network_errors() as exc:
        raise RemoteServiceError(
            f"could not reach {where}: {type(exc).__name__}: {_scrub(str(exc), token)}",
            hint="check the network, or HF_ENDPOINT if you use a mirror",
        ) from None
    except ValueError as exc:  # huggingface_hub reports a card the Hub rejects as ValueError
        raise RemoteServiceError(f"{where} rejected the upload to {repo_id}: {_scrub(str(exc), token)}") from None
    return str(repo_url), commit


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
    token = os.environ.get(TOKEN_ENV, "").strip()
    endpoint = os.environ.get("HF_ENDPOINT", "").strip().rstrip("/") or None
    result = _base_result(plan, card, repo_id=repo_id, repo_type=repo_type, dry_run=dry_run, private=private,
                          token=token, endpoint=endpoint)
    n_files = len(result["files"])
    if dry_run:
        result["message"] = (
            f"dry run: nothing was uploaded; {n_files} files ({result['total_bytes']:,} bytes) would go to "
            f"{repo_type} repo {repo_id}" + ("" if token else f"; set {TOKEN_ENV} before a real upload")
        )
        return result
    _check_can_upload(repo_id, token)
    message = commit_message or f"interp-agent {__version__}: publish {plan.folder.name} ({n_files} files)"
    repo_url, commit = _commit(plan, card.encode("utf-8"), message, repo_id=repo_id, repo_type=repo_type,
                               private=private, token=token, endpoint=endpoint)
    result.update(
        uploaded=True,
        repo_url=repo_url,
        commit_url=commit.commit_url,
        commit_oid=commit.oid,
        message=f"uploaded {n_files} files ({result['total_bytes']:,} bytes) to {repo_type} repo {repo_id} "
        "in one commit" + ("; private applies only when the repo is created" if private else ""),
    )
    return result


__all__ = [
    "CARD_NAME",
    "REPO_TYPES",
    "TOKEN_ENV",
    "PlannedFile",
    "PublishPlan",
    "RepoType",
    "SkippedFile",
    "check_repo",
    "plan_publish",
    "publish",
    "render_card",
]
