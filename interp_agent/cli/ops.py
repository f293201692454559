"""The operations subcommands: ``doctor``, ``capabilities``, ``demo``, ``profile-env``, ``plan-scale`` and ``run``."""

from __future__ import annotations

import argparse
import contextlib
import io
import shlex
import sys
from collections.abc import Callable, Mapping, Sequence
from pathlib import Path
from typing import Any

from interp_agent.cli.options import Subparsers, add_json_flag
from interp_agent.cli.output import TerminalProgress, emit


def cmd_doctor(args: argparse.Namespace) -> int:
    """``doctor``: what is installed, which extras work, whether the models load."""
    from interp_agent.core.doctor import diagnose, render

    report = diagnose(load_models=not args.quick)
    emit(args, report, render(report))
    return 0


def cmd_capabilities(args: argparse.Namespace) -> int:
    """``capabilities``: backends, extras, GPU, credentials present, executors, models, commands and tools."""
    from interp_agent.core.capabilities import capabilities, render_capabilities

    caps = capabilities(cli_commands=args.commands)
    emit(args, caps, render_capabilities(caps))
    return 0


def cmd_demo(args: argparse.Namespace) -> int:
    """``demo``: the main job end to end (``--synthetic``: on two toy models)."""
    from interp_agent.core.workflows.demo import run_demo

    progress = TerminalProgress()
    try:
        summary = run_demo(Path(args.out), progress=progress, synthetic=args.synthetic)
    finally:
        progress.close()
    emit(args, summary, "\n".join(summary["lines"]))
    return 0


def cmd_profile_env(args: argparse.Namespace) -> int:
    """``profile-env``: this machine's resources, packages and credentials present, with route advice."""
    from interp_agent.core.scale import profile_env, render_profile, save_profile

    profile = profile_env(Path(args.workspace) if args.workspace else None)
    text = render_profile(profile)
    if args.out:
        save_profile(profile, args.out)
        text += f"\nwrote {args.out}"
    emit(args, profile, text)
    return 0


def cmd_plan_scale(args: argparse.Namespace) -> int:
    """``plan-scale``: size a harvest + SAE training + causal validation job."""
    from interp_agent.core.artifacts import write_json
    from interp_agent.core.scale import ScalePlanInput, load_profile, plan_scale, profile_env, render_plan

    env = profile_env() if args.from_env else load_profile(args.env_profile) if args.env_profile else None
    inp = ScalePlanInput.from_sizes(
        model_params=args.model_params,
        tokens=args.tokens,
        d_model=args.d_model,
        selected_layers=args.selected_layers,
        latent_dim=args.latent_dim,
        k=args.k,
        dtype=args.dtype,
        accelerator=args.accelerator,
        n_accelerators=args.n_accelerators,
        target_shard_size=args.target_shard_size,
        causal_prompts=args.causal_prompts,
        causal_features=args.causal_features,
        interventions_per_feature=args.interventions_per_feature,
        prompt_tokens=args.prompt_tokens,
        mfu=args.mfu,
        max_wall_hours=args.max_wall_hours,
        cpu_peak_tflops=args.cpu_peak_tflops,
        usable_memory_fraction=args.usable_memory_fraction,
        gpus_per_node=args.gpus_per_node,
        local_storage_limit=args.local_storage_limit,
        sparse_preferred_above=args.sparse_preferred_above,
        optimizer_bytes_per_param=args.optimizer_bytes_per_param,
        sae_training_passes=args.sae_training_passes,
        harvest_depth_fraction=args.harvest_depth_fraction,
    )
    calibration = _calibration(args)
    if calibration is None:
        plan = plan_scale(inp, env)
    else:
        from interp_agent.core.scale.throughput import plan_with_calibration

        plan = plan_with_calibration(inp, env, calibration=calibration, workers=args.workers, ranks=args.ranks,
                                     efficiency=args.scaling_efficiency)
    text = render_plan(plan)
    if args.calibration_out and calibration is not None:
        write_json(args.calibration_out, calibration)
        text += f"\nwrote the calibration to {args.calibration_out}"
    if args.out:
        write_json(args.out, plan)
        text += f"\nwrote {args.out}"
    emit(args, plan, text)
    return 0


