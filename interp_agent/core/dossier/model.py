"""A dossier's value objects: the dossier, its claims, their evidence and the runs behind it.

A :class:`Dossier` is the durable record of one investigation: the model(s), the criterion
and the :class:`Claim` s made about features, each with :class:`Evidence` graded on one
ladder (:data:`RUNGS`, lowest first)::

    imported → correlational → held_out → causal → explained → transferred

Each claim kind has the rungs its evidence can stand on (:data:`KIND_RUNGS`); how a claim is
graded lives in :mod:`.grading`. Every object is a frozen dataclass whose ``__post_init__``
checks what a hand edit could break; :mod:`.codec` turns them into JSON and back.
"""

from __future__ import annotations

import hashlib
import json
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field, replace
from datetime import datetime, timezone
from typing import Any, Literal

from interp_agent.core.errors import ValidationError

SCHEMA_VERSION = "interp-agent.dossier.v1"

Rung = Literal["imported", "correlational", "held_out", "causal", "explained", "transferred"]
RUNGS: tuple[Rung, ...] = ("imported", "correlational", "held_out", "causal", "explained", "transferred")
"""The evidence ladder, lowest first: imported (stated elsewhere, not measured here), correlational
(training-split association), held_out (association on held-out prompts), causal (an intervention
beating its controls), explained (an explanation scored on held-out text, beating its null),
transferred (a counterpart in another model)."""

ClaimKind = Literal["tracks", "causes", "means", "corresponds"]
CLAIM_KINDS: tuple[ClaimKind, ...] = ("tracks", "causes", "means", "corresponds")

KIND_RUNGS: dict[ClaimKind, tuple[Rung, ...]] = {
    "tracks": ("imported", "correlational", "held_out", "causal"),
    "causes": ("causal",),
    "means": ("imported", "explained"),
    "corresponds": ("transferred",),
}
"""The rungs a claim of each kind can hold evidence at: "F tracks C" is measured by inspect (its
causal block included), "F causes C" by intervene, "F means X" by explain (or stated by an imported
label), "F corresponds to G" by match (and validate_matches, with interventional evidence)."""

CRITERION_KINDS: tuple[ClaimKind, ...] = ("tracks", "causes")
"""Kinds whose statement names the criterion; "means" and "corresponds" are about the model(s) alone."""

Stance = Literal["supports", "contradicts"]
STANCES: tuple[Stance, ...] = ("supports", "contradicts")

Provenance = Literal["correlational", "interventional", "synthetic", "imported"]
PROVENANCES: tuple[Provenance, ...] = ("correlational", "interventional", "synthetic", "imported")
"""Where the numbers of a piece of evidence come from (``core.artifacts.Provenance``, less ``semantic``)."""

RunKind = Literal["inspect", "intervene", "explain", "match", "validate_matches"]
RUN_KINDS: tuple[RunKind, ...] = ("inspect", "intervene", "explain", "match", "validate_matches")

Tool = Literal["inspect", "intervene", "explain", "match", "score_explanation", "judge_explanation",
               "validate_matches"]
TOOLS: tuple[Tool, ...] = ("inspect", "intervene", "explain", "match", "score_explanation", "judge_explanation",
                           "validate_matches")

Scalar = str | int | float | bool | None


def now_utc() -> str:
    """The current time as ISO 8601 UTC to the second: the form every ``filed_at`` and ``created`` takes."""
    return datetime.now(timezone.utc).replace(microsecond=0).isoformat()


def _digest(parts: Any, n: int = 12) -> str:
    return hashlib.sha256(json.dumps(parts, sort_keys=True, ensure_ascii=True).encode()).hexdigest()[:n]


class DossierFieldError(ValidationError):
    """A field of a dossier object is missing, unknown or invalid; ``field`` is its path (``claims[2].kind``)."""

    def __init__(self, field: str, detail: str, *, hint: str | None = None) -> None:
        super().__init__(f"{field}: {detail}", hint=hint)
        self.field = field
        self.detail = detail

    def under(self, prefix: str, *, hint: str | None = None) -> DossierFieldError:
        """The same error with its path inside the object at ``prefix``."""
        if not prefix:
            return DossierFieldError(self.field, self.detail, hint=hint or self.hint)
        joined = f"{prefix}{self.field}" if self.field.startswith("[") else f"{prefix}.{self.field}"
        return DossierFieldError(joined, self.detail, hint=hint or self.hint)


