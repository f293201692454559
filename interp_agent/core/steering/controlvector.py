"""llama.cpp control vectors (GGUF): writing one from a steering vector, reading one back.

What llama.cpp does with the file (``common/common.cpp`` ``common_control_vector_load_one``,
``src/llama-adapter.cpp``, the model graphs' ``build_cvec``):

- Tensors named ``direction.{k}``, 1-D, F32, all of length n_embd; ``k`` must parse and be
  >= 1 (``direction.0`` is rejected as "invalid (zero) direction tensor layer index").
- ``direction.{k}`` is added to the output of block ``k`` (0-based), after its last residual
  add, at every position (the prompt included). Block 0's output cannot be steered.
  ``--control-vector-layer-range START END`` gates ``k`` inclusively (default 1..n_layer).
- Each file is multiplied by its scale (``--control-vector FILE``: 1;
  ``--control-vector-scaled FILE S``: S) and files are summed. So the tensors here are the
  direction already multiplied by the strength: scale 1 reproduces it.
- Metadata is not read by the loader; ``general.architecture = controlvector``,
  ``controlvector.model_hint`` and ``controlvector.layer_count`` are written as llama.cpp's
  own generator writes them. Our fields go under ``interp_agent.*`` (ignored by llama.cpp).

Our hookpoints map as ``blocks.{k}.hook_resid_post`` -> ``direction.{k}`` (k >= 1) and
``blocks.{k}.hook_resid_pre`` -> ``direction.{k-1}`` (k >= 2); every other site is refused.
"""

from __future__ import annotations

import contextlib
import json
import os
from pathlib import Path
from typing import Any

import numpy as np

from interp_agent.core.errors import InputFileError, MissingDependencyError, ValidationError
from interp_agent.core.ids import match_hookpoint
from interp_agent.core.steering.vectors import SCHEMA, SteeringVector

ARCHITECTURE = "controlvector"
MODEL_HINT_KEY = "controlvector.model_hint"
LAYER_COUNT_KEY = "controlvector.layer_count"
OUR_PREFIX = "interp_agent."
_OUR_KEYS = ("schema_version", "model", "feature_id", "strength", "hookpoints", "positions", "synthetic",
             "unit_norm", "provenance")


def _gguf() -> Any:
    try:
        import gguf
    except ImportError:
        raise MissingDependencyError("gguf", "hf", "Writing llama.cpp control vectors") from None
    return gguf


def gguf_layer(hookpoint: str) -> int:
    """The ``direction.{k}`` index of a hookpoint in llama.cpp's convention.

    Raises:
        ValidationError: the hookpoint has no llama.cpp equivalent (another site, or block 0's output).
    """
    point = match_hookpoint(hookpoint)
    if point is not None and point.site == "hook_resid_post":
        k = point.layer
    elif point is not None and point.site == "hook_resid_pre":
        k = point.layer - 1
    else:
        raise ValidationError(
            f"hookpoint {hookpoint!r} has no llama.cpp control-vector equivalent: llama.cpp adds direction.k to "
            "the output of block k (the residual stream after it)",
            hint="export blocks.{L}.hook_resid_post (or hook_resid_pre) vectors to GGUF, or use format "
                 "'safetensors' for this one")
    if k < 1:
        raise ValidationError(
            f"hookpoint {hookpoint!r} is the output of block 0 (direction.0), which llama.cpp's loader rejects "
            "(\"invalid (zero) direction tensor layer index\")",
            hint="steer at a later layer, or use format 'safetensors'")
    return k


def write_control_vector(vec: SteeringVector, path: str | Path, *, model_hint: str) -> dict[str, Any]:
    """Write ``vec`` as a llama.cpp control vector, read it back with ``gguf.GGUFReader`` and compare.

    The file appears at ``path`` only after the read-back matched (written beside it, then renamed).

    Returns:
        What was checked: the tensors (name, length, norm) and the metadata read back.

    Raises:
        ValidationError: a hookpoint has no llama.cpp equivalent.
        RuntimeError: the file read back differs from what was written (a writer bug; nothing is left behind).
    """
    gguf = _gguf()
    layers = {gguf_layer(h): vec.added(i) for i, h in enumerate(vec.hookpoints)}
    if len(layers) != len(vec.hookpoints):
        raise ValidationError(f"hookpoints {list(vec.hookpoints)} map to the same llama.cpp layer twice")
    ours = _our_metadata(vec)
    target = Path(path)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.{os.getpid()}.tmp")
    try:
        writer = gguf.GGUFWriter(str(tmp), ARCHITECTURE)
        writer.add_string(MODEL_HINT_KEY, model_hint)
        writer.add_uint32(LAYER_COUNT_KEY, len(layers))
        for key, value in ours.items():
            writer.add_string(OUR_PREFIX + key, value)
        for k in sorted(layers):
            writer.add_tensor(f"direction.{k}", np.ascontiguousarray(layers[k], dtype=np.float32))
        writer.write_header_to_file()
        writer.write_kv_data_to_file()
        writer.write_tensors_to_file()
        writer.close()
        checked = _verify(tmp, layers, {MODEL_HINT_KEY: model_hint, LAYER_COUNT_KEY: len(layers)}
                          | {OUR_PREFIX + k: v for k, v in ours.items()})
        os.replace(tmp, target)
    finally:
        with contextlib.suppress(FileNotFoundError):
            tmp.unlink()
    return checked


def _our_metadata(vec: SteeringVector) -> dict[str, str]:
    return {"schema_version": SCHEMA, "model": vec.model or "", "feature_id": vec.feature_id,
            "strength": repr(float(vec.strength)), "hookpoints": json.dumps(list(vec.hookpoints)),
            "positions": vec.positions, "synthetic": "true" if vec.synthetic else "false",
            "unit_norm": "true" if vec.unit_norm else "false", "provenance": json.dumps(vec.provenance)}


