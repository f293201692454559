"""What this machine offers: cores, memory, disk, accelerators, packages and credentials.

The profile is a JSON object (schema ``interp-agent.env_profile.v1``) that ``plan_scale``
reads to fill in the accelerator, their count and the free disk. Credentials are reported
as present or absent only: their values, lengths and prefixes are never read into it.
Accelerators are listed by the NVIDIA driver (``nvidia-smi``, else ``/proc/driver/nvidia``),
never by importing torch: ``import torch`` alone costs a second or more and hundreds of
MB, more than the rest of the profile together. Which torch is installed, and whether it
is a CUDA build, is read from its package metadata and ``torch/version.py``.
"""

from __future__ import annotations

import importlib.metadata as md
import importlib.util
import json
import os
import re
import shutil
import subprocess
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


_SMI_FIELDS = ("index", "uuid", "name", "memory.total", "compute_cap")
"""``nvidia-smi --query-gpu`` fields; drivers before ~510 lack ``compute_cap`` (then queried without it)."""
_SMI_TIMEOUT_S = 10.0
_PROC_GPUS = Path("/proc/driver/nvidia/gpus")
"""One folder per GPU the NVIDIA kernel driver has bound, each with an ``information`` file."""


def _torch_build() -> dict[str, Any]:
    """torch's version and CUDA build, read from its files: nothing is imported."""
    version = _version("torch")
    cuda: str | None = None
    spec = importlib.util.find_spec("torch") if version else None
    for folder in (spec.submodule_search_locations or []) if spec else []:
        try:
            text = (Path(folder) / "version.py").read_text(encoding="utf-8")
        except OSError:
            continue
        found = re.search(r"^cuda\b[^=\n]*=\s*['\"]([^'\"]+)['\"]", text, re.MULTILINE)
        cuda = found.group(1) if found else None
        break
    return {"torch": version, "cuda": cuda}


