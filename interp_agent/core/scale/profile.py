"""What this machine offers: cores, memory, disk, accelerators, packages and credentials.

The profile is a JSON object (schema ``interp-agent.env_profile.v1``) that ``plan_scale``
reads to fill in the accelerator, their count and the free disk. Credentials are reported
as present or absent only: their values, lengths and prefixes are never read into it.
Accelerators are probed through ``torch.cuda`` only when torch is installed; the import
happens inside :func:`profile_env`, so importing this module stays cheap.
"""

from __future__ import annotations

import importlib.metadata as md
import importlib.util
import json
import os
import re
import shutil
from pathlib import Path
from typing import Any, Literal

from interp_agent.core.artifacts import run_provenance, schema_version, write_json
from interp_agent.core.doctor import EXTRAS
from interp_agent.core.errors import InputFileError

EnvRoute = Literal["local_cpu", "single_gpu", "multi_gpu", "cluster"]
"""Where work should run, judged from this machine alone (``plan_scale`` judges a workload)."""

ENV_PROFILE_SCHEMA = schema_version("env_profile")

CREDENTIAL_ENV_VARS: tuple[str, ...] = (
    "HF_TOKEN", "HUGGING_FACE_HUB_TOKEN", "NEURONPEDIA_API_KEY", "GOODFIRE_API_KEY", "NDIF_API_KEY", "WANDB_API_KEY",
)
"""Environment variables whose presence (never value) the profile reports."""

_GIB = 2.0**30


def _version(dist: str) -> str | None:
    try:
        return md.version(dist)
    except md.PackageNotFoundError:
        return None


def _cpu() -> dict[str, Any]:
    logical = os.cpu_count()
    usable = len(os.sched_getaffinity(0)) if hasattr(os, "sched_getaffinity") else logical
    physical: int | None = None
    try:
        pairs: set[tuple[str, str]] = set()
        phys = "0"
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            key, _, value = line.partition(":")
            if key.strip() == "physical id":
                phys = value.strip()
            elif key.strip() == "core id":
                pairs.add((phys, value.strip()))
        physical = len(pairs) or None
    except OSError:
        pass
    return {"logical_cores": logical, "usable_cores": usable, "physical_cores": physical,
            "physical_source": "/proc/cpuinfo" if physical else None}


def _cgroup_memory_limit() -> int | None:
    for candidate in ("/sys/fs/cgroup/memory.max", "/sys/fs/cgroup/memory/memory.limit_in_bytes"):
        try:
            text = Path(candidate).read_text().strip()
        except OSError:
            continue
        if text.isdigit() and int(text) < 2**60:  # v1 reports "no limit" as a huge number
            return int(text)
    return None


def _memory() -> dict[str, Any]:
    total = available = None
    source = "/proc/meminfo"
    try:
        info = {}
        for line in Path("/proc/meminfo").read_text().splitlines():
            key, _, value = line.partition(":")
            parts = value.split()
            if parts and parts[0].isdigit():
                info[key] = int(parts[0]) * 1024  # /proc/meminfo counts kB (KiB)
        total, available = info.get("MemTotal"), info.get("MemAvailable", info.get("MemFree"))
    except OSError:
        pass
    if total is None:
        source = "os.sysconf"
        try:
            page = os.sysconf("SC_PAGE_SIZE")
            total = page * os.sysconf("SC_PHYS_PAGES")
            available = page * os.sysconf("SC_AVPHYS_PAGES")
        except (ValueError, OSError, AttributeError):
            source = "unknown"
    return {
        "total_bytes": total, "available_bytes": available,
        "total_gib": round(total / _GIB, 2) if total else None,
        "available_gib": round(available / _GIB, 2) if available else None,
        "cgroup_limit_bytes": _cgroup_memory_limit(), "source": source,
    }


def _disk(workspace: Path) -> dict[str, Any]:
    checked = workspace
    while not checked.exists() and checked != checked.parent:
        checked = checked.parent
    usage = shutil.disk_usage(checked)
    return {
        "path": str(workspace), "checked_path": str(checked), "exists": workspace.exists(),
        "total_bytes": usage.total, "free_bytes": usage.free,
        "total_gib": round(usage.total / _GIB, 2), "free_gib": round(usage.free / _GIB, 2),
    }