def _calibration(args: argparse.Namespace) -> dict[str, Any] | None:
    """The calibration of ``plan-scale``: measured now (--calibrate), read from a file, or none."""
    if not (args.calibrate or args.calibration):
        return None  # plan-scale alone stays on the standard library (no numpy, no torch)
    from interp_agent.core.scale.throughput import calibrate, load_calibration

    if args.calibrate:
        return calibrate(device=args.calibrate_device)
    return load_calibration(args.calibration) if args.calibration else None


def _manifest_text(manifest: dict[str, Any], config: str) -> str:
    lines = [f"run {manifest['name'] or Path(config).name}: {manifest['status']} in {manifest['total_seconds']:.1f} s"]
    for step in manifest["steps"]:
        took = f" ({step['seconds']:.1f} s)" if step["seconds"] is not None else ""
        lines.append(
            f"  {step['index']}: {step['command']} {step['status']}{took}"
            + (f", exit {step['exit_code']}" if step["status"] == "failed" else "")
        )
        if step["status"] == "failed" and step.get("stderr_tail"):
            lines.append("     " + step["stderr_tail"].strip().splitlines()[-1])
    lines.append(f"manifest: {manifest['manifest']}")
    return "\n".join(lines)


def _plan_text(plan: dict[str, Any], config: str) -> str:
    lines = [f"dry run of {plan['name'] or Path(config).name}: {len(plan['steps'])} step(s); nothing was run or "
             f"written"]
    lines += [f"  {name} = {var['value']!r} ({'from --var' if var['source'] == 'given' else 'config default'}"
              + ("" if var["used"] else ", unused") + ")" for name, var in plan["vars"].items()]
    for step in plan["steps"]:
        label = f" ({step['name']})" if step["name"] else ""
        lines.append(f"  {step['index']}: {step['command']}{label}\n     {shlex.join(step['argv'])}")
        lines += [f"     writes {o['path']}" + (" (exists: replaced)" if o["exists"] else "") for o in step["outputs"]]
    lines.append(f"manifest: {plan['manifest']}" + (" (exists: replaced)" if plan["manifest_exists"] else ""))
    return "\n".join(lines)


def step_checker(parsers: Mapping[str, argparse.ArgumentParser]) -> Callable[[str, Sequence[str]], str | None]:
    """Checks a step's args by parsing them with the subcommand's own parser, which runs nothing."""

    def check(command: str, tokens: Sequence[str]) -> str | None:
        err = io.StringIO()
        try:
            with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
                parsers[command].parse_args(list(tokens))
        except SystemExit as exc:
            if exc.code:
                lines = err.getvalue().strip().splitlines()
                return lines[-1].split(": error: ", 1)[-1] if lines else f"arguments refused (exit {exc.code})"
        return None

    return check


def cmd_run(args: argparse.Namespace) -> int:
    """``run``: the steps of a run config, each in its own process; exits 1 unless all of them completed.

    Every step's args are parsed by its subcommand's parser before the first step runs; ``--dry-run``
    stops there and prints the plan.
    """
    from interp_agent.core.run_vars import parse_vars
    from interp_agent.core.runs import ProgramRunner, run_config

    # each step is this command line again, in its own process; args.commands: every subcommand of the parser
    runner = ProgramRunner(program=(sys.executable, "-m", "interp_agent.cli"), commands=tuple(args.commands),
                           checker=step_checker(args.commands))
    result = run_config(args.config, out=args.out, runner=runner, variables=parse_vars(args.variables),
                        dry_run=args.dry_run)
    if args.dry_run:
        emit(args, result, _plan_text(result, args.config))
        return 0
    emit(args, result, _manifest_text(result, args.config))
    return 0 if result["status"] == "completed" else 1


def _add_doctor_and_demo(sub: Subparsers) -> None:
    p = sub.add_parser("doctor", help="what is installed, which extras work, whether the models load")
    p.add_argument(
        "--quick",
        action="store_true",
        help="only check imports; load neither the embedded model nor the sentence encoder",
    )
    add_json_flag(p)
    p.set_defaults(func=cmd_doctor)

    p = sub.add_parser(
        "capabilities",
        help="what this installation can do, in well under a second: backends that work here, extras, GPU, "
        "credentials present (names only), executors, the embedded model and encoder, CLI commands, MCP tools",
    )
    add_json_flag(p)
    p.set_defaults(func=cmd_capabilities, commands=sub.choices)  # the live mapping: later subcommands count too

    p = sub.add_parser(
        "demo",
        help="the main job end to end on the embedded SmolLM2-135M: inspect, intervene with "
        "controls, report (--synthetic: two toy models, no model)",
    )
    p.add_argument("--out", default="demo-out", help="output folder (default demo-out)")
    p.add_argument("--synthetic", action="store_true", help="the toy demo: planted features, no model, seconds")
    add_json_flag(p)
    p.set_defaults(func=cmd_demo)


