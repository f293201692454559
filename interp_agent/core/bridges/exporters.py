"""Activation records through TransformerLens or nnsight: ``harvest_records``'s records, read by another library.

Both exporters are activation readers (``ActivationReader``) plugged into the one loop of
:mod:`~interp_agent.core.models.harvest` (``make_loop`` + ``read_records``), so they tokenize,
batch, pool and name features exactly as ``harvest_records`` does (right padding, the first
position left out of ``token``/``mean``/``max`` rows, ``L{layer}:D{dim}`` ids, zeros
dropped); only the reading of the activations differs:

- ``transformer-lens``: ``TransformerBridge.boot_transformers(…, hf_model=…)`` wraps the
  loaded Hugging Face model (no hub call) and ``run_with_cache`` reads the TransformerLens
  hook of each hookpoint (``blocks.L.hook_resid_post`` …), stopping after the deepest block.
  The bridge rewires the model it wraps, so a LoadedModel passed in is deep-copied first.
- ``nnsight``: ``TransformersModel(hf_model, tokenizer=…)`` traces the model and saves the
  output (or first input) of the module behind each hookpoint, then stops the trace.
  ``remote=True`` is passed to ``trace`` for NDIF: the model must then be a hub id that
  NDIF serves, and nnsight's own API-key configuration applies. nnsight is imported through
  :func:`import_nnsight`, which takes back the ``.save`` nnsight mounts on every object (it
  breaks anyio, hence the MCP SDK, for the rest of the process); values are saved with
  ``nnsight.save(value)``.

The tests check both against ``harvest_records`` on SmolLM2-135M.
"""

from __future__ import annotations

import copy
import sys
from collections.abc import Iterator, Sequence
from pathlib import Path
from typing import Any, Literal

import torch

from interp_agent.core.errors import MissingDependencyError, ModelUnavailableError, ValidationError, arg
from interp_agent.core.formats.parquet import write_parquet_dataset
from interp_agent.core.formats.prompts import ScoredPrompt
from interp_agent.core.formats.records import ActivationRecord, FeatureMeta, write_records
from interp_agent.core.models.harvest import (
    ActivationReader,
    Pooling,
    make_loop,
    read_records,
    resolve_points,
)
from interp_agent.core.models.hookpoints import HookPoint
from interp_agent.core.models.loading import EMBEDDED_ALIASES, LoadedModel, load_model
from interp_agent.core.progress import Progress

Via = Literal["transformer-lens", "nnsight"]
VIAS: tuple[str, ...] = ("transformer-lens", "nnsight")
_FORWARD_ORDER = {"hook_resid_pre": 0, "hook_attn_out": 1, "mlp.hook_post": 2, "hook_mlp_out": 3, "hook_resid_post": 4}
"""Where each site is computed within a block (nnsight must read modules in forward order)."""


def _records(
    name: str,
    tokenizer: Any,
    prompts: Sequence[ScoredPrompt],
    points: list[HookPoint],
    reader: ActivationReader,
    *,
    device: torch.device | str,
    batch_size: int,
    max_length: int,
    pooling: str,
    exclude_first: bool,
    top_n: int | None,
    progress: Progress | None,
    feature_metadata: dict[str, FeatureMeta] | None,
) -> Iterator[ActivationRecord]:
    """Records of ``prompts`` from the activations ``reader`` reads, through harvest's own loop."""
    loop = make_loop(reader, points, tokenizer, device, batch_size=batch_size, pooling=pooling,
                     exclude_first=exclude_first)
    return read_records(loop, tokenizer, prompts, model_name=name, top_n=top_n, max_length=max_length,
                        progress=progress, feature_metadata=feature_metadata)


def _loaded(model: str | LoadedModel, device: str) -> LoadedModel:
    if isinstance(model, LoadedModel):
        return model
    if not isinstance(model, str):
        raise ValidationError(f"model must be a name or a LoadedModel, got {type(model).__name__}")
    return load_model(model, device=device)  # type: ignore[arg-type]  # device is checked by load_model at run time


# --- TransformerLens -----------------------------------------------------------------------


