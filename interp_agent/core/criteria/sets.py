"""A criterion as a set of scored prompts, and its calibration / held-out split.

A :class:`CriterionSet` comes from a scored-prompts file, from lists of positive and
negative examples, or from a built-in pack. :func:`split` divides it with the same
salted hash of ``prompt_id`` that ranking uses
(:func:`interp_agent.core.ranking.splits.assign_splits`), so a prompt is on the same
side of the split in every tool: calibration (``train``) prompts fit scorers and rank
features, held-out prompts only ever serve as evidence.
"""

from __future__ import annotations

import warnings
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Literal

from interp_agent.core.criteria.packs import (
    MIN_CLASS_SHARE,
    binary_labels,
    length_stats,
    load_pack,
    normalise_text,
)
from interp_agent.core.errors import EvidenceError, ValidationError
from interp_agent.core.formats.prompts import ScoredPrompt, read_scored_prompts
from interp_agent.core.ranking.heldout import PROMPT_COUNT_ADVICE, RECOMMENDED_PROMPTS_PER_CLASS
from interp_agent.core.ranking.splits import HELD_OUT, HELD_OUT_FRACTION, SPLIT_SALT, assign_splits, prompt_hashes

MIN_EXAMPLES = 8
"""Fewest positive (and negative) examples :func:`from_examples` accepts."""
ADVISED_EXAMPLES = RECOMMENDED_PROMPTS_PER_CLASS
"""Below this many examples per class :func:`from_examples` warns: the ranking's one advice on prompt counts
(:data:`interp_agent.core.ranking.heldout.RECOMMENDED_PROMPTS_PER_CLASS`, from the held-out power estimate)."""

Source = Literal["file", "examples", "pack"]


class CriterionWarning(UserWarning):
    """A criterion set is usable but weak (few examples, length confound, imbalance)."""


@dataclass(frozen=True, slots=True)
class CriterionSet:
    """A criterion and the scored prompts that define it."""

    criterion: str
    """The criterion in words."""
    prompts: tuple[ScoredPrompt, ...]
    """Scored prompts; criterion_score 1 where the criterion holds, 0 where it does not."""
    source: Source
    """Where the prompts came from: a user's file, example lists, or a built-in pack."""
    targets: tuple[str, ...] | None = None
    """Next-token strings that express the criterion (packs may give them), or None."""
    notes: tuple[str, ...] = ()
    """Warnings about the set's quality, kept for reports and tool outputs."""

    def __post_init__(self) -> None:
        if not self.criterion.strip():
            raise ValidationError("criterion must be non-empty text, got ''", hint="say what should hold, in words")
        if not self.prompts:
            raise ValidationError("a criterion set needs prompts, got none", hint="give positive and negative examples")
        ids = [p.prompt_id for p in self.prompts]
        if len(set(ids)) != len(ids):
            dup = next(i for i in ids if ids.count(i) > 1)
            raise ValidationError(f"prompt ids must be unique, {dup!r} repeats", hint="give each prompt its own id")

    @property
    def n_positive(self) -> int:
        """Prompts where the criterion holds."""
        return int(binary_labels(self.prompts).sum())

    @property
    def n_negative(self) -> int:
        """Prompts where the criterion does not hold."""
        return len(self.prompts) - self.n_positive


def _quality_notes(prompts: Sequence[ScoredPrompt]) -> list[str]:
    notes = []
    stats = length_stats(prompts)
    n = len(prompts)
    if stats.n_positive and stats.n_negative and stats.confounded():
        notes.append(
            f"possible length confound: {stats.describe()}; a feature that tracks length may look like the "
            "criterion, so match the lengths of positives and negatives"
        )
    if n and min(stats.n_positive, stats.n_negative) / n < MIN_CLASS_SHARE:
        notes.append(
            f"unbalanced classes: {stats.n_positive} positive, {stats.n_negative} negative; "
            "aim for about as many of each"
        )
    return notes


def _warn(notes: Sequence[str]) -> None:
    for note in notes:
        warnings.warn(note, CriterionWarning, stacklevel=3)


def from_file(path: str | Path, criterion: str) -> CriterionSet:
    """A criterion set from a scored-prompts JSONL file.

    Quality problems (length confound, imbalance) are warned about and kept in ``notes``.

    Raises:
        InputFileError: the file is missing or malformed.
        ValidationError: ``criterion`` is empty.
    """
    prompts = tuple(read_scored_prompts(path))
    notes = _quality_notes(prompts)
    cset = CriterionSet(criterion=criterion, prompts=prompts, source="file", notes=tuple(notes))
    _warn(notes)
    return cset


