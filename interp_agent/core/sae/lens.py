"""SAE files: SAE Lens folders (read and write) and EleutherAI sparsify folders (read).

SAE Lens: ``cfg.json`` + ``sae_weights.safetensors`` holding ``W_enc [d_in, d_sae]``, ``W_dec [d_sae, d_in]``,
``b_enc [d_sae]``, ``b_dec [d_in]`` and, for JumpReLU, ``threshold [d_sae]``. The cfg names ``d_in``, ``d_sae``,
``architecture`` (standard, topk, jumprelu), ``k`` for TopK and the hookpoint (``metadata.hook_name``, or
``hook_name`` in files older than SAE Lens 6).

sparsify: one folder per hooked module, named after it (``layers.15``), holding ``cfg.json`` + ``sae.safetensors``
with ``encoder.weight [d_sae, d_in]``, ``encoder.bias [d_sae]``, ``W_dec [d_sae, d_in]`` and ``b_dec [d_in]``.
It encodes as a TopK SAE: ``topk(relu((x - b_dec) @ encoder.weight.T + encoder.bias), k)``
(sparsify/sparse_coder.py ``SparseCoder.encode``, sparsify/fused_encoder.py).
"""

from __future__ import annotations

import json
import re
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any

import numpy as np

from interp_agent.core.artifacts import atomic_open, write_json
from interp_agent.core.errors import InputFileError, MissingDependencyError, ValidationError
from interp_agent.core.ids import Site, format_hookpoint, hook_layer

_ARCHITECTURES = ("standard", "topk", "jumprelu", "batchtopk")  # batchtopk: pre-6 SAE Lens files, read as TopK
_SAE_LENS_FORMAT = "6.0.0"
"""Written as ``metadata.sae_lens_version``: SAE Lens reads a cfg without one (or older) as pre-6 and drops
its ``metadata`` block (sae_lens/loading/pretrained_sae_loaders.py ``handle_config_defaulting``)."""
_PRE6_METADATA = ("model_name", "model_class_name", "hook_name", "hook_head_index", "model_from_pretrained_kwargs",
                  "prepend_bos", "exclude_special_tokens", "neuronpedia_id", "context_size", "seqpos_slice",
                  "dataset_path", "sae_lens_version", "sae_lens_training_version")  # SAE Lens's LLM_METADATA_KEYS
_LENS_LAYOUT = "an SAE Lens folder holds cfg.json and sae_weights.safetensors"
_SPARSIFY_LAYOUT = "a sparsify folder holds cfg.json and sae.safetensors"
# sparsify hooks a module's output; for a decoder layer that is the residual stream after it
_SPARSIFY_MODULES: dict[re.Pattern[str], Site] = {
    re.compile(r"^layers\.(\d+)$"): "hook_resid_post",
    re.compile(r"^layers\.(\d+)\.mlp$"): "hook_mlp_out",
}