def _fields(reader: Any) -> dict[str, Any]:
    return {name: f.contents() for name, f in reader.fields.items()}


def _verify(path: Path, layers: dict[int, np.ndarray], expected: dict[str, Any]) -> dict[str, Any]:
    """Read ``path`` with ``gguf.GGUFReader``; raise RuntimeError unless tensors and metadata are as written."""
    gguf = _gguf()
    reader = gguf.GGUFReader(str(path))
    fields = _fields(reader)
    expected = {"general.architecture": ARCHITECTURE} | expected
    wrong = {k: (fields.get(k), v) for k, v in expected.items() if fields.get(k) != v}
    tensors = {t.name: t for t in reader.tensors}
    names = {f"direction.{k}" for k in layers}
    if set(tensors) != names:
        wrong["tensors"] = (sorted(tensors), sorted(names))
    for k, want in layers.items():
        t = tensors.get(f"direction.{k}")
        if t is None:
            continue
        got = np.asarray(t.data)
        if t.tensor_type != gguf.GGMLQuantizationType.F32 or got.shape != want.shape or not np.array_equal(got, want):
            wrong[t.name] = (f"{t.tensor_type.name} {list(got.shape)}", f"F32 {list(want.shape)}")
    if wrong:
        raise RuntimeError(f"the control vector read back from {path} differs from what was written: {wrong}")
    return {"reader": "gguf.GGUFReader", "architecture": ARCHITECTURE,
            "tensors": [{"name": f"direction.{k}", "type": "F32", "length": int(layers[k].shape[0]),
                         "norm": float(np.linalg.norm(layers[k]))} for k in sorted(layers)],
            "metadata": {k: fields[k] for k in (MODEL_HINT_KEY, LAYER_COUNT_KEY)}}


def read_control_vector(path: str | Path) -> SteeringVector:
    """A control-vector GGUF as a steering vector: ours (with ``interp_agent.*`` metadata) or anyone's.

    A foreign file becomes strength 1, directions as stored (not unit), ``direction.{k}`` at
    ``blocks.{k}.hook_resid_post``, added at every position, model unknown.

    Raises:
        InputFileError: not a readable GGUF control vector (the message names the file and the field).
    """
    gguf = _gguf()
    p = Path(path)
    try:
        reader = gguf.GGUFReader(str(p))
        fields = _fields(reader)
    except Exception as exc:  # noqa: BLE001 - any parse failure is a bad file
        raise InputFileError(p, f"not a readable GGUF file ({type(exc).__name__}: {exc})") from None
    if fields.get("general.architecture") != ARCHITECTURE:
        raise InputFileError(p, f"general.architecture is {fields.get('general.architecture')!r}, not "
                             f"{ARCHITECTURE!r}: not a control vector", field="general.architecture")
    by_layer: dict[int, np.ndarray] = {}
    for t in reader.tensors:
        name, _, index = t.name.partition(".")
        if name != "direction" or not index.isdigit() or int(index) < 1:
            raise InputFileError(p, f"tensor {t.name!r} is not direction.{{k}} with k >= 1", field=t.name)
        if t.tensor_type != gguf.GGMLQuantizationType.F32 or np.asarray(t.data).ndim != 1:
            raise InputFileError(p, f"tensor {t.name!r} must be 1-D F32", field=t.name)
        by_layer[int(index)] = np.asarray(t.data, dtype=np.float32).copy()
    if not by_layer or len({v.shape[0] for v in by_layer.values()}) != 1:
        raise InputFileError(p, "control vectors need direction tensors of one length", field="tensors")
    ours = {k[len(OUR_PREFIX):]: v for k, v in fields.items() if k.startswith(OUR_PREFIX)}
    try:
        return _ours(p, ours, by_layer) if ours.get("schema_version") == SCHEMA else _foreign(p, by_layer)
    except (KeyError, ValueError) as exc:
        raise InputFileError(p, f"inconsistent control vector: {exc}") from None


def _ours(p: Path, ours: dict[str, Any], by_layer: dict[int, np.ndarray]) -> SteeringVector:
    hooks = tuple(json.loads(ours["hookpoints"]))
    strength = float(ours["strength"])
    added = np.stack([by_layer[gguf_layer(h)] for h in hooks])
    unit = ours.get("unit_norm") == "true" and strength != 0
    dirs = (added / np.float32(strength)).astype(np.float32) if unit else added
    if unit:  # undo the float32 product's rounding
        dirs = (dirs / np.linalg.norm(dirs, axis=1, keepdims=True)).astype(np.float32)
    return SteeringVector(model=ours.get("model") or None, d_model=added.shape[1], hookpoints=hooks, directions=dirs,
                          strength=strength if unit else 1.0, feature_id=ours.get("feature_id", ""), unit_norm=unit,
                          positions=ours.get("positions", "all"), synthetic=ours.get("synthetic") == "true",
                          provenance=json.loads(ours.get("provenance") or "{}") | {"read_from": "gguf"})


def _foreign(p: Path, by_layer: dict[int, np.ndarray]) -> SteeringVector:
    layers = sorted(by_layer)
    return SteeringVector(model=None, d_model=by_layer[layers[0]].shape[0],
                          hookpoints=tuple(f"blocks.{k}.hook_resid_post" for k in layers),
                          directions=np.stack([by_layer[k] for k in layers]), strength=1.0,
                          feature_id=f"gguf:{p.name}", unit_norm=False, positions="all",
                          provenance={"source": "a llama.cpp control vector not written by interp-agent",
                                      "file": str(p)})
