"""Measured throughput on this machine, and the time and launch commands of a planned run from it.

``calibrate`` runs a short harvest of the embedded model (token activations at one hookpoint over
the built-in corpus) and a short TopK SAE training on what it harvested, and times both after the
set-up (model load, SAE initialisation) is done. The result, an ``interp-agent.throughput.v1``
object, is a measurement of this machine with this software; a plan made elsewhere should
calibrate there.

``predict`` turns a :class:`~interp_agent.core.scale.inputs.ScalePlanInput` and a calibration into
wall-clock seconds and the commands that launch the run on Ray and torchrun. Its scaling rules are
stated in its ``basis`` lines: harvest time scales with the model's forward FLOPs per token
(``2 * params * depth fraction``), SAE training time with the encoder's FLOPs per token
(``d_model * d_sae``; the TopK decoder and the optimiser are small beside it at the calibrated
shape and above), and both divide by the workers (ranks) times a scaling efficiency, which is 1
unless a measured one is given (``tools/bench/scale.py`` measures it).
"""

from __future__ import annotations

import json
import math
import os
import platform
import time
from pathlib import Path
from typing import TYPE_CHECKING, Any

from interp_agent._version import __version__
from interp_agent.core.artifacts import schema_version
from interp_agent.core.errors import InputFileError, ValidationError
from interp_agent.core.scale.inputs import DTYPE_BYTES, ScalePlanInput
from interp_agent.core.scale.plan import plan_scale

if TYPE_CHECKING:
    import numpy as np

THROUGHPUT_SCHEMA = schema_version("throughput")

DEFAULT_HOOKPOINT = "blocks.15.hook_resid_post"
"""The calibration harvest's hookpoint (the middle of the embedded model's 30 blocks)."""


def _harvest_rate(loaded: Any, hookpoint: str, tokens: int, max_length: int) -> tuple[np.ndarray, dict[str, Any]]:
    """Harvest about ``tokens`` token rows of the built-in corpus; the rows and the timing."""
    from interp_agent.core.explain.corpus import load_corpus
    from interp_agent.core.models.harvest import harvest

    corpus = load_corpus("builtin")
    texts, have = [], 0
    for text in corpus.passages:
        texts.append(text)
        have += len(loaded.tokenizer(text)["input_ids"][:max_length]) - 1
        if have >= tokens:
            break
    harvest(loaded, texts[:2], [hookpoint], batch_size=2, max_length=max_length, pooling="token")  # warm-up
    start = time.perf_counter()
    got = harvest(loaded, texts, [hookpoint], batch_size=16, max_length=max_length, pooling="token")[hookpoint]
    seconds = time.perf_counter() - start
    rows = got.acts
    return rows, {"tokens": int(len(rows)), "prompts": len(texts), "seconds": seconds,
                  "tokens_per_s": len(rows) / seconds, "max_length": max_length, "hookpoint": hookpoint,
                  "corpus": corpus.name, "corpus_synthetic": corpus.synthetic}


def _training_rate(rows: np.ndarray, d_sae: int, k: int, steps: int, batch_size: int, device: str) -> dict[str, Any]:
    """Time ``steps`` TopK training steps on ``rows`` (after one warm-up step)."""
    import numpy as np

    from interp_agent.core.sae.model import SaeShape
    from interp_agent.core.sae.trainer import Optimisation, Trainer, default_lr

    shape = SaeShape("topk", int(rows.shape[1]), d_sae, k)
    opt = Optimisation(batch_size=batch_size, steps=steps + 1, lr=default_lr(d_sae), warmup_steps=1, decay_steps=0,
                       sparsity_coefficient=0.0, aux_coefficient=1 / 32, dead_after_tokens=10 * batch_size,
                       b_dec_init="mean", seed=0, checkpoint_every=0)
    import torch

    trainer = Trainer(shape, opt, device=device)
    trainer.initialise(rows[: min(len(rows), 4096)])
    rng = np.random.default_rng(0)
    batches = [torch.from_numpy(rows[rng.integers(0, len(rows), batch_size)]) for _ in range(steps + 1)]
    trainer.train_step(batches[0])  # warm-up: allocator, kernels
    if trainer.device.type == "cuda":
        torch.cuda.synchronize()
    start = time.perf_counter()
    for batch in batches[1:]:
        trainer.train_step(batch)
    if trainer.device.type == "cuda":
        torch.cuda.synchronize()
    seconds = time.perf_counter() - start
    return {"architecture": "topk", "d_in": int(rows.shape[1]), "d_sae": d_sae, "k": k, "steps": steps,
            "batch_size": batch_size, "seconds": seconds, "tokens_per_s": steps * batch_size / seconds}