def _fail(field_name: str, value: Any, fix: str) -> DossierFieldError:
    return DossierFieldError(field_name, f"found {value!r}; {fix}")


def _check_choice(field_name: str, value: Any, choices: tuple[str, ...]) -> None:
    if value not in choices:
        raise _fail(field_name, value, f"use one of {list(choices)}")


def _check_text(field_name: str, value: Any, *, optional: bool = False) -> None:
    if optional and value is None:
        return
    if not isinstance(value, str) or not value.strip():
        raise _fail(field_name, value, "give a non-empty string")


def _check_time(field_name: str, value: Any) -> None:
    _check_text(field_name, value)
    try:
        datetime.fromisoformat(value)
    except ValueError:
        raise _fail(field_name, value, "write an ISO 8601 time, e.g. 2026-01-31T12:00:00+00:00") from None


def _is_scalar(value: Any) -> bool:
    if isinstance(value, float):
        return value == value and value not in (float("inf"), float("-inf"))
    return value is None or isinstance(value, (str, int, bool))


def check_numbers(field_name: str, numbers: Any) -> dict[str, Any]:
    """``numbers`` as a plain dict of JSON scalars and lists of scalars (an interval); ValidationError otherwise.

    Kept flat so a dossier stays readable and editable by hand: one number per key.
    """
    if not isinstance(numbers, Mapping):
        raise _fail(field_name, numbers, "give an object of numbers")
    out: dict[str, Any] = {}
    for key, value in numbers.items():
        if not isinstance(key, str) or not key:
            raise _fail(field_name, key, "keys must be non-empty strings")
        if isinstance(value, (list, tuple)) and all(_is_scalar(v) for v in value):
            out[key] = list(value)
        elif _is_scalar(value):
            out[key] = value
        else:
            raise _fail(f"{field_name}.{key}", value, "use a finite number, string, boolean, null or a list of those")
    return out


@dataclass(frozen=True, slots=True)
class RunRef:
    """Where a piece of evidence was read from."""

    folder: str
    """The run folder: relative to the workspace when inside it (``runs/<run_id>``), else absolute."""
    file: str
    """The file of the folder the numbers come from: ``report.json``, ``summary.json``, ``explanations.jsonl``,
    ``matches.json``."""
    run_id: str | None = None
    """The job's run id, when the run was a job (its folder is ``runs/<run_id>``); None for a CLI run."""

    def __post_init__(self) -> None:
        _check_text("folder", self.folder)
        _check_text("file", self.file)
        if "/" in self.file or self.file in (".", ".."):
            raise _fail("file", self.file, "name a file inside the run folder, without a path")
        _check_text("run_id", self.run_id, optional=True)

    @property
    def path(self) -> str:
        """``folder/file``, as stored."""
        return f"{self.folder.rstrip('/')}/{self.file}"


