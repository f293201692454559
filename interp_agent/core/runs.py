"""Running a config of interp-agent steps and writing a manifest of what ran.

A run config (JSON, TOML or YAML) lists steps; each step is one ``interp-agent`` command::

    {"name": "two toys and a match",
     "steps": [
        {"command": "inspect", "args": {"model": "toy/a", "criterion": "c", "backend": "toy", "out": "a"}},
        {"command": "match", "args": ["--left", "a", "--right", "b", "--out", "m/matches.json"]}]}

``args`` is a mapping (``key`` → ``--key``, underscores become dashes, True → a bare flag,
False/None → left out, a list → the flag repeated once per item) or a list of raw CLI
tokens (needed for positional arguments). A ``StepRunner`` executes the steps: the caller
passes one in (the CLI passes ``ProgramRunner`` of itself with its own subcommands); the
default, ``ProgramRunner()``, runs ``python -m interp_agent COMMAND ARGS...``. Either way a
step runs in a subprocess whose working folder is the config's folder, so relative paths
in a config are relative to the config. Core never imports the CLI. The run
stops at the first failing step unless ``continue_on_error`` is true (top level or per
step). The manifest (schema ``interp-agent.run_manifest.v1``) records versions, the
config's hash, the hash of every input path, and each step's argv, exit code, time,
stderr tail and outputs.

Variables (``core.run_vars``): ``${NAME}`` in a step's args is filled from the config's
top-level ``vars`` and the caller's ``variables`` (``--var NAME=VALUE``); the manifest
records each with its source. ``run_config(dry_run=True)`` (``run --dry-run``) checks the
config, the variables and (when the runner offers ``check``) every step's arguments, and
returns the plan (each step's full argv and the outputs it would write) without running
or writing anything.
"""

from __future__ import annotations

import json
import os
import re
import subprocess
import sys
import time
from collections.abc import Callable, Collection, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal, Protocol

from interp_agent.core.artifacts import run_provenance, schema_version, sha256_of, write_json
from interp_agent.core.errors import InputFileError, ValidationError
from interp_agent.core.run_vars import RunVar, check_all_used, config_vars, defined_vars, expand_step_args
from interp_agent.core.secrets import redact

RunStatus = Literal["completed", "failed", "interrupted"]
"""completed: every step exited 0; failed: a step exited non-zero; interrupted: stopped by Ctrl-C."""
StepStatus = Literal["passed", "failed", "not_run"]
"""What happened to one step."""

RUN_MANIFEST_SCHEMA = schema_version("run_manifest")
RUN_PLAN_SCHEMA = schema_version("run_plan")
"""What ``run --dry-run`` prints: the steps that would run, nothing run or written."""
TAIL_CHARS = 2000
"""Characters of a step's stderr (and stdout) kept in the manifest."""

_TOP_KEYS = {"name", "description", "steps", "continue_on_error", "vars"}
_STEP_KEYS = {"command", "args", "name", "continue_on_error"}
_COMMAND = re.compile(r"^[a-z][a-z0-9-]*$")
_HINT = "a run config is an object with 'steps': [{'command': 'inspect', 'args': {...}}, ...]"

RUN_COMMANDS: tuple[str, ...] = (
    "serve",
    "jobs",
    "inspect",
    "intervene",
    "explain",
    "investigate",
    "dossier",
    "plan-evidence",
    "calibrate",
    "organism",
    "train-sae",
    "harvest",
    "compile-criterion",
    "score-prompts",
    "match",
    "match-activations",
    "universality",
    "validate-matches",
    "finetune",
    "diff-models",
    "train-crosscoder",
    "publish",
    "export-graph",
    "feature-effects",
    "export-records",
    "convert",
    "convert-goodfire",
    "import-interp-lab",
    "convert-hidden-dump",
    "export-steering",
    "steer",
    "doctor",
    "capabilities",
    "demo",
    "profile-env",
    "plan-scale",
)
"""The interp-agent commands a step may name (every subcommand but ``run``); a test pins them to the CLI's."""


@dataclass(frozen=True, slots=True)
class RunStep:
    """One step of a run config, with its CLI tokens worked out."""

    command: str
    """The ``interp-agent`` subcommand, e.g. ``"inspect"``."""
    argv: tuple[str, ...]
    """Tokens after the command, as passed to the CLI."""
    name: str | None = None
    """Optional label of the step."""
    continue_on_error: bool | None = None
    """Go on after this step fails; None takes the config's setting."""
    out: str | None = None
    """Value of the step's ``--out``, if it has one."""