def _add_profile_env(sub: Subparsers) -> None:
    p = sub.add_parser(
        "profile-env", help="cores, memory, disk, accelerators, packages, credentials present; route advice"
    )
    p.add_argument("--workspace", help="folder whose disk is measured (default: the current folder)")
    p.add_argument("--out", help="also write the profile to this JSON file (input of plan-scale --env-profile)")
    add_json_flag(p)
    p.set_defaults(func=cmd_profile_env)


def _add_job_sizes(p: argparse.ArgumentParser) -> None:
    """The sizes of the model, the data and the SAEs, and the hardware planned for."""
    p.add_argument("--model-params", required=True, help="model parameters, e.g. 135M, 70B, 1T")
    p.add_argument("--tokens", required=True, help="tokens harvested and trained on, e.g. 100M, 1B")
    p.add_argument("--d-model", required=True, help="residual width d_model, e.g. 4096, 16384")
    p.add_argument("--selected-layers", required=True, help="layers harvested (one SAE each)")
    p.add_argument(
        "--latent-dim",
        "--d-sae",
        dest="latent_dim",
        required=True,
        help="latents per SAE (d_sae), e.g. 64k, 1M, 1Mi (= 2**20)",
    )
    p.add_argument("--k", default="32", help="active latents per token of a TopK SAE (default 32)")
    p.add_argument(
        "--dtype",
        choices=["float32", "bfloat16", "float16", "float8"],
        default="bfloat16",
        help="precision of stored activations and weights (default bfloat16)",
    )
    p.add_argument(
        "--accelerator",
        choices=["H100", "H200", "A100-80GB", "A100-40GB", "L4", "RTX4090", "cpu"],
        help="accelerator to plan for (default: the profiled device, else H100)",
    )
    p.add_argument("--n-accelerators", help="accelerators available (default: the profiled count, else 1)")
    p.add_argument("--target-shard-size", default="64GB", help="bytes per storage shard (default 64GB)")


def _add_causal_and_assumptions(p: argparse.ArgumentParser) -> None:
    """The causal validation's size, and the throughput, memory, storage and training assumptions."""
    _add_causal_size(p)
    _add_throughput_and_memory_assumptions(p)
    _add_storage_and_training_assumptions(p)


def _add_causal_size(p: argparse.ArgumentParser) -> None:
    """The causal validation's size: prompts, features, forward passes per feature and prompt, prompt length."""
    p.add_argument(
        "--causal-prompts",
        help="prompts per causal intervention, 1 to 10M (default: min(1000, tokens / prompt-tokens), the prompts "
        "the run's text holds)",
    )
    p.add_argument("--causal-features", help="features validated causally, 1 to 1M (default: min(100, latent-dim))")
    p.add_argument(
        "--interventions-per-feature",
        default="5",
        help="forward passes per feature and prompt, 1 to 1000 (default 5: 3 strengths + 2 controls; "
        "intervene's own defaults: about 9)",
    )
    p.add_argument("--prompt-tokens", default="64", help="assumed tokens per causal prompt, 1 to 1M (default 64)")


def _add_throughput_and_memory_assumptions(p: argparse.ArgumentParser) -> None:
    """The throughput and memory assumptions: utilisation, wall-time limit, CPU peak, memory share, GPUs per node."""
    p.add_argument("--mfu", type=float, default=0.4, help="model FLOPs utilisation assumed, (0, 1] (default 0.4)")
    p.add_argument(
        "--max-wall-hours",
        type=float,
        default=72.0,
        help="wall hours beyond which one machine is too slow, (0, 1e6] (default 72)",
    )
    p.add_argument(
        "--cpu-peak-tflops",
        type=float,
        default=1.0,
        help="TFLOP/s of one machine's CPUs, (0, 1000]: the peak for --accelerator cpu and for whether a machine "
        "without a CUDA device runs the job (default 1; a laptop: about 0.1-0.5)",
    )
    p.add_argument(
        "--usable-memory-fraction",
        type=float,
        default=0.9,
        help="share of device memory (host RAM on a CPU) the weights or SAE state may take, (0, 1] (default 0.9)",
    )
    p.add_argument("--gpus-per-node", default="8", help="GPUs in one machine for multi_gpu, 1 to 1024 (default 8)")


