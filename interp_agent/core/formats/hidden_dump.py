"""Hidden-state dumps from any runtime → activation records (``inspect --records``) or an SAE training set.

    convert_hidden_dump(src, out=..., to="records" | "training", manifest=...)

Sources (one hookpoint per tensor):

- ``.npy``: one array ``[N, D]`` (one row per prompt) or ``[N, T, D]`` (per token);
- ``.safetensors``: named tensors, each one hookpoint (a name like ``blocks.6.hook_resid_post``
  is its own hookpoint; ``manifest.tensors`` maps other names);
- torch ``.pt``: a tensor or a dict of tensors, loaded with ``weights_only=True`` (no code runs);
- interp-lab's hidden-state dump JSONL (``interp-lab.hidden_state_dump.v1``): one
  ``{prompt_index, layer, hidden, tokens?, prompt_id?, text?, criterion_score?, model?}`` per
  line; ``layer`` L becomes ``blocks.L.hook_resid_post``.

The manifest (JSON) says what the rows are: ``prompts`` (a list of ``{prompt_id, text,
criterion_score, split?}`` or of texts), ``scores`` or ``labels`` (one number per prompt
when the prompts carry none), ``model``, ``hookpoint`` or ``layer`` (for an unnamed
tensor), ``tensors`` (tensor name → hookpoint) and ``lengths`` or ``token_positions`` (real
tokens per prompt of a right-padded ``[N, T, D]`` dump). A scored-prompts JSONL file (what
interp-lab's ``--dataset`` takes) is a manifest too: its prompts in row order.

Records: one row per prompt; a ``[N, T, D]`` dump is pooled over each prompt's real tokens
(``last``: the last one; ``mean``/``max``: over positions 1… when there are several, since
position 0 carries massive activations in most LMs; ``keep_first`` keeps it, for a dump
whose first position is a real token rather than a BOS). Feature ids are the hookpoint's
basis ids (``L6:D12``). Training: every real token row (position 0 dropped when a prompt has
several, unless ``keep_first``), written as ``<hookpoint>.safetensors`` (tensor ``activations``) that
``train-sae --activations`` reads.
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from interp_agent.core.artifacts import atomic_open, write_json
from interp_agent.core.errors import InputFileError, ValidationError, arg
from interp_agent.core.ids import basis_feature_ids, format_hookpoint, match_hookpoint

DumpTarget = Literal["records", "training"]
DumpPooling = Literal["last", "mean", "max"]
SUFFIXES = (".npy", ".safetensors", ".pt", ".pth", ".jsonl")


@dataclass(frozen=True, slots=True)
class Prompt:
    """One row of a dump, as the manifest names it."""

    prompt_id: str
    """Id of the prompt."""
    text: str
    """Its text ('' when the manifest gives none)."""
    criterion_score: float | None
    """Its criterion score; None when the manifest has none (a training set needs none)."""
    split: str | None = None
    """train or held_out when the manifest fixes it."""


@dataclass(frozen=True, slots=True)
class Dump:
    """A dump read into arrays: hookpoint → ``[N, T, D]`` float32, with each prompt's real token count."""

    tensors: dict[str, np.ndarray]
    """Hookpoint → activations ``[N, T, D]`` (T = 1 for one row per prompt)."""
    lengths: np.ndarray
    """[N] int: real tokens of each prompt (T when unpadded)."""
    prompts: list[Prompt]
    """The prompts, in row order."""
    model: str | None
    """Model named by the manifest or the dump."""


