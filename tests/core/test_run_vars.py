"""Run configs with ``${NAME}`` variables and ``--dry-run``: filled, checked, recorded, and nothing run when dry."""

from __future__ import annotations

import json
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest
import yaml

from interp_agent.cli import main
from interp_agent.core.errors import InputFileError, ValidationError
from interp_agent.core.run_vars import parse_var, parse_vars
from interp_agent.core.runs import StepResult, load_run_config, run_config


@dataclass
class _Recorder:
    """A StepRunner that records the steps it is asked to run and runs none of them."""

    commands: tuple[str, ...] = ("inspect", "match")
    calls: list[tuple[str, tuple[str, ...]]] = field(default_factory=list)

    def argv(self, command: str, args: Sequence[str]) -> list[str]:
        return ["prog", command, *args]

    def __call__(self, command: str, args: Sequence[str], cwd: Path) -> StepResult:
        self.calls.append((command, tuple(args)))
        return StepResult(0)


CONFIG = {
    "name": "sweep",
    "vars": {"CRIT": "mentions a unit", "K": 5},
    "steps": [
        {"command": "inspect", "name": "left",
         "args": {"model": "${MODEL}", "criterion": "${CRIT}", "top_k": "${K}", "out": "runs/${MODEL}"}},
        {"command": "match", "args": ["--left", "runs/${MODEL}", "--right", "ref", "--out", "m-${MODEL}.json"]},
    ],
}


def _write(folder: Path, payload: dict, name: str = "run.json") -> Path:
    path = folder / name
    path.write_text(yaml.safe_dump(payload, sort_keys=False) if name.endswith(".yaml") else json.dumps(payload,
                                                                                                        indent=1))
    return path


def test_given_variables_fill_the_args_and_override_the_config_defaults(tmp_path: Path) -> None:
    runner = _Recorder()
    manifest = run_config(_write(tmp_path, CONFIG), runner=runner, variables={"MODEL": "toy/a", "K": "7"})
    assert runner.calls == [
        ("inspect", ("--model", "toy/a", "--criterion", "mentions a unit", "--top-k", "7", "--out", "runs/toy/a")),
        ("match", ("--left", "runs/toy/a", "--right", "ref", "--out", "m-toy/a.json")),
    ]
    assert manifest["vars"] == {"CRIT": {"value": "mentions a unit", "source": "config", "used": True},
                                "K": {"value": "7", "source": "given", "used": True},
                                "MODEL": {"value": "toy/a", "source": "given", "used": True}}
    assert json.loads((tmp_path / "run.manifest.json").read_text())["vars"] == manifest["vars"]


def test_an_undefined_variable_names_the_step_the_variable_the_file_and_the_line(tmp_path: Path) -> None:
    path = _write(tmp_path, CONFIG, "run.yaml")
    with pytest.raises(InputFileError) as info:
        load_run_config(path, {"K": "3"})
    err = info.value
    assert err.path == str(path) and err.field == "steps[0].args"
    line = next(i for i, text in enumerate(path.read_text().splitlines(), 1) if "${MODEL}" in text)
    assert err.line == line
    assert "steps[0] (left) uses ${MODEL}, which is not defined (defined: CRIT, K)" in str(err)
    assert "--var NAME=VALUE" in str(err)


def test_a_given_variable_no_step_uses_is_refused_naming_it(tmp_path: Path) -> None:
    runner = _Recorder()
    with pytest.raises(ValidationError, match=r"MODLE given with `variables` but used by no step \(the steps use: "
                                              r"CRIT, K, MODEL\)"):
        run_config(_write(tmp_path, CONFIG), runner=runner, variables={"MODEL": "a", "MODLE": "b"})
    assert runner.calls == [] and not (tmp_path / "run.manifest.json").exists()


def test_escaped_placeholders_and_plain_braces_are_left_as_text(tmp_path: Path) -> None:
    payload = {"vars": {"X": "1"}, "steps": [{"command": "inspect", "args": {
        "criterion": "the set {a, b} costs $5 and ${X}", "out": "$${X}/{X}"}}]}
    config = load_run_config(_write(tmp_path, payload))
    assert config.steps[0].argv == ("--criterion", "the set {a, b} costs $5 and 1", "--out", "${X}/{X}")
    assert config.vars["X"].used


def test_an_unused_config_default_is_recorded_as_unused_not_refused(tmp_path: Path) -> None:
    payload = {"vars": {"SPARE": "x"}, "steps": [{"command": "inspect", "args": {"out": "a"}}]}
    config = load_run_config(_write(tmp_path, payload))
    assert config.vars["SPARE"].to_json() == {"value": "x", "source": "config", "used": False}


@pytest.mark.parametrize("bad", [{"vars": ["X"]}, {"vars": {"1X": "a"}}, {"vars": {"X": {"nested": 1}}}])
def test_a_malformed_vars_block_names_the_file_and_field(tmp_path: Path, bad: dict) -> None:
    with pytest.raises(InputFileError, match=r"run.json: field 'vars"):
        load_run_config(_write(tmp_path, bad | {"steps": [{"command": "inspect"}]}))