@dataclass(frozen=True, slots=True)
class RunConfig:
    """A parsed and checked run config."""

    path: Path
    """The config file."""
    format: Literal["json", "toml", "yaml"]
    """File format it was read as."""
    steps: tuple[RunStep, ...]
    """Steps in order."""
    name: str | None = None
    """Optional name of the run."""
    continue_on_error: bool = False
    """Go on after a failing step."""
    vars: Mapping[str, RunVar] = field(default_factory=dict)
    """Every defined variable (the config's ``vars``, overridden by the caller's), marked used or not."""


def args_to_argv(args: dict[str, Any] | list[Any] | None) -> list[str]:
    """CLI tokens of a step's ``args``: a mapping becomes ``--key value`` pairs, a list is kept as tokens.

    Raises:
        ValidationError: a value is a mapping, or a list holds something other than scalars.
    """
    if args is None:
        return []
    if isinstance(args, list):
        bad = [a for a in args if isinstance(a, (dict, list)) or a is None]
        if bad:
            raise ValidationError(f"raw args must be strings or numbers, got {bad[0]!r}; e.g. ['--out', 'dir']")
        return [_token(a) for a in args]
    argv: list[str] = []
    for key, value in args.items():
        flag = "--" + str(key).replace("_", "-")
        if value is None or value is False:
            continue
        if value is True:
            argv.append(flag)
        elif isinstance(value, list):
            for item in value:
                if isinstance(item, (dict, list)) or item is None:
                    raise ValidationError(f"arg '{key}' holds {item!r}; list items must be strings or numbers")
                argv += [flag, _token(item)]
        elif isinstance(value, dict):
            raise ValidationError(
                f"arg '{key}' is a mapping ({value!r}); a value must be a string, number, bool or list"
            )
        else:
            argv += [flag, _token(value)]
    return argv


def _token(value: Any) -> str:
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


def _out_of(argv: list[str]) -> str | None:
    out = None
    for i, tok in enumerate(argv):
        if tok == "--out" and i + 1 < len(argv):
            out = argv[i + 1]
        elif tok.startswith("--out="):
            out = tok.split("=", 1)[1]
    return out


def _parse(path: Path, text: str) -> tuple[Any, Literal["json", "toml", "yaml"]]:
    suffix = path.suffix.lower()
    if suffix == ".json":
        try:
            return json.loads(text), "json"
        except json.JSONDecodeError as exc:
            raise InputFileError(
                path,
                f"not valid JSON: {exc.msg} (column {exc.colno})",
                line=exc.lineno,
                hint="fix the syntax; " + _HINT,
            ) from exc
    if suffix in (".yaml", ".yml"):
        import yaml

        try:
            return yaml.safe_load(text), "yaml"
        except yaml.YAMLError as exc:
            mark = getattr(exc, "problem_mark", None)
            problem = getattr(exc, "problem", None) or str(exc).splitlines()[0]
            raise InputFileError(
                path,
                f"not valid YAML: {problem}",
                line=mark.line + 1 if mark else None,
                hint="fix the syntax; " + _HINT,
            ) from exc
    if suffix == ".toml":
        if sys.version_info >= (3, 11):
            import tomllib
        else:  # pragma: no cover - Python 3.10 only
            try:
                # the 3.10 backport: absent from the 3.11 environment pyright checks against
                import tomli as tomllib  # pyright: ignore[reportMissingImports]
            except ImportError as exc:
                raise InputFileError(
                    path,
                    "reading TOML on Python 3.10 needs the package 'tomli'",
                    hint="pip install tomli, or write the config as JSON or YAML",
                ) from exc
        try:
            return tomllib.loads(text), "toml"
        except tomllib.TOMLDecodeError as exc:
            line = getattr(exc, "lineno", None)
            if line is None and (m := re.search(r"line (\d+)", str(exc))):
                line = int(m.group(1))
            elif line is None and "end of document" in str(exc):
                line = max(1, len(text.splitlines()))
            raise InputFileError(path, f"not valid TOML: {exc}", line=line, hint="fix the syntax; " + _HINT) from exc
    raise InputFileError(
        path, f"unsupported config type '{suffix or '(none)'}'", hint="name the config *.json, *.toml, *.yaml or *.yml"
    )