def from_examples(criterion: str, positives: Sequence[str], negatives: Sequence[str]) -> CriterionSet:
    """A criterion set from example texts where the criterion holds and where it does not.

    Ids are ``pos-N`` and ``neg-N`` (N the index in its list, from 0). Fewer than
    ``ADVISED_EXAMPLES`` (107) of a class, length confounds and imbalance are warned about
    (:class:`CriterionWarning`) and kept in ``notes``.

    Raises:
        ValidationError: fewer than 8 positives or negatives, an empty text, or a text
            repeated (after normalising case and whitespace).
    """
    for name, texts in (("positives", positives), ("negatives", negatives)):
        if isinstance(texts, str):
            raise ValidationError(
                f"{name} must be a list of texts, got one string", hint=f"wrap it: [{texts[:30]!r}, ...]"
            )
        if len(texts) < MIN_EXAMPLES:
            raise ValidationError(
                f"{name}: need at least {MIN_EXAMPLES} examples, got {len(texts)}",
                hint=f"write {PROMPT_COUNT_ADVICE}",
            )
        for i, t in enumerate(texts):
            if not isinstance(t, str) or not t.strip():
                raise ValidationError(f"{name}[{i}] is empty or not text: {t!r}", hint="remove it or write the example")
    seen: dict[str, str] = {}
    for name, texts in (("positives", positives), ("negatives", negatives)):
        for i, t in enumerate(texts):
            key = normalise_text(t)
            if key in seen:
                raise ValidationError(
                    f"{name}[{i}] repeats {seen[key]} ({t[:60]!r})",
                    hint="remove duplicates; a text cannot count twice, or for both classes",
                )
            seen[key] = f"{name}[{i}]"
    prompts = tuple(
        [ScoredPrompt(f"pos-{i}", t, 1.0) for i, t in enumerate(positives)]
        + [ScoredPrompt(f"neg-{i}", t, 0.0) for i, t in enumerate(negatives)]
    )
    notes = []
    few = [
        (name, len(t)) for name, t in (("positives", positives), ("negatives", negatives)) if len(t) < ADVISED_EXAMPLES
    ]
    if few:
        notes.append(
            "few examples: "
            + ", ".join(f"{n} {name}" for name, n in few)
            + f"; write {PROMPT_COUNT_ADVICE}"
        )
    notes += _quality_notes(prompts)
    cset = CriterionSet(criterion=criterion, prompts=prompts, source="examples", notes=tuple(notes))
    _warn(notes)
    return cset


def from_pack(name: str) -> CriterionSet:
    """A criterion set from a built-in pack (see :func:`~interp_agent.core.criteria.packs.list_packs`)."""
    pack = load_pack(name)
    return CriterionSet(criterion=pack.criterion, prompts=pack.prompts, source="pack", targets=pack.targets)


def split(
    criterion_set: CriterionSet, held_out_fraction: float = HELD_OUT_FRACTION, salt: str = SPLIT_SALT
) -> tuple[list[ScoredPrompt], list[ScoredPrompt]]:
    """Calibration (train) and held-out prompts, by the ranking hash split.

    A prompt's own ``split`` field, when set, wins over the hash, as in ranking.

    Args:
        criterion_set: the prompts to divide.
        held_out_fraction: expected share of prompts held out, in (0, 1).
        salt: salt of the prompt-id hash; ranking's default is ``interp-agent``.

    Returns:
        ``(calibration, held_out)``, each in the set's order.

    Raises:
        ValidationError: ``held_out_fraction`` outside (0, 1).
        EvidenceError: either part lacks positives or negatives.
    """
    if not 0.0 < held_out_fraction < 1.0:
        raise ValidationError(
            f"held_out_fraction must be in (0, 1), got {held_out_fraction}", hint=f"{HELD_OUT_FRACTION} is typical"
        )
    prompts = criterion_set.prompts
    groups = assign_splits(
        prompt_hashes([p.prompt_id for p in prompts], salt), held_out_fraction, [p.split for p in prompts]
    )
    labels = binary_labels(prompts)
    calibration = [p for p, g in zip(prompts, groups, strict=True) if g != HELD_OUT]
    held_out = [p for p, g in zip(prompts, groups, strict=True) if g == HELD_OUT]
    for part, mask in (("calibration", groups != HELD_OUT), ("held-out", groups == HELD_OUT)):
        n_pos, n_neg = int((labels & mask).sum()), int((~labels & mask).sum())
        if n_pos == 0 or n_neg == 0:
            raise EvidenceError(
                f"the {part} split of {criterion_set.criterion!r} has {n_pos} positive and "
                f"{n_neg} negative prompts; it needs both",
                hint="add examples of both classes, or change held_out_fraction or salt",
            )
    return calibration, held_out