def calibrate(
    model: str = "smollm2-135m",
    *,
    hookpoint: str = DEFAULT_HOOKPOINT,
    harvest_tokens: int = 4096,
    max_length: int = 64,
    d_sae: int = 4096,
    k: int = 32,
    train_steps: int = 30,
    batch_size: int = 1024,
    device: str = "cpu",
) -> dict[str, Any]:
    """Measure harvest and SAE-training tokens/s of one worker on this machine.

    Args:
        model: the model to harvest (the embedded SmolLM2-135M by default).
        hookpoint: where to harvest.
        harvest_tokens: token rows to harvest (at least; whole passages are taken).
        max_length: tokens per passage.
        d_sae: latents of the timed TopK SAE.
        k: its active latents per token.
        train_steps: timed training steps (after one warm-up step).
        batch_size: rows per training step.
        device: ``cpu`` or ``cuda``.

    Returns:
        The ``interp-agent.throughput.v1`` object: ``harvest`` and ``sae_training`` blocks with tokens/s,
        the model's size, the torch threads and the machine.

    Raises:
        ValidationError: a non-positive size.
    """
    for name, value in (("harvest_tokens", harvest_tokens), ("max_length", max_length), ("d_sae", d_sae),
                        ("k", k), ("train_steps", train_steps), ("batch_size", batch_size)):
        if not isinstance(value, int) or value < 1:
            raise ValidationError(f"{name} must be a positive whole number, got {value!r}")
    import torch

    from interp_agent.core.models.loading import load_model

    if device not in ("cpu", "cuda"):
        raise ValidationError(f"device must be cpu or cuda, got {device!r}")
    loaded = load_model(model, device="cuda" if device == "cuda" else "cpu")
    n_params = sum(p.numel() for p in loaded.model.parameters())
    rows, harvest_block = _harvest_rate(loaded, hookpoint, harvest_tokens, max_length)
    layer = int(hookpoint.split(".")[1]) if hookpoint.startswith("blocks.") else loaded.n_layers - 1
    harvest_block["depth_fraction"] = (layer + 1) / loaded.n_layers
    training = _training_rate(rows, d_sae, min(k, d_sae), train_steps, min(batch_size, len(rows)), device)
    return {
        "schema_version": THROUGHPUT_SCHEMA, "tool": "interp-agent", "tool_version": __version__,
        "provenance": "measured", "measured_at": time.time(),
        "model": {"name": loaded.name, "params": int(n_params), "d_model": loaded.d_model, "n_layers": loaded.n_layers},
        "device": device, "torch_threads": torch.get_num_threads(), "cpu_count": os.cpu_count(),
        "machine": platform.machine(), "harvest": harvest_block, "sae_training": training,
    }


def check_calibration(calibration: Any) -> dict[str, Any]:
    """``calibration`` if it is a throughput object; else a ValidationError saying how to make one."""
    ok = (isinstance(calibration, dict) and calibration.get("schema_version") == THROUGHPUT_SCHEMA
          and all(isinstance(calibration.get(b), dict) and calibration[b].get("tokens_per_s", 0) > 0
                  for b in ("harvest", "sae_training")))
    if not ok:
        raise ValidationError(f"not a calibration: expected a {THROUGHPUT_SCHEMA} object with harvest and "
                              "sae_training tokens_per_s",
                              hint="make one with `interp-agent plan-scale --calibrate --calibration-out FILE ...`")
    return calibration


