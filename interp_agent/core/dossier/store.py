"""Dossier files: one human-readable JSON file per dossier, changed only under an exclusive lock.

A dossier lives in ``WORKSPACE/dossiers/NAME.json``. Every change is a locked
read-modify-write: an exclusive ``fcntl.flock`` on the lock file beside it
(``.NAME.json.lock``), read and validate the file, apply the change, write a temporary file in
the same folder and ``os.replace`` it onto the dossier (``core.artifacts.atomic_open``). Two
processes filing at once therefore take turns, and each sees the other's claims; a reader
without the lock sees the old file or the new one, never half of one.

A file edited by hand into an invalid state is refused with an error naming the file and the
line (bad JSON) or the field path (a bad value), and is never overwritten. Run folders are
stored relative to the workspace; evidence whose run folder or file has gone is flagged by
:meth:`DossierStore.missing_runs`, never dropped.
"""

from __future__ import annotations

import fcntl
import json
from collections.abc import Callable, Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from interp_agent.core.artifacts import atomic_open
from interp_agent.core.dossier.codec import EDIT_HINT, dossier_from_dict, dumps
from interp_agent.core.dossier.model import Dossier, RunRef
from interp_agent.core.dossier.names import check_name
from interp_agent.core.errors import InputFileError, ValidationError

DOSSIERS_DIR = "dossiers"
"""The workspace folder of the dossier files."""
SUFFIX = ".json"


@dataclass(frozen=True, slots=True)
class MissingRun:
    """A run a dossier cites whose folder or file is no longer there."""

    folder: str
    file: str
    reason: str
    """``run folder not found`` or ``file not found in the run folder``."""
    claim_id: str | None = None
    """The claim whose evidence cites it; None for an entry of the dossier's ``runs``."""
    evidence_id: str | None = None

    def to_dict(self) -> dict[str, Any]:
        """``{folder, file, reason, claim_id, evidence_id}``."""
        return {"folder": self.folder, "file": self.file, "reason": self.reason, "claim_id": self.claim_id,
                "evidence_id": self.evidence_id}


