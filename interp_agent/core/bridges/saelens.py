"""SAE Lens pretrained SAEs: find them by release and id, load them, cache them as SAE Lens folders.

SAE Lens names every published SAE by a *release* (``gemma-scope-2b-pt-res-canonical``) and
an *id* within it (``layer_12/width_16k/canonical``); its registry, ``pretrained_saes.yaml``
inside the installed ``sae_lens`` package, maps the pair to a Hugging Face repo, a path in it
and a conversion function. :func:`resolve_pretrained` reads that registry (the file itself,
without importing ``sae_lens``, which takes seconds). :func:`load_pretrained_sae` loads the
weights with ``sae_lens.SAE.from_pretrained`` — from the local Hugging Face cache when the
hub is unreachable or ``HF_HUB_OFFLINE`` is set, from the hub otherwise — and keeps them as
an SAE Lens folder under ``${INTERP_AGENT_CACHE:-~/.cache/interp-agent}/saes/``, so later
runs need neither sae-lens nor the hub. Offline and uncached, the error names the release,
the id, the repo, the path and the two ways to get it.

The naming helpers spell releases and ids the way the registry does:

    gemma_scope_id(12)                       gemma-scope-2b-pt-res-canonical  layer_12/width_16k/canonical
    gemma_scope_id(12, l0=82)                gemma-scope-2b-pt-res            layer_12/width_16k/average_l0_82
    gemma_scope_2_id(12, model="270m")       gemma-scope-2-270m-pt-res        layer_12_width_16k_l0_medium
    qwen_scope_id(12, model="Qwen3-1.7B-Base")  qwen-scope-3-1.7b-base-w32k-l50  layer12
"""

from __future__ import annotations

import contextlib
import difflib
import functools
import importlib.util
import json
import os
import re
import shutil
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass, replace
from pathlib import Path
from typing import Any

from interp_agent.core.errors import (
    InputFileError,
    InterpAgentError,
    MissingDependencyError,
    ModelUnavailableError,
    ValidationError,
    arg,
)
from interp_agent.core.ids import match_hookpoint
from interp_agent.core.sae.lens import SaeWeights, load_sae_lens, save_sae_lens

REGISTRY_FILE = "pretrained_saes.yaml"
MARKER_FILE = "interp_agent_pretrained.json"
"""Written beside a cached SAE: the release, id, repo and path it came from."""
_CACHE_FORMAT = 1
_SUPPORTED = ("interp-agent runs standard, TopK and JumpReLU SAEs on blocks.L.hook_resid_pre|hook_resid_post|"
              "hook_attn_out|hook_mlp_out|mlp.hook_post")
_FILES_BY_LOADER = {  # what each SAE Lens conversion function downloads (sae_lens/loading/pretrained_sae_loaders.py)
    "sae_lens": ("{path}/cfg.json", "{path}/sae_weights.safetensors"),
    "gemma_2": ("{path}/params.npz",),
    "qwen_scope": ("{path}",),
}


@dataclass(frozen=True, slots=True)
class PretrainedSae:
    """Where SAE Lens's registry says a pretrained SAE lives."""

    release: str
    """Release name, e.g. ``gemma-scope-2b-pt-res-canonical``."""
    sae_id: str
    """Id within the release, e.g. ``layer_12/width_16k/canonical``."""
    repo_id: str
    """Hugging Face repo holding the weights, e.g. ``google/gemma-scope-2b-pt-res``."""
    path: str
    """Path of the SAE inside the repo (a folder or a file, depending on the loader)."""
    model: str
    """Model the SAE was trained on, as the registry names it."""
    loader: str
    """SAE Lens conversion function (``sae_lens`` for SAE Lens-format repos)."""
    neuronpedia_id: str | None
    """Neuronpedia id of the SAE's dashboards, when published."""

    @property
    def files(self) -> tuple[str, ...]:
        """Repo files the loader reads (the folder itself when the loader is not one we know)."""
        return tuple(f.format(path=self.path) for f in _FILES_BY_LOADER.get(self.loader, ("{path}/*",)))

    def to_json(self) -> dict[str, Any]:
        """JSON-ready fields."""
        return {"release": self.release, "sae_id": self.sae_id, "repo_id": self.repo_id, "path": self.path,
                "model": self.model, "loader": self.loader, "neuronpedia_id": self.neuronpedia_id}


# --- the registry ------------------------------------------------------------------------


def _need_sae_lens(purpose: str) -> Path:
    """The installed sae_lens package folder (found without importing it)."""
    spec = importlib.util.find_spec("sae_lens")
    if spec is None or not spec.submodule_search_locations:
        raise MissingDependencyError("sae-lens", "saelens", purpose)
    return Path(next(iter(spec.submodule_search_locations)))


