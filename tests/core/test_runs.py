"""Run configs: steps run as CLI subprocesses, a manifest records them, bad configs name file and line."""

from __future__ import annotations

import json
import shutil
from pathlib import Path

import pytest
import yaml

from interp_agent.core.errors import InputFileError, ValidationError
from interp_agent.core.runs import args_to_argv, load_run_config, run_config

TOY_STEPS = [
    {"command": "inspect", "args": {"model": "toy/a", "criterion": "c", "backend": "toy", "out": "a"}},
    {"command": "inspect", "args": {"model": "toy/b", "criterion": "c", "backend": "toy", "out": "b"}},
    {"command": "match", "args": {"left": "a/report.json", "right": "b", "out": "m/matches.json", "no_text": True}},
]


def _check_toy_manifest(manifest: dict, folder: Path) -> None:
    assert manifest["schema_version"] == "interp-agent.run_manifest.v1"
    assert manifest["status"] == "completed" and manifest["failed_steps"] == []
    assert manifest["tool_version"] and manifest["python"] and manifest["platform"]
    assert len(manifest["config"]["sha256"]) == 64
    steps = manifest["steps"]
    assert [s["command"] for s in steps] == ["inspect", "inspect", "match"]
    assert [s["exit_code"] for s in steps] == [0, 0, 0] and all(s["seconds"] > 0 for s in steps)
    assert steps[0]["argv"][-8:] == ["--model", "toy/a", "--criterion", "c", "--backend", "toy", "--out", "a"]
    assert steps[2]["argv"][-1] == "--no-text"
    output = steps[0]["outputs"][0]
    assert output["path"] == str((folder / "a").resolve()) and output["kind"] == "folder"
    match_out = steps[2]["outputs"][0]
    assert match_out["path"] == str((folder / "m" / "matches.json").resolve()) and len(match_out["sha256"]) == 64
    # the match read what the inspects wrote: hashed as its inputs, not counted as external inputs of the run
    assert {Path(i["path"]).name for i in steps[2]["inputs"]} == {"report.json", "b"}
    assert manifest["inputs"] == []
    assert (folder / "m" / "matches.json").is_file()


def test_a_json_config_runs_two_toy_inspects_and_a_match_and_records_them(tmp_path: Path) -> None:
    config = tmp_path / "run.json"
    config.write_text(json.dumps({"name": "toys", "steps": TOY_STEPS}, indent=2))
    manifest = run_config(config)
    _check_toy_manifest(manifest, tmp_path)
    assert manifest["name"] == "toys" and manifest["config"]["format"] == "json"
    written = tmp_path / "run.manifest.json"
    assert manifest["manifest"] == str(written) and json.loads(written.read_text()) == json.loads(json.dumps(manifest))


def test_a_yaml_config_runs_the_same_steps_and_writes_the_manifest_at_out(tmp_path: Path) -> None:
    folder = tmp_path / "cfg"
    folder.mkdir()
    config = folder / "run.yaml"
    config.write_text(yaml.safe_dump({"steps": TOY_STEPS}, sort_keys=False))
    manifest = run_config(config, out=tmp_path / "elsewhere" / "manifest.json")
    _check_toy_manifest(manifest, folder)
    assert manifest["config"]["format"] == "yaml"
    assert (tmp_path / "elsewhere" / "manifest.json").is_file() and not (folder / "run.manifest.json").exists()


def test_a_toml_config_with_raw_tokens_is_run_and_its_existing_inputs_are_hashed(
    tmp_path: Path, seed_dir: Path
) -> None:
    shutil.copy(seed_dir / "activation_records.jsonl", tmp_path / "records.jsonl")
    config = tmp_path / "run.toml"
    config.write_text('name = "convert"\n\n[[steps]]\ncommand = "convert"\nargs = ["records.jsonl", "records_pq"]\n')
    manifest = run_config(config)
    assert manifest["status"] == "completed" and manifest["config"]["format"] == "toml"
    assert manifest["steps"][0]["argv"][-3:] == ["convert", "records.jsonl", "records_pq"]
    [entry] = manifest["inputs"]
    assert entry["path"] == str((tmp_path / "records.jsonl").resolve()) and entry["kind"] == "file"
    from interp_agent.core.artifacts import sha256_of

    assert entry["sha256"] == sha256_of(tmp_path / "records.jsonl")
    assert (tmp_path / "records_pq").is_dir()


def test_a_failing_step_stops_the_run_and_the_status_is_failed(tmp_path: Path) -> None:
    config = tmp_path / "run.json"
    config.write_text(json.dumps({"steps": [
        {"command": "inspect", "args": {"model": "m", "criterion": "c", "backend": "records",
                                        "records": "missing.jsonl", "out": "r"}},
        TOY_STEPS[0],
    ]}))
    manifest = run_config(config)
    assert manifest["status"] == "failed" and manifest["first_failed_step"] == 0
    first, second = manifest["steps"]
    assert first["status"] == "failed" and first["exit_code"] == 2 and "missing.jsonl" in first["stderr_tail"]
    assert len(first["stderr_tail"]) <= 2000 and first["outputs"] == []
    assert second["status"] == "not_run" and second["exit_code"] is None
    assert not (tmp_path / "a").exists()
    assert json.loads((tmp_path / "run.manifest.json").read_text())["status"] == "failed"