def _load_manifest(path: str | Path | None) -> dict[str, Any]:
    if path is None:
        return {}
    p = Path(path)
    if not p.is_file():
        raise InputFileError(p, "manifest not found", hint="give the manifest JSON (or scored-prompts JSONL)")
    if p.suffix.lower() == ".jsonl":
        from interp_agent.core.formats.prompts import read_scored_prompts

        return {"prompts": [{"prompt_id": s.prompt_id, "text": s.text, "criterion_score": s.criterion_score,
                             "split": s.split} for s in read_scored_prompts(p)], "_path": str(p)}
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except json.JSONDecodeError as exc:
        raise InputFileError(p, f"is not valid JSON: {exc.msg}", line=exc.lineno) from exc
    if not isinstance(data, dict):
        raise InputFileError(p, f"a manifest is a JSON object, got {type(data).__name__}")
    return data | {"_path": str(p)}


def _prompts(manifest: dict[str, Any], n: int, src: Path) -> list[Prompt]:
    """The manifest's prompts for ``n`` rows (ids ``p0``… when it names none); counts must agree."""
    where = Path(manifest.get("_path", src))
    raw = manifest.get("prompts")
    scores = manifest.get("scores", manifest.get("labels"))
    for name, value in (("prompts", raw), ("scores", scores)):
        if value is not None and (not isinstance(value, list) or len(value) != n):
            count = len(value) if isinstance(value, list) else type(value).__name__
            raise InputFileError(where, f"'{name}' has {count} entries but the dump {src} has {n} rows (prompts)",
                                 field=name, hint="give one entry per row of the dump, in row order")
    out = []
    for i in range(n):
        item = raw[i] if raw is not None else {}
        item = {"text": item} if isinstance(item, str) else item
        if not isinstance(item, dict):
            raise InputFileError(where, f"prompts[{i}] must be a text or an object", field=f"prompts[{i}]")
        score = item.get("criterion_score", scores[i] if scores is not None else None)
        if score is not None and (isinstance(score, bool) or not isinstance(score, (int, float))
                                  or not math.isfinite(score)):
            raise InputFileError(where, f"the score of row {i} must be a finite number, got {score!r}",
                                 field=f"prompts[{i}].criterion_score")
        out.append(Prompt(str(item.get("prompt_id", f"p{i}")), str(item.get("text", "")),
                          None if score is None else float(score), item.get("split")))
    return out


def _hookpoint_of(name: str, manifest: dict[str, Any], hookpoint: str | None, several: bool, src: Path) -> str:
    mapped = (manifest.get("tensors") or {}).get(name)
    if mapped:
        return str(mapped)
    if match_hookpoint(name) is not None:
        return name
    if not several:
        if hookpoint:
            return hookpoint
        if manifest.get("hookpoint"):
            return str(manifest["hookpoint"])
        if isinstance(manifest.get("layer"), int):
            return format_hookpoint(manifest["layer"])
    raise InputFileError(src, f"tensor {name!r} names no hookpoint", field=name,
                         hint=f"give {arg('hookpoint')}, or a manifest 'hookpoint'/'layer', or 'tensors': "
                              f"{{{name!r}: 'blocks.6.hook_resid_post'}}")


def _tensor_dict(src: Path) -> dict[str, np.ndarray]:
    suffix = src.suffix.lower()
    if suffix == ".npy":
        return {"": np.load(src, allow_pickle=False)}
    if suffix == ".safetensors":
        from safetensors.numpy import load_file

        return dict(load_file(str(src)))
    import torch

    try:
        obj = torch.load(src, map_location="cpu", weights_only=True)
    except Exception as exc:  # pickle errors of every kind: the file holds more than tensors
        raise InputFileError(src, f"cannot be loaded with weights_only=True: {exc}",
                             hint="save a tensor or a dict of tensors (torch.save({'blocks.6.hook_resid_post': t}))",
                             ) from exc
    if isinstance(obj, torch.Tensor):
        return {"": obj.float().numpy()}
    if isinstance(obj, dict) and obj and all(isinstance(v, torch.Tensor) for v in obj.values()):
        return {str(k): v.float().numpy() for k, v in obj.items()}
    raise InputFileError(src, f"holds a {type(obj).__name__}, not a tensor or a dict of tensors")


