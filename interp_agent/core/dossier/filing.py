"""Filing a run into a dossier: read what it measured, then merge it in under the dossier's lock.

The run's files are read before the lock is taken (that can take a moment for a large
report); the merge itself is a locked read-modify-write (:meth:`DossierStore.update`), so runs
finishing together never lose each other's claims. Filing is idempotent: an evidence item is
identified by what it measured (``Evidence.id``), so filing the same run again adds nothing,
and a run filed again after it was rerun into the same folder adds its new numbers beside the
old ones. Contradicting evidence is kept like any other.
"""

from __future__ import annotations

from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from interp_agent.core.dossier.findings import DEFAULT_TOP, RunFindings, read_run
from interp_agent.core.dossier.grading import grade_claim
from interp_agent.core.dossier.model import Claim, Dossier, RunKind, RunRef, now_utc
from interp_agent.core.dossier.store import DossierStore
from interp_agent.core.errors import ValidationError


def _same_criterion(a: str, b: str) -> bool:
    return " ".join(a.casefold().split()) == " ".join(b.casefold().split())


@dataclass(frozen=True, slots=True)
class FilingResult:
    """What filing one run changed."""

    dossier: str
    kind: RunKind
    run: RunRef
    claims_added: tuple[str, ...]
    """Ids of the claims the run created."""
    claims_updated: tuple[str, ...]
    """Ids of existing claims that got new evidence."""
    evidence_added: int
    evidence_already_filed: int
    """Items the dossier already held (the run was filed before)."""
    grades: dict[str, str | None]
    """Grade (rung) of every claim the run bears on, after filing."""
    warnings: tuple[str, ...] = ()

    def to_dict(self) -> dict[str, Any]:
        """A JSON-ready summary (for a job's result and log)."""
        return {"dossier": self.dossier, "kind": self.kind,
                "run": {"run_id": self.run.run_id, "folder": self.run.folder, "file": self.run.file},
                "claims_added": list(self.claims_added), "claims_updated": list(self.claims_updated),
                "evidence_added": self.evidence_added, "evidence_already_filed": self.evidence_already_filed,
                "grades": dict(self.grades), "warnings": list(self.warnings)}


def _check_criterion(dossier: Dossier, found: RunFindings, allow_mismatch: bool) -> None:
    if found.criterion is None or dossier.criterion is None or allow_mismatch:
        return
    if not _same_criterion(found.criterion, dossier.criterion):
        raise ValidationError(
            f"the run measured the criterion {found.criterion!r}, but dossier {dossier.name!r} investigates "
            f"{dossier.criterion!r}",
            hint="file it into a dossier of its own criterion (a dossier has one), or rerun the step with this "
                 "dossier's criterion")


def apply_findings(dossier: Dossier, found: RunFindings, *, allow_criterion_mismatch: bool = False
                   ) -> tuple[Dossier, FilingResult]:
    """``dossier`` with the run's claims, evidence and run record merged in; and what changed.

    Raises:
        ValidationError: the run measured another criterion than the dossier's (unless allowed).
    """
    _check_criterion(dossier, found, allow_criterion_mismatch)
    claims: dict[str, Claim] = {c.id: c for c in dossier.claims}
    added: list[str] = []
    updated: list[str] = []
    n_new = n_old = 0
    for item in found.findings:
        base = claims.get(item.claim.id)
        if base is None:
            base = item.claim
            added.append(base.id)
        merged, n = base.with_evidence([item.evidence])
        claims[merged.id] = merged
        n_new, n_old = n_new + n, n_old + (1 - n)
        if n and merged.id not in added and merged.id not in updated:
            updated.append(merged.id)
    models = tuple(dict.fromkeys(dossier.models + found.record.models))
    key = (found.record.run.folder, found.record.run.file)
    runs = tuple(r for r in dossier.runs if (r.run.folder, r.run.file) != key) + (found.record,)
    new = replace(dossier, criterion=dossier.criterion or found.criterion, models=models,
                  claims=tuple(claims.values()), runs=runs)
    touched = dict.fromkeys(f.claim.id for f in found.findings)
    result = FilingResult(dossier.name, found.record.kind, found.record.run, tuple(added), tuple(updated), n_new,
                          n_old, {cid: grade_claim(claims[cid]).rung for cid in touched}, found.warnings)
    return new, result


def file_run(store_or_path: DossierStore | str | Path, kind: str, run_dir: str | Path, *,
             run_id: str | None = None, top: int = DEFAULT_TOP, elapsed_s: float | None = None,
             allow_criterion_mismatch: bool = False) -> FilingResult:
    """File what the run of ``kind`` in ``run_dir`` measured into a dossier (created if new).

    Args:
        store_or_path: the dossier: a store, or its file (``WORKSPACE/dossiers/NAME.json``).
        kind: ``inspect``, ``intervene``, ``explain``, ``match`` or ``validate_matches`` (``RUN_KINDS``; a
            string, as job and tool code carries it, checked here).
        run_dir: the run's folder (or the file it wrote: ``report.json``, ``summary.json``, ``explain.json``,
            a matches JSON of any name, ``validation.json``).
        run_id: the job's run id, when the run was a job; cited beside the folder.
        top: inspect only: how many of the report's top features to file (default 10).
        elapsed_s: the run's wall-clock seconds, when the caller timed it: what the plan's cost estimates
            learn from.
        allow_criterion_mismatch: file a run of another criterion than the dossier's all the same.

    Raises:
        InputFileError: the run folder is missing, lacks the kind's file, or a file is malformed; or the
            dossier file is not a valid dossier (it is left untouched).
        ValidationError: a bad kind, name or ``top``; a run of another criterion than the dossier's.
    """
    store = store_or_path if isinstance(store_or_path, DossierStore) else DossierStore(store_or_path)
    if store.path.exists():
        store.read()  # a broken dossier fails before the run is read
    found = read_run(kind, run_dir, folder_as=store.folder_of, run_id=run_id, top=top, elapsed_s=elapsed_s,
                     filed_at=now_utc())
    results: list[FilingResult] = []

    def change(dossier: Dossier) -> Dossier:
        new, result = apply_findings(dossier, found, allow_criterion_mismatch=allow_criterion_mismatch)
        results.append(result)
        return new

    store.update(change, criterion=found.criterion)
    return results[-1]
