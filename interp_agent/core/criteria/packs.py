"""Built-in criterion packs: hand-written, balanced, length-matched scored prompt sets.

A pack is a scored-prompts JSONL file plus an entry in an ``index.json`` beside it::

    {"french": {"criterion": "the text is written in French", "file": "french.jsonl",
                "targets": null}}

``targets`` (optional) lists next-token strings, each with its leading space, that a
:class:`~interp_agent.core.criteria.scorers.TargetTokenScorer` can measure the criterion
on. Packs are looked up in the source tree (``examples/criteria`` beside the package) and
in a wheel install's data files (``<sys.prefix>/share/interp-agent/criteria``); the first
folder that names a pack wins.

:func:`validate_pack` is the quality bar every shipped pack passes: unique ids and texts,
both classes at least 40 % of rows, at least 60 rows, and no length confound (a probe
that only counts words must not separate the classes).
"""

from __future__ import annotations

import json
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path

import numpy as np

from interp_agent.core.errors import InputFileError, ValidationError
from interp_agent.core.formats.prompts import ScoredPrompt, read_scored_prompts

INDEX_FILE = "index.json"
"""Name of the file that lists the packs of a folder."""

MIN_PROMPTS = 60
"""Fewest rows a pack may have."""
MIN_CLASS_SHARE = 0.4
"""Smallest share of rows either class may have."""
MAX_LENGTH_GAP = 0.2
"""Largest allowed difference of mean word counts, relative to the overall mean."""
MAX_LENGTH_R = 0.2
"""Largest allowed |point-biserial r| between word count and label."""


@dataclass(frozen=True, slots=True)
class CriterionPack:
    """A built-in criterion with its scored prompts."""

    name: str
    """Pack name, e.g. ``measurement_unit``."""
    criterion: str
    """The criterion in words."""
    prompts: tuple[ScoredPrompt, ...]
    """Scored prompts (criterion_score 1 = criterion holds, 0 = it does not)."""
    targets: tuple[str, ...] | None
    """Next-token strings (leading space included) that express the criterion, or None."""
    path: Path
    """The pack's JSONL file."""


@dataclass(frozen=True, slots=True)
class LengthStats:
    """Word-count statistics per class, to detect a length confound."""

    n_positive: int
    """Rows whose label is positive."""
    n_negative: int
    """Rows whose label is negative."""
    mean_words_positive: float
    """Mean whitespace-separated word count of positive rows (nan when none)."""
    mean_words_negative: float
    """Mean word count of negative rows (nan when none)."""
    relative_gap: float
    """|difference of class means| / overall mean word count."""
    point_biserial_r: float
    """Pearson correlation of word count with the binary label (0 when undefined)."""

    def confounded(self, max_gap: float = MAX_LENGTH_GAP, max_r: float = MAX_LENGTH_R) -> bool:
        """Whether length alone could tell the classes apart."""
        return self.relative_gap > max_gap or abs(self.point_biserial_r) > max_r

    def describe(self) -> str:
        """One line: mean word counts, relative gap and r."""
        return (
            f"mean words: positive {self.mean_words_positive:.1f} (n={self.n_positive}), "
            f"negative {self.mean_words_negative:.1f} (n={self.n_negative}); "
            f"gap {self.relative_gap:.0%} of the mean, point-biserial r {self.point_biserial_r:+.2f}"
        )


def binary_labels(prompts: Sequence[ScoredPrompt]) -> np.ndarray:
    """Boolean label of each prompt: score >= 0.5 when all scores lie in [0, 1], else score > median."""
    scores = np.asarray([p.criterion_score for p in prompts], dtype=np.float64)
    if scores.size == 0:
        return np.zeros(0, dtype=bool)
    if scores.min() >= 0.0 and scores.max() <= 1.0:
        return scores >= 0.5
    return scores > np.median(scores)


def length_stats(prompts: Sequence[ScoredPrompt]) -> LengthStats:
    """Word counts per class and their point-biserial correlation with the label."""
    labels = binary_labels(prompts)
    words = np.asarray([len(p.text.split()) for p in prompts], dtype=np.float64)
    pos, neg = words[labels], words[~labels]
    mean_pos = float(pos.mean()) if pos.size else float("nan")
    mean_neg = float(neg.mean()) if neg.size else float("nan")
    overall = float(words.mean()) if words.size else 0.0
    gap = abs(mean_pos - mean_neg) / overall if pos.size and neg.size and overall > 0 else 0.0
    r = 0.0
    if pos.size and neg.size and words.std() > 0:
        r = float(np.corrcoef(words, labels.astype(np.float64))[0, 1])
    return LengthStats(int(pos.size), int(neg.size), mean_pos, mean_neg, float(gap), r)


def normalise_text(text: str) -> str:
    """Case-folded text with runs of whitespace collapsed (the key for duplicate texts)."""
    return " ".join(text.casefold().split())