def load_run_config(path: str | Path, variables: Mapping[str, str] | None = None) -> RunConfig:
    """Read and check a run config, filling ``${NAME}`` in its steps' args.

    Args:
        path: the config file.
        variables: values of ``${NAME}`` placeholders, overriding the config's ``vars``.

    Raises:
        InputFileError: the file is missing, unparsable (with its line when the parser
            tells), or not shaped like a run config (names the field); a step uses an
            undefined variable (names the step, the variable and the line).
        ValidationError: a step's args cannot be turned into CLI tokens; a given variable is used by no step.
    """
    p = Path(path)
    try:
        text = p.read_text(encoding="utf-8")
    except OSError as exc:
        raise InputFileError(p, f"cannot read the run config: {exc.strerror or exc}", hint=_HINT) from exc
    data, fmt = _parse(p, text)
    raw_steps, top_continue = _check_top_level(p, data)
    defined, used = defined_vars(config_vars(p, data.get("vars")), variables), set()
    steps = tuple(_parse_step(p, f"steps[{i}]", expand_step_args(p, text, f"steps[{i}]", raw, defined, used))
                  for i, raw in enumerate(raw_steps))
    return RunConfig(path=p, format=fmt, steps=steps, name=data.get("name"), continue_on_error=top_continue,
                     vars=check_all_used(p, defined, used))


def _check_top_level(p: Path, data: Any) -> tuple[list[Any], bool]:
    """Check the config's top-level object; returns its raw steps and its ``continue_on_error``.

    Raises:
        InputFileError: not an object, an unknown key, no steps, or a field of the wrong type.
    """
    if not isinstance(data, dict):
        raise InputFileError(p, f"the top level must be an object, got {type(data).__name__}", hint=_HINT)
    unknown = sorted(set(data) - _TOP_KEYS)
    if unknown:
        raise InputFileError(p, f"unknown key(s) {unknown}; allowed: {sorted(_TOP_KEYS)}", field=unknown[0], hint=_HINT)
    raw_steps = data.get("steps")
    if not isinstance(raw_steps, list) or not raw_steps:
        raise InputFileError(p, "'steps' must be a non-empty list", field="steps", hint=_HINT)
    for key in ("name", "description"):
        if data.get(key) is not None and not isinstance(data[key], str):
            raise InputFileError(p, f"'{key}' must be a string, got {data[key]!r}", field=key)
    top_continue = data.get("continue_on_error", False)
    if not isinstance(top_continue, bool):
        raise InputFileError(
            p, f"'continue_on_error' must be true or false, got {top_continue!r}", field="continue_on_error"
        )
    return raw_steps, top_continue


def _parse_step(p: Path, where: str, raw: Any) -> RunStep:
    """Check one raw step (``where`` names it, e.g. ``steps[0]``) and work out its CLI tokens.

    Raises:
        InputFileError: the step is malformed, or its args cannot be turned into CLI tokens.
    """
    if not isinstance(raw, dict):
        raise InputFileError(p, f"each step must be an object, got {raw!r}", field=where, hint=_HINT)
    unknown = sorted(set(raw) - _STEP_KEYS)
    if unknown:
        raise InputFileError(
            p, f"unknown key(s) {unknown}; allowed: {sorted(_STEP_KEYS)}", field=f"{where}.{unknown[0]}"
        )
    command = raw.get("command")
    if not isinstance(command, str) or not _COMMAND.match(command):
        raise InputFileError(
            p,
            f"'command' must be an interp-agent subcommand such as 'inspect', got {command!r}",
            field=f"{where}.command",
        )
    if command == "run":
        raise InputFileError(
            p,
            "a step may not start another run (it could run itself forever)",
            field=f"{where}.command",
            hint="copy the other config's steps into this one",
        )
    args = raw.get("args")
    if args is not None and not isinstance(args, (dict, list)):
        raise InputFileError(
            p, f"'args' must be an object or a list of CLI tokens, got {args!r}", field=f"{where}.args"
        )
    step_continue = raw.get("continue_on_error")
    if step_continue is not None and not isinstance(step_continue, bool):
        raise InputFileError(
            p,
            f"'continue_on_error' must be true or false, got {step_continue!r}",
            field=f"{where}.continue_on_error",
        )
    try:
        argv = args_to_argv(args)
    except ValidationError as exc:
        raise InputFileError(p, exc.message, field=f"{where}.args") from exc
    return RunStep(
        command=command,
        argv=tuple(argv),
        name=raw.get("name"),
        continue_on_error=step_continue,
        out=_out_of(argv),
    )