def test_continue_on_error_runs_the_steps_after_a_failure(tmp_path: Path) -> None:
    config = tmp_path / "run.json"
    config.write_text(json.dumps({"continue_on_error": True, "steps": [
        {"command": "match", "args": {"left": "nope", "right": "nope", "out": "m.json"}}, TOY_STEPS[0],
    ]}))
    manifest = run_config(config)
    assert [s["status"] for s in manifest["steps"]] == ["failed", "passed"]
    assert manifest["status"] == "failed" and manifest["failed_steps"] == [0]


def test_a_malformed_json_config_names_the_file_and_the_line(tmp_path: Path) -> None:
    config = tmp_path / "bad.json"
    config.write_text('{\n  "steps": [\n    {"command": "inspect",,}\n  ]\n}\n')
    with pytest.raises(InputFileError, match=r"bad\.json:3") as err:
        run_config(config)
    assert err.value.line == 3 and not (tmp_path / "bad.manifest.json").exists()


def test_a_malformed_yaml_config_names_the_file_and_the_line(tmp_path: Path) -> None:
    config = tmp_path / "bad.yaml"
    config.write_text("steps:\n  - command: inspect\n    args: {model: [unclosed\n")
    with pytest.raises(InputFileError, match=r"bad\.yaml:\d+") as err:
        load_run_config(config)
    assert err.value.line is not None and err.value.line >= 3


def test_a_malformed_toml_config_names_the_file_and_the_line(tmp_path: Path) -> None:
    config = tmp_path / "bad.toml"
    config.write_text('[[steps]]\ncommand = "inspect"\nargs = = 3\n\n[[steps]]\ncommand = "match"\n')
    with pytest.raises(InputFileError, match=r"bad\.toml:3"):
        load_run_config(config)


@pytest.mark.parametrize(
    ("payload", "field"),
    [
        ({"name": "x"}, "steps"),
        ({"steps": []}, "steps"),
        ({"steps": [{"args": {}}]}, "steps[0].command"),
        ({"steps": [{"command": "inspect", "args": "--out x"}]}, "steps[0].args"),
        ({"steps": [{"command": "inspect", "arg": {}}]}, "steps[0].arg"),
        ({"steps": [{"command": "inspect", "args": {"out": {"nested": 1}}}]}, "steps[0].args"),
        ({"steps": [{"command": "run", "args": ["other.json"]}]}, "steps[0].command"),
        ({"stepz": []}, "stepz"),
        ({"steps": [{"command": "inspect"}], "continue_on_error": "yes"}, "continue_on_error"),
    ],
)
def test_a_config_of_the_wrong_shape_names_the_file_and_the_field(tmp_path: Path, payload, field) -> None:
    config = tmp_path / "shape.json"
    config.write_text(json.dumps(payload))
    with pytest.raises(InputFileError, match="shape.json") as err:
        load_run_config(config)
    assert err.value.field == field


def test_a_top_level_list_or_an_unknown_suffix_or_a_missing_file_is_refused(tmp_path: Path) -> None:
    listed = tmp_path / "list.yaml"
    listed.write_text("- command: inspect\n")
    with pytest.raises(InputFileError, match="top level must be an object"):
        load_run_config(listed)
    ini = tmp_path / "run.ini"
    ini.write_text("[steps]\n")
    with pytest.raises(InputFileError, match=r"\.json, \*\.toml"):
        load_run_config(ini)
    with pytest.raises(InputFileError, match="absent.json"):
        load_run_config(tmp_path / "absent.json")


def test_an_unknown_command_is_refused_before_any_step_runs_listing_the_known_commands(tmp_path: Path) -> None:
    config = tmp_path / "run.json"
    config.write_text(json.dumps({"steps": [TOY_STEPS[0], {"command": "inspekt", "args": {}}]}))
    with pytest.raises(ValidationError, match="inspekt") as err:
        run_config(config)
    assert "inspect" in str(err.value) and "match" in str(err.value)
    assert not (tmp_path / "a").exists() and not (tmp_path / "run.manifest.json").exists()


def test_an_args_mapping_becomes_cli_tokens() -> None:
    argv = args_to_argv({"out": "x", "no_text": True, "quick": False, "records": None, "tag": ["a", 2],
                         "held_out_fraction": 0.25, "top_k": 5})
    assert argv == ["--out", "x", "--no-text", "--tag", "a", "--tag", "2", "--held-out-fraction", "0.25",
                    "--top-k", "5"]
    assert args_to_argv(["convert", 3]) == ["convert", "3"] and args_to_argv(None) == []
    with pytest.raises(ValidationError, match="nested"):
        args_to_argv({"nested": {"a": 1}})