@dataclass(frozen=True, slots=True)
class Evidence:
    """One measurement bearing on a claim, with the run and the numbers behind it."""

    id: str
    """Stable id of the measurement: a hash of rung, stance, weak, run and numbers, so filing the same run twice
    adds nothing (see :meth:`new`)."""
    rung: Rung
    stance: Stance
    """supports or contradicts the claim at ``rung``; contradicting evidence is kept, never overwritten."""
    summary: str
    """What was measured, in a line, with the numbers that decide the stance."""
    numbers: dict[str, Any]
    """The numbers, flat: ``{"auroc": 0.93, "auroc_ci95": [0.88, 0.96], "n_prompts": 29, ...}``."""
    run: RunRef
    provenance: Provenance
    tool: Tool
    """The tool whose run this is."""
    filed_at: str
    """ISO 8601 UTC time it was filed."""
    weak: bool = False
    """Supports, but short of the rung's bar (e.g. an intervene verdict ``weak``): shown, never counted as reaching
    the rung."""
    note: str = ""
    """A caveat a reader should see (why it is weak, what the run could not test)."""

    def __post_init__(self) -> None:
        _check_text("id", self.id)
        _check_choice("rung", self.rung, RUNGS)
        _check_choice("stance", self.stance, STANCES)
        _check_text("summary", self.summary)
        object.__setattr__(self, "numbers", check_numbers("numbers", self.numbers))
        if not isinstance(self.run, RunRef):
            raise _fail("run", self.run, "give a RunRef {folder, file, run_id}")
        _check_choice("provenance", self.provenance, PROVENANCES)
        _check_choice("tool", self.tool, TOOLS)
        _check_time("filed_at", self.filed_at)
        if not isinstance(self.weak, bool):
            raise _fail("weak", self.weak, "give true or false")
        if self.weak and self.stance != "supports":
            raise _fail("weak", self.weak, "only supporting evidence can be weak; contradicting evidence is not")
        if not isinstance(self.note, str):
            raise _fail("note", self.note, "give a string (empty for none)")

    @classmethod
    def new(cls, rung: Rung, stance: Stance, summary: str, numbers: Mapping[str, Any], run: RunRef, *,
            provenance: Provenance, tool: Tool, weak: bool = False, note: str = "",
            filed_at: str | None = None) -> Evidence:
        """Evidence with its id derived from what was measured (the time of filing and the note do not count)."""
        clean = check_numbers("numbers", numbers)
        key = [rung, stance, weak, run.folder, run.file, run.run_id, tool, provenance, clean]
        return cls(f"ev-{_digest(key)}", rung, stance, summary, clean, run, provenance, tool,
                   filed_at or now_utc(), weak, note)

    @property
    def counts(self) -> bool:
        """True when it counts toward reaching its rung: full (not weak) support."""
        return self.stance == "supports" and not self.weak


def claim_id(kind: ClaimKind, model: str, feature_id: str, *, criterion: str | None = None,
             other_model: str | None = None, other_feature_id: str | None = None,
             explanation: str | None = None) -> str:
    """The stable id of a claim: its kind and a hash of what it is about.

    Derived from kind, model and feature (both sides of a correspondence, in a fixed order, so
    matching A to B or B to A makes one claim), the criterion (tracks and causes) and the
    explanation text (means: another explanation of the same feature is another claim, and its
    scores do not carry over). Criterion and explanation are compared with case folded and
    whitespace collapsed.
    """
    def norm(text: str | None) -> str | None:
        return None if text is None else " ".join(text.casefold().split())

    sides = sorted([[model, feature_id], [other_model or "", other_feature_id or ""]]) \
        if kind == "corresponds" else [[model, feature_id]]
    return f"{kind}-{_digest([kind, sides, norm(criterion), norm(explanation)])}"


def claim_text(kind: ClaimKind, model: str, feature_id: str, *, criterion: str | None = None,
               other_model: str | None = None, other_feature_id: str | None = None,
               explanation: str | None = None) -> str:
    """The claim in words: ``L15:D3 in smollm2-135m tracks "<criterion>"``."""
    subject = f"{feature_id} in {model}"
    if kind == "tracks":
        return f"{subject} tracks the criterion \"{criterion}\""
    if kind == "causes":
        return f"{subject} causes the criterion \"{criterion}\""
    if kind == "means":
        return f"{subject} means: {explanation}"
    return f"{subject} corresponds to {other_feature_id} in {other_model}"