def _nvidia_smi() -> list[dict[str, Any]] | None:
    """Devices as nvidia-smi lists them; None when it is absent or fails."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return None
    for fields in (_SMI_FIELDS, _SMI_FIELDS[:-1]):
        try:
            done = subprocess.run([exe, f"--query-gpu={','.join(fields)}", "--format=csv,noheader,nounits"],
                                  capture_output=True, text=True, timeout=_SMI_TIMEOUT_S, check=False)
        except (OSError, subprocess.SubprocessError):
            return None
        if done.returncode == 0:
            break
    else:
        return None
    devices = []
    for line in done.stdout.splitlines():
        values = [v.strip() for v in line.split(",")]
        if len(values) < len(fields):
            continue
        row = dict(zip(fields, values, strict=False))
        try:
            memory_gib: float | None = round(float(row["memory.total"]) / 1024, 2)  # MiB (nounits)
        except ValueError:
            memory_gib = None
        cap = row.get("compute_cap")
        devices.append({"smi_index": int(row["index"]) if row["index"].isdigit() else None, "uuid": row["uuid"],
                        "name": row["name"], "total_memory_gib": memory_gib,
                        "compute_capability": cap if cap and cap[0].isdigit() else None})
    return devices


def _proc_gpus() -> list[dict[str, Any]]:
    """Devices the loaded NVIDIA kernel driver reports in /proc (names only, no memory)."""
    devices = []
    for info in sorted(_PROC_GPUS.glob("*/information")):
        try:
            fields = dict(line.split(":", 1) for line in info.read_text().splitlines() if ":" in line)
        except OSError:
            continue
        name = fields.get("Model", "").strip()
        uuid = fields.get("GPU UUID", "").strip()
        devices.append({"smi_index": len(devices), "uuid": uuid or None, "name": name or "NVIDIA GPU",
                        "total_memory_gib": None, "compute_capability": None})
    return devices


_MIG_LINE = re.compile(r"^\s+MIG\s+(?P<profile>\S+)\s+Device\s+\d+:\s+\(UUID:\s*(?P<uuid>MIG-[^)\s]+)\)")
_GPU_LINE = re.compile(r"^GPU\s+(?P<index>\d+):")


def _mig_devices(devices: list[dict[str, Any]]) -> list[dict[str, Any]]:
    """MIG instances from ``nvidia-smi -L``, each named after its GPU and profile (e.g. ``3g.71gb``)."""
    exe = shutil.which("nvidia-smi")
    if exe is None:
        return []
    try:
        listing = subprocess.run([exe, "-L"], capture_output=True, text=True, timeout=_SMI_TIMEOUT_S,
                                 check=False).stdout
    except (OSError, subprocess.SubprocessError):
        return []
    parent: dict[str, Any] | None = None
    found = []
    for line in listing.splitlines():
        if gpu := _GPU_LINE.match(line):
            parent = next((d for d in devices if d["smi_index"] == int(gpu["index"])), None)
        elif (mig := _MIG_LINE.match(line)) and parent is not None:
            size = re.search(r"(\d+)gb$", mig["profile"])
            found.append(parent | {"uuid": mig["uuid"], "name": f"{parent['name']} MIG {mig['profile']}",
                                   "total_memory_gib": float(size.group(1)) if size else None})
    return found


def _visible(devices: list[dict[str, Any]], mask: str | None) -> list[dict[str, Any]]:
    """The devices a CUDA program sees under ``CUDA_VISIBLE_DEVICES`` (indices or UUIDs; a bad entry ends the list)."""
    if mask is None:
        return devices
    chosen: list[dict[str, Any]] = []
    migs: list[dict[str, Any]] | None = None
    for token in (t.strip() for t in mask.split(",")):
        match = None
        if token.isdigit():
            match = next((d for d in devices if d["smi_index"] == int(token)), None)
        elif token.startswith("GPU-"):
            match = next((d for d in devices if d["uuid"] and d["uuid"].startswith(token)), None)
        elif token.startswith("MIG-"):
            migs = _mig_devices(devices) if migs is None else migs
            match = next((d for d in migs if d["uuid"].startswith(token)), None)
        if match is None or match in chosen:
            break
        chosen.append(match)
    return chosen


def _accelerators() -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """CUDA devices from the NVIDIA driver and what torch build could use them; torch is not imported."""
    build = _torch_build()
    found = _nvidia_smi()
    method = "nvidia-smi"
    if found is None:
        found, method = _proc_gpus(), "/proc/driver/nvidia"
    mask = os.environ.get("CUDA_VISIBLE_DEVICES")
    # index: the CUDA ordinal a program sees; smi_index: nvidia-smi's (they differ under CUDA_VISIBLE_DEVICES)
    devices = [{"index": i} | {k: v for k, v in d.items() if k != "uuid"} for i, d in enumerate(_visible(found, mask))]
    probe: dict[str, Any] = {"method": method, **build}
    if not found:
        note = ("no NVIDIA GPU found (nvidia-smi is not on PATH and /proc/driver/nvidia lists none)"
                if method != "nvidia-smi" else "nvidia-smi lists no GPU")
    else:
        note = f"{len(devices)} CUDA device(s) found by {method}"
        if len(devices) < len(found):
            note += f" ({len(found)} on the machine; CUDA_VISIBLE_DEVICES={mask!r} shows {len(devices)})"
        if devices and build["torch"] is None:
            note += "; torch is not installed, so nothing here can use them (pip install 'interp-agent[hf]')"
        elif devices and build["cuda"] is None:
            note += f"; torch {build['torch']} is a CPU-only build and cannot use them"
    return devices, probe | {"note": note}


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
            credentials: dict[str, bool], extras: dict[str, bool], torch_cuda: str | None = None) -> dict[str, Any]:
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
    if n_acc and packages.get("torch") and torch_cuda is None:
        actions.append("the installed torch is a CPU-only build: install a CUDA build to use the GPUs "
                       "(https://pytorch.org/get-started/locally/)")
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
        probe_accelerators: ask the NVIDIA driver (nvidia-smi, /proc) for CUDA devices;
            False reports none without asking. torch is never imported.

    Returns:
        The ``interp-agent.env_profile.v1`` object. Credentials appear as booleans only.
    """
    ws = Path(workspace if workspace is not None else Path.cwd()).expanduser().resolve()
    packages = {name: _version(name) for names in EXTRAS.values() for name in names}
    extras = {extra: all(packages[n] for n in names) for extra, names in EXTRAS.items()}
    if probe_accelerators:
        accelerators, probe = _accelerators()
    else:
        accelerators, probe = [], {"method": "none", **_torch_build(), "note": "accelerator probe skipped"}
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
        "advice": _advice(len(accelerators), scheduler, packages, credentials, extras, probe.get("cuda")),
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
                             hint="this is not an environment profile; write one with "
                             "`interp-agent profile-env --out FILE`")
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
    acc = ", ".join(f"{d['name']} ({d['total_memory_gib'] or '?'} GiB, sm {d['compute_capability'] or '?'})"
                    for d in devices)
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