@dataclass(frozen=True, slots=True)
class SaeWeights:
    """An SAE's weights and where it reads."""

    hookpoint: str
    """TransformerLens hookpoint the SAE encodes."""
    W_enc: np.ndarray
    """Encoder [d_in, d_sae]."""
    b_enc: np.ndarray
    """Encoder bias [d_sae]."""
    W_dec: np.ndarray
    """Decoder [d_sae, d_in]."""
    b_dec: np.ndarray
    """Decoder bias [d_in], subtracted before encoding."""
    threshold: np.ndarray | None
    """JumpReLU thresholds [d_sae], else None."""
    architecture: str
    """standard, topk or jumprelu (batchtopk: old SAE Lens files, encoded as TopK)."""
    k: int | None
    """Active latents per token for TopK."""
    metadata: dict[str, Any] = field(default_factory=dict)
    """JSON-ready facts beyond the weights: SAE Lens's ``metadata`` block (model_name, …) or, for sparsify,
    ``format``, ``sparsify_cfg`` and ``hookpoint_source``; ``folded`` lists cfg options folded into the weights."""

    def __post_init__(self) -> None:
        if self.architecture not in _ARCHITECTURES:
            raise ValidationError(
                f"architecture={self.architecture!r} is not supported; use standard, topk or jumprelu"
            )
        if self.W_enc.ndim != 2:
            raise ValidationError(f"W_enc has shape {self.W_enc.shape}; it must be [d_in, d_sae]")
        d_in, d_sae = self.W_enc.shape
        want = {"W_dec": (d_sae, d_in), "b_enc": (d_sae,), "b_dec": (d_in,), "threshold": (d_sae,)}
        for name, shape in want.items():
            got = getattr(self, name)
            if got is not None and got.shape != shape:
                raise ValidationError(
                    f"{name} has shape {got.shape}, expected {shape} for W_enc [d_in={d_in}, d_sae={d_sae}]"
                )
        if (self.architecture == "jumprelu") != (self.threshold is not None):
            given = "None" if self.threshold is None else "[d_sae]"
            raise ValidationError(f"architecture={self.architecture!r} with threshold={given}: "
                                  "JumpReLU needs thresholds and no other architecture has them")
        if self.architecture in ("topk", "batchtopk") and (self.k is None or self.k < 1):
            raise ValidationError(f"architecture={self.architecture!r} needs k >= 1, got k={self.k}")

    @property
    def layer(self) -> int:
        """Layer of the hookpoint."""
        layer = hook_layer(self.hookpoint)
        return -1 if layer is None else layer

    def encode(self, acts_ND: np.ndarray) -> np.ndarray:
        """Latent activations [N, d_sae] as SAE Lens encodes them.

        ``pre = (x - b_dec) @ W_enc + b_enc``; standard: ``relu(pre)``; JumpReLU: ``relu(pre) * (pre > threshold)``;
        TopK: the k largest ``pre`` per row, ReLU'd, the rest 0.
        """
        pre = (acts_ND - self.b_dec) @ self.W_enc + self.b_enc
        out = np.maximum(pre, 0.0)
        if self.threshold is not None:
            out = np.where(pre > self.threshold, out, 0.0)
        if self.k is not None and self.k < out.shape[1]:
            cut = np.partition(out, -self.k, axis=1)[:, -self.k][:, None]
            out = np.where(out >= cut, out, 0.0)
        return out


def load_sae(path: str | Path, *, hookpoint: str | None = None) -> SaeWeights:
    """Load an SAE Lens or sparsify folder, or a folder holding exactly one sparsify SAE.

    Args:
        path: the folder.
        hookpoint: TransformerLens hookpoint of a sparsify SAE whose folder name does not say it;
            an SAE Lens cfg names its own, and a different one here is an error.
    """
    root = Path(path)
    if (root / "sae_weights.safetensors").is_file():
        sae = load_sae_lens(root)
        if hookpoint is not None and hookpoint != sae.hookpoint:
            raise ValidationError(f"{root / 'cfg.json'} names hookpoint {sae.hookpoint!r}, not {hookpoint!r}")
        return sae
    if (root / "sae.safetensors").is_file():
        return load_sparsify(root, hookpoint=hookpoint)
    subs = sorted(p.name for p in root.iterdir() if (p / "sae.safetensors").is_file()) if root.is_dir() else []
    if len(subs) == 1:
        return load_sparsify(root / subs[0], hookpoint=hookpoint)
    if subs:
        raise InputFileError(
            root, f"holds {len(subs)} sparsify SAEs: {', '.join(subs)}", hint="pass one of these folders"
        )
    raise InputFileError(
        root, "not an SAE folder", hint=f"{_LENS_LAYOUT}; {_SPARSIFY_LAYOUT} (or a folder of one such)"
    )