@dataclass(frozen=True, slots=True)
class Claim:
    """A statement about a feature, and the evidence filed for and against it."""

    id: str
    """Stable id (:func:`claim_id`): filing the same claim again adds evidence to it."""
    kind: ClaimKind
    model: str
    feature_id: str
    text: str
    """The claim in words (:func:`claim_text`); may be edited by hand."""
    criterion: str | None = None
    """The criterion (tracks and causes only)."""
    other_model: str | None = None
    """corresponds only: the model of the counterpart."""
    other_feature_id: str | None = None
    """corresponds only: the counterpart feature."""
    explanation: str | None = None
    """means only: what the feature is said to mean."""
    evidence: tuple[Evidence, ...] = ()
    """In the order filed."""

    def __post_init__(self) -> None:
        _check_choice("kind", self.kind, CLAIM_KINDS)
        for name in ("model", "feature_id", "text"):
            _check_text(name, getattr(self, name))
        self._check_kind_fields()
        object.__setattr__(self, "evidence", tuple(self.evidence))
        seen: set[str] = set()
        for i, ev in enumerate(self.evidence):
            if not isinstance(ev, Evidence):
                raise _fail(f"evidence[{i}]", ev, "give an Evidence")
            if ev.rung not in KIND_RUNGS[self.kind]:
                raise _fail(f"evidence[{i}].rung", ev.rung,
                            f"a '{self.kind}' claim holds evidence at {list(KIND_RUNGS[self.kind])} only")
            if ev.id in seen:
                raise _fail(f"evidence[{i}].id", ev.id, "evidence ids must be unique within a claim")
            seen.add(ev.id)
        expected = claim_id(self.kind, self.model, self.feature_id, criterion=self.criterion,
                            other_model=self.other_model, other_feature_id=self.other_feature_id,
                            explanation=self.explanation)
        if self.id != expected:
            raise _fail("id", self.id, f"a claim's id is derived from its kind, model, feature(s), criterion and "
                        f"explanation, which give {expected!r}: restore those fields, or set id to {expected!r}")

    def _check_kind_fields(self) -> None:
        pair = self.kind == "corresponds"
        for name in ("other_model", "other_feature_id"):
            value = getattr(self, name)
            if pair:
                _check_text(name, value)
            elif value is not None:
                raise _fail(name, value, f"only a 'corresponds' claim has {name}; a '{self.kind}' claim has null")
        if self.kind == "means":
            _check_text("explanation", self.explanation)
        elif self.explanation is not None:
            raise _fail("explanation", self.explanation, "only a 'means' claim has an explanation")
        if self.kind in CRITERION_KINDS:
            _check_text("criterion", self.criterion)
        elif self.criterion is not None:
            raise _fail("criterion", self.criterion, f"a '{self.kind}' claim is about the model(s), not the "
                        "criterion: set it to null")

    @classmethod
    def new(cls, kind: ClaimKind, model: str, feature_id: str, *, criterion: str | None = None,
            other_model: str | None = None, other_feature_id: str | None = None,
            explanation: str | None = None) -> Claim:
        """A claim without evidence, its id and text derived from what it is about."""
        about: dict[str, Any] = {"criterion": criterion if kind in CRITERION_KINDS else None,
                                 "other_model": other_model, "other_feature_id": other_feature_id,
                                 "explanation": explanation}
        return cls(claim_id(kind, model, feature_id, **about), kind, model, feature_id,
                   claim_text(kind, model, feature_id, **about), **about)

    def with_evidence(self, items: Iterable[Evidence]) -> tuple[Claim, int]:
        """This claim with the items it does not hold yet appended (by id); and how many were new."""
        have = {ev.id for ev in self.evidence}
        new: list[Evidence] = []
        for ev in items:
            if ev.id not in have:
                have.add(ev.id)
                new.append(ev)
        return (replace(self, evidence=self.evidence + tuple(new)) if new else self), len(new)

    def about(self, model: str, feature_id: str) -> bool:
        """True when the claim is about ``feature_id`` of ``model`` (either side of a correspondence)."""
        return (self.model, self.feature_id) == (model, feature_id) or \
            (self.other_model, self.other_feature_id) == (model, feature_id)