def read_dump(src: str | Path, *, manifest: str | Path | None = None, hookpoint: str | None = None,
              model: str | None = None) -> Dump:
    """Read a hidden-state dump and its manifest (see the module docstring).

    Raises:
        InputFileError: an unknown file type, a tensor of the wrong shape, counts that disagree (both named),
            or a tensor that names no hookpoint.
    """
    p = Path(src).expanduser()
    if not p.is_file():
        raise InputFileError(p, "no such file", hint=f"give a dump ({', '.join(SUFFIXES)})")
    if p.suffix.lower() not in SUFFIXES:
        raise InputFileError(p, f"unknown dump type {p.suffix!r}", hint=f"give one of {', '.join(SUFFIXES)}")
    meta = _load_manifest(manifest)
    if p.suffix.lower() == ".jsonl":
        return _read_interp_lab_dump(p, meta, model)
    raw = _tensor_dict(p)
    if hookpoint is not None and len(raw) > 1:
        named = {n: a for n, a in raw.items() if _hookpoint_of(n, meta, None, False, p) == hookpoint}
        if not named:
            raise InputFileError(p, f"no tensor is hookpoint {hookpoint!r}; it holds {sorted(raw)}", field="hookpoint")
        raw = named
    tensors: dict[str, np.ndarray] = {}
    for name, arr in raw.items():
        if arr.ndim not in (2, 3):
            raise InputFileError(p, f"tensor {name or '(unnamed)'!r} has shape {tuple(arr.shape)}; expected [N, D] "
                                    "(one row per prompt) or [N, T, D] (per token)", field=name or None)
        tensors[_hookpoint_of(name, meta, hookpoint, len(raw) > 1, p)] = np.asarray(
            arr if arr.ndim == 3 else arr[:, None, :], dtype=np.float32)
    shapes = {h: a.shape[:2] for h, a in tensors.items()}
    if len(set(shapes.values())) > 1:
        raise InputFileError(p, f"tensors disagree on [N, T]: {shapes}",
                             hint="dump every hookpoint on the same prompts")
    n, t = next(iter(shapes.values()))
    lengths = _lengths(meta, n, t, p)
    return Dump(tensors, lengths, _prompts(meta, n, p), model or meta.get("model"))


def _lengths(meta: dict[str, Any], n: int, t: int, src: Path) -> np.ndarray:
    raw = meta.get("lengths", meta.get("token_positions"))
    if raw is None:
        return np.full(n, t, dtype=np.int64)
    where = Path(meta.get("_path", src))
    if not isinstance(raw, list) or len(raw) != n:
        count = len(raw) if isinstance(raw, list) else type(raw).__name__
        raise InputFileError(where, f"'lengths' has {count} entries but the dump {src} has {n} rows", field="lengths")
    lengths = np.asarray(raw, dtype=np.int64)
    if (lengths < 1).any() or (lengths > t).any():
        raise InputFileError(where, f"'lengths' must lie in 1..{t} (the dump's token axis), got {raw}", field="lengths")
    return lengths


def _read_interp_lab_dump(p: Path, meta: dict[str, Any], model: str | None) -> Dump:
    """interp-lab's hidden-state dump JSONL: one line per (prompt_index, layer), pooled later like a tensor."""
    from interp_agent.core.formats.jsonl import iter_json_objects

    rows: dict[tuple[int, int], np.ndarray] = {}
    inline: dict[int, dict[str, Any]] = {}
    for line, obj in iter_json_objects(p):
        for key in ("prompt_index", "layer", "hidden"):
            if key not in obj:
                raise InputFileError(p, f"missing '{key}'", line=line, field=key)
        idx, layer = obj["prompt_index"], obj["layer"]
        if not all(isinstance(v, int) and not isinstance(v, bool) and v >= 0 for v in (idx, layer)):
            raise InputFileError(p, "prompt_index and layer must be integers >= 0", line=line, field="prompt_index")
        try:
            arr = np.asarray(obj["hidden"], dtype=np.float32)
        except (TypeError, ValueError) as exc:
            raise InputFileError(p, f"hidden is not a list of numbers: {exc}", line=line, field="hidden") from exc
        if arr.ndim not in (1, 2) or arr.size == 0 or not np.isfinite(arr).all():
            raise InputFileError(p, f"hidden must be a non-empty [D] or [T, D] list of finite numbers, got shape "
                                    f"{arr.shape}", line=line, field="hidden")
        if (idx, layer) in rows:
            raise InputFileError(p, f"a second line for prompt_index {idx} layer {layer}", line=line)
        rows[(idx, layer)] = arr if arr.ndim == 2 else arr[None, :]
        inline.setdefault(idx, {}).update({k: obj[k] for k in ("prompt_id", "text", "criterion_score", "model")
                                           if k in obj})
    return _assemble_interp_lab(p, rows, inline, meta, model)