def validate_pack(
    prompts: Sequence[ScoredPrompt],
    *,
    min_prompts: int = MIN_PROMPTS,
    min_class_share: float = MIN_CLASS_SHARE,
    max_length_gap: float = MAX_LENGTH_GAP,
    max_length_r: float = MAX_LENGTH_R,
) -> list[str]:
    """Problems that keep ``prompts`` from being a trustworthy criterion pack; empty when none.

    Checks: at least ``min_prompts`` rows; binary scores (0 or 1); unique prompt ids;
    unique texts after normalising case and whitespace; each class at least
    ``min_class_share`` of rows; no length confound (relative gap of mean word counts
    above ``max_length_gap`` or |point-biserial r| above ``max_length_r``).
    """
    problems: list[str] = []
    n = len(prompts)
    if n < min_prompts:
        problems.append(f"too few prompts: {n} (< {min_prompts}); write more, about half of each class")
    non_binary = [p.prompt_id for p in prompts if p.criterion_score not in (0, 1)]
    if non_binary:
        problems.append(
            f"criterion_score must be 0 or 1 in a pack; {len(non_binary)} rows are not, e.g. {non_binary[0]!r}"
        )
    seen_ids: dict[str, int] = {}
    seen_texts: dict[str, str] = {}
    for p in prompts:
        seen_ids[p.prompt_id] = seen_ids.get(p.prompt_id, 0) + 1
        key = normalise_text(p.text)
        if key in seen_texts:
            problems.append(f"duplicate text: {p.prompt_id!r} repeats {seen_texts[key]!r} ({p.text[:60]!r})")
        else:
            seen_texts[key] = p.prompt_id
    problems += [f"duplicate prompt_id {pid!r} ({c} rows)" for pid, c in seen_ids.items() if c > 1]
    if n:
        stats = length_stats(prompts)
        for cls, count in (("positive", stats.n_positive), ("negative", stats.n_negative)):
            if count / n < min_class_share:
                problems.append(
                    f"class imbalance: {count} of {n} rows are {cls} ({count / n:.0%} < {min_class_share:.0%}); "
                    "add rows of that class"
                )
        if stats.n_positive and stats.n_negative and stats.confounded(max_length_gap, max_length_r):
            problems.append(
                f"length confound: {stats.describe()} (limits: gap {max_length_gap:.0%}, |r| {max_length_r}); "
                "pair each positive with a negative of similar length"
            )
    return problems


def pack_dirs() -> list[Path]:
    """Folders searched for packs, in order: the source tree's, then a wheel install's."""
    return [
        Path(__file__).resolve().parents[3] / "examples" / "criteria",  # interp_agent/core/criteria/packs.py
        Path(sys.prefix) / "share" / "interp-agent" / "criteria",
    ]


def _read_index(folder: Path) -> dict[str, dict]:
    path = folder / INDEX_FILE
    if not path.is_file():
        return {}
    try:
        index = json.loads(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, json.JSONDecodeError) as exc:
        raise InputFileError(path, f"cannot be read as JSON: {exc}") from exc
    if not isinstance(index, dict) or not all(isinstance(v, dict) for v in index.values()):
        raise InputFileError(path, "expected an object {pack name: {criterion, file, targets?}}")
    return index


def _packs(dirs: Sequence[Path] | None) -> dict[str, tuple[Path, dict]]:
    found: dict[str, tuple[Path, dict]] = {}
    for folder in pack_dirs() if dirs is None else [Path(d) for d in dirs]:
        for name, entry in _read_index(folder).items():
            found.setdefault(name, (folder, entry))
    return found


def list_packs(dirs: Sequence[str | Path] | None = None) -> list[str]:
    """Names of the available packs, sorted (``dirs`` replaces :func:`pack_dirs`)."""
    return sorted(_packs(None if dirs is None else [Path(d) for d in dirs]))


def load_pack(name: str, dirs: Sequence[str | Path] | None = None) -> CriterionPack:
    """Load the pack called ``name``.

    Args:
        name: a name from :func:`list_packs`.
        dirs: folders to search instead of :func:`pack_dirs`.

    Raises:
        ValidationError: no pack has that name.
        InputFileError: the index entry or the pack's JSONL file is malformed.
    """
    packs = _packs(None if dirs is None else [Path(d) for d in dirs])
    if name not in packs:
        raise ValidationError(
            f"unknown criterion pack {name!r}",
            hint=f"available packs: {', '.join(sorted(packs)) or 'none found'}",
        )
    folder, entry = packs[name]
    index_path = folder / INDEX_FILE
    criterion, file = entry.get("criterion"), entry.get("file")
    if not isinstance(criterion, str) or not criterion.strip():
        raise InputFileError(index_path, f"pack {name!r} needs a non-empty 'criterion' string", field="criterion")
    if not isinstance(file, str) or not file:
        raise InputFileError(index_path, f"pack {name!r} needs a 'file' naming its JSONL", field="file")
    targets = entry.get("targets")
    if targets is not None and (not isinstance(targets, list) or not all(isinstance(t, str) and t for t in targets)):
        raise InputFileError(index_path, f"pack {name!r}: 'targets' must be a list of strings", field="targets")
    path = folder / file
    return CriterionPack(
        name=name,
        criterion=criterion,
        prompts=tuple(read_scored_prompts(path)),
        targets=tuple(targets) if targets else None,
        path=path,
    )
