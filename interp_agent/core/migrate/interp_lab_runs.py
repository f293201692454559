"""interp-lab run configs as our run configs: each step whose verb maps onto ours, or a refusal naming it.

An interp-lab run config (JSON, TOML or YAML; no ``schema_version`` in any release) is
``{"out": DIR, "steps": [{"name", "command", "args": {...}}]}``, or the short form of one
inspect step (``model``, ``criterion``, ``backend`` … at the top level). ``{run_dir}`` in a
value stands for ``out``. A step maps when its command is in :data:`STEP_MAP`: each of its
args is renamed to our flag, dropped with a note (outputs we write in our own form), or
refused by name. A command with no counterpart is refused, naming the closest of ours.
Mapped path arguments are made absolute (interp-lab reads them from the working
directory; our run configs read relative paths from the config's folder).
"""

from __future__ import annotations

import difflib
import json
import sys
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from interp_agent.core.errors import InputFileError

RUN_CONFIG_SCHEMAS: tuple[str, ...] = ("interp-lab run config (unversioned, 0.1-3.1)",)
"""Run-config forms read here (interp-lab never versioned them)."""


@dataclass(frozen=True, slots=True)
class StepMap:
    """How one interp-lab command becomes one of ours."""

    command: str
    """Our subcommand."""
    args: dict[str, str]
    """interp-lab arg → our arg (the run step's key, turned into ``--flag``)."""
    dropped: dict[str, str] = field(default_factory=dict)
    """interp-lab arg → why it is dropped."""
    paths: frozenset[str] = frozenset()
    """Our args that hold paths."""


_RENDER = "interp-agent writes its own report.md/report.html beside report.json"
STEP_MAP: dict[str, StepMap] = {
    "inspect": StepMap("inspect", {
        "model": "model", "criterion": "criterion", "backend": "backend", "records": "records",
        "features": "features", "interventions": "interventions", "dataset": "dataset", "top_k": "top_k",
        "out": "out", "allow_intervention_criterion_mismatch": "allow_intervention_criterion_mismatch",
        "neuronpedia_feature": "neuronpedia", "neuronpedia_features": "neuronpedia",
        "saelens_release": "saelens_release", "saelens_sae_id": "saelens_id"},
        {"html_out": _RENDER, "markdown_out": _RENDER},
        frozenset({"records", "features", "interventions", "dataset", "out"})),
    "export-attribution-graph": StepMap("export-graph", {"report": "report", "out": "out", "top_k": "top_k"},
                                        {"html_out": "export-graph writes the graph JSON only",
                                         "markdown_out": "export-graph writes the graph JSON only"},
                                        frozenset({"report", "out"})),
    "match": StepMap("match", {"left": "left", "right": "right", "out": "out"},
                     {"markdown_out": "match writes its markdown beside the JSON"},
                     frozenset({"left", "right", "out"})),
    "convert-hidden-dump": StepMap("convert-hidden-dump", {
        "dump": "src", "dataset": "manifest", "out": "out", "model_name": "model", "pool": "pool"},
        {"features_per_layer": "every dimension is kept (the ranking corrects for the number tested)",
         "layer_convention": "layers are stamped as the dump gives them", "json": "a run step prints text"},
        frozenset({"src", "manifest", "out"})),
    "profile-env": StepMap("profile-env", {"out": "out"}, {"json": "a run step prints text"}, frozenset({"out"})),
    "doctor": StepMap("doctor", {}, {"json": "a run step prints text"}),
    "demo": StepMap("demo", {"out": "out"}, {}, frozenset({"out"})),
}
"""interp-lab command → how it maps onto ours."""
CLOSEST: dict[str, str] = {
    "export-hf-records": "harvest (then inspect --records)", "train-sae": "harvest, then train-sae --activations",
    "prepare-sae-prompts": "train-sae (it splits held-out prompts itself)", "intervene": "intervene",
    "export-hf-interventions": "intervene", "validate-matches": "validate-matches", "dossier-update": "dossier",
    "export-transformerlens-records": "harvest", "export-nnsight-records": "harvest",
    "export-gguf-records": "convert-hidden-dump", "publish-hf-artifact": "publish", "plan-evidence": "plan-evidence",
}
"""interp-lab commands whose arguments do not map one to one, and the closest of ours."""
INSPECT_BACKENDS: dict[str, str] = {"records": "records", "jsonl": "jsonl", "toy": "toy", "hf": "hf",
                                    "neuronpedia": "neuronpedia", "saelens": "saelens"}
"""interp-lab inspect backends with one of ours (jsonl is our alias of features)."""


def _parse(p: Path) -> Any:
    text = p.read_text(encoding="utf-8-sig")
    suffix = p.suffix.lower()
    try:
        if suffix == ".toml":
            if sys.version_info >= (3, 11):
                import tomllib
            else:  # pragma: no cover - Python 3.10: the backport (absent where pyright checks)
                import tomli as tomllib  # pyright: ignore[reportMissingImports]
            return tomllib.loads(text)
        if suffix in (".yaml", ".yml"):
            import yaml

            return yaml.safe_load(text)
        return json.loads(text)
    except json.JSONDecodeError as exc:
        raise InputFileError(p, f"is not valid JSON: {exc.msg}", line=exc.lineno) from exc
    except ValueError as exc:  # tomllib.TOMLDecodeError and yaml.YAMLError's parse errors
        raise InputFileError(p, f"cannot be parsed as {suffix.lstrip('.')}: {exc}") from exc
    except Exception as exc:  # yaml.YAMLError is not a ValueError
        raise InputFileError(p, f"cannot be parsed: {exc}") from exc