def transformer_lens_bridge(loaded: LoadedModel, *, copy_model: bool = True) -> Any:
    """A TransformerLens ``TransformerBridge`` around a loaded model, booted offline from its weights.

    Args:
        loaded: the model.
        copy_model: wrap a deep copy: the bridge replaces the blocks of the model it wraps, which
            the caller's hooks and hookpoints would no longer find.

    Raises:
        MissingDependencyError: transformer-lens is not installed.
    """
    try:
        from transformer_lens.model_bridge import TransformerBridge
    except ImportError:
        raise MissingDependencyError("transformer-lens", "bridges",
                                     "Reading activations through TransformerLens") from None
    hf_model = copy.deepcopy(loaded.model) if copy_model else loaded.model
    param = next(hf_model.parameters())
    return TransformerBridge.boot_transformers(
        loaded.name, hf_model=hf_model, tokenizer=copy.deepcopy(loaded.tokenizer), device=param.device,
        dtype=param.dtype,
    )


def records_via_transformer_lens(
    model: str | LoadedModel,
    prompts: Sequence[ScoredPrompt],
    hookpoints: Sequence[str],
    *,
    pooling: Pooling = "mean",
    exclude_first: bool = True,
    batch_size: int = 16,
    max_length: int = 128,
    top_n: int | None = None,
    device: str = "auto",
    progress: Progress | None = None,
    feature_metadata: dict[str, FeatureMeta] | None = None,
) -> Iterator[ActivationRecord]:
    """Activation records read through TransformerLens's ``TransformerBridge.run_with_cache``.

    Args:
        model: ``smollm2-135m``, a local folder, a hub id, or a LoadedModel (deep-copied).
        prompts, hookpoints, pooling, exclude_first, batch_size, max_length, top_n, progress,
            feature_metadata: as in ``harvest_records`` (basis features only: ``L{layer}:D{dim}``,
            ``L{layer}:N{i}`` …).
        device: where a model given by name is loaded.

    Yields:
        Records in prompt order (token rows by position), as ``harvest_records`` yields them.

    Raises:
        MissingDependencyError: transformer-lens is not installed.
        ValidationError: bad options or an unknown hookpoint.
    """
    loaded = _loaded(model, device)
    points = resolve_points(loaded.model, hookpoints)  # before booting: the bridge rewires the blocks
    bridge = transformer_lens_bridge(loaded, copy_model=isinstance(model, LoadedModel))
    names = [p.name for p in points]
    stop = max(p.layer for p in points) + 1

    def run(input_BT: torch.Tensor, mask_BT: torch.Tensor) -> dict[str, torch.Tensor]:
        _, cache = bridge.run_with_cache(input_BT, attention_mask=mask_BT, names_filter=names, stop_at_layer=stop,
                                         return_cache_object=False)
        return {name: cache[name] for name in names}

    yield from _records(loaded.name, loaded.tokenizer, prompts, points, run, device=torch.device(loaded.device),
                        batch_size=batch_size, max_length=max_length, pooling=pooling, exclude_first=exclude_first,
                        top_n=top_n, progress=progress, feature_metadata=feature_metadata)


# --- nnsight -------------------------------------------------------------------------------


def import_nnsight() -> Any:
    """The ``nnsight`` module, imported without leaving ``.save`` on every object of the process.

    ``import nnsight`` (0.8.1; ``CONFIG.APP.PYMOUNT``, on by default) writes a ``save`` method
    into ``object``'s own type dict with its C extension (``nnsight/_c/py_mount.c``, called at the
    bottom of ``nnsight/__init__.py``), so that ``value.save()`` works in a trace. From then on
    every class has a public, unannotated ``save`` attribute, and anyio's
    ``TypedAttributeSet.__init_subclass__`` (``anyio/_core/_typedattr.py``), which rejects any
    public attribute in ``dir(cls)`` without an annotation, fails for every attribute set defined
    afterwards: ``import mcp`` (``mcp.os.win32.utilities`` imports ``anyio.streams.file``) raises
    ``TypeError: Attribute 'save' is missing its type annotation``, and so do ``anyio.streams.tls``
    and ``anyio.abc.SocketAttribute``. nnsight knows (the comment at the top of its
    ``__init__.py``) and imports ``anyio`` before mounting, but that defines none of those
    classes: they live in submodules ``import anyio`` does not load (anyio 4.16 even loads
    ``anyio.abc`` lazily). Upstream cause, not ours; nnsight's own fallback when the mount is off
    (the flag came with ndif-team/nnsight#559) is ``nnsight.save(value)``, which is what the
    exporter calls.

    So the mount this import made is taken back at once (``nnsight._c.unmount``), before any
    other module can be imported. A mount that was there before (the caller imported nnsight
    first) is the caller's and left alone. ``CONFIG.APP.PYMOUNT`` is not touched: nnsight writes
    its whole config to the user's file on ``CONFIG.save()``. Code that imports nnsight later in
    the same process gets this module without the mount: it must write ``nnsight.save(x)``.

    Raises:
        MissingDependencyError: nnsight is not installed.
    """
    mounted_before = "save" in vars(object)
    fresh = "nnsight" not in sys.modules
    try:
        import nnsight
    except ImportError:
        raise MissingDependencyError("nnsight", "bridges", "Reading activations through nnsight") from None
    finally:
        if fresh and not mounted_before and "save" in vars(object):
            _unmount_save()
    return nnsight


