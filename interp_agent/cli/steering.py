"""The ``export-steering`` and ``steer`` subcommands: a steering vector as a file, and generations with it."""

from __future__ import annotations

import argparse
import json
from pathlib import Path
from typing import Any

from interp_agent.cli.options import Subparsers, add_json_flag
from interp_agent.cli.output import emit
from interp_agent.core.errors import InputFileError, ValidationError


def export_text(result: dict[str, Any]) -> str:
    """The terminal summary of an export."""
    vec = result["vector"]
    prov = vec["provenance"]
    lines = [f"wrote {result['path']} ({result['format']}): {vec['feature_id']} of {vec['model']} at "
             f"{', '.join(vec['hookpoints'])}, strength {vec['strength']:.4g} (norm added "
             f"{vec['added_norm'][0]:.4g}), {prov['strength_source']}"]
    if prov.get("evidence", {}).get("confidence"):
        lines.append(f"intervene's held-out evidence: {prov['evidence']['confidence']}")
    checked = result.get("gguf_read_back")
    if checked:
        tensors = ", ".join(f"{t['name']} (F32, {t['length']})" for t in checked["tensors"])
        lines.append(f"read back with gguf.GGUFReader: {tensors}; load with "
                     f"llama-cli -m MODEL.gguf --control-vector {result['path']}")
    return "\n".join(lines)


def cmd_export_steering(args: argparse.Namespace) -> int:
    """``export-steering``: the steering edit intervene chose for a feature, as safetensors or llama.cpp GGUF."""
    from interp_agent.core.steering.export import export_steering

    result = export_steering(interventions=args.interventions, feature=args.feature, out=args.out,
                             report=args.report, sae=args.sae, strength=args.strength, format=args.format,
                             model_hint=args.model_hint)
    payload = result.to_json()
    emit(args, payload, export_text(payload))
    return 0


def read_prompt_file(path: str) -> list[str]:
    """Prompts from a file: JSONL rows with ``text`` (scored prompts), or one prompt per non-empty line."""
    p = Path(path)
    if not p.is_file():
        raise InputFileError(p, "no such file", hint="one prompt per line, or scored prompts JSONL")
    out: list[str] = []
    for i, line in enumerate(p.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        if p.suffix == ".jsonl":
            try:
                row = json.loads(line)
            except json.JSONDecodeError as exc:
                raise InputFileError(p, f"not JSON: {exc.msg}", line=i) from None
            if not isinstance(row, dict) or not isinstance(row.get("text"), str):
                raise InputFileError(p, "each row needs a 'text' string", line=i, field="text")
            out.append(row["text"])
        else:
            out.append(line)
    return out


def steer_text(result: dict[str, Any]) -> str:
    """Side-by-side text of ``steer``: each prompt, unsteered and steered, with the KLs."""
    vec = result["vector"]
    lines = [f"{vec['feature_id']} at {', '.join(vec['hookpoints'])} x scale {vec['scale']:g} "
             f"(norm added {vec['added_norm'][0]:.4g}) on {result['model']}, greedy "
             f"{result['settings']['max_new_tokens']} tokens, positions {result['settings']['positions']}"]
    for row in result["prompts"]:
        lines += [f"\n» {row['prompt']}",
                  f"  unsteered: {row['unsteered']!r}",
                  f"  steered:   {row['steered']!r}",
                  f"  KL next token {row['kl_next_token']:.4f} nats, mean over continuation "
                  f"{row['kl_mean_generated']:.4f}"]
    lines.append(f"\nmean KL next token {result['mean_kl_next_token']:.4f} nats, over continuations "
                 f"{result['mean_kl_generated']:.4f}; {result['n_changed']}/{len(result['prompts'])} texts changed "
                 f"({result['note']})")
    return "\n".join(lines)


def cmd_steer(args: argparse.Namespace) -> int:
    """``steer``: generate with a saved steering vector beside the unsteered text."""
    from interp_agent.core.artifacts import write_json
    from interp_agent.core.steering.apply import apply_steering
    from interp_agent.core.steering.files import load_steering

    prompts = list(args.prompt or []) + (read_prompt_file(args.prompts) if args.prompts else [])
    if not prompts:
        raise ValidationError("no prompts: give --prompt TEXT (repeatable) or --prompts FILE")
    vec = load_steering(args.vector)
    model = args.model or vec.model
    if not model:
        raise ValidationError(f"{args.vector} names no model (a foreign control vector): give --model")
    result = apply_steering(model, vec, prompts, max_new_tokens=args.max_new_tokens, scale=args.scale,
                            seed=args.seed, positions=args.positions)
    result["vector"]["path"] = str(args.vector)
    if args.out:
        write_json(args.out, result)
        result["written"] = str(args.out)
    emit(args, result, steer_text(result) + (f"\nwritten: {args.out}" if args.out else ""))
    return 0


def add_steering_parsers(sub: Subparsers) -> None:
    """Register ``export-steering`` and ``steer`` on the subparsers action ``sub``."""
    p = sub.add_parser("export-steering", help="write the steering edit intervene chose for a feature as a file: "
                                               "safetensors with metadata, or a llama.cpp control-vector GGUF")
    p.add_argument("--interventions", required=True, help="the intervene output folder, or its interventions.jsonl")
    p.add_argument("--feature", required=True, help="feature id, e.g. direction:contrast@blocks.15.hook_resid_post")
    p.add_argument("--report", help="inspect report (folder or report.json) whose directions intervene used; "
                                    "default: the one the run's summary.json names")
    p.add_argument("--sae", help="SAE folder intervene used (for SAE:L{l}:F{i} features)")
    p.add_argument("--strength", type=float, help="amount to add instead of the one intervene chose (activation "
                                                  "units along the unit direction; latent activation for SAE "
                                                  "latents); recorded as given by the user")
    p.add_argument("--format", choices=["safetensors", "gguf"], help="default: from the suffix of --out")
    p.add_argument("--model-hint", help="controlvector.model_hint of a GGUF (default: the model's model_type)")
    p.add_argument("--out", required=True, help="file to write (.safetensors or .gguf)")
    add_json_flag(p)
    p.set_defaults(func=cmd_export_steering)

    s = sub.add_parser("steer", help="generate with a saved steering vector, side by side with the unsteered text, "
                                     "with the KL of next-token distributions")
    s.add_argument("vector", metavar="VECTOR", help="steering vector (.safetensors from export-steering, or a "
                                                    "llama.cpp control-vector .gguf)")
    s.add_argument("--model", help="model to steer (default: the one the vector was made on)")
    s.add_argument("--prompt", action="append", metavar="TEXT", help="a prompt (repeatable)")
    s.add_argument("--prompts", metavar="FILE", help="prompts: one per line, or scored prompts JSONL (text)")
    s.add_argument("--max-new-tokens", type=int, default=20, help="greedy tokens per prompt (default 20)")
    s.add_argument("--scale", type=float, default=1.0, help="multiplies the saved strength (default 1; 0: no edit)")
    s.add_argument("--positions", choices=["after_first", "all"], help="where to add: every position but the "
                                                                       "first (as intervene) or all (as llama.cpp); "
                                                                       "default the vector's")
    s.add_argument("--seed", type=int, default=0)
    s.add_argument("--out", help="also write the result as JSON here")
    add_json_flag(s)
    s.set_defaults(func=cmd_steer)