def load_sae_lens(folder: str | Path) -> SaeWeights:
    """Load an SAE Lens folder; errors name the file and the missing or malformed field.

    ``apply_b_dec_to_input: false`` and TopK's ``rescale_acts_by_decoder_norm: true`` are folded into the
    weights (listed in ``metadata['folded']``), so ``encode`` and ``W_dec`` give SAE Lens's codes and decodes.
    """
    root = Path(folder)
    cfg_path, weights_path = root / "cfg.json", root / "sae_weights.safetensors"
    cfg = _read_cfg(cfg_path, weights_path, hint=_LENS_LAYOUT)
    block = cfg.get("metadata")
    meta = dict(block) if isinstance(block, dict) else {k: cfg[k] for k in _PRE6_METADATA if k in cfg}
    hook = meta.get("hook_name") or cfg.get("hook_name") or cfg.get("hook_point")
    if not hook or hook_layer(str(hook)) is None:
        raise InputFileError(cfg_path, f"no TransformerLens hook name, got {hook!r}", field="metadata.hook_name")
    arch = str(cfg.get("architecture", "standard"))
    if arch not in _ARCHITECTURES:
        raise InputFileError(cfg_path, f"architecture {arch!r} is not supported", field="architecture",
                             hint="interp-agent reads standard, topk and jumprelu SAEs")
    norm = cfg.get("normalize_activations") or "none"
    if norm in ("layer_norm", "constant_norm_rescale"):
        raise InputFileError(cfg_path, f"{norm!r} rescales each input at run time, which interp-agent does not do",
                             field="normalize_activations", hint="use an SAE with normalize_activations 'none'")
    tensors = _read_tensors(weights_path)
    # older JumpReLU files (SAE Lens converts the same way)
    if "log_threshold" in tensors and "threshold" not in tensors:
        tensors["threshold"] = np.exp(tensors["log_threshold"])
    for name in ("W_enc", "W_dec", "b_enc", "b_dec") + (("threshold",) if arch == "jumprelu" else ()):
        if name not in tensors:
            raise InputFileError(weights_path, f"tensor {name} is missing", field=name)
    k = cfg.get("k", (cfg.get("activation_fn_kwargs") or {}).get("k")) if arch in ("topk", "batchtopk") else None
    if arch in ("topk", "batchtopk") and k is None:
        raise InputFileError(cfg_path, f"architecture {arch!r} needs k", field="k")
    sae = _build(weights_path, hookpoint=str(hook), W_enc=tensors["W_enc"].astype(np.float64),
                 b_enc=tensors["b_enc"].astype(np.float64), W_dec=tensors["W_dec"].astype(np.float64),
                 b_dec=tensors["b_dec"].astype(np.float64),
                 threshold=tensors["threshold"].astype(np.float64) if "threshold" in tensors else None,
                 architecture=arch, k=int(k) if k is not None else None, metadata=meta)
    W_enc, b_enc, W_dec, folded = sae.W_enc, sae.b_enc, sae.W_dec, []
    if arch == "topk" and cfg.get("rescale_acts_by_decoder_norm"):
        # SAE Lens scales pre by the decoder row norms and divides codes by them before decoding
        norms = np.maximum(np.linalg.norm(W_dec, axis=1), 1e-8)
        W_enc, b_enc, W_dec = W_enc * norms, b_enc * norms, W_dec / norms[:, None]
        folded.append("rescale_acts_by_decoder_norm")
    if cfg.get("apply_b_dec_to_input", True) is False:
        b_enc = b_enc + sae.b_dec @ W_enc  # x @ W_enc + b_enc == (x - b_dec) @ W_enc + (b_enc + b_dec @ W_enc)
        folded.append("apply_b_dec_to_input")
    if not folded:
        return sae
    return replace(
        sae, W_enc=W_enc, b_enc=b_enc, W_dec=W_dec, metadata={**meta, "folded": meta.get("folded", []) + folded}
    )