def _raw_steps(p: Path, data: Any) -> tuple[list[Any], str]:
    if not isinstance(data, dict):
        raise InputFileError(p, f"an interp-lab run config is an object, got {type(data).__name__}")
    out = str(data.get("out", data.get("run_dir", "reports/run")))
    if "steps" in data:
        if not isinstance(data["steps"], list) or not data["steps"]:
            raise InputFileError(p, "'steps' must be a non-empty list", field="steps")
        return data["steps"], out
    if not {"model", "criterion"} <= set(data):
        raise InputFileError(p, "an interp-lab run config needs 'steps', or 'model' and 'criterion' at the top level",
                             field="steps")
    args = {k: v for k, v in data.items() if k in STEP_MAP["inspect"].args and k != "out"}
    args.setdefault("backend", "toy")
    return [{"name": "inspect", "command": "inspect", "args": args | {"out": f"{out}/inspect"}}], out


def read_interp_lab_run_config(path: str | Path, *, run_dir: str | Path | None = None) -> dict[str, Any]:
    """Read an interp-lab run config as our run config dict (``{"name", "description", "steps"}``).

    Args:
        run_dir: what ``{run_dir}`` stands for; default the config's own ``out`` (as interp-lab reads it).

    Raises:
        InputFileError: unparsable, not a run config, or a step that does not map (named, with the closest of ours).
    """
    p = Path(path).expanduser()
    if not p.is_file():
        raise InputFileError(p, "no such file", hint="pass the run config (JSON, TOML or YAML) interp-lab wrote")
    raw_steps, out = _raw_steps(p, _parse(p))
    base = Path(run_dir if run_dir is not None else out).expanduser()
    steps, notes = [], []
    for i, raw in enumerate(raw_steps):
        step, dropped = _step(p, i, raw, str(base.resolve()))
        steps.append(step)
        notes += dropped
    return {"name": p.stem, "description": f"imported from interp-lab run config {p}"
            + (f"; dropped: {'; '.join(notes)}" if notes else ""), "steps": steps}


def _step(p: Path, i: int, raw: Any, run_dir: str) -> tuple[dict[str, Any], list[str]]:
    where = f"steps[{i}]"
    if not isinstance(raw, dict) or not isinstance(raw.get("command"), str):
        raise InputFileError(p, f"{where} must be an object with a 'command'", field=where)
    command, args = raw["command"], raw.get("args") or {}
    if command not in STEP_MAP:
        closest = CLOSEST.get(command) or ", ".join(difflib.get_close_matches(command, list(STEP_MAP), n=1)) or None
        raise InputFileError(
            p, f"{where}: interp-lab command {command!r} has no interp-agent step that takes the same arguments",
            field=f"{where}.command", hint=f"closest of ours: {closest}; write that step by hand" if closest else
            f"the commands that map: {', '.join(STEP_MAP)}")
    if not isinstance(args, dict):
        raise InputFileError(p, f"{where}.args must be an object (a list of raw tokens cannot be mapped)",
                             field=f"{where}.args")
    spec, ours, dropped = STEP_MAP[command], {}, []
    for key, value in args.items():
        if key in spec.dropped:
            dropped.append(f"{where}.{key} ({spec.dropped[key]})")
            continue
        if key not in spec.args:
            raise InputFileError(p, f"{where}: interp-lab {command} argument {key!r} has no counterpart in "
                                    f"interp-agent {spec.command}", field=f"{where}.args.{key}",
                                 hint=f"the arguments that map: {', '.join(spec.args) or 'none'}; drop it to import")
        name = spec.args[key]
        value = _render(value, run_dir)
        if name == "backend":
            value = _backend(p, where, value)
        if name in spec.paths:
            value = [_absolute(v) for v in value] if isinstance(value, list) else _absolute(value)
        ours[name] = value
    step: dict[str, Any] = {"command": spec.command, "name": str(raw.get("name") or f"{i + 1}-{command}")}
    if "src" in ours:  # convert-hidden-dump's source is positional: raw tokens
        src = ours.pop("src")
        tokens = [src] + [t for k, v in ours.items() for t in (f"--{k.replace('_', '-')}", str(v))]
        return step | {"args": tokens}, dropped
    return step | {"args": ours}, dropped


def _render(value: Any, run_dir: str) -> Any:
    if isinstance(value, str):
        return value.replace("{run_dir}", run_dir)
    if isinstance(value, list):
        return [_render(v, run_dir) for v in value]
    return value


def _absolute(value: Any) -> Any:
    return str(Path(value).expanduser().resolve()) if isinstance(value, str) else value


def _backend(p: Path, where: str, value: Any) -> str:
    if value not in INSPECT_BACKENDS:
        raise InputFileError(p, f"{where}: interp-lab inspect backend {value!r} has no interp-agent counterpart",
                             field=f"{where}.args.backend", hint=f"ours: {', '.join(INSPECT_BACKENDS)} (goodfire: "
                             "convert-goodfire a saved feature list, then --backend features)")
    return INSPECT_BACKENDS[value]


def convert_run_config(path: str | Path, out: str | Path, *, run_dir: str | Path | None = None) -> dict[str, Any]:
    """Write an interp-lab run config as our ``run.json`` in folder ``out``; checked by our run-config reader.

    Raises:
        InputFileError: as :func:`read_interp_lab_run_config`.
    """
    from interp_agent.core.artifacts import write_json
    from interp_agent.core.runs import load_run_config

    config = read_interp_lab_run_config(path, run_dir=run_dir)
    written = write_json(Path(out).expanduser() / "run.json", config)
    parsed = load_run_config(written)  # the form `interp-agent run` reads: a bad mapping fails here, not later
    return {"kind": "run_config", "schema_version": RUN_CONFIG_SCHEMAS[0], "n_steps": len(parsed.steps),
            "commands": [s.command for s in parsed.steps], "paths": {"run_config": str(written)}}