def _add_storage_and_training_assumptions(p: argparse.ArgumentParser) -> None:
    """The storage and training assumptions: local storage, sparse threshold, optimizer state, passes, harvest depth."""
    p.add_argument(
        "--local-storage-limit",
        default="30TB",
        help="storage one machine holds when no profile gives its free disk (default 30TB)",
    )
    p.add_argument(
        "--sparse-preferred-above",
        default="10TB",
        help="dense storage above which sparse SAE records are recommended (default 10TB)",
    )
    p.add_argument(
        "--optimizer-bytes-per-param",
        default="8",
        help="optimizer state per SAE parameter, 0 to 64 (default 8: Adam m + v in fp32; 8-bit Adam: 2)",
    )
    p.add_argument(
        "--sae-training-passes",
        type=float,
        default=1.0,
        help="passes (epochs) of SAE training over the tokens, (0, 1000] (default 1)",
    )
    p.add_argument(
        "--harvest-depth-fraction",
        type=float,
        default=1.0,
        help="share of the forward pass a harvest runs (it may stop after the last selected layer), (0, 1] "
        "(default 1, an upper bound)",
    )


def _add_plan_scale(sub: Subparsers) -> None:
    p = sub.add_parser(
        "plan-scale",
        help="size a harvest + SAE training + causal validation job: storage, memory, GPU-hours, shards, risks, route",
    )
    _add_job_sizes(p)
    _add_causal_and_assumptions(p)
    env = p.add_mutually_exclusive_group()
    env.add_argument("--from-env", action="store_true", help="profile this machine and plan for it")
    env.add_argument("--env-profile", help="plan for the machine of a profile-env --out file")
    cal = p.add_mutually_exclusive_group()
    cal.add_argument("--calibrate", action="store_true",
                     help="time a short harvest and SAE training on this machine (about 30 s on a CPU) and predict "
                     "the run's wall-clock time and its ray/torchrun launch commands from them")
    cal.add_argument("--calibration", help="predict from a calibration written earlier by --calibration-out")
    p.add_argument("--calibration-out", help="with --calibrate: also write the calibration to this JSON file")
    p.add_argument("--calibrate-device", default="cpu", help="device the calibration runs on (default cpu)")
    p.add_argument("--workers", type=int, default=1, help="harvest workers (Ray) the prediction assumes (default 1)")
    p.add_argument("--ranks", type=int, default=1, help="SAE-training ranks (torchrun) it assumes (default 1)")
    p.add_argument("--scaling-efficiency", type=float,
                   help="measured scaling efficiency at that many workers/ranks (tools/bench/scale.py); default 1")
    p.add_argument("--out", help="also write the plan to this JSON file")
    add_json_flag(p)
    p.set_defaults(func=cmd_plan_scale)


def _add_run(sub: Subparsers) -> None:
    p = sub.add_parser("run", help="run the interp-agent steps of a JSON/TOML/YAML config; writes a manifest")
    p.add_argument(
        "config",
        help="run config: {'steps': [{'command': ..., 'args': {...}}, ...]}; relative paths "
        "in it are relative to its folder",
    )
    p.add_argument("--out", help="manifest path (default: <config stem>.manifest.json beside the config)")
    p.add_argument("--var", dest="variables", action="append", default=[], metavar="NAME=VALUE",
                   help="fill ${NAME} in the steps' args (repeatable; overrides the config's 'vars'); a NAME no "
                   "step uses is an error")
    p.add_argument("--dry-run", action="store_true",
                   help="check the config, its variables and every step's arguments, print each step's full "
                   "command line and the outputs it would write; run nothing, write nothing")
    add_json_flag(p, help_text="print the manifest (with --dry-run: the plan) as JSON")
    p.set_defaults(func=cmd_run, commands=sub.choices)  # the live mapping: subcommands added later count too


def add_ops_parsers(sub: Subparsers) -> None:
    """Register ``doctor``, ``capabilities``, ``demo``, ``profile-env``, ``plan-scale`` and ``run`` on ``sub``."""
    _add_doctor_and_demo(sub)
    _add_profile_env(sub)
    _add_plan_scale(sub)
    _add_run(sub)