@functools.lru_cache(maxsize=1)
def _registry() -> dict[str, dict[str, Any]]:
    import yaml

    path = _need_sae_lens("Finding pretrained SAEs by release and id") / REGISTRY_FILE
    with path.open() as fh:
        data = yaml.load(fh, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader))
    if not isinstance(data, dict):
        raise InputFileError(path, "not a mapping of release names")
    return data


def list_releases() -> list[str]:
    """Every release in the installed SAE Lens registry, sorted.

    Raises:
        MissingDependencyError: sae-lens is not installed.
    """
    return sorted(_registry())


def list_sae_ids(release: str) -> list[str]:
    """The SAE ids of ``release``, in registry order.

    Raises:
        ValidationError: the release is not in the registry (the message suggests close names).
        MissingDependencyError: sae-lens is not installed.
    """
    return [str(s["id"]) for s in _release(release)["saes"]]


def _release(release: str) -> dict[str, Any]:
    registry = _registry()
    if release not in registry:
        close = difflib.get_close_matches(release, list(registry), n=5, cutoff=0.5)
        raise ValidationError(
            f"SAE Lens release {release!r} is not in the registry of the installed sae-lens",
            hint=(f"did you mean {', '.join(close)}? " if close else "")
            + "list them with interp_agent.core.bridges.saelens.list_releases()",
        )
    return registry[release]


def resolve_pretrained(release: str, sae_id: str) -> PretrainedSae:
    """Look a pretrained SAE up in SAE Lens's registry; reads no weights and makes no network call.

    Raises:
        ValidationError: the release or the id is not in the registry (close names are suggested).
        MissingDependencyError: sae-lens is not installed.
    """
    entry = _release(release)
    saes = {str(s["id"]): s for s in entry["saes"]}
    if sae_id not in saes:
        close = difflib.get_close_matches(sae_id, list(saes), n=5, cutoff=0.6)
        shown = close or list(saes)[:5]
        raise ValidationError(
            f"SAE id {sae_id!r} is not in release {release!r} ({len(saes)} ids)",
            hint=f"{'did you mean' if close else 'ids look like'} {', '.join(shown)}",
        )
    hit = saes[sae_id]
    return PretrainedSae(
        release=release, sae_id=sae_id, repo_id=str(entry["repo_id"]), path=str(hit["path"]), model=str(entry["model"]),
        loader=str(entry.get("conversion_func") or "sae_lens"), neuronpedia_id=hit.get("neuronpedia"),
    )


# --- naming helpers ------------------------------------------------------------------------


def _width(width: str | int, *, per_k: int) -> str:
    """A width as releases spell it: Gemma Scope truncates to thousands (65536 -> 65k), Qwen-Scope divides by 1024."""
    text = str(width).strip().lower()
    if re.fullmatch(r"\d+", text) and int(text) >= 1024:
        n = int(text)
        text = f"{n // 2**20}m" if n % 2**20 == 0 else f"{n // per_k}k"
    if not re.fullmatch(r"\d+[km]", text):
        raise ValidationError(f"width={width!r} is not a width like '16k', '1m' or 16384")
    return text


def _check_in_registry(release: str, sae_id: str) -> None:
    """Confirm the pair when sae-lens is installed; without it, the spelling alone is returned."""
    if importlib.util.find_spec("sae_lens") is not None:
        resolve_pretrained(release, sae_id)


def gemma_scope_id(
    layer: int, width: str | int = "16k", l0: int | None = None, kind: str = "res", model: str = "2b",
    *, check: bool = True,
) -> tuple[str, str]:
    """Release and id of a Gemma Scope SAE (Gemma 2), as SAE Lens's registry spells them.

    Args:
        layer: block index.
        width: latents, ``16k``, ``65k``, ``131k``, ``1m`` (or a number such as 16384).
        l0: the SAE's average L0 (``average_l0_{l0}`` ids); None picks the canonical SAE of the
            layer and width (release ``…-canonical``, id ``…/canonical``).
        kind: ``res`` (residual stream after the block), ``mlp`` or ``att``.
        model: ``2b``, ``9b``, ``27b``, or ``9b-it`` for the instruction-tuned 9B.
        check: confirm the pair is in the installed registry (skipped when sae-lens is absent).

    Returns:
        ``(release, sae_id)``, e.g. ``("gemma-scope-2b-pt-res-canonical", "layer_12/width_16k/canonical")``.

    Raises:
        ValidationError: a bad argument, or (with ``check``) a pair the registry does not have.
    """
    if kind not in ("res", "mlp", "att"):
        raise ValidationError(f"kind={kind!r} is not a Gemma Scope site", hint="use 'res', 'mlp' or 'att'")
    if not isinstance(layer, int) or layer < 0:
        raise ValidationError(f"layer={layer!r} must be a non-negative integer")
    size, _, tuned = model.lower().removeprefix("gemma-2-").partition("-")
    release = f"gemma-scope-{size}-{'it' if tuned == 'it' else 'pt'}-{kind}"
    leaf = "canonical" if l0 is None else f"average_l0_{int(l0)}"
    release = release + "-canonical" if l0 is None else release
    sae_id = f"layer_{layer}/width_{_width(width, per_k=1000)}/{leaf}"
    if check:
        _check_in_registry(release, sae_id)
    return release, sae_id