def _unmount_save() -> None:
    """Take the ``save`` nnsight mounted on ``object`` back out (see :func:`import_nnsight`).

    Through the extension module itself, already in ``sys.modules``: importing it by name would
    run ``nnsight/__init__.py`` (and its mount) again when that import is what just failed.
    """
    py_mount = sys.modules.get("nnsight._c.py_mount")
    if py_mount is None:  # pragma: no cover - a mount without the extension that makes it
        raise RuntimeError("nnsight mounted .save on object but its py_mount extension is not loaded")
    py_mount.unmount("save")


def nnsight_model(model: str | LoadedModel, *, remote: bool = False, device: str = "auto") -> tuple[Any, str]:
    """An nnsight ``TransformersModel`` of the model, padding on the right; and the model's name.

    Locally it wraps the loaded Hugging Face model (a name is loaded with ``load_model``) with a
    copy of its tokenizer; with ``remote`` it is built from the hub id (a weightless skeleton;
    NDIF runs the model), which needs the hub for the config and tokenizer.

    Raises:
        MissingDependencyError: nnsight is not installed.
        ValidationError: ``remote`` with a LoadedModel, a local folder or the embedded model.
        ModelUnavailableError: ``remote`` and the hub id's config or tokenizer cannot be fetched.
    """
    import_nnsight()  # first: importing any nnsight module mounts .save on object
    try:
        from nnsight.modeling.transformers import TransformersModel
    except ImportError:
        raise MissingDependencyError("nnsight", "bridges", "Reading activations through nnsight") from None
    if remote:
        if not isinstance(model, str) or model.strip().lower() in EMBEDDED_ALIASES or Path(model).expanduser().exists():
            raise ValidationError(
                f"remote=True runs the model on NDIF, which serves hub models by id; {model!r} is not a hub id",
                hint="pass the hub id NDIF serves (e.g. meta-llama/Llama-3.1-8B), or drop remote to trace locally",
            )
        try:
            nn_model = TransformersModel(model, task="text-generation")
        except Exception as exc:  # the hub lookup fails in many ways (offline, gated, not found)
            raise ModelUnavailableError(f"nnsight cannot build {model!r} for a remote run: {type(exc).__name__}: {exc}",
                                        hint="remote runs need the hub for the model's config and tokenizer") from exc
        name = model
    else:
        loaded = _loaded(model, device)
        nn_model = TransformersModel(loaded.model, task="text-generation", tokenizer=copy.deepcopy(loaded.tokenizer))
        name = loaded.name
    tokenizer: Any = nn_model.tokenizer
    tokenizer.padding_side = "right"  # nnsight left-pads causal models; our batches are right-padded
    if tokenizer.pad_token is None:
        tokenizer.pad_token = tokenizer.eos_token
    return nn_model, name


def _envoy(nn_model: Any, module_path: str) -> Any:
    envoy = nn_model
    for part in module_path.split("."):
        envoy = envoy[int(part)] if part.isdigit() else getattr(envoy, part)
    return envoy


