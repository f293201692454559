"""The profile-env, plan-scale and run commands: JSON output, readable lines, exit codes."""

from __future__ import annotations

import json
import subprocess
import sys
from pathlib import Path

import pytest

from interp_agent.cli import main

PLAN_ARGS = ["plan-scale", "--model-params", "1T", "--tokens", "1B", "--d-model", "16384", "--selected-layers", "8",
             "--latent-dim", "1M"]


def run(capsys: pytest.CaptureFixture[str], *argv: str) -> tuple[int, str, str]:
    code = main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


def test_plan_scale_json_output_parses_and_routes_a_trillion_parameter_job_to_a_cluster(capsys) -> None:
    code, out, _ = run(capsys, *PLAN_ARGS, "--k", "32", "--dtype", "bfloat16", "--accelerator", "H100",
                       "--n-accelerators", "8", "--target-shard-size", "64GB", "--json")
    assert code == 0
    plan = json.loads(out)
    assert plan["schema_version"] == "interp-agent.scale_plan.v1" and plan["route"] == "cluster"
    assert plan["inputs"]["latent_dim"] == 1_000_000 and plan["inputs"]["n_accelerators"] == 8
    assert plan["shards"]["recommended"]["storage"] == "sparse"


def test_plan_scale_prints_the_headline_numbers_and_route_without_json(capsys, tmp_path: Path) -> None:
    code, out, _ = run(capsys, "plan-scale", "--model-params", "135M", "--tokens", "1M", "--d-model", "576",
                       "--selected-layers", "1", "--d-sae", "4608", "--dtype", "float32", "--out",
                       str(tmp_path / "p.json"))
    assert code == 0
    assert "dense 2.3 GB" in out and "route: single_gpu" in out and "GPU-hours" in out
    assert json.loads((tmp_path / "p.json").read_text())["storage"]["dense_bytes"] == pytest.approx(2.304e9)


@pytest.mark.parametrize(("flag", "value"), [("--tokens", "lots"), ("--target-shard-size", "64 parsecs"),
                                             ("--d-model", "1.5")])
def test_a_bad_size_exits_2_with_one_line(capsys, flag: str, value: str) -> None:
    argv = list(PLAN_ARGS)
    if flag in argv:
        argv[argv.index(flag) + 1] = value
    else:
        argv += [flag, value]
    code, out, err = run(capsys, *argv)
    assert code == 2 and out == ""
    assert err.count("\n") == 1 and value in err and err.startswith("interp-agent: error:")


def test_a_bad_size_exits_2_with_one_line_from_the_installed_entry_point() -> None:
    proc = subprocess.run([sys.executable, "-m", "interp_agent.cli", *PLAN_ARGS[:2], "70X", *PLAN_ARGS[3:]],
                          capture_output=True, text=True)
    assert proc.returncode == 2 and len(proc.stderr.strip().splitlines()) == 1 and "70X" in proc.stderr


def test_every_plan_input_has_a_flag_with_help(capsys) -> None:
    from dataclasses import fields

    from interp_agent.core.scale import ScalePlanInput

    with pytest.raises(SystemExit):
        main(["plan-scale", "--help"])
    text = " ".join(capsys.readouterr().out.split())
    for f in fields(ScalePlanInput):
        assert f"--{f.name.replace('_', '-')}" in text, f.name
    assert "min(1000, tokens / prompt-tokens)" in text and "min(100, latent-dim)" in text


def test_the_assumption_flags_reach_the_plan_and_its_notes(capsys) -> None:
    code, out, _ = run(capsys, *PLAN_ARGS, "--causal-prompts", "10", "--causal-features", "3",
                       "--interventions-per-feature", "9", "--cpu-peak-tflops", "0.5", "--usable-memory-fraction",
                       "0.8", "--gpus-per-node", "4", "--local-storage-limit", "1TB", "--sparse-preferred-above",
                       "2TB", "--optimizer-bytes-per-param", "2", "--sae-training-passes", "2",
                       "--harvest-depth-fraction", "0.5", "--json")
    assert code == 0
    plan = json.loads(out)
    i = plan["inputs"]
    assert (i["causal_prompts"], i["causal_features"], i["interventions_per_feature"]) == (10, 3, 9)
    assert (i["cpu_peak_tflops"], i["usable_memory_fraction"], i["gpus_per_node"]) == (0.5, 0.8, 4)
    assert (i["local_storage_limit"], i["sparse_preferred_above"]) == (1e12, 2e12)
    assert (i["optimizer_bytes_per_param"], i["sae_training_passes"], i["harvest_depth_fraction"]) == (2, 2.0, 0.5)
    assert plan["compute"]["causal_validation"]["intervention_passes"] == 3 * 9 * 10
    used = next(n for n in plan["notes"] if n.startswith("values used:"))
    assert "causal_prompts 10 (argument)" in used and "gpus_per_node 4," in used


@pytest.mark.parametrize(("flag", "value"), [("--mfu", "1.5"), ("--gpus-per-node", "0"),
                                             ("--causal-features", "2M"), ("--harvest-depth-fraction", "0")])
def test_an_assumption_out_of_range_exits_2_naming_it(capsys, flag: str, value: str) -> None:
    code, out, err = run(capsys, *PLAN_ARGS, flag, value)
    assert code == 2 and out == "" and err.count("\n") == 1
    assert flag[2:].replace("-", "_") in err