def gemma_scope_2_id(
    layer: int, width: str | int = "16k", l0: str = "medium", kind: str = "res", model: str = "270m",
    *, instruct: bool = False, all_layers: bool = False, check: bool = True,
) -> tuple[str, str]:
    """Release and id of a Gemma Scope 2 SAE (Gemma 3), as SAE Lens's registry spells them.

    Args:
        layer: block index.
        width: ``16k``, ``65k``, ``262k`` or ``1m``.
        l0: ``small``, ``medium`` or ``big`` (the ``-all`` releases have ``small`` and ``big`` only).
        kind: ``res``, ``mlp`` or ``att``.
        model: ``270m``, ``1b``, ``4b``, ``12b`` or ``27b``.
        instruct: the SAEs of the instruction-tuned model (``-it-``) instead of the base (``-pt-``).
        all_layers: the ``…-all`` release, which covers every layer (the plain one covers four).
        check: confirm the pair is in the installed registry (skipped when sae-lens is absent).

    Returns:
        ``(release, sae_id)``, e.g. ``("gemma-scope-2-270m-pt-res", "layer_12_width_16k_l0_medium")``.
    """
    if kind not in ("res", "mlp", "att"):
        raise ValidationError(f"kind={kind!r} is not a Gemma Scope 2 site", hint="use 'res', 'mlp' or 'att'")
    if l0 not in ("small", "medium", "big"):
        raise ValidationError(f"l0={l0!r} is not a Gemma Scope 2 sparsity", hint="use 'small', 'medium' or 'big'")
    size = model.lower().removeprefix("gemma-3-").removeprefix("google/gemma-3-").split("-")[0]
    release = f"gemma-scope-2-{size}-{'it' if instruct else 'pt'}-{kind}{'-all' if all_layers else ''}"
    sae_id = f"layer_{int(layer)}_width_{_width(width, per_k=1000)}_l0_{l0}"
    if check:
        _check_in_registry(release, sae_id)
    return release, sae_id


def qwen_scope_id(
    layer: int, model: str = "Qwen3-1.7B-Base", width: str | int | None = None, l0: int = 50, *, check: bool = True,
) -> tuple[str, str]:
    """Release and id of a Qwen-Scope residual SAE (TopK), as SAE Lens's registry spells them.

    Releases are ``qwen-scope-{version}-{size}[-base]-w{width}-l{l0}`` (``qwen-scope-3-1.7b-base-w32k-l50``
    for the repo ``Qwen/SAE-Res-Qwen3-1.7B-Base-W32K-L0_50``), ids ``layer{L}``.

    Args:
        layer: block index.
        model: the base model, ``Qwen/Qwen3-1.7B-Base``, ``Qwen3-8B-Base``, ``qwen3.5-27b`` …
        width: latents (``32k``); None takes the one width the registry has for the model and ``l0``.
        l0: the TopK k the SAEs were trained with: 50 or 100.
        check: confirm the pair is in the installed registry (skipped when sae-lens is absent).

    Raises:
        ValidationError: a bad argument, or a model / width / l0 the registry does not have.
    """
    key = model.strip().lower().removeprefix("qwen/").removeprefix("qwen")
    if not re.fullmatch(r"\d+(\.\d+)?-[\w.-]+", key):
        raise ValidationError(f"model={model!r} is not a Qwen model name like 'Qwen3-1.7B-Base'")
    prefix = f"qwen-scope-{key}-w"
    if width is None:
        _need_sae_lens("Choosing the width of a Qwen-Scope SAE")
        found = [r for r in _registry() if r.startswith(prefix) and r.endswith(f"-l{int(l0)}")]
        if len(found) != 1:
            known = sorted(r for r in _registry() if r.startswith("qwen-scope-"))
            raise ValidationError(
                f"the registry has {len(found)} Qwen-Scope releases for model={model!r}, l0={l0}: {found}",
                hint=f"pass width=...; Qwen-Scope releases: {', '.join(known)}",
            )
        release = found[0]
    else:
        release = f"{prefix}{_width(width, per_k=1024)}-l{int(l0)}"
    sae_id = f"layer{int(layer)}"
    if check:
        _check_in_registry(release, sae_id)
    return release, sae_id