def _assemble_interp_lab(p: Path, rows: dict[tuple[int, int], np.ndarray], inline: dict[int, dict[str, Any]],
                         meta: dict[str, Any], model: str | None) -> Dump:
    if not rows:
        raise InputFileError(p, "no dump lines", hint="one {prompt_index, layer, hidden} object per line")
    n = max(i for i, _ in rows) + 1
    layers = sorted({layer for _, layer in rows})
    missing = [(i, layer) for i in range(n) for layer in layers if (i, layer) not in rows]
    if missing:
        raise InputFileError(p, f"prompt_index {missing[0][0]} has no line for layer {missing[0][1]}",
                             hint="every prompt must cover every layer the dump holds")
    t = max(a.shape[0] for a in rows.values())
    tensors = {}
    for layer in layers:
        widths = {rows[(i, layer)].shape[1] for i in range(n)}
        if len(widths) > 1:
            raise InputFileError(p, f"layer {layer}: hidden widths differ {sorted(widths)}")
        block = np.zeros((n, t, widths.pop()), dtype=np.float32)
        for i in range(n):
            block[i, :rows[(i, layer)].shape[0]] = rows[(i, layer)]
        tensors[format_hookpoint(layer)] = block
    lengths = np.asarray([rows[(i, layers[0])].shape[0] for i in range(n)], dtype=np.int64)
    if meta.get("prompts") is None:  # the dump's inline prompt fields stand in for a manifest
        meta = meta | {"prompts": [inline.get(i, {}) for i in range(n)]}
    models = {v["model"] for v in inline.values() if "model" in v}
    return Dump(tensors, lengths, _prompts(meta, n, p), model or meta.get("model") or next(iter(models), None))


def pool(acts_NTD: np.ndarray, lengths_N: np.ndarray, how: DumpPooling, *, keep_first: bool = False) -> np.ndarray:
    """One row per prompt ``[N, D]`` from ``[N, T, D]`` over each prompt's real tokens (see the module docstring)."""
    n = acts_NTD.shape[0]
    if how == "last":
        return acts_NTD[np.arange(n), lengths_N - 1]
    out_ND = np.empty((n, acts_NTD.shape[2]), dtype=np.float32)
    for i, length in enumerate(lengths_N):
        span = acts_NTD[i, 1:length] if length > 1 and not keep_first else acts_NTD[i, :length]
        out_ND[i] = span.mean(axis=0) if how == "mean" else span.max(axis=0)
    return out_ND


def token_rows(acts_NTD: np.ndarray, lengths_N: np.ndarray, *, keep_first: bool = False) -> np.ndarray:
    """Every real token row ``[R, D]``, position 0 dropped where a prompt has several tokens unless ``keep_first``."""
    return np.concatenate([acts_NTD[i, (1 if n > 1 and not keep_first else 0):n] for i, n in enumerate(lengths_N)],
                          axis=0)