def test_a_ten_thousand_token_run_on_a_machine_without_a_gpu_is_local_cpu(capsys, tmp_path: Path) -> None:
    """Issue 12: 6 CPU-hours from fixed causal defaults, and single_gpu on a machine without one."""
    from interp_agent.core.scale import profile_env, save_profile

    save_profile(profile_env(tmp_path, probe_accelerators=False), tmp_path / "cpu.json")
    argv = ["plan-scale", "--model-params", "135M", "--tokens", "10k", "--d-model", "576", "--selected-layers", "1",
            "--latent-dim", "16k", "--env-profile", str(tmp_path / "cpu.json")]
    code, out, _ = run(capsys, *argv)
    assert code == 0 and "route: local_cpu" in out and "no CUDA device" in out
    assert "(100 features x 5 x 156 prompts)" in out
    code, out, _ = run(capsys, *argv, "--json")
    plan = json.loads(out)
    assert plan["route"] == "local_cpu" and plan["accelerator_route"] == "single_gpu"
    assert plan["machine"]["cpu_hours"] < 1.0 and plan["accelerator"]["name"] == "H100"


def test_profile_env_json_parses_and_its_out_file_feeds_plan_scale(capsys, tmp_path: Path) -> None:
    code, out, _ = run(capsys, "profile-env", "--workspace", str(tmp_path), "--out", str(tmp_path / "env.json"),
                       "--json")
    assert code == 0
    profile = json.loads(out)
    assert profile["schema_version"] == "interp-agent.env_profile.v1"
    assert all(isinstance(v, bool) for v in profile["credentials"].values())
    code, out, _ = run(capsys, *PLAN_ARGS, "--env-profile", str(tmp_path / "env.json"), "--json")
    assert code == 0 and json.loads(out)["inputs"]["sources"]["storage_limit"].startswith("free disk")


def test_profile_env_prints_readable_lines_without_json(capsys, tmp_path: Path) -> None:
    code, out, _ = run(capsys, "profile-env", "--workspace", str(tmp_path))
    assert code == 0 and "cpu:" in out and "route:" in out and "credentials present:" in out


def test_plan_scale_with_a_missing_env_profile_exits_2(capsys, tmp_path: Path) -> None:
    code, _, err = run(capsys, *PLAN_ARGS, "--env-profile", str(tmp_path / "none.json"))
    assert code == 2 and "none.json" in err and err.count("\n") == 1


def test_from_env_and_env_profile_cannot_be_combined(capsys, tmp_path: Path) -> None:
    with pytest.raises(SystemExit) as exit_:
        main([*PLAN_ARGS, "--from-env", "--env-profile", str(tmp_path / "e.json")])
    assert exit_.value.code == 2


def test_run_exits_0_when_every_step_passes_and_1_when_one_fails(capsys, tmp_path: Path) -> None:
    good = tmp_path / "good.json"
    good.write_text(json.dumps({"steps": [{"command": "inspect", "args": {
        "model": "toy/a", "criterion": "c", "backend": "toy", "out": "a"}}]}))
    code, out, _ = run(capsys, "run", str(good), "--json")
    assert code == 0 and json.loads(out)["status"] == "completed"
    bad = tmp_path / "bad.yaml"
    bad.write_text("steps:\n  - command: match\n    args: {left: nope, right: nope, out: m.json}\n")
    code, out, _ = run(capsys, "run", str(bad), "--out", str(tmp_path / "bad-manifest.json"))
    assert code == 1 and "failed" in out and "bad-manifest.json" in out
    assert json.loads((tmp_path / "bad-manifest.json").read_text())["status"] == "failed"


def test_run_with_a_malformed_config_exits_2_with_one_line_naming_file_and_line(capsys, tmp_path: Path) -> None:
    config = tmp_path / "broken.json"
    config.write_text('{"steps": [\n  {"command": "inspect"\n]}\n')
    code, _, err = run(capsys, "run", str(config))
    assert code == 2 and err.count("\n") == 1 and "broken.json:3" in err


def test_plan_scale_with_a_calibration_file_prints_the_predicted_time_and_launch_commands(
    capsys, tmp_path: Path, synthetic_calibration
) -> None:
    cal = synthetic_calibration(900.0, 9000.0)
    (tmp_path / "cal.json").write_text(json.dumps(cal))
    code, out, _ = run(capsys, "plan-scale", "--model-params", "135M", "--tokens", "9M", "--d-model", "576",
                       "--selected-layers", "1", "--d-sae", "4608", "--calibration", str(tmp_path / "cal.json"),
                       "--workers", "2", "--ranks", "2")
    assert code == 0
    assert "measured on this machine: harvest 1.39 h on 2 worker(s)" in out
    assert "launch harvest: ray job submit" in out and "--workers 2" in out
    assert "launch training: torchrun --nnodes 1 --nproc-per-node 2 --standalone" in out
    code, _, err = run(capsys, "plan-scale", "--model-params", "135M", "--tokens", "9M", "--d-model", "576",
                       "--selected-layers", "1", "--d-sae", "4608", "--calibration", str(tmp_path / "missing.json"))
    assert code == 2 and "missing.json" in err and "--calibrate" in err
