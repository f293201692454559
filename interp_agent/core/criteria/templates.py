"""Template specs: per-class patterns with ``{slot}`` fillers, expanded deterministically into prompts.

A spec is a JSON or YAML file::

    {"criterion": "the text is written in French",          # optional; the call's criterion wins
     "slots": {"city": ["Paris", "Lyon"], "n": ["3", "12"]},
     "positive": ["Nous partons pour {city} dans {n} jours.", "..."],
     "negative": ["We leave for {city} in {n} days.", "..."]}

Expansion draws, for each prompt, a pattern (round-robin over the class's patterns) and a value
for each of its slots from a generator seeded with ``seed``; repeated texts are drawn again. A
pattern's fixed words are the same in every prompt it makes, which is exactly what the lexical
gate looks for: vary the patterns, or put the varying words in slots.
"""

from __future__ import annotations

import hashlib
import json
import string
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from interp_agent.core.errors import InputFileError, ValidationError, arg

MAX_DRAWS_PER_PROMPT = 50
"""Draws tried per wanted prompt before expansion stops short (the slots cannot make more distinct texts)."""


@dataclass(frozen=True, slots=True)
class TemplateSpec:
    """A parsed template spec."""

    positive: tuple[str, ...]
    """Patterns of prompts where the criterion holds."""
    negative: tuple[str, ...]
    """Patterns of prompts where it does not."""
    slots: dict[str, tuple[str, ...]]
    """Values of each slot."""
    criterion: str | None
    """The criterion the spec names, if any."""
    sha256: str
    """SHA-256 of the spec's bytes (recorded in the set's provenance)."""
    path: str | None = None
    """The file it was read from."""


def _fields(pattern: str) -> list[str]:
    try:
        return [name for _, name, _, _ in string.Formatter().parse(pattern) if name is not None]
    except ValueError as exc:
        raise ValidationError(f"template pattern {pattern!r} is malformed: {exc}",
                              hint="write slots as {name}; double a literal brace: {{ }}") from exc


def parse_template(raw: Any, *, source: str = "template", digest: str | None = None) -> TemplateSpec:
    """A spec from its parsed JSON/YAML object.

    Raises:
        ValidationError: a class has no patterns, a slot has no values, or a pattern names an unknown slot.
    """
    if not isinstance(raw, dict):
        raise ValidationError(f"{source}: a template spec is an object with 'positive', 'negative' and 'slots'")
    slots_raw = raw.get("slots") or {}
    if not isinstance(slots_raw, dict):
        raise ValidationError(f"{source}: 'slots' must map each slot name to a list of values")
    slots: dict[str, tuple[str, ...]] = {}
    for name, values in slots_raw.items():
        if not isinstance(values, list) or not values or not all(isinstance(v, (str, int, float)) for v in values):
            raise ValidationError(f"{source}: slot {name!r} needs a non-empty list of strings, got {values!r}")
        slots[str(name)] = tuple(str(v) for v in values)
    classes: dict[str, tuple[str, ...]] = {}
    for cls in ("positive", "negative"):
        patterns = raw.get(cls)
        if not isinstance(patterns, list) or not patterns or not all(isinstance(p, str) and p.strip()
                                                                     for p in patterns):
            raise ValidationError(f"{source}: {cls!r} needs a non-empty list of pattern strings")
        for p in patterns:
            unknown = [f for f in _fields(p) if f not in slots]
            if unknown:
                raise ValidationError(f"{source}: {cls} pattern {p!r} names unknown slot(s) {unknown}",
                                      hint=f"define them under 'slots' (defined: {sorted(slots) or 'none'})")
        classes[cls] = tuple(patterns)
    criterion = raw.get("criterion")
    digest = digest or hashlib.sha256(json.dumps(raw, sort_keys=True).encode()).hexdigest()
    return TemplateSpec(classes["positive"], classes["negative"], slots,
                        criterion if isinstance(criterion, str) and criterion.strip() else None, digest)


def load_template(path: str | Path) -> TemplateSpec:
    """Read a JSON (``.json``) or YAML (``.yaml``/``.yml``) template spec.

    Raises:
        InputFileError: the file is missing, unreadable or not valid JSON/YAML.
        ValidationError: the spec is malformed (see :func:`parse_template`).
    """
    p = Path(path)
    try:
        data = p.read_bytes()
    except OSError as exc:
        raise InputFileError(p, f"cannot be read: {exc}", hint="give a JSON or YAML template spec") from exc
    try:
        if p.suffix.lower() in (".yaml", ".yml"):
            import yaml

            raw = yaml.safe_load(data.decode("utf-8"))
        else:
            raw = json.loads(data.decode("utf-8"))
    except Exception as exc:  # noqa: BLE001 - json and yaml raise different error types; both are a bad file
        raise InputFileError(p, f"is not valid {'YAML' if p.suffix.lower() in ('.yaml', '.yml') else 'JSON'}: "
                             f"{exc}") from exc
    spec = parse_template(raw, source=str(p), digest=hashlib.sha256(data).hexdigest())
    return TemplateSpec(spec.positive, spec.negative, spec.slots, spec.criterion, spec.sha256, str(p))


def _expand_class(patterns: tuple[str, ...], slots: dict[str, tuple[str, ...]], n: int,
                  rng: np.random.Generator, taken: set[str]) -> list[str]:
    out: list[str] = []
    for draw in range(n * MAX_DRAWS_PER_PROMPT):
        if len(out) == n:
            break
        pattern = patterns[draw % len(patterns)]
        values = {f: slots[f][int(rng.integers(len(slots[f])))] for f in _fields(pattern)}
        text = pattern.format(**values)
        key = " ".join(text.casefold().split())
        if key not in taken:
            taken.add(key)
            out.append(text)
    return out


def expand_template(spec: TemplateSpec, n_per_class: int, seed: int = 0) -> tuple[list[str], list[str]]:
    """``(positives, negatives)``: up to ``n_per_class`` distinct texts of each class, the same for the same seed.

    Raises:
        ValidationError: ``n_per_class`` < 1, or the slots cannot make that many distinct texts of a class.
    """
    if n_per_class < 1:
        raise ValidationError(f"{arg('n_per_class', n_per_class)} must be at least 1")
    rng = np.random.default_rng(seed)
    taken: set[str] = set()
    pos = _expand_class(spec.positive, spec.slots, n_per_class, rng, taken)
    neg = _expand_class(spec.negative, spec.slots, n_per_class, rng, taken)
    for cls, got in (("positive", pos), ("negative", neg)):
        if len(got) < n_per_class:
            raise ValidationError(
                f"the template makes only {len(got)} distinct {cls} texts, {arg('n_per_class', n_per_class)} wanted",
                hint="add patterns or slot values, or ask for fewer")
    return pos, neg