def save_sae_lens(folder: str | Path, weights: SaeWeights, *, model_name: str | None = None,
                  extra_metadata: dict[str, Any] | None = None) -> Path:
    """Write ``weights`` as an SAE Lens folder that ``sae_lens.SAE.load_from_disk`` loads and encodes identically.

    Tensors are float32; the cfg is written last, each file atomically. ``weights.metadata`` goes into the cfg's
    ``metadata`` block (SAE Lens keeps unknown keys), ``extra_metadata`` under ``metadata.interp_agent``.

    Returns:
        The folder.
    """
    if weights.architecture not in ("standard", "topk", "jumprelu"):
        raise ValidationError(f"architecture={weights.architecture!r} has no SAE Lens inference class; "
                              "save it as topk or jumprelu")
    tensors = {"W_enc": weights.W_enc, "W_dec": weights.W_dec, "b_enc": weights.b_enc, "b_dec": weights.b_dec}
    if weights.threshold is not None:
        tensors["threshold"] = weights.threshold
    d_in, d_sae = weights.W_enc.shape
    cfg: dict[str, Any] = {
        "architecture": weights.architecture, "d_in": d_in, "d_sae": d_sae, "dtype": "float32", "device": "cpu",
        "apply_b_dec_to_input": True, "normalize_activations": "none", "reshape_activations": "none",
    }
    if weights.architecture == "topk":
        cfg |= {"k": weights.k, "rescale_acts_by_decoder_norm": False}
    meta: dict[str, Any] = {
        **dict.fromkeys(("model_name", "hook_head_index", "context_size", "prepend_bos", "dataset_path")),
        "model_from_pretrained_kwargs": {}, "sae_lens_training_version": None,
        **weights.metadata, "hook_name": weights.hookpoint, "sae_lens_version": _SAE_LENS_FORMAT,
    }
    if model_name is not None:
        meta["model_name"] = model_name
    if extra_metadata is not None:
        meta["interp_agent"] = extra_metadata
    cfg["metadata"] = meta
    root = Path(folder)
    with atomic_open(root / "sae_weights.safetensors", "wb") as fh:
        fh.write(_safetensors_numpy().save({n: np.ascontiguousarray(a, dtype=np.float32) for n, a in tensors.items()}))
    write_json(root / "cfg.json", cfg)
    return root