# --- loading -------------------------------------------------------------------------------


def pretrained_cache_dir(release: str, sae_id: str) -> Path:
    """Folder where the SAE Lens copy of a pretrained SAE is cached."""
    from interp_agent.core.models.loading import cache_root

    safe = re.sub(r"[^A-Za-z0-9._-]+", "__", sae_id)
    return cache_root() / "saes" / re.sub(r"[^A-Za-z0-9._-]+", "__", release) / safe


def _cached(folder: Path, info: PretrainedSae) -> bool:
    try:
        marker = json.loads((folder / MARKER_FILE).read_text())
    except (OSError, ValueError):
        return False
    return (
        isinstance(marker, dict) and marker.get("format") == _CACHE_FORMAT
        and marker.get("release") == info.release and marker.get("sae_id") == info.sae_id
        and (folder / "cfg.json").is_file() and (folder / "sae_weights.safetensors").is_file()
    )


def pretrained_sae_folder(release: str, sae_id: str, *, device: str = "cpu") -> Path:
    """An SAE Lens folder holding the pretrained SAE, fetched and converted on first use.

    The folder (see :func:`pretrained_cache_dir`) is read by ``load_sae`` and by
    ``sae_lens.SAE.load_from_disk``; it is written once, atomically, and reused offline.

    Raises:
        ValidationError: the release or id is unknown, or the SAE is of a kind interp-agent cannot run
            (a transcoder, an attention-head hook, run-time input normalisation).
        MissingDependencyError: sae-lens is needed (first use) and not installed.
        ModelUnavailableError: the weights are neither cached nor reachable; the message says how to get them.
    """
    info = resolve_pretrained(release, sae_id)
    folder = pretrained_cache_dir(release, sae_id)
    if _cached(folder, info):
        return folder
    weights = _fetch(info, device=device)
    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        save_sae_lens(tmp, weights, model_name=info.model)
        (tmp / MARKER_FILE).write_text(json.dumps({"format": _CACHE_FORMAT, **info.to_json(),
                                                   "sae_lens_version": _version("sae-lens")}, indent=2))
        if folder.exists():
            shutil.rmtree(folder)
        os.replace(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder


def load_pretrained_sae(release: str, sae_id: str, *, device: str = "cpu") -> SaeWeights:
    """A pretrained SAE as :class:`SaeWeights` (see :func:`pretrained_sae_folder` for where it comes from)."""
    return load_sae_lens(pretrained_sae_folder(release, sae_id, device=device))


def _version(dist: str) -> str | None:
    import importlib.metadata

    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


@contextlib.contextmanager
def _hub_offline_mode() -> Iterator[None]:
    """huggingface_hub in offline mode for the duration: downloads resolve from the local cache only."""
    from huggingface_hub import constants

    before = constants.HF_HUB_OFFLINE
    constants.HF_HUB_OFFLINE = True  # is_offline_mode() reads it at call time
    try:
        yield
    finally:
        constants.HF_HUB_OFFLINE = before


def _fetch(info: PretrainedSae, *, device: str) -> SaeWeights:
    """Load with SAE Lens (cache only when the hub cannot be used) and convert to SaeWeights."""
    from interp_agent.core.models.loading import hub_offline, hub_reachable

    _need_sae_lens(f"Loading the pretrained SAE {info.release} / {info.sae_id}")
    offline_why = "HF_HUB_OFFLINE is set" if hub_offline() else None
    if offline_why is None:
        reachable, host = hub_reachable()
        offline_why = None if reachable else f"the hub ({host}) cannot be reached"
    from sae_lens import SAE

    try:
        with _hub_offline_mode() if offline_why else contextlib.nullcontext():
            sae, cfg_dict, _ = SAE.from_pretrained_with_cfg_and_sparsity(info.release, info.sae_id, device=device)
    except Exception as exc:  # loaders raise hub, OS and value errors alike
        raise _unavailable(info, offline_why, exc) from exc
    return _to_weights(sae, cfg_dict, info)


def _unavailable(info: PretrainedSae, offline_why: str | None, exc: Exception) -> ModelUnavailableError:
    files = ", ".join(info.files)
    why = (f"it is not in the local Hugging Face cache and {offline_why}" if offline_why
           else "loading it from the hub failed")
    return ModelUnavailableError(
        f"pretrained SAE {info.release!r} / {info.sae_id!r} is not available: {why}. It needs {files} from the "
        f"Hugging Face repo {info.repo_id!r} ({type(exc).__name__}: {exc})",
        hint=(
            "either (1) run once where the hub is reachable (the same command, or "
            f"`hf download {info.repo_id} --include '{info.path}*'`) to fill the Hugging Face cache "
            "(~/.cache/huggingface, or $HF_HOME) and copy that cache here; or (2) save it as an SAE Lens folder "
            f"where the hub is reachable (`python -c \"from sae_lens import SAE; SAE.from_pretrained('{info.release}', "
            f"'{info.sae_id}').save_model('DIR')\"`) and pass --sae DIR"
        ),
    )


def _to_weights(sae: Any, cfg_dict: dict[str, Any], info: PretrainedSae) -> SaeWeights:
    """Write the loaded SAE with SAE Lens's own save_model; read it back with our reader (which folds its options)."""
    norm = cfg_dict.get("normalize_activations") or "none"
    if norm != "none":
        raise ValidationError(
            f"pretrained SAE {info.release} / {info.sae_id} normalises its inputs at run time ({norm!r}), "
            "which interp-agent does not do",
            hint="pick an SAE with normalize_activations 'none' (SAE Lens folds known scaling factors itself)",
        )
    with tempfile.TemporaryDirectory(prefix="interp-agent-sae-") as tmp:
        sae.save_model(tmp)
        cfg_path = Path(tmp) / "cfg.json"
        cfg = json.loads(cfg_path.read_text())
        cfg["normalize_activations"] = "none"  # from_pretrained folded any scaling factor into the weights
        cfg_path.write_text(json.dumps(cfg))
        try:
            weights = load_sae_lens(tmp)
        except InterpAgentError as exc:
            raise ValidationError(
                f"pretrained SAE {info.release} / {info.sae_id} cannot be used here: {exc.message.split(': ', 1)[-1]}",
                hint=_SUPPORTED,
            ) from None
    if match_hookpoint(weights.hookpoint) is None:
        raise ValidationError(
            f"pretrained SAE {info.release} / {info.sae_id} reads {weights.hookpoint!r}, a hookpoint interp-agent "
            "does not harvest", hint=_SUPPORTED,
        )
    return replace(weights, metadata={**weights.metadata, "pretrained": info.to_json()})


# --- inspect --backend saelens ---------------------------------------------------------------


def sae_for_inspection(sae: str | Path | None, release: str | None, sae_id: str | None) -> Path:
    """The SAE folder of an ``inspect --backend saelens`` run: a local folder, or a pretrained SAE by release and id.

    Raises:
        ValidationError: neither or both ways are given, or only one of release and id.
    """
    if sae is not None and (release or sae_id):
        raise ValidationError(f"give either {arg('sae')} or {arg('saelens_release')} with {arg('saelens_id')}, "
                              "not both")
    if sae is not None:
        return Path(sae)
    if not release or not sae_id:
        raise ValidationError(
            f"the saelens backend needs an SAE: {arg('sae')} (an SAE Lens or sparsify folder), or "
            f"{arg('saelens_release')} with {arg('saelens_id')} (got release={release!r}, id={sae_id!r})",
            hint=f"e.g. {arg('saelens_release', 'gemma-scope-2b-pt-res-canonical')} "
                 f"{arg('saelens_id', 'layer_12/width_16k/canonical')}; gemma_scope_id() / qwen_scope_id() in "
                 "interp_agent.core.bridges.saelens spell them",
        )
    return pretrained_sae_folder(release, sae_id)


def sae_hookpoint(folder: str | Path) -> str:
    """The hookpoint an SAE folder reads (from an SAE Lens cfg.json without loading the weights)."""
    cfg_path = Path(folder) / "cfg.json"
    if (Path(folder) / "sae_weights.safetensors").is_file() and cfg_path.is_file():
        with contextlib.suppress(OSError, ValueError, AttributeError):
            cfg = json.loads(cfg_path.read_text())
            hook = (cfg.get("metadata") or {}).get("hook_name") or cfg.get("hook_name")
            if isinstance(hook, str) and match_hookpoint(hook) is not None:
                return hook
    from interp_agent.core.sae import load_sae

    return load_sae(folder).hookpoint
