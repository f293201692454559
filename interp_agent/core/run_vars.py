"""Variables of a run config: ``${NAME}`` placeholders in step args, filled from ``--var`` and the config's ``vars``.

Grammar: ``${NAME}`` with NAME of letters, digits and ``_``, not starting with a digit
(case-sensitive), anywhere inside a string of a step's ``args`` (mapping values, list
items, raw tokens; never keys). ``$${NAME}`` is a literal ``${NAME}``. A ``$`` or a brace
not in that form is text: criteria and JSON snippets keep their braces (interp-lab's
``run --var`` also fills bare ``{NAME}``; interp-agent does not, so a criterion such as
"the set {a, b}" is never rewritten).

Values come from the config's top-level ``vars`` object (defaults) overridden by the
caller's (``--var NAME=VALUE``, repeatable, or ``run_config(variables=...)``). A placeholder
that neither defines is an error naming the step, the variable, the config file and the
line of its first use. A caller's variable that no step uses is an error too: with config
defaults present, a misspelt ``--var`` would otherwise run silently with the default.
"""

from __future__ import annotations

import re
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Literal

from interp_agent.core.errors import InputFileError, ValidationError, arg

VarSource = Literal["config", "given"]
"""config: the config's ``vars``; given: passed by the caller (``--var``), overriding the config's."""

_PLACEHOLDER = re.compile(r"\$(\$?)\{([A-Za-z_][A-Za-z0-9_]*)\}")
_NAME = re.compile(r"^[A-Za-z_][A-Za-z0-9_]*$")
_VAR_HINT = "define it with --var NAME=VALUE (API: variables={'NAME': ...}) or under 'vars' in the config"


@dataclass(frozen=True, slots=True)
class RunVar:
    """One defined variable of a run."""

    value: str
    """Its value, as substituted."""
    source: VarSource
    """Where the value came from."""
    used: bool = False
    """Whether any step's args use it."""

    def to_json(self) -> dict[str, Any]:
        """``{"value", "source", "used"}`` as the manifest records it."""
        return {"value": self.value, "source": self.source, "used": self.used}


def parse_var(text: str) -> tuple[str, str]:
    """``NAME=VALUE`` (one ``--var``) as ``(NAME, VALUE)``; the value may be empty and may hold ``=``.

    Raises:
        ValidationError: no ``=``, or NAME is not letters, digits and ``_``.
    """
    name, sep, value = text.partition("=")
    if not sep or not _NAME.match(name):
        raise ValidationError(
            f"{arg('variables')} takes NAME=VALUE, NAME of letters, digits and '_' not starting with a digit; "
            f"got {text!r}", hint="e.g. --var MODEL=toy/a")
    return name, value


def parse_vars(items: Iterable[str] | None) -> dict[str, str]:
    """Several ``NAME=VALUE`` strings as a mapping; a repeated NAME keeps its last value."""
    return dict(parse_var(item) for item in items or ())


def config_vars(path: Path, raw: Any) -> dict[str, str]:
    """The config's ``vars`` object as strings (numbers as written, booleans ``true``/``false``).

    Raises:
        InputFileError: ``vars`` is not an object, a name is malformed, or a value is not a scalar.
    """
    if raw is None:
        return {}
    if not isinstance(raw, dict):
        raise InputFileError(path, f"'vars' must be an object of NAME: value, got {raw!r}", field="vars")
    out = {}
    for name, value in raw.items():
        if not isinstance(name, str) or not _NAME.match(name):
            raise InputFileError(path, f"variable name {name!r} must be letters, digits and '_', not starting "
                                 "with a digit", field=f"vars.{name}")
        if isinstance(value, (dict, list)) or value is None:
            raise InputFileError(path, f"variable {name} must be a string, number or bool, got {value!r}",
                                 field=f"vars.{name}")
        out[name] = ("true" if value else "false") if isinstance(value, bool) else str(value)
    return out


def defined_vars(config_values: Mapping[str, str], given: Mapping[str, str] | None) -> dict[str, RunVar]:
    """Every defined variable: the config's, overridden by the caller's.

    Raises:
        ValidationError: a given name is malformed.
    """
    out = {name: RunVar(value, "config") for name, value in config_values.items()}
    for name, value in (given or {}).items():
        if not _NAME.match(name):
            raise ValidationError(f"variable name {name!r} in {arg('variables')} must be letters, digits and '_', "
                                  "not starting with a digit")
        out[name] = RunVar(str(value), "given")
    return out


def substitute(value: Any, defined: Mapping[str, RunVar], used: set[str], missing: list[str]) -> Any:
    """``value`` (a step's args) with every ``${NAME}`` in its strings filled; names go to ``used`` / ``missing``."""
    if isinstance(value, str):
        def one(m: re.Match[str]) -> str:
            name = m.group(2)
            if m.group(1):
                return "${" + name + "}"
            if name not in defined:
                missing.append(name)
                return m.group(0)
            used.add(name)
            return defined[name].value

        return _PLACEHOLDER.sub(one, value)
    if isinstance(value, list):
        return [substitute(item, defined, used, missing) for item in value]
    if isinstance(value, dict):
        return {key: substitute(item, defined, used, missing) for key, item in value.items()}
    return value


def expand_step_args(path: Path, text: str, where: str, raw: Any, defined: Mapping[str, RunVar],
                     used: set[str]) -> Any:
    """A raw step (``where`` names it, e.g. ``steps[1]``) with its ``args`` filled in.

    Raises:
        InputFileError: the args use a variable nobody defined (names it, the step and the line of its first use).
    """
    if not isinstance(raw, dict) or "args" not in raw:
        return raw
    missing: list[str] = []
    args = substitute(raw["args"], defined, used, missing)
    if missing:
        name = missing[0]
        label = f" ({raw['name']})" if isinstance(raw.get("name"), str) else ""
        known = ", ".join(sorted(defined)) or "none"
        raise InputFileError(path, f"{where}{label} uses ${{{name}}}, which is not defined (defined: {known})",
                             line=_first_line(text, "${" + name + "}"), field=f"{where}.args", hint=_VAR_HINT)
    return raw | {"args": args}


def _first_line(text: str, needle: str) -> int | None:
    """1-based line of the first occurrence of ``needle`` in ``text`` not escaped as ``$${``, or None."""
    for number, line in enumerate(text.splitlines(), start=1):
        at = line.find(needle)
        while at != -1:
            if at == 0 or line[at - 1] != "$":
                return number
            at = line.find(needle, at + 1)
    return None


def check_all_used(path: Path, defined: Mapping[str, RunVar], used: set[str]) -> dict[str, RunVar]:
    """``defined`` with ``used`` marked.

    Raises:
        ValidationError: a caller's variable is used by no step (a typo would otherwise pass unnoticed).
    """
    unused = sorted(name for name, var in defined.items() if var.source == "given" and name not in used)
    if unused:
        raise ValidationError(
            f"{path}: variable(s) {', '.join(unused)} given with {arg('variables')} but used by no step "
            f"(the steps use: {', '.join(sorted(used)) or 'none'})",
            hint="names are case-sensitive; fix the spelling, write ${NAME} in a step's args, or drop the variable")
    return {name: RunVar(var.value, var.source, name in used) for name, var in defined.items()}