@dataclass(frozen=True, slots=True)
class RunRecord:
    """A run filed into the dossier: what the plan reads to cost the next calls and to name earlier runs."""

    run: RunRef
    kind: RunKind
    models: tuple[str, ...]
    """The model(s) it measured: one, or two for match."""
    filed_at: str
    backend: str | None = None
    """inspect only: the report's backend (hf, saelens, records, features, toy, neuronpedia)."""
    seconds: float | None = None
    """Wall-clock seconds the run took, when known (given at filing, or the run's own timings)."""
    forward_passes: int | None = None
    """Model forward passes (sequences) the run needed, estimated from its settings; 0 when no model ran."""
    numbers: dict[str, Any] = field(default_factory=dict)
    """Facts of the run the plan reuses: n_prompts, hookpoints, mode, n_contexts, ..."""

    def __post_init__(self) -> None:
        if not isinstance(self.run, RunRef):
            raise _fail("run", self.run, "give a RunRef {folder, file, run_id}")
        _check_choice("kind", self.kind, RUN_KINDS)
        object.__setattr__(self, "models", tuple(self.models))
        if not self.models or not all(isinstance(m, str) and m for m in self.models):
            raise _fail("models", self.models, "name the model(s) the run measured")
        _check_time("filed_at", self.filed_at)
        _check_text("backend", self.backend, optional=True)
        if self.seconds is not None and (isinstance(self.seconds, bool) or not isinstance(self.seconds, (int, float))
                                         or not 0 <= self.seconds < float("inf")):
            raise _fail("seconds", self.seconds, "give a number of seconds >= 0, or null")
        if self.forward_passes is not None and (isinstance(self.forward_passes, bool)
                                                or not isinstance(self.forward_passes, int) or self.forward_passes < 0):
            raise _fail("forward_passes", self.forward_passes, "give a whole number >= 0, or null")
        object.__setattr__(self, "numbers", check_numbers("numbers", self.numbers))


@dataclass(frozen=True, slots=True)
class Dossier:
    """The record of one investigation."""

    name: str
    """The dossier's name: its file is ``dossiers/<name>.json`` of the workspace."""
    created: str
    criterion: str | None = None
    """The criterion under investigation; None until the first run that names one is filed."""
    models: tuple[str, ...] = ()
    """Models of the investigation, in the order first filed."""
    claims: tuple[Claim, ...] = ()
    runs: tuple[RunRecord, ...] = ()
    """Runs filed, in the order filed."""
    schema_version: str = SCHEMA_VERSION

    def __post_init__(self) -> None:
        from interp_agent.core.dossier.names import check_name

        try:
            check_name(self.name)
        except ValidationError as exc:
            raise DossierFieldError("name", exc.message, hint=exc.hint) from None
        _check_time("created", self.created)
        _check_text("criterion", self.criterion, optional=True)
        if self.schema_version != SCHEMA_VERSION:
            raise _fail("schema_version", self.schema_version, f"this version reads '{SCHEMA_VERSION}'")
        object.__setattr__(self, "models", tuple(self.models))
        object.__setattr__(self, "claims", tuple(self.claims))
        object.__setattr__(self, "runs", tuple(self.runs))
        if len(set(self.models)) != len(self.models):
            raise _fail("models", list(self.models), "list each model once")
        ids = [c.id for c in self.claims]
        if len(set(ids)) != len(ids):
            dup = next(i for i in ids if ids.count(i) > 1)
            raise _fail("claims", dup, "each claim id appears once; merge the evidence of the two entries")

    @classmethod
    def empty(cls, name: str, *, criterion: str | None = None, models: Iterable[str] = ()) -> Dossier:
        """A new dossier with no claims."""
        return cls(name, now_utc(), criterion, tuple(models))

    def claim(self, claim_id_: str) -> Claim | None:
        """The claim with this id, or None."""
        return next((c for c in self.claims if c.id == claim_id_), None)

    def claims_about(self, model: str, feature_id: str) -> tuple[Claim, ...]:
        """Every claim about ``feature_id`` of ``model``, correspondences included."""
        return tuple(c for c in self.claims if c.about(model, feature_id))

    def add(self, claim: Claim, evidence: Iterable[Evidence] = ()) -> Dossier:
        """This dossier with ``claim`` (merged by id into the one it holds, if any) and ``evidence`` on it."""
        held = self.claim(claim.id)
        merged, _ = (held or claim).with_evidence([*(claim.evidence if held else ()), *evidence])
        claims = tuple(merged if c.id == claim.id else c for c in self.claims) if held else self.claims + (merged,)
        models = tuple(dict.fromkeys(self.models + tuple(m for m in (claim.model, claim.other_model) if m)))
        return replace(self, claims=claims, models=models)

    def features(self) -> tuple[tuple[str, str], ...]:
        """Every (model, feature_id) some claim is about, in the order first filed."""
        seen: dict[tuple[str, str], None] = {}
        for c in self.claims:
            seen.setdefault((c.model, c.feature_id), None)
            if c.other_model is not None and c.other_feature_id is not None:
                seen.setdefault((c.other_model, c.other_feature_id), None)
        return tuple(seen)