def test_var_strings_split_at_the_first_equals_sign() -> None:
    assert parse_var("Q=a=b") == ("Q", "a=b") and parse_var("EMPTY=") == ("EMPTY", "")
    assert parse_vars(["A=1", "A=2"]) == {"A": "2"}
    for bad in ("novalue", "=x", "1A=x", "A-B=x"):
        with pytest.raises(ValidationError, match="NAME=VALUE"):
            parse_var(bad)


def test_a_dry_run_lists_every_argv_and_output_and_runs_and_writes_nothing(tmp_path: Path) -> None:
    (tmp_path / "runs" / "toy").mkdir(parents=True)
    (tmp_path / "runs" / "toy" / "a").mkdir()  # left by an earlier run
    runner = _Recorder()
    plan = run_config(_write(tmp_path, CONFIG), runner=runner, variables={"MODEL": "toy/a"}, dry_run=True)
    assert runner.calls == [] and not (tmp_path / "run.manifest.json").exists()
    assert plan["schema_version"] == "interp-agent.run_plan.v1" and plan["status"] == "planned"
    assert plan["steps"][0]["argv"] == ["prog", "inspect", "--model", "toy/a", "--criterion", "mentions a unit",
                                        "--top-k", "5", "--out", "runs/toy/a"]
    assert plan["steps"][0]["outputs"] == [{"flag": "--out", "path": str(tmp_path / "runs/toy/a"), "exists": True}]
    assert plan["steps"][1]["outputs"] == [{"flag": "--out", "path": str(tmp_path / "m-toy/a.json"),
                                            "exists": False}]
    assert plan["manifest"] == str(tmp_path / "run.manifest.json") and plan["manifest_exists"] is False
    assert plan["vars"]["MODEL"]["source"] == "given"


def test_secret_named_variables_are_redacted_in_the_manifest(tmp_path: Path) -> None:
    payload = {"steps": [{"command": "inspect", "args": {"model": "m", "header": "Bearer ${API_TOKEN}"}}]}
    runner = _Recorder()
    manifest = run_config(_write(tmp_path, payload), runner=runner, variables={"API_TOKEN": "s3cr3t-value"})
    assert runner.calls[0][1] == ("--model", "m", "--header", "Bearer s3cr3t-value")  # the step gets the value
    assert "s3cr3t-value" not in (tmp_path / "run.manifest.json").read_text()
    assert manifest["steps"][0]["argv"][-1] == "Bearer [REDACTED]"
    assert manifest["vars"]["API_TOKEN"]["value"] == "[REDACTED]"


def test_cli_dry_run_prints_the_plan_as_json_and_writes_nothing(tmp_path: Path, capsys) -> None:
    config = _write(tmp_path, {"steps": [
        {"command": "inspect", "args": {"model": "${M}", "criterion": "c", "backend": "toy", "out": "a",
                                        "csv_out": "a.csv"}}]})
    assert main(["run", str(config), "--var", "M=toy/a", "--dry-run", "--json"]) == 0
    plan = json.loads(capsys.readouterr().out)
    assert plan["steps"][0]["argv"][-10:] == ["inspect", "--model", "toy/a", "--criterion", "c", "--backend", "toy",
                                              "--out", "a", "--csv-out", "a.csv"][-10:]
    assert [o["flag"] for o in plan["steps"][0]["outputs"]] == ["--out", "--csv-out"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.json"]


def test_cli_refuses_a_misspelt_flag_of_a_later_step_before_any_step_runs(tmp_path: Path, capsys) -> None:
    config = _write(tmp_path, {"steps": [
        {"command": "inspect", "args": {"model": "toy/a", "criterion": "c", "backend": "toy", "out": "a"}},
        {"command": "inspect", "name": "typo",
         "args": {"model": "toy/a", "criterion": "c", "bakend": "toy", "out": "b"}}]})
    assert main(["run", str(config)]) == 2
    err = capsys.readouterr().err
    assert "steps[1] (typo): inspect: unrecognized arguments: --bakend toy" in err
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run.json"]  # the first step did not run


def test_cli_run_with_vars_runs_the_steps_and_records_the_vars(tmp_path: Path, capsys) -> None:
    config = _write(tmp_path, {"vars": {"CRIT": "mentions a unit"}, "steps": [
        {"command": "inspect", "args": {"model": "${M}", "criterion": "${CRIT}", "backend": "toy", "out": "${M}"}}]})
    assert main(["run", str(config), "--var", "M=toy-b", "--json"]) == 0
    manifest = json.loads(capsys.readouterr().out)
    assert manifest["status"] == "completed" and manifest["vars"]["M"] == {"value": "toy-b", "source": "given",
                                                                           "used": True}
    report = json.loads((tmp_path / "toy-b" / "report.json").read_text())
    assert report["model"] == "toy-b" and report["criterion"] == "mentions a unit"