@dataclass(frozen=True, slots=True)
class StepResult:
    """What running one step gave."""

    exit_code: int
    """The step's exit status; 0 is success."""
    stdout: str = ""
    """What it printed."""
    stderr: str = ""
    """What it printed as errors."""


class StepRunner(Protocol):
    """Runs the steps of a run config: the commands it offers, and how it runs one."""

    @property
    def commands(self) -> Collection[str]:
        """Command names a step may use."""
        ...

    def argv(self, command: str, args: Sequence[str]) -> list[str]:
        """The full command line of a step, as recorded in the manifest."""
        ...

    def __call__(self, command: str, args: Sequence[str], cwd: Path) -> StepResult:
        """Run one step with working folder ``cwd``."""
        ...


def _program_env() -> dict[str, str]:
    """The environment of a step: this one, with this interp_agent first on the import path."""
    env = dict(os.environ)
    root = str(Path(__file__).resolve().parents[2])  # the folder holding interp_agent/
    env["PYTHONPATH"] = os.pathsep.join([root, *[p for p in env.get("PYTHONPATH", "").split(os.pathsep) if p]])
    return env


@dataclass(frozen=True, slots=True)
class ProgramRunner:
    """Runs each step as ``[*program, command, *args]`` in a subprocess."""

    program: tuple[str, ...] = field(default_factory=lambda: (sys.executable, "-m", "interp_agent"))
    """The program's command line (interpreter and module); by default the interp_agent package's."""
    commands: Collection[str] = RUN_COMMANDS
    """Command names a step may use."""
    checker: Callable[[str, Sequence[str]], str | None] | None = None
    """Checks a step's args without running it (the CLI parses them with the subcommand's own parser) and
    returns the problem, or None when they are fine; None: steps are not checked before they run."""

    def check(self, command: str, args: Sequence[str]) -> str | None:
        """The problem with a step's args, or None (always None without a ``checker``)."""
        return self.checker(command, args) if self.checker is not None else None

    def argv(self, command: str, args: Sequence[str]) -> list[str]:
        """``[*program, command, *args]``."""
        return [*self.program, command, *args]

    def __call__(self, command: str, args: Sequence[str], cwd: Path) -> StepResult:
        """Run the step in a subprocess and capture its output (undecodable bytes replaced)."""
        proc = subprocess.run(
            self.argv(command, args), cwd=cwd, env=_program_env(), capture_output=True, text=True, errors="replace"
        )
        return StepResult(proc.returncode, proc.stdout, proc.stderr)


def _path_entries(argv: tuple[str, ...], cwd: Path, skip: str | None) -> list[dict[str, Any]]:
    entries, seen = [], set()
    skip_next = False
    for tok in argv:
        if skip_next:
            skip_next = False
            continue
        if tok == "--out":
            skip_next = True
            continue
        if not tok or tok.startswith("-"):
            continue
        candidate = (cwd / tok).resolve()
        if candidate.exists() and str(candidate) not in seen and (skip is None or candidate != (cwd / skip).resolve()):
            seen.add(str(candidate))
            entries.append(_path_entry(candidate))
    return entries


def _path_entry(path: Path) -> dict[str, Any]:
    """A path as the manifest records it: where, file or folder, and its hash."""
    return {"path": str(path), "kind": "folder" if path.is_dir() else "file", "sha256": sha256_of(path)}


def _tail(text: str) -> str:
    return text[-TAIL_CHARS:]