def records_via_nnsight(
    model: str | LoadedModel,
    prompts: Sequence[ScoredPrompt],
    hookpoints: Sequence[str],
    *,
    remote: bool = False,
    pooling: Pooling = "mean",
    exclude_first: bool = True,
    batch_size: int = 16,
    max_length: int = 128,
    top_n: int | None = None,
    device: str = "auto",
    progress: Progress | None = None,
    feature_metadata: dict[str, FeatureMeta] | None = None,
) -> Iterator[ActivationRecord]:
    """Activation records read through an nnsight trace (saved module outputs or inputs).

    Args:
        model: ``smollm2-135m``, a local folder, a hub id or a LoadedModel (traced in place,
            its tokenizer copied); with ``remote``, the hub id NDIF serves.
        remote: passed to ``trace``: run on NDIF (nnsight's API key configuration applies).
        prompts, hookpoints, pooling, exclude_first, batch_size, max_length, top_n, progress,
            feature_metadata: as in ``harvest_records``.
        device: where a model given by name is loaded (local runs).

    Raises:
        MissingDependencyError: nnsight is not installed.
        ValidationError: bad options, an unknown hookpoint, or ``remote`` without a hub id.
    """
    nn_model, name = nnsight_model(model, remote=remote, device=device)
    module = nn_model._module  # the Hugging Face model (a meta-device skeleton when remote)
    points = resolve_points(module, hookpoints)  # features in the caller's order, as harvest_records names them
    paths = {id(m): path for path, m in module.named_modules()}
    envoys = [(p, _envoy(nn_model, paths[id(p.module)]))
              for p in sorted(points, key=lambda p: (p.layer, _FORWARD_ORDER[p.site]))]
    device_of = torch.device("cpu") if remote else next(module.parameters()).device
    nnsight = import_nnsight()  # no `.save()` on values: import_nnsight took that mount back

    def run(input_BT: torch.Tensor, mask_BT: torch.Tensor) -> dict[str, torch.Tensor]:
        saved = {}
        with nn_model.trace(input_BT, attention_mask=mask_BT, remote=remote) as tracer:
            for point, envoy in envoys:  # in forward order: nnsight reads modules as the forward reaches them
                value = envoy.output if point.mode == "output" else envoy.input
                saved[point.name] = nnsight.save(value[0] if isinstance(value, (tuple, list)) else value)
            tracer.stop()
        return saved

    yield from _records(name, nn_model.tokenizer, prompts, points, run, device=device_of, batch_size=batch_size,
                        max_length=max_length, pooling=pooling, exclude_first=exclude_first, top_n=top_n,
                        progress=progress, feature_metadata=feature_metadata)


# --- writing -------------------------------------------------------------------------------


def export_records(
    out: str | Path,
    model: str | LoadedModel,
    prompts: Sequence[ScoredPrompt],
    hookpoints: Sequence[str],
    *,
    via: Via,
    format: Literal["jsonl", "parquet"] | None = None,
    **options: Any,
) -> Path:
    """Harvest records through TransformerLens or nnsight and write them (atomically).

    Args:
        out: a ``.jsonl`` file, or a Parquet dataset folder.
        via: ``transformer-lens`` or ``nnsight``.
        format: ``jsonl`` or ``parquet``; None decides by the suffix of ``out``.
        options: keyword arguments of :func:`records_via_transformer_lens` / :func:`records_via_nnsight`.
    """
    if via not in VIAS:
        raise ValidationError(f"unknown via={via!r}", hint=f"use one of {list(VIAS)}")
    fmt = format or ("jsonl" if str(out).endswith(".jsonl") else "parquet")
    if fmt not in ("jsonl", "parquet"):
        raise ValidationError(f"unknown format {fmt!r}", hint="use 'jsonl' or 'parquet'")
    meta: dict[str, FeatureMeta] = {}
    reader = records_via_transformer_lens if via == "transformer-lens" else records_via_nnsight
    records = reader(model, prompts, hookpoints, feature_metadata=meta, **options)
    return write_records(out, records, meta) if fmt == "jsonl" else write_parquet_dataset(out, records, meta)


def prompts_for_export(dataset: str | Path | None = None, pack: str | None = None) -> list[ScoredPrompt]:
    """The prompts of a scored-prompts JSONL file or of a built-in criterion pack (exactly one of them)."""
    if (dataset is None) == (pack is None):
        raise ValidationError(f"give exactly one of {arg('dataset')} (scored prompts JSONL) and {arg('pack')}")
    if pack is not None:
        from interp_agent.core.criteria import load_pack

        return list(load_pack(pack).prompts)
    from interp_agent.core.formats.prompts import read_scored_prompts

    return read_scored_prompts(dataset)  # type: ignore[arg-type]  # the caller checked dataset is set
