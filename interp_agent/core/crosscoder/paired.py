"""Paired activations: several sources read on the same tokens, stacked as ``[n_tokens, n_sources, d]``.

A source is (a loaded model, a hookpoint). Two models at one hookpoint must tokenise every
text to the same token ids, or the rows would not be the same tokens: each text is checked and
the first that differs is named with the side that differs. Several hookpoints of one model are
read in one harvest pass (``core.models.harvest.harvest``, token pooling, the first position
left out for its massive activations). Every source must have the same width.

Activations computed elsewhere come in as one array (or ``.npy`` file) per source, row i of
each being the same token; arrays of different lengths or widths are refused, naming which.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from interp_agent.core.errors import InputFileError, ValidationError
from interp_agent.core.models.harvest import harvest, resolve_points, tokenize
from interp_agent.core.models.loading import LoadedModel
from interp_agent.core.progress import Progress

Source = tuple[LoadedModel, str]
"""A model and the hookpoint read on it."""


@dataclass(frozen=True, slots=True, eq=False)
class Paired:
    """Activations of several sources on the same tokens."""

    acts: np.ndarray
    """float32 [n_tokens, n_sources, d]."""
    names: list[str]
    """One name per source: ``model@hookpoint``."""
    row_prompt: np.ndarray | None
    """int64 [n_tokens]: index of each token's text, or None for stored arrays."""
    token_index: np.ndarray | None
    """int64 [n_tokens]: position of each token in its text, or None for stored arrays."""


def source_name(loaded: LoadedModel, hookpoint: str) -> str:
    """``model@hookpoint``, the name a source goes by in errors and outputs."""
    return f"{loaded.name}@{hookpoint}"


def _distinct_names(sources: Sequence[Source]) -> list[str]:
    names = [source_name(m, h) for m, h in sources]
    groups: dict[str, list[int]] = {}
    for i, name in enumerate(names):
        groups.setdefault(name, []).append(i)
    for name, idx in groups.items():
        if len(idx) > 1:
            for n, i in enumerate(idx):
                names[i] = f"{name}#{n + 1}"  # the same model folder given twice stays two sources
    return names


def check_same_tokens(sources: Sequence[Source], texts: Sequence[str], max_length: int) -> None:
    """ValidationError naming the first source and text whose token ids differ from source 1's."""
    first_model = sources[0][0]
    reference = tokenize(first_model.tokenizer, texts, max_length, "token", True)
    for i, (loaded, hook) in enumerate(sources[1:], start=2):
        if loaded is first_model:
            continue
        ids = tokenize(loaded.tokenizer, texts, max_length, "token", True)
        for t, (a, b) in enumerate(zip(reference, ids, strict=True)):
            if a != b:
                raise ValidationError(
                    f"source {i} ({source_name(loaded, hook)}) tokenises text {t} ({texts[t][:60]!r}) differently "
                    f"from source 1 ({source_name(first_model, sources[0][1])}): {len(b)} vs {len(a)} tokens, first "
                    f"difference at position {_first_difference(a, b)}",
                    hint="a crosscoder pairs the same tokens on both sides: use models that share a tokenizer "
                         "(a fine-tuned copy and its base)",
                )


def _first_difference(a: list[int], b: list[int]) -> int:
    for i, (x, y) in enumerate(zip(a, b, strict=False)):
        if x != y:
            return i
    return min(len(a), len(b))


def _check_widths(sources: Sequence[Source], names: list[str]) -> int:
    widths = [resolve_points(m.model, [h])[0].width for m, h in sources]
    for name, width in zip(names[1:], widths[1:], strict=True):
        if width != widths[0]:
            raise ValidationError(
                f"source {name} has width {width}, source {names[0]} has width {widths[0]}",
                hint="a crosscoder pairs sources of one width: the same site of models of one architecture, "
                     "or hookpoints of one kind (e.g. all hook_resid_post)",
            )
    return widths[0]