def run_config(
    path: str | Path,
    *,
    out: str | Path | None = None,
    runner: StepRunner | None = None,
    variables: Mapping[str, str] | None = None,
    dry_run: bool = False,
) -> dict[str, Any]:
    """Run every step of a run config and write its manifest (or, with ``dry_run``, only say what would run).

    Args:
        path: the run config (``*.json``, ``*.toml``, ``*.yaml``/``*.yml``).
        out: where to write the manifest; ``<config stem>.manifest.json`` beside the config by default.
        runner: what runs the steps; ``ProgramRunner()`` (the interp_agent program) by default.
        variables: values of the ``${NAME}`` placeholders in step args (``--var NAME=VALUE``), overriding the
            config's ``vars``; each must be used by some step.
        dry_run: check everything, run nothing, write nothing; return the plan.

    Returns:
        The ``interp-agent.run_manifest.v1`` object, also written to ``manifest`` (its path).
        ``status`` is ``"completed"`` when every step exited 0, else ``"failed"``. With
        ``dry_run``: the ``interp-agent.run_plan.v1`` object (each step's argv and outputs).

    Raises:
        InputFileError: the config is unreadable or malformed, or uses an undefined variable.
        ValidationError: a step names a command the runner does not offer, or args its ``check`` refuses;
            a given variable is used by no step.
    """
    config = load_run_config(path, variables)
    cfg_path = config.path.resolve()
    cwd = cfg_path.parent
    manifest_path = Path(out).resolve() if out is not None else cwd / f"{cfg_path.stem}.manifest.json"
    runner = runner if runner is not None else ProgramRunner()
    _check_commands(config, cfg_path, runner)
    if dry_run:
        return plan_run(config, runner, manifest_path)

    prov = run_provenance({"config": cfg_path})
    started = time.perf_counter()
    records: list[dict[str, Any]] = []
    produced: list[Path] = []
    external: dict[str, dict[str, Any]] = {}
    status: RunStatus = "completed"
    stop = False
    try:
        for i, step in enumerate(config.steps):
            record = _pending_record(i, step, _hidden(config, runner.argv(step.command, step.argv)))
            records.append(record)
            if stop:
                continue
            record |= _run_step(step, runner, cwd, produced, external)
            if record["exit_code"] != 0:
                status = "failed"
                keep_going = config.continue_on_error if step.continue_on_error is None else step.continue_on_error
                stop = not keep_going
    except KeyboardInterrupt:
        status = "interrupted"
        _write_manifest(manifest_path, config, cfg_path, prov, external, records, status, started)
        raise
    return _write_manifest(manifest_path, config, cfg_path, prov, external, records, status, started)


def _check_commands(config: RunConfig, cfg_path: Path, runner: StepRunner) -> None:
    """Check that every step names a command the runner offers (``run`` never counts), and its args when the
    runner can check them (a ``check(command, args)`` method), before any step runs.

    Raises:
        ValidationError: naming the first step whose command is unknown, and the known ones; or the first
            step whose args the runner refuses, and why.
    """
    known = [c for c in runner.commands if c != "run"]
    for i, step in enumerate(config.steps):
        if step.command not in known:
            raise ValidationError(
                f"{cfg_path}: steps[{i}].command {step.command!r} is not an interp-agent "
                f"command; known: {', '.join(known)}"
            )
    check: Callable[[str, Sequence[str]], str | None] | None = getattr(runner, "check", None)
    for i, step in enumerate(config.steps):
        problem = check(step.command, step.argv) if check is not None else None
        if problem:
            label = f" ({step.name})" if step.name else ""
            raise ValidationError(f"{cfg_path}: steps[{i}]{label}: {step.command}: {redact(problem, _values(config))}",
                                  hint="fix the step's args; nothing has run")


_OUT_FLAG = re.compile(r"^--(?:[a-z0-9-]+-)?out$")
"""Flags naming a file or folder a step writes: ``--out`` and ``--*-out`` (``--csv-out``, ``--calibration-out``)."""


def step_outputs(argv: Sequence[str], cwd: Path) -> list[dict[str, Any]]:
    """The paths a step's ``--out`` / ``--*-out`` flags name, resolved from ``cwd``, and whether each exists."""
    found = []
    for i, tok in enumerate(argv):
        flag, _, value = tok.partition("=")
        if not _OUT_FLAG.match(flag):
            continue
        value = value if "=" in tok else (argv[i + 1] if i + 1 < len(argv) else "")
        if value:
            path = (cwd / value).resolve()
            found.append({"flag": flag, "path": str(path), "exists": path.exists()})
    return found


