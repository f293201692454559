"""Path arguments: every one must resolve (symlinks followed) inside the workspace or a read root."""

from __future__ import annotations

from pathlib import Path

from interp_agent.core.errors import ValidationError


class PathOutsideWorkspace(ValidationError):
    """A path argument points outside the workspace and the configured read roots."""

    code = "path_outside_workspace"


def resolve_path(
    value: str, *, field: str, workspace: Path, read_roots: tuple[Path, ...], must_exist: bool = True
) -> Path:
    """Resolve ``value`` (relative to the workspace) and check where it lands.

    Raises:
        PathOutsideWorkspace: the resolved path is outside every allowed root.
        ValidationError: ``must_exist`` and nothing is there.
    """
    raw = Path(value).expanduser()
    path = (raw if raw.is_absolute() else workspace / raw).resolve()
    roots = (workspace.resolve(), *(r.resolve() for r in read_roots))
    if not any(path == root or path.is_relative_to(root) for root in roots):
        raise PathOutsideWorkspace(
            f"{field}: {value!r} resolves to {path}, outside the workspace {roots[0]}",
            hint="copy the file into the workspace, or start the server with --read-root DIR",
        )
    if must_exist and not path.exists():
        raise ValidationError(
            f"{field}: {value!r} does not exist (looked at {path})",
            hint="check the path; relative paths start at the workspace"
        )
    return path