def _accelerators() -> tuple[list[dict[str, Any]], dict[str, Any]]:
    if importlib.util.find_spec("torch") is None:
        return [], {"method": "torch.cuda", "torch": None, "note": "torch is not installed, so no accelerator was probed"}
    try:
        import torch
    except Exception as exc:  # a broken torch install must not break the profile
        return [], {"method": "torch.cuda", "torch": None, "note": f"torch is installed but failed to import: {exc}"}
    probe: dict[str, Any] = {"method": "torch.cuda", "torch": torch.__version__, "cuda": torch.version.cuda}
    try:
        if not torch.cuda.is_available():
            return [], probe | {"note": "torch is installed but torch.cuda.is_available() is False: no CUDA device"}
        devices = []
        for i in range(torch.cuda.device_count()):
            props = torch.cuda.get_device_properties(i)
            devices.append({
                "index": i, "name": props.name, "total_memory_gib": round(props.total_memory / _GIB, 2),
                "compute_capability": f"{props.major}.{props.minor}",
            })
    except RuntimeError as exc:
        return [], probe | {"note": f"probing CUDA failed: {exc}"}
    return devices, probe | {"note": f"{len(devices)} CUDA device(s) found"}


def _credentials() -> dict[str, bool]:
    present = {name: bool(os.environ.get(name)) for name in CREDENTIAL_ENV_VARS}
    hf_home = Path(os.environ.get("HF_HOME") or Path.home() / ".cache" / "huggingface").expanduser()
    token_files = [hf_home / "token", Path.home() / ".cache" / "huggingface" / "token"]
    if os.environ.get("HF_TOKEN_PATH"):
        token_files.insert(0, Path(os.environ["HF_TOKEN_PATH"]).expanduser())
    present["huggingface_token_file"] = any(p.is_file() for p in token_files)
    return present


def _scheduler() -> dict[str, Any]:
    def as_int(name: str) -> int | None:
        value = os.environ.get(name, "")
        return int(value) if value.isdigit() else None

    return {
        "slurm_job": bool(os.environ.get("SLURM_JOB_ID")),
        "slurm_nodes": as_int("SLURM_NNODES") or as_int("SLURM_JOB_NUM_NODES"),
        "ray_address_set": bool(os.environ.get("RAY_ADDRESS")),
        "torch_world_size": as_int("WORLD_SIZE"),
    }


def _advice(n_acc: int, scheduler: dict[str, Any], packages: dict[str, str | None],
            credentials: dict[str, bool], extras: dict[str, bool]) -> dict[str, Any]:
    route: EnvRoute
    multi_node = ((scheduler["slurm_nodes"] or 0) > 1 or scheduler["ray_address_set"]
                  or (scheduler["torch_world_size"] or 0) > max(n_acc, 1))
    if multi_node:
        route = "cluster"
        why = ("a multi-node scheduler or engine is configured (Slurm with several nodes, RAY_ADDRESS, "
               "or a torchrun world larger than this machine)")
    elif n_acc > 1:
        route = "multi_gpu"
        why = f"this machine has {n_acc} CUDA devices; data-parallel harvesting and DDP SAE training fit here"
    elif n_acc == 1:
        route = "single_gpu"
        why = "this machine has one CUDA device; harvesting and SAE training for models that fit it run here"
    else:
        route = "local_cpu"
        why = ("no CUDA device was found; the records, features and toy backends and small "
               "models run here, while harvesting from large models needs a GPU")
    actions = ["size a concrete job with `interp-agent plan-scale --from-env ...` before starting it"]
    if not extras.get("hf"):
        actions.append("install the Hugging Face backend to harvest activations: pip install 'interp-agent[hf]'")
    if not extras.get("embed"):
        actions.append("install the sentence encoder for label matching: pip install 'interp-agent[embed]'")
    if packages.get("huggingface-hub") and not (credentials["HF_TOKEN"] or credentials["HUGGING_FACE_HUB_TOKEN"]
                                                or credentials["huggingface_token_file"]):
        actions.append("gated Hugging Face models need a token: set HF_TOKEN or run `huggingface-cli login`")
    if route == "cluster":
        actions.append("use Ray for sharded harvesting and torchrun/DDP for SAE training; "
                       "interp-agent ships no cluster engine")
    return {"route": route, "why": why, "next_actions": actions}