def paired_activations(
    sources: Sequence[Source], texts: Sequence[str], *, max_length: int = 64, batch_size: int = 16,
    progress: Progress | None = None,
) -> Paired:
    """Token activations of every source on ``texts``: ``[n_tokens, n_sources, d]``, rows on the same tokens.

    Raises:
        ValidationError: fewer than two sources, sources of different widths (the one that differs named),
            or models that tokenise a text differently (the side and the first such text named).
    """
    if len(sources) < 2:
        raise ValidationError(f"a crosscoder needs at least two sources, got {len(sources)}",
                              hint="two models at one hookpoint, or one model at several hookpoints")
    names = _distinct_names(sources)
    _check_widths(sources, names)
    check_same_tokens(sources, texts, max_length)
    by_model: dict[int, tuple[LoadedModel, list[str]]] = {}
    for loaded, hook in sources:
        by_model.setdefault(id(loaded), (loaded, []))[1].append(hook)
    harvested: dict[int, dict[str, Any]] = {}
    for key, (loaded, hooks) in by_model.items():  # one pass per model, all its hookpoints at once
        harvested[key] = harvest(loaded, list(texts), list(dict.fromkeys(hooks)), batch_size=batch_size,
                                 max_length=max_length, pooling="token", progress=progress)
    columns = []
    first = harvested[id(sources[0][0])][_canonical(sources[0])]
    for loaded, hook in sources:
        h = harvested[id(loaded)][_canonical((loaded, hook))]
        assert np.array_equal(h.row_prompt, first.row_prompt) and np.array_equal(h.token_index, first.token_index)
        columns.append(h.acts)
    return Paired(np.stack(columns, axis=1), names, first.row_prompt, first.token_index)


def _canonical(source: Source) -> str:
    return resolve_points(source[0].model, [source[1]])[0].name


def paired_from_arrays(arrays: Sequence[np.ndarray | str | Path], names: Sequence[str] | None = None) -> Paired:
    """Stack stored activations, one ``[n_tokens, d]`` array or ``.npy`` file per source, row i the same token.

    Raises:
        ValidationError: fewer than two arrays, or arrays whose lengths or widths differ (naming which).
        InputFileError: a file that is missing or not a 2-D ``.npy`` array.
    """
    if len(arrays) < 2:
        raise ValidationError(f"a crosscoder needs at least two sources, got {len(arrays)} array(s)")
    names = list(names) if names is not None else [
        str(a) if isinstance(a, (str, Path)) else f"source{i + 1}" for i, a in enumerate(arrays)]
    if len(names) != len(arrays):
        raise ValidationError(f"{len(names)} names for {len(arrays)} arrays", hint="give one name per source")
    mats = [_load_array(a, name) for a, name in zip(arrays, names, strict=True)]
    for name, mat in zip(names[1:], mats[1:], strict=True):
        if mat.shape[0] != mats[0].shape[0]:
            raise ValidationError(
                f"source {name} has {mat.shape[0]} rows, source {names[0]} has {mats[0].shape[0]}: a crosscoder "
                "pairs row i of every source as the same token",
                hint="harvest every source on the same texts with the same tokenizer and max_length",
            )
        if mat.shape[1] != mats[0].shape[1]:
            raise ValidationError(f"source {name} has width {mat.shape[1]}, source {names[0]} has width "
                                  f"{mats[0].shape[1]}", hint="pair sources of one width")
    return Paired(np.stack(mats, axis=1).astype(np.float32, copy=False), names, None, None)


def _load_array(value: np.ndarray | str | Path, name: str) -> np.ndarray:
    if isinstance(value, (str, Path)):
        path = Path(value)
        if not path.is_file():
            raise InputFileError(path, "file not found", hint="give a .npy file of shape [n_tokens, d]")
        try:
            value = np.load(path, mmap_mode="r", allow_pickle=False)
        except ValueError as exc:
            raise InputFileError(path, f"not a .npy array ({exc})", hint="save it with numpy.save") from None
    mat = np.asarray(value)
    if mat.ndim != 2:
        raise ValidationError(f"source {name} has shape {mat.shape}, expected [n_tokens, d]")
    return mat