class DossierStore:
    """One dossier file and its lock; the workspace its run folders are relative to."""

    __slots__ = ("path", "name", "workspace")

    def __init__(self, path: str | Path, *, workspace: str | Path | None = None) -> None:
        """Name the dossier at ``path`` (``.../dossiers/NAME.json``); nothing is read or written.

        Args:
            path: the dossier file; its stem is the dossier's name and must be a safe file name.
            workspace: the folder run folders are stored relative to; default: the folder above
                ``dossiers/`` when the file is in one, else the file's own folder.

        Raises:
            ValidationError: the file name is not ``NAME.json`` with a valid name.
        """
        path = Path(path).expanduser()
        if path.suffix != SUFFIX:
            raise ValidationError(f"dossier file {str(path)!r} must end in {SUFFIX}",
                                  hint="dossiers live in WORKSPACE/dossiers/NAME.json")
        self.name = check_name(path.stem)
        self.path = path.absolute()
        if workspace is None:
            workspace = self.path.parent.parent if self.path.parent.name == DOSSIERS_DIR else self.path.parent
        self.workspace = Path(workspace).expanduser().resolve()

    @classmethod
    def in_workspace(cls, workspace: str | Path, name: str) -> DossierStore:
        """The store of dossier ``name`` in ``workspace`` (``workspace/dossiers/name.json``)."""
        return cls(Path(workspace) / DOSSIERS_DIR / f"{check_name(name)}{SUFFIX}", workspace=workspace)

    @classmethod
    def check_path(cls, path: str | Path) -> DossierStore:
        """The store of ``path``, after checking its name and, when the file exists, that it reads cleanly.

        For a tool to call before starting a job, so that a bad name or a broken file fails the call
        at once instead of the job at its end. Creates nothing.

        Raises:
            ValidationError: the name is not a safe file name.
            InputFileError: the file exists and is not a valid dossier (names file, line or field).
        """
        store = cls(path)
        if store.path.exists():
            store.read()
        return store

    @classmethod
    def open(cls, path: str | Path, *, criterion: str | None = None, model: str | None = None) -> DossierStore:
        """The store of ``path``, creating an empty dossier there when there is none (under the lock).

        Args:
            criterion: the criterion text of a new dossier (not a pack's name: runs are checked against it);
                None or empty: set by the first run filed that names one. An existing dossier keeps its own.
            model: the model of a new dossier; more are added as runs of them are filed.

        Raises:
            ValidationError: the name is not a safe file name.
            InputFileError: the file exists and is not a valid dossier.
        """
        store = cls.check_path(path)
        store.update(lambda d: d, criterion=criterion or None, models=(model,) if model else ())
        return store

    @property
    def lock_path(self) -> Path:
        """The lock file beside the dossier (kept: removing a lock file others may hold open would race)."""
        return self.path.with_name(f".{self.path.name}.lock")

    def exists(self) -> bool:
        """True when the dossier file exists."""
        return self.path.is_file()

    def read(self) -> Dossier:
        """The dossier, validated (no lock needed: files are replaced whole).

        Raises:
            InputFileError: no such file, or it is not valid JSON (names the line) or not a valid
                dossier (names the field path); the hint says what to do.
        """
        if not self.path.is_file():
            raise InputFileError(self.path, "no such dossier", hint=f"file a run into it (dossier '{self.name}') "
                                 "to create it, or check the name")
        try:
            raw = json.loads(self.path.read_text(encoding="utf-8"))
        except UnicodeDecodeError as exc:
            raise InputFileError(self.path, f"is not UTF-8 text: {exc.reason}", hint=EDIT_HINT) from None
        except OSError as exc:
            raise InputFileError(self.path, f"cannot be read: {exc.strerror or exc}") from None
        except json.JSONDecodeError as exc:
            raise InputFileError(self.path, f"is not valid JSON: {exc.msg} (column {exc.colno})", line=exc.lineno,
                                 hint="fix the JSON at that line (a missing comma or quote, a trailing comma), "
                                      "or restore the file from a copy") from None
        dossier = dossier_from_dict(raw, source=self.path)
        if dossier.name != self.name:
            raise InputFileError(self.path, f"names the dossier {dossier.name!r}, but its file is {self.path.name}",
                                 field="name", hint=f"set name to {self.name!r}, or rename the file")
        return dossier

    @contextmanager
    def locked(self) -> Iterator[None]:
        """Hold the dossier's exclusive lock for the block (blocks until other holders let go)."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        with open(self.lock_path, "a+b") as fh:
            fcntl.flock(fh.fileno(), fcntl.LOCK_EX)
            try:
                yield
            finally:
                fcntl.flock(fh.fileno(), fcntl.LOCK_UN)

    def update(self, change: Callable[[Dossier], Dossier], *, criterion: str | None = None,
               models: tuple[str, ...] = ()) -> Dossier:
        """Apply ``change`` to the dossier under the lock and write the result atomically; returns it.

        ``change`` gets the current dossier (a new empty one, with ``criterion`` and ``models``, when the
        file does not exist yet) and returns the new one; returning it unchanged writes nothing (unless
        the file is new).

        Raises:
            InputFileError: the existing file is not a valid dossier; it is left as it is.
        """
        with self.locked():
            is_new = not self.path.is_file()
            current = Dossier.empty(self.name, criterion=criterion, models=models) if is_new else self.read()
            updated = change(current)
            if updated.name != self.name:
                raise ValidationError(f"a change renamed dossier {self.name!r} to {updated.name!r}")
            if is_new or updated != current:
                self._write(updated)
            return updated

    def _write(self, dossier: Dossier) -> None:
        text = dumps(dossier)
        with atomic_open(self.path) as fh:
            fh.write(text)

    # -- run folders ---------------------------------------------------------------------------

    def folder_of(self, folder: str | Path) -> str:
        """How a run folder is stored: relative to the workspace when inside it, else absolute."""
        path = Path(folder).expanduser().resolve()  # both resolved: a symlinked workspace still gives runs/<id>
        try:
            return path.relative_to(self.workspace).as_posix() or "."
        except ValueError:
            return path.as_posix()

    def resolve(self, ref: RunRef) -> Path:
        """The run folder ``ref`` names, as a path on this machine."""
        folder = Path(ref.folder)
        return folder if folder.is_absolute() else self.workspace / folder

    def run_exists(self, ref: RunRef) -> bool:
        """True when the run folder and the file ``ref`` names are both still there."""
        return (self.resolve(ref) / ref.file).is_file()

    def missing_runs(self, dossier: Dossier | None = None) -> tuple[MissingRun, ...]:
        """Every run the dossier cites (evidence and filed runs) whose folder or file is gone."""
        dossier = self.read() if dossier is None else dossier
        cited = [(c.id, ev.id, ev.run) for c in dossier.claims for ev in c.evidence]
        cited += [(None, None, r.run) for r in dossier.runs]
        out: list[MissingRun] = []
        for claim, evidence, ref in cited:
            if self.run_exists(ref):
                continue
            reason = "file not found in the run folder" if self.resolve(ref).is_dir() else "run folder not found"
            out.append(MissingRun(ref.folder, ref.file, reason, claim, evidence))
        return tuple(out)