def profile_env(workspace: Path | None = None, *, probe_accelerators: bool = True) -> dict[str, Any]:
    """Profile this machine for interpretability work and advise where to run.

    Args:
        workspace: folder whose disk is measured (the nearest existing parent if it does
            not exist yet); the current folder by default.
        probe_accelerators: import torch (when installed) to list CUDA devices; False skips
            the import, which takes a second or two, and reports no accelerators.

    Returns:
        The ``interp-agent.env_profile.v1`` object. Credentials appear as booleans only.
    """
    ws = Path(workspace if workspace is not None else Path.cwd()).expanduser().resolve()
    packages = {name: _version(name) for names in EXTRAS.values() for name in names}
    extras = {extra: all(packages[n] for n in names) for extra, names in EXTRAS.items()}
    if probe_accelerators:
        accelerators, probe = _accelerators()
    else:
        accelerators, probe = [], {"method": "none", "torch": _version("torch"), "note": "accelerator probe skipped"}
    credentials = _credentials()
    scheduler = _scheduler()
    prov = run_provenance({})
    prov.pop("inputs")
    return {
        "schema_version": ENV_PROFILE_SCHEMA,
        **prov,
        "workspace": str(ws),
        "cpu": _cpu(),
        "memory": _memory(),
        "disk": _disk(ws),
        "accelerators": accelerators,
        "accelerator_count": len(accelerators),
        "accelerator_probe": probe,
        "packages": packages,
        "extras": extras,
        "credentials": credentials,
        "scheduler": scheduler,
        "advice": _advice(len(accelerators), scheduler, packages, credentials, extras),
    }


def save_profile(profile: dict[str, Any], path: str | Path) -> Path:
    """Write a profile atomically as JSON; returns the path."""
    return write_json(path, profile)


def load_profile(path: str | Path) -> dict[str, Any]:
    """Read a profile written by :func:`save_profile`.

    Raises:
        InputFileError: the file is missing, not JSON, not an object, or of another schema.
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputFileError(p, f"cannot read the environment profile: {exc.strerror or exc}",
                             hint="write one with `interp-agent profile-env --out FILE`") from exc
    try:
        profile = json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputFileError(p, f"not valid JSON: {exc.msg}", line=exc.lineno,
                             hint="write one with `interp-agent profile-env --out FILE`") from exc
    if not isinstance(profile, dict):
        raise InputFileError(p, f"expected a JSON object, got {type(profile).__name__}")
    found = profile.get("schema_version")
    if found != ENV_PROFILE_SCHEMA:
        raise InputFileError(p, f"schema_version is {found!r}, expected {ENV_PROFILE_SCHEMA!r}", field="schema_version",
                             hint="this is not an environment profile; write one with `interp-agent profile-env --out FILE`")
    return profile


_ACCELERATOR_PATTERNS: tuple[tuple[str, str], ...] = (
    (r"H200", "H200"), (r"H100", "H100"), (r"\bL4\b", "L4"), (r"4090", "RTX4090"),
)


def accelerator_from_profile(profile: dict[str, Any]) -> str | None:
    """The plan's name (``"H100"``, ``"A100-80GB"``, …) of the profile's first CUDA device, if known."""
    devices = profile.get("accelerators") or []
    if not devices:
        return None
    name = str(devices[0].get("name", ""))
    if "A100" in name:
        return "A100-80GB" if float(devices[0].get("total_memory_gib") or 0) > 50 else "A100-40GB"
    for pattern, plan_name in _ACCELERATOR_PATTERNS:
        if re.search(pattern, name):
            return plan_name
    return None


def render_profile(profile: dict[str, Any]) -> str:
    """A few readable lines: cores, memory, disk, accelerators, credentials present, advice."""
    cpu, mem, disk = profile["cpu"], profile["memory"], profile["disk"]
    devices = profile["accelerators"]
    acc = ", ".join(f"{d['name']} ({d['total_memory_gib']} GiB, sm {d['compute_capability']})" for d in devices)
    present = [name for name, ok in profile["credentials"].items() if ok]
    advice = profile["advice"]
    lines = [
        f"cpu: {cpu['logical_cores']} logical cores ({cpu['usable_cores']} usable"
        + (f", {cpu['physical_cores']} physical)" if cpu["physical_cores"] else ")"),
        f"memory: {mem['available_gib']} GiB available of {mem['total_gib']} GiB",
        f"disk at {disk['checked_path']}: {disk['free_gib']} GiB free of {disk['total_gib']} GiB",
        f"accelerators: {acc or 'none'} — {profile['accelerator_probe']['note']}",
        f"extras installed: {', '.join(e for e, ok in profile['extras'].items() if ok) or 'none'}",
        f"credentials present: {', '.join(present) or 'none'}",
        f"route: {advice['route']} — {advice['why']}",
    ]
    lines += [f"next: {a}" for a in advice["next_actions"]]
    return "\n".join(lines)