def convert_hidden_dump(
    src: str | Path, *, out: str | Path, to: DumpTarget = "records", manifest: str | Path | None = None,
    hookpoint: str | None = None, model: str | None = None, pooling: DumpPooling = "last", keep_first: bool = False,
) -> dict[str, Any]:
    """Convert a hidden-state dump into activation records (``to="records"``) or a training set (``"training"``).

    Args:
        out: records: a ``.jsonl`` file, or a Parquet dataset folder for any other name; training: a folder.
        hookpoint: the hookpoint of an unnamed tensor, or the one tensor to take from several.
        keep_first: keep token position 0 (dropped by default: in most LMs it is a BOS with massive activations).

    Returns:
        What was written: ``{"to", "paths", "n_prompts", "hookpoints", "d_model", ...}``.

    Raises:
        InputFileError: a bad dump or manifest (see :func:`read_dump`); records without a score per prompt.
        ValidationError: an unknown ``to`` or ``pooling``.
    """
    if to not in ("records", "training"):
        raise ValidationError(f"{arg('to', to)} must be records or training")
    if pooling not in ("last", "mean", "max"):
        raise ValidationError(f"{arg('pooling', pooling)} must be last, mean or max")
    dump = read_dump(src, manifest=manifest, hookpoint=hookpoint, model=model)
    info = {"to": to, "src": str(src), "n_prompts": len(dump.prompts), "model": dump.model,
            "hookpoints": {h: int(a.shape[2]) for h, a in dump.tensors.items()}, "n_tokens": int(dump.lengths.sum()),
            "keep_first": keep_first}
    if to == "training":
        return info | {"paths": _write_training(dump, Path(out).expanduser(), info, keep_first)}
    return info | {"pooling": pooling, "paths": {"records": str(_write_records(dump, Path(out).expanduser(),
                                                                              pooling, Path(src), keep_first))}}


def _write_training(dump: Dump, folder: Path, info: dict[str, Any], keep_first: bool) -> dict[str, str]:
    from safetensors.numpy import save

    folder.mkdir(parents=True, exist_ok=True)
    paths = {}
    for h, acts in dump.tensors.items():
        rows_RD = np.ascontiguousarray(token_rows(acts, dump.lengths, keep_first=keep_first))
        with atomic_open(folder / f"{h}.safetensors", "wb") as fh:
            fh.write(save({"activations": rows_RD}, metadata={"hookpoint": h, "model": dump.model or ""}))
        paths[h] = str(folder / f"{h}.safetensors")
    paths["dump"] = str(write_json(folder / "dump.json", info | {"files": dict(paths)}))
    return paths


def _write_records(dump: Dump, out: Path, pooling: DumpPooling, src: Path, keep_first: bool) -> Path:
    from interp_agent.core.formats.records import ActivationRecord, write_records

    unscored = [p.prompt_id for p in dump.prompts if p.criterion_score is None]
    if unscored:
        raise InputFileError(src, f"{len(unscored)} of {len(dump.prompts)} prompts have no criterion score "
                                  f"(first: {unscored[0]!r}); records need one per prompt",
                             hint="give a manifest with 'prompts' [{prompt_id, text, criterion_score}] or 'scores'")
    ids, columns = [], []
    for h, acts in dump.tensors.items():
        point = match_hookpoint(h)
        width = acts.shape[2]
        ids += basis_feature_ids(point, width) if point else [f"{h}:D{i}" for i in range(width)]
        columns.append(pool(acts, dump.lengths, pooling, keep_first=keep_first))
    acts_NF = np.concatenate(columns, axis=1)
    records = (ActivationRecord(prompt_id=p.prompt_id, criterion_score=float(p.criterion_score or 0.0),
                                feature_ids=tuple(ids), activations=tuple(float(v) for v in acts_NF[i]),
                                text=p.text, model=dump.model, split=p.split)
               for i, p in enumerate(dump.prompts))
    if out.suffix.lower() == ".jsonl":
        return write_records(out, records)
    from interp_agent.core.formats.parquet import write_parquet_dataset

    return write_parquet_dataset(out, records)