def plan_run(config: RunConfig, runner: StepRunner, manifest_path: Path) -> dict[str, Any]:
    """What running ``config`` would do (``interp-agent.run_plan.v1``): every step's full argv and outputs.

    Nothing is run or written; ``exists`` marks outputs an earlier run left (a real run replaces them).
    """
    cfg_path = config.path.resolve()
    steps = [{"index": i, "name": step.name, "command": step.command,
              "argv": _hidden(config, runner.argv(step.command, step.argv)),
              "outputs": step_outputs(step.argv, cfg_path.parent)} for i, step in enumerate(config.steps)]
    return {
        "schema_version": RUN_PLAN_SCHEMA,
        "dry_run": True,
        "name": config.name,
        "status": "planned",
        "config": {"path": str(cfg_path), "format": config.format, "sha256": sha256_of(cfg_path)},
        "working_folder": str(cfg_path.parent),
        "continue_on_error": config.continue_on_error,
        "vars": _vars_json(config),
        "steps": steps,
        "manifest": str(manifest_path),
        "manifest_exists": manifest_path.exists(),
    }


def _values(config: RunConfig) -> dict[str, str]:
    return {name: var.value for name, var in config.vars.items()}


def _hidden(config: RunConfig, argv: list[str]) -> list[str]:
    """``argv`` with the values of secret-named variables (``*TOKEN*``, ``*KEY*``, …) replaced by [REDACTED]."""
    values = _values(config)
    return [redact(tok, values) for tok in argv] if values else argv


def _vars_json(config: RunConfig) -> dict[str, Any]:
    """The run's variables as manifest and plan record them, secret-named values redacted."""
    values = _values(config)
    return {name: var.to_json() | {"value": redact(var.value, values)} for name, var in config.vars.items()}


def _pending_record(index: int, step: RunStep, argv: list[str]) -> dict[str, Any]:
    """A step's manifest entry before it runs (and, if it never runs, as it stays)."""
    return {
        "index": index,
        "name": step.name,
        "command": step.command,
        "argv": argv,
        "status": "not_run",
        "exit_code": None,
        "seconds": None,
    }


def _run_step(
    step: RunStep, runner: StepRunner, cwd: Path, produced: list[Path], external: dict[str, dict[str, Any]]
) -> dict[str, Any]:
    """Run one step; returns the manifest fields it adds to its entry.

    Records the step's input paths that no earlier step produced in ``external`` (by path,
    first seen kept) and appends its ``--out``, when the step wrote it, to ``produced``.
    """
    inputs = _path_entries(step.argv, cwd, step.out)
    for entry in inputs:
        p = Path(entry["path"])
        if not any(p == q or q in p.parents for q in produced):
            external.setdefault(entry["path"], entry)
    t0 = time.perf_counter()
    proc = runner(step.command, step.argv, cwd)
    outputs = []
    if step.out is not None:
        out_path = (cwd / step.out).resolve()
        if out_path.exists():
            produced.append(out_path)
            outputs.append(_path_entry(out_path))
    return {
        "status": "passed" if proc.exit_code == 0 else "failed",
        "exit_code": proc.exit_code,
        "seconds": round(time.perf_counter() - t0, 3),
        "inputs": inputs,
        "outputs": outputs,
        "stderr_tail": _tail(proc.stderr),
        "stdout_tail": _tail(proc.stdout),
    }


def _write_manifest(
    manifest_path: Path,
    config: RunConfig,
    cfg_path: Path,
    prov: dict[str, Any],
    external: dict[str, dict[str, Any]],
    records: list[dict[str, Any]],
    status: RunStatus,
    started: float,
) -> dict[str, Any]:
    failed = [r["index"] for r in records if r["status"] == "failed"]
    manifest = {
        "schema_version": RUN_MANIFEST_SCHEMA,
        "name": config.name,
        "status": status,
        "tool": prov["tool"],
        "tool_version": prov["tool_version"],
        "created_utc": prov["created_utc"],
        "python": prov["python"],
        "python_executable": sys.executable,
        "platform": prov["platform"],
        "config": {"path": str(cfg_path), "format": config.format, "sha256": prov["inputs"][0]["sha256"]},
        "working_folder": str(cfg_path.parent),
        "continue_on_error": config.continue_on_error,
        "vars": _vars_json(config),
        "inputs": list(external.values()),
        "steps": records,
        "failed_steps": failed,
        "first_failed_step": failed[0] if failed else None,
        "total_seconds": round(time.perf_counter() - started, 3),
        "manifest": str(manifest_path),
    }
    write_json(manifest_path, manifest)
    return manifest
