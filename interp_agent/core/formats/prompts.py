"""Scored prompts JSONL: ``{prompt_id, text, criterion_score, split?}``."""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from pathlib import Path

from interp_agent.core.errors import InputFileError
from interp_agent.core.formats.jsonl import Fields, iter_json_objects, write_jsonl

SPLIT_NAMES = {
    "train": "train",
    "calibration": "train",
    "ranking": "train",
    "held_out": "held_out",
    "heldout": "held_out",
    "held-out": "held_out",
    "test": "held_out",
    "eval": "held_out",
}
"""Accepted ``split`` values and the split each one means."""


def normalise_split(value: str | None, fields: Fields, field: str = "split") -> str | None:
    """Map a user's split name onto ``train`` or ``held_out``."""
    if value is None:
        return None
    try:
        return SPLIT_NAMES[value.strip().lower()]
    except KeyError:
        raise fields.error(
            field, f"unknown split {value!r}", hint=f"use one of {sorted(set(SPLIT_NAMES))} or omit it"
        ) from None


@dataclass(frozen=True, slots=True)
class ScoredPrompt:
    """One prompt with its criterion score."""

    prompt_id: str
    """Unique id of the prompt."""
    text: str
    """The prompt text."""
    criterion_score: float
    """How strongly the criterion holds (binary 0/1 or continuous)."""
    split: str | None = None
    """``train`` or ``held_out`` when the file fixes it; None lets the hash split decide."""


def read_scored_prompts(path: str | Path) -> list[ScoredPrompt]:
    """Read a scored-prompts JSONL file; duplicate ids stop with file and line."""
    out: list[ScoredPrompt] = []
    seen: dict[str, int] = {}
    for line, obj in iter_json_objects(path):
        f = Fields(obj, path, line)
        pid = f.string("prompt_id")
        if pid in seen:
            raise InputFileError(
                path, f"duplicate prompt_id {pid!r} (first on line {seen[pid]})", line=line, field="prompt_id"
            )
        seen[pid] = line
        out.append(
            ScoredPrompt(
                prompt_id=pid,
                text=f.string("text"),
                criterion_score=f.number("criterion_score"),
                split=normalise_split(f.string("split", required=False), f),
            )
        )
    if not out:
        raise InputFileError(path, "no prompts in file", hint="one JSON object per line")
    return out


def write_scored_prompts(path: str | Path, prompts: Iterable[ScoredPrompt]) -> Path:
    """Write scored prompts as JSONL atomically."""
    return write_jsonl(
        path,
        (
            {"prompt_id": p.prompt_id, "text": p.text, "criterion_score": p.criterion_score}
            | ({"split": p.split} if p.split else {})
            for p in prompts
        ),
    )