def load_sparsify(folder: str | Path, hookpoint: str | None = None) -> SaeWeights:
    """Load one sparsify SAE folder as a TopK SAE.

    Args:
        folder: the folder holding ``cfg.json`` and ``sae.safetensors``, named after the hooked module.
        hookpoint: TransformerLens hookpoint; None infers it from the folder name (``layers.N`` →
            ``blocks.N.hook_resid_post``, ``layers.N.mlp`` → ``blocks.N.hook_mlp_out``).

    Raises:
        InputFileError: a file is missing or malformed, the SAE is a transcoder or has a skip connection,
            or the hookpoint cannot be inferred.
    """
    root = Path(folder)
    cfg_path, weights_path = root / "cfg.json", root / "sae.safetensors"
    cfg = _read_cfg(cfg_path, weights_path, hint=_SPARSIFY_LAYOUT)
    for flag in ("transcode", "skip_connection", "embed_skip"):
        if cfg.get(flag):
            raise InputFileError(cfg_path, f"{flag} is true: transcoders and skip connections are not supported",
                                 field=flag, hint="interp-agent reads plain sparsify autoencoders")
    if cfg.get("activation", "topk") != "topk":
        raise InputFileError(cfg_path, f"activation {cfg['activation']!r} is not supported", field="activation",
                             hint="interp-agent reads sparsify SAEs with activation 'topk'")
    tensors = _read_tensors(weights_path)
    if "W_skip" in tensors:
        raise InputFileError(weights_path, "the SAE has a skip connection; skip transcoders are not supported",
                             field="W_skip", hint="interp-agent reads plain sparsify autoencoders")
    for name in ("encoder.weight", "encoder.bias", "W_dec", "b_dec"):
        if name not in tensors:
            raise InputFileError(weights_path, f"tensor {name} is missing", field=name)
    enc = tensors["encoder.weight"].astype(np.float64)  # [d_sae, d_in]
    if enc.ndim == 2 and cfg.get("d_in", enc.shape[1]) != enc.shape[1]:
        raise InputFileError(
            cfg_path, f"d_in is {cfg.get('d_in')} but encoder.weight has shape {enc.shape}", field="d_in"
        )
    if cfg.get("num_latents") and cfg["num_latents"] != enc.shape[0]:
        raise InputFileError(cfg_path, f"num_latents is {cfg['num_latents']} but encoder.weight has shape {enc.shape}",
                             field="num_latents")
    module = root.resolve().name
    source = "given"
    if hookpoint is None:
        hookpoint = next((format_hookpoint(int(m.group(1)), site) for rx, site in _SPARSIFY_MODULES.items()
                          if (m := rx.match(module))), None)
        source = f"inferred from the folder name {module!r}"
        if hookpoint is None:
            raise InputFileError(root, f"cannot tell the hookpoint from the folder name {module!r}",
                                 hint="sparsify names folders after the hooked module; only layers.N and layers.N.mlp "
                                      "are recognised: pass the hookpoint, e.g. 'blocks.N.hook_resid_post'")
    elif hook_layer(hookpoint) is None:
        raise ValidationError(
            f"hookpoint {hookpoint!r} is not a TransformerLens hook name like 'blocks.3.hook_resid_post'"
        )
    meta = {"format": "sparsify", "sparsify_cfg": cfg, "sparsify_hookpoint": module, "hookpoint_source": source}
    return _build(weights_path, hookpoint=hookpoint, W_enc=enc.T.copy(),
                  b_enc=tensors["encoder.bias"].astype(np.float64),
                  W_dec=tensors["W_dec"].astype(np.float64), b_dec=tensors["b_dec"].astype(np.float64), threshold=None,
                  architecture="topk", k=int(cfg.get("k", 32)), metadata=meta)  # 32: sparsify's default k


def _read_cfg(cfg_path: Path, weights_path: Path, *, hint: str) -> dict[str, Any]:
    for p in (cfg_path, weights_path):
        if not p.is_file():
            raise InputFileError(p, "file not found", hint=hint)
    try:
        cfg = json.loads(cfg_path.read_text())
    except json.JSONDecodeError as exc:
        raise InputFileError(cfg_path, f"malformed JSON: {exc.msg}", line=exc.lineno) from None
    if not isinstance(cfg, dict):
        raise InputFileError(cfg_path, f"expected a JSON object, got {type(cfg).__name__}")
    return cfg


def _safetensors_numpy() -> Any:
    try:
        import safetensors.numpy
    except ImportError:
        raise MissingDependencyError("safetensors", "hf", "Reading and writing SAE weights") from None
    return safetensors.numpy


def _read_tensors(path: Path) -> dict[str, np.ndarray]:
    try:
        return _safetensors_numpy().load_file(str(path))
    except (TypeError, ValueError):  # bfloat16 has no numpy dtype: go through torch when it is installed
        pass
    except Exception as exc:
        raise InputFileError(path, f"not a readable safetensors file: {exc}") from None
    try:
        from safetensors.torch import load_file as load_torch
    except ImportError:
        raise MissingDependencyError("torch", "hf", "Reading bfloat16 SAE weights") from None
    try:
        return {n: t.float().numpy() for n, t in load_torch(str(path)).items()}
    except Exception as exc:
        raise InputFileError(path, f"not a readable safetensors file: {exc}") from None


def _build(path: Path, **fields: Any) -> SaeWeights:
    try:
        return SaeWeights(**fields)
    except ValidationError as exc:
        raise InputFileError(path, exc.message) from None