def load_calibration(path: str | Path) -> dict[str, Any]:
    """Read a calibration written by ``plan-scale --calibrate --calibration-out FILE``.

    Raises:
        InputFileError: the file is missing, not JSON, or not a calibration.
    """
    p = Path(path)
    hint = "write one with `interp-agent plan-scale --calibrate --calibration-out FILE ...`"
    try:
        data = json.loads(p.read_text(encoding="utf-8"))
    except OSError as exc:
        raise InputFileError(p, f"cannot read the calibration: {exc.strerror or exc}", hint=hint) from exc
    except json.JSONDecodeError as exc:
        raise InputFileError(p, f"not valid JSON: {exc.msg}", line=exc.lineno, hint=hint) from exc
    try:
        return check_calibration(data)
    except ValidationError as exc:
        raise InputFileError(p, exc.message, hint=hint) from None


def _shard_plan(inp: ScalePlanInput, workers: int) -> dict[str, Any]:
    """Harvest shards: about ``target_shard_size`` bytes of dense activations each, at least one per worker."""
    bytes_per_token = inp.d_model * inp.selected_layers * DTYPE_BYTES[inp.dtype]
    tokens_per_shard = max(1, int(inp.target_shard_size // bytes_per_token))
    count = max(workers, math.ceil(inp.tokens / tokens_per_shard))
    return {"count": count, "tokens_each": math.ceil(inp.tokens / count),
            "bytes_each": math.ceil(inp.tokens / count) * bytes_per_token}


def predict(
    inp: ScalePlanInput,
    calibration: dict[str, Any],
    *,
    workers: int = 1,
    ranks: int = 1,
    efficiency: float | None = None,
) -> dict[str, Any]:
    """Wall-clock seconds of the planned harvest and SAE training from a calibration, and their launch commands.

    Args:
        inp: the planned run.
        calibration: a :func:`calibrate` result.
        workers: harvest workers (Ray actors, one model replica each).
        ranks: SAE-training ranks (torchrun processes, data parallel).
        efficiency: scaling efficiency at that many workers/ranks, in (0, 1]; None assumes 1 (ideal) and says so.

    Returns:
        ``{harvest, sae_training, total_seconds, shards, commands, basis}``.

    Raises:
        ValidationError: a bad calibration, workers or ranks below 1, or efficiency outside (0, 1].
    """
    cal = check_calibration(calibration)
    if workers < 1 or ranks < 1:
        raise ValidationError(f"workers and ranks must be at least 1, got {workers} and {ranks}")
    if efficiency is not None and not 0 < efficiency <= 1:
        raise ValidationError(f"efficiency must be in (0, 1], got {efficiency!r}; tools/bench/scale.py measures it")
    eff = 1.0 if efficiency is None else float(efficiency)
    h, t = cal["harvest"], cal["sae_training"]
    calibrated_flops = cal["model"]["params"] * h.get("depth_fraction", 1.0)
    model_ratio = calibrated_flops / (inp.model_params * inp.harvest_depth_fraction)
    harvest_rate = h["tokens_per_s"] * model_ratio
    shape_ratio = (t["d_in"] * t["d_sae"]) / (inp.d_model * inp.latent_dim)
    train_rate = t["tokens_per_s"] * shape_ratio
    harvest_s = inp.tokens / (harvest_rate * workers * eff)
    train_tokens = inp.tokens * inp.sae_training_passes
    train_s = inp.selected_layers * train_tokens / (train_rate * ranks * eff)
    shards = _shard_plan(inp, workers)
    basis = [
        f"calibration: {h['tokens_per_s']:,.0f} harvest tok/s of {cal['model']['name']} "
        f"({cal['model']['params']:,} params, depth {h.get('depth_fraction', 1.0):.2f}) and "
        f"{t['tokens_per_s']:,.0f} training tok/s of a {t['d_in']}x{t['d_sae']} TopK k={t['k']} SAE, one worker, "
        f"{cal['device']} with {cal['torch_threads']} torch thread(s)",
        f"harvest rate scaled by forward FLOPs per token: x{model_ratio:.3g} -> {harvest_rate:,.1f} tok/s per worker",
        f"training rate scaled by encoder FLOPs per token (d_model*d_sae): x{shape_ratio:.3g} -> "
        f"{train_rate:,.1f} tok/s per rank, per layer",
        "scaling efficiency " + (f"{eff:g} (measured)" if efficiency is not None else "1 (ideal; none measured given)"),
    ]
    return {
        "provenance": "predicted from a measured calibration",
        "harvest": {"workers": workers, "tokens": inp.tokens, "tokens_per_s_per_worker": harvest_rate,
                    "seconds": harvest_s},
        "sae_training": {"ranks": ranks, "layers": inp.selected_layers, "tokens": train_tokens,
                         "tokens_per_s_per_rank": train_rate, "seconds": train_s},
        "total_seconds": harvest_s + train_s, "efficiency": eff, "shards": shards,
        "commands": launch_commands(inp, workers=workers, ranks=ranks, shards=shards["count"]),
        "basis": basis,
    }


def plan_with_calibration(
    inp: ScalePlanInput,
    env: dict[str, Any] | None = None,
    *,
    calibration: dict[str, Any] | None = None,
    workers: int = 1,
    ranks: int = 1,
    efficiency: float | None = None,
) -> dict[str, Any]:
    """``plan_scale(inp, env)``, and with a calibration its ``measured`` block: :func:`predict`'s seconds and commands.

    Raises:
        ValidationError: as :func:`plan_scale` and :func:`predict`.
    """
    plan = plan_scale(inp, env)
    if calibration is not None:
        plan["measured"] = predict(inp, calibration, workers=workers, ranks=ranks, efficiency=efficiency)
    return plan


def launch_commands(inp: ScalePlanInput, *, workers: int, ranks: int, shards: int) -> dict[str, str]:
    """Shell commands that launch the planned harvest on Ray and the SAE training under torchrun.

    Placeholders in capitals: MODEL, HOOKPOINT, PROMPTS (a dataset JSONL or corpus), SHARED (a path every
    worker sees), HEAD (the Ray head / rendezvous host). One torchrun per node; ``--nnodes`` nodes of up to
    ``gpus_per_node`` ranks each.
    """
    per_node = min(ranks, inp.gpus_per_node)
    nodes = math.ceil(ranks / per_node)
    shard_size = math.ceil(inp.tokens / shards)
    harvest = (f"ray job submit --address http://HEAD:8265 -- interp-agent harvest --model MODEL "
               f"--hookpoint HOOKPOINT --corpus PROMPTS --out SHARED/activations --engine ray --ray-address auto "
               f"--workers {workers} --shard-size {shard_size}")
    rendezvous = "--standalone" if nodes == 1 else "--rdzv-backend c10d --rdzv-endpoint HEAD:29500"
    train = (f"torchrun --nnodes {nodes} --nproc-per-node {per_node} {rendezvous} -m interp_agent train-sae "
             f"--distributed --activations SHARED/activations --latent-dim {inp.latent_dim} --k {inp.k} "
             f"--out SHARED/sae")
    return {"harvest": harvest, "sae_training": train}


def measured_seconds(seconds: float, predicted: float) -> dict[str, float]:
    """A prediction against a measurement: both, and their ratio (predicted / measured)."""
    return {"predicted_s": predicted, "measured_s": seconds, "ratio": predicted / seconds if seconds > 0 else math.inf}
