"""Run configs execute their steps through a StepRunner the caller chooses; core never runs the CLI itself."""

from __future__ import annotations

import json
import subprocess
import sys
from collections.abc import Sequence
from dataclasses import dataclass, field
from pathlib import Path

import pytest

from interp_agent.core.errors import ValidationError
from interp_agent.core.runs import RUN_COMMANDS, ProgramRunner, StepResult, run_config


@dataclass
class _Recorder:
    """A StepRunner that records what it was asked to run; ``fail`` names commands that exit 3."""

    commands: tuple[str, ...] = ("inspect", "match")
    fail: tuple[str, ...] = ()
    calls: list[tuple[str, tuple[str, ...], Path]] = field(default_factory=list)

    def argv(self, command: str, args: Sequence[str]) -> list[str]:
        return ["fake", command, *args]

    def __call__(self, command: str, args: Sequence[str], cwd: Path) -> StepResult:
        self.calls.append((command, tuple(args), cwd))
        if command in self.fail:
            return StepResult(3, "", f"{command} failed on purpose")
        return StepResult(0, f"{command} ok", "")


def test_the_given_runner_runs_every_step_in_the_configs_folder(tmp_path: Path) -> None:
    config = tmp_path / "run.json"
    config.write_text(json.dumps({"steps": [{"command": "inspect", "args": {"out": "a"}},
                                            {"command": "match", "args": ["--left", "a"]}]}))
    runner = _Recorder()
    manifest = run_config(config, runner=runner)
    assert runner.calls == [("inspect", ("--out", "a"), tmp_path), ("match", ("--left", "a"), tmp_path)]
    assert manifest["status"] == "completed"
    argvs = [s["argv"] for s in manifest["steps"]]
    assert argvs == [["fake", "inspect", "--out", "a"], ["fake", "match", "--left", "a"]]
    assert manifest["steps"][1]["stdout_tail"] == "match ok"


def test_a_failing_step_of_the_given_runner_stops_the_run(tmp_path: Path) -> None:
    config = tmp_path / "run.json"
    config.write_text(json.dumps({"steps": [{"command": "inspect"}, {"command": "match"}]}))
    manifest = run_config(config, runner=_Recorder(fail=("inspect",)))
    assert manifest["status"] == "failed" and [s["status"] for s in manifest["steps"]] == ["failed", "not_run"]
    assert manifest["steps"][0]["exit_code"] == 3 and "on purpose" in manifest["steps"][0]["stderr_tail"]


def test_a_command_the_runner_does_not_offer_is_refused_before_any_step_runs(tmp_path: Path) -> None:
    config = tmp_path / "run.json"
    config.write_text(json.dumps({"steps": [{"command": "inspect"}, {"command": "publish"}]}))
    runner = _Recorder()
    with pytest.raises(ValidationError, match="'publish' is not an interp-agent command; known: inspect, match"):
        run_config(config, runner=runner)
    assert runner.calls == []


def test_the_default_program_is_the_interp_agent_package() -> None:
    runner = ProgramRunner()
    assert runner.argv("doctor", ["--quick"]) == [sys.executable, "-m", "interp_agent", "doctor", "--quick"]
    proc = subprocess.run([sys.executable, "-m", "interp_agent", "--version"], capture_output=True, text=True,
                          check=False)
    assert proc.returncode == 0 and proc.stdout.startswith("interp-agent ")


def test_the_step_commands_are_the_clis_subcommands_but_run() -> None:
    from interp_agent.cli import build_parser

    args = build_parser().parse_args(["run", "config.json"])
    assert set(args.commands) - {"run"} == set(RUN_COMMANDS)
