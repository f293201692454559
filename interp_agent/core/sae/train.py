"""Training an SAE: from a source of activations to a saved SAE, its metrics and latent records.

``fit_sae``, the step: cache the activations (data.py), train (trainer.py) with checkpoints,
measure on the held-out split (metrics.py), save in SAE Lens's layout, and write activation
records of the trained latents when the prompts carry criterion scores. Testing the latents
causally (``causal_out``) is a workflow above the steps:
``workflows/trained_latents.py``, whose ``train_sae`` is the entry point.

Run again on the same ``out`` after a crash or a kill, it reuses the cached activations and
continues from the newest checkpoint.

Progress goes through the package's one callback, ``progress(phase, done, total)``
(``core.progress``), phase by phase: ``load`` 0 of 1 (a model source); ``harvest`` prompts
or ``read`` rows (data.py); ``resume`` at the checkpoint's step of all steps (a rerun);
``train`` steps; ``evaluate`` 0 of 2, the held-out reconstruction, and 1 of 2, the splice
into the model (a model source; else 0 of 1); ``records`` 0 of 1; ``done`` 1 of 1. Each
training point reported (step, loss, mse, fvu, l0, dead_fraction) also goes to
``on_point``, just before its ``train`` event, so a message can show it
(``workflows.trained_latents.TrainProgress``).
"""

from __future__ import annotations

import math
import shutil
from collections.abc import Sequence
from dataclasses import asdict, dataclass, field, replace
from pathlib import Path
from typing import TYPE_CHECKING, Any, cast

import numpy as np
import torch

from interp_agent.core.artifacts import run_provenance, schema_version, write_json
from interp_agent.core.errors import InputFileError, ValidationError, arg
from interp_agent.core.formats.prompts import ScoredPrompt
from interp_agent.core.progress import Progress
from interp_agent.core.sae import data as act_data
from interp_agent.core.sae.model import ARCHITECTURES, SPARSE_ARCHITECTURES, SaeShape
from interp_agent.core.sae.trainer import CHECKPOINT_DIR, Optimisation, StepReport, Trainer, default_lr

if TYPE_CHECKING:
    from interp_agent.core.sae.distributed import DistContext

PRESETS: dict[str, dict[str, Any]] = {
    # seconds on a laptop CPU: a narrow SAE over a criterion pack's tokens
    "minimal": {"architecture": "topk", "expansion_factor": 4.0, "k": 16, "batch_size": 256, "steps": 300,
                "lr": 1e-3, "max_length": 64, "checkpoint_every": 100},
    # token-level, wide, k 32; steps default to one pass over the training rows
    "production": {"architecture": "topk", "expansion_factor": 32.0, "k": 32, "batch_size": 4096, "steps": None,
                   "lr": None, "max_length": 256, "checkpoint_every": 1000},
}
SPARSITY_DEFAULTS = {"relu": 1.0, "jumprelu": 1.0}
ACTIVATION_CACHE = "activations"


@dataclass(frozen=True, slots=True)
class TrainSettings:
    """Every setting of a run; a preset fills the ones left None."""

    preset: str = "minimal"
    architecture: str | None = None
    latent_dim: int | None = None
    expansion_factor: float | None = None
    k: int | None = None
    batch_size: int | None = None
    steps: int | None = None
    epochs: float = 1.0
    """Passes over the training rows when ``steps`` is None."""
    lr: float | None = None
    warmup_fraction: float = 0.05
    decay_fraction: float = 0.2
    sparsity_coefficient: float | None = None
    aux_coefficient: float = 1 / 32
    dead_after_tokens: int | None = None
    """Default: min(10M, a fifth of the training tokens)."""
    b_dec_init: str = "median"
    seed: int = 0
    device: str = "auto"
    dtype: str = "auto"
    """``float32``, or ``bfloat16`` for the encoder matmul (default on CUDA)."""
    max_records: int | None = None
    max_length: int | None = None
    held_out_fraction: float | None = None
    """Default 0.3 (the ranking's) for scored prompts, else 0.1."""
    checkpoint_every: int | None = None
    top_latents: int = 32
    """Latents kept per row in the written activation records."""
    keep_activations: bool = False
    distributed: bool = False
    """Run as one rank of a torchrun job (``core.sae.distributed``): data parallel unless ``shard_latents``."""
    shard_latents: bool = False
    """With ``distributed``: split the latents over the ranks (topk, batchtopk) instead of the batch."""
    distributed_timeout_s: float = 1800.0
    """How long a collective (or the wait for rank 0 to build the activation cache) waits for a peer."""

    def resolved(self) -> dict[str, Any]:
        if self.preset not in PRESETS:
            raise ValidationError(f"unknown preset {self.preset!r}", hint=f"one of {', '.join(PRESETS)}")
        out = asdict(self)
        for key, value in PRESETS[self.preset].items():
            if out[key] is None:
                out[key] = value
        if out["architecture"] not in ARCHITECTURES:
            raise ValidationError(f"unknown architecture {out['architecture']!r}",
                                  hint=f"one of {', '.join(ARCHITECTURES)}")
        return out


@dataclass(frozen=True, slots=True)
class TrainResult:
    """What ``fit_sae`` (and the workflow's ``train_sae``) returns."""

    metrics: dict[str, Any]
    """metrics.json."""
    paths: dict[str, Path]
    """cfg, weights, metrics, and records / causal summary when written."""
    causal: dict[str, Any] | None = field(default=None)
    """Summary of the causal test (``causal_out``), else None."""


def _device(name: str) -> torch.device:
    if name == "auto":
        return torch.device("cuda" if torch.cuda.is_available() else "cpu")
    try:
        dev = torch.device(name)
    except RuntimeError:
        raise ValidationError(f"unknown device {name!r}", hint="cpu, cuda, cuda:1 or auto") from None
    if dev.type == "cuda" and not torch.cuda.is_available():
        raise ValidationError("device cuda asked for but torch sees no CUDA device", hint=f"use {arg('device', 'cpu')}")
    return dev


def read_prompt_file(path: str | Path) -> tuple[list[ScoredPrompt], bool]:
    """Prompts of a training set and whether all carry criterion scores.

    ``.txt``: one prompt per non-empty line (unscored). JSONL: objects with ``text`` and
    optional ``prompt_id`` / ``criterion_score`` / ``split`` (scored prompts are a special case).
    """
    from interp_agent.core.formats.jsonl import Fields, iter_json_objects
    from interp_agent.core.formats.prompts import normalise_split

    path = Path(path)
    if not path.is_file():
        raise InputFileError(path, "file not found")
    prompts: list[ScoredPrompt] = []
    scored = True
    if path.suffix.lower() == ".txt":
        with open(path, encoding="utf-8") as fh:
            for i, line in enumerate(fh, 1):
                if line.strip():
                    prompts.append(ScoredPrompt(f"line{i}", line.rstrip("\n"), 0.0))
        scored = False
    else:
        seen: dict[str, int] = {}
        for line, obj in iter_json_objects(path):
            f = Fields(obj, path, line)
            pid = f.string("prompt_id", required=False) or f"line{line}"
            if pid in seen:
                raise InputFileError(path, f"duplicate prompt_id {pid!r} (first on line {seen[pid]})", line=line,
                                     field="prompt_id")
            seen[pid] = line
            score = f.number("criterion_score") if "criterion_score" in obj else None
            scored = scored and score is not None
            prompts.append(ScoredPrompt(pid, f.string("text"), 0.0 if score is None else score,
                                        normalise_split(f.string("split", required=False), f)))
    if not prompts:
        raise InputFileError(path, "no prompts in file", hint="one text per line (.txt) or JSON objects with 'text'")
    return prompts, scored


def check_request(
    settings: TrainSettings | None, model: str | None, activations: Any, records: Any
) -> dict[str, Any]:
    """The resolved settings of a run with exactly one source; ValidationError otherwise."""
    cfg = (settings or TrainSettings()).resolved()
    given = {"model": model, "activations": activations, "records": records}
    sources = [s for s in ("model", "activations", "records") if given[s]]
    if len(sources) != 1:
        raise ValidationError(
            f"give exactly one source, got {sources or 'none'}",
            hint=f"{arg('model')} with {arg('dataset')} or {arg('pack')} and {arg('hookpoint')}; or "
                 f"{arg('activations')}; or {arg('records')}",
        )
    if cfg["dtype"] not in ("auto", "float32", "bfloat16"):
        raise ValidationError(f"dtype must be auto, float32 or bfloat16, got {cfg['dtype']!r}")
    if cfg["shard_latents"] and not cfg["distributed"]:
        raise ValidationError(f"{arg('shard_latents')} splits the latents over torchrun ranks and needs "
                              f"{arg('distributed')}", hint=f"add {arg('distributed')} and launch with torchrun")
    return cfg


def fit_sae(
    *,
    out: str | Path,
    model: str | None = None,
    dataset: str | Path | None = None,
    pack: str | None = None,
    criterion: str | None = None,
    hookpoint: str | None = None,
    activations: str | Path | Sequence[str | Path] | None = None,
    records: str | Path | None = None,
    settings: TrainSettings | None = None,
    progress: Progress | None = None,
    on_point: StepReport | None = None,
) -> TrainResult:
    """Train an SAE and write it into ``out`` (cfg.json, sae_weights.safetensors, metrics.json, records).

    Exactly one source: ``model`` + (``dataset`` or ``pack``) + ``hookpoint``;
    ``activations`` (safetensors / .npy / Parquet files); or ``records`` (activation JSONL).
    ``progress(phase, done, total)`` follows the run (phases in the module docstring);
    ``on_point(point)`` gets each reported training point before its ``train`` event.

    Raises:
        ValidationError: no source or several, missing hookpoint, bad settings.
        InputFileError: an unreadable input file (named, with the line where it applies).
    """
    cfg = check_request(settings, model, activations, records)
    ctx = _join(cfg)
    finished = False
    try:
        result = _train_and_write(cfg, Path(out), ctx, progress, on_point, model=model, dataset=dataset, pack=pack,
                                  hookpoint=hookpoint, activations=activations, records=records)
        finished = True
        return result
    finally:
        if ctx is not None:
            from interp_agent.core.sae.distributed import shutdown

            shutdown(wait_for_all=finished)


def _join(cfg: dict[str, Any]) -> DistContext | None:
    """This rank's context under ``distributed`` (the process group joined), else None."""
    if not cfg["distributed"]:
        return None
    from interp_agent.core.sae.distributed import init_distributed

    return init_distributed(cfg["device"], mode="latent" if cfg["shard_latents"] else "data",
                            timeout_s=cfg["distributed_timeout_s"])


def _train_and_write(
    cfg: dict[str, Any], out: Path, ctx: DistContext | None, progress: Progress | None,
    on_point: StepReport | None, *, model: str | None, dataset: Any, pack: str | None, hookpoint: str | None,
    activations: Any, records: Any,
) -> TrainResult:
    """``fit_sae`` after the checks: every rank trains, rank 0 (or the one process) writes the artifacts."""
    out.mkdir(parents=True, exist_ok=True)
    main = ctx is None or ctx.is_main
    report: Progress = (progress or _no_progress) if main else _no_progress
    device = ctx.device if ctx is not None else _device(cfg["device"])
    src = _shared_source(cfg, out, device, report, ctx, model=model, dataset=dataset, pack=pack,
                         hookpoint=hookpoint, activations=activations, records=records)
    run = _fit(cfg, src.cache, out, device, report, on_point, ctx)
    if not main:
        assert ctx is not None
        return TrainResult(metrics={"distributed": {**ctx.describe(), "rank": ctx.rank}}, paths={})
    held_metrics, splice = _evaluate(run, src, cfg, device, report)
    from interp_agent.core.sae.lens import save_sae_lens

    hook = src.cache.hookpoint or "blocks.0.hook_resid_post"
    weights = run.sae.to_weights(hook)
    dist_facts = ctx.describe() if ctx is not None else None
    trained = {"trained_architecture": run.shape.architecture, "trainer": "interp-agent",
               "hookpoint_known": src.cache.hookpoint is not None,
               **({"distributed": dist_facts} if dist_facts else {})}
    save_sae_lens(out, weights, model_name=model or src.cache.source.get("model"), extra_metadata=trained)
    provenance = run_provenance({"dataset": dataset, "records": records, **(
        {"activations": str(activations)} if isinstance(activations, (str, Path)) else {})})
    metrics = _metrics(cfg, run, src, weights.architecture, device, held_metrics, splice, model=model,
                       provenance=provenance | ({"distributed": dist_facts} if dist_facts else {}))
    metrics["distributed"] = dist_facts
    paths = {"cfg": out / "cfg.json", "weights": out / "sae_weights.safetensors"}
    records_path = _write_latent_records(out, cfg, run, src, weights, device, report, records=records)
    if records_path is not None:
        paths["records"] = records_path
    metrics["records"] = str(paths["records"]) if "records" in paths else (
        "not written: the prompts carry no criterion scores" if model
        else "not written: stored activations carry no prompts")
    paths["metrics"] = write_json(out / "metrics.json", metrics)
    if not cfg["keep_activations"]:
        shutil.rmtree(out / ACTIVATION_CACHE, ignore_errors=True)
    shutil.rmtree(out / CHECKPOINT_DIR, ignore_errors=True)
    report("done", 1, 1)
    return TrainResult(metrics=metrics, paths=paths)


def _no_progress(phase: str, done: int, total: int | None) -> None:
    """The progress callback when none is given: reports nothing."""


@dataclass(frozen=True, slots=True)
class _Source:
    """The cached activations of a run and, for a model source, its prompts and model."""

    cache: act_data.ActivationCache
    prompts: list[ScoredPrompt]
    scored: bool
    loaded: Any


def _shared_source(
    cfg: dict[str, Any], out: Path, device: torch.device, report: Progress, ctx: DistContext | None, **kw: Any
) -> _Source:
    """The run's source; under torchrun rank 0 builds the cache (or finds it) while the others wait, then open it."""
    if ctx is None:
        return _source(cfg, out, device, report, **kw)
    import torch.distributed as dist

    src = _source(cfg, out, device, report, **kw) if ctx.is_main else None
    dist.barrier()
    if src is not None:
        return src
    cache = act_data.open_cache(out / ACTIVATION_CACHE)
    if cache is None:
        raise ValidationError(f"rank {ctx.rank} found no finished activation cache in {out / ACTIVATION_CACHE}",
                              hint="every rank must see the same --out folder (a shared file system)")
    return _Source(cache, [], False, None)


def _source(
    cfg: dict[str, Any], out: Path, device: torch.device, report: Progress, *, model: str | None,
    dataset: str | Path | None, pack: str | None, hookpoint: str | None, activations: Any, records: Any,
) -> _Source:
    """Cache the activations of the one source (reused when the cache is already complete)."""
    cache_dir = out / ACTIVATION_CACHE
    if model:
        prompts, scored = _model_prompts(hookpoint, dataset, pack)
        from interp_agent.core.models import load_model

        report("load", 0, 1)
        loaded = load_model(model, device=cast(Any, str(device)) if device.type == "cuda" else "cpu")
        held = cfg["held_out_fraction"] or (0.3 if scored else 0.1)
        cache = act_data.from_model(
            loaded, [(p.prompt_id, p.text) for p in prompts], hookpoint, cache_dir, held_out_fraction=held,  # type: ignore[arg-type]  # loaded is set for a model source
            max_length=cfg["max_length"], max_records=cfg["max_records"], seed=cfg["seed"], progress=report,
        )
        return _Source(cache, prompts, scored, loaded)
    if activations:
        paths = [activations] if isinstance(activations, (str, Path)) else list(activations)
        cache = act_data.from_activations(paths, cache_dir, hookpoint=hookpoint,
                                          held_out_fraction=cfg["held_out_fraction"] or 0.1,
                                          max_records=cfg["max_records"], seed=cfg["seed"], progress=report)
    else:
        cache = act_data.from_records(records, cache_dir, hookpoint=hookpoint,
                                      held_out_fraction=cfg["held_out_fraction"] or 0.3,
                                      max_records=cfg["max_records"], seed=cfg["seed"], progress=report)
    return _Source(cache, [], False, None)


def _model_prompts(
    hookpoint: str | None, dataset: str | Path | None, pack: str | None
) -> tuple[list[ScoredPrompt], bool]:
    """The prompts of a model source and whether they carry criterion scores."""
    if not hookpoint:
        raise ValidationError(f"training from a model needs {arg('hookpoint')}", hint="e.g. blocks.15.hook_resid_post")
    if pack:
        from interp_agent.core.criteria import load_pack

        return list(load_pack(pack).prompts), True
    if dataset:
        return read_prompt_file(dataset)
    raise ValidationError(f"training from a model needs prompts: {arg('dataset')} or {arg('pack')}")


@dataclass(frozen=True, slots=True)
class _Run:
    """A finished training loop."""

    sae: Any
    shape: SaeShape
    opt: Optimisation
    history: list[dict[str, float]]
    resumed_from: int | None
    start_step: int
    seconds: float


def _shape_and_optimisation(
    cfg: dict[str, Any], cache: act_data.ActivationCache, device: torch.device
) -> tuple[SaeShape, Optimisation]:
    """The SAE's shape and the loop's settings, a preset filling what ``cfg`` leaves open."""
    d_in = cache.d_in
    d_sae = cfg["latent_dim"] or int(round(d_in * cfg["expansion_factor"]))
    arch = cfg["architecture"]
    k = cfg["k"] if arch in SPARSE_ARCHITECTURES else None
    if k is not None and k > d_sae:
        raise ValidationError(f"k ({k}) exceeds the latent dim ({d_sae})")
    shape = SaeShape(arch, d_in, d_sae, k=k)
    batch = min(cfg["batch_size"], cache.n_train)
    steps = cfg["steps"] or max(1, math.ceil(cache.n_train * cfg["epochs"] / batch))
    sparsity = cfg["sparsity_coefficient"]
    opt = Optimisation(
        batch_size=batch, steps=steps, lr=cfg["lr"] or default_lr(d_sae),
        warmup_steps=max(1, min(1000, round(steps * cfg["warmup_fraction"]))),
        decay_steps=round(steps * cfg["decay_fraction"]),
        sparsity_coefficient=sparsity if sparsity is not None else SPARSITY_DEFAULTS.get(arch, 0.0),
        aux_coefficient=cfg["aux_coefficient"],
        dead_after_tokens=cfg["dead_after_tokens"] or min(10_000_000, max(batch, steps * batch // 5)),
        b_dec_init=cfg["b_dec_init"], seed=cfg["seed"], checkpoint_every=cfg["checkpoint_every"] or 0,
        bf16_matmul=cfg["dtype"] == "bfloat16" or (cfg["dtype"] == "auto" and device.type == "cuda"),
    )
    return shape, opt


def _fit(
    cfg: dict[str, Any], cache: act_data.ActivationCache, out: Path, device: torch.device, report: Progress,
    on_point: StepReport | None, ctx: DistContext | None = None,
) -> _Run:
    """Train (resuming from the newest checkpoint in ``out`` when there is one); every rank under ``ctx``.

    ``_Run.sae`` is the whole SAE, gathered on rank 0 when the latents are sharded (None elsewhere).
    """
    import time

    shape, opt = _shape_and_optimisation(cfg, cache, device)
    steps = opt.steps
    torch.manual_seed(cfg["seed"])
    parallel = None
    if ctx is not None:
        from interp_agent.core.sae.distributed import check_divisible, make_parallel

        check_divisible(opt.batch_size, shape.d_sae, ctx)
        parallel = make_parallel(ctx)
    trainer = Trainer(shape, opt, device=device, parallel=parallel)
    ckpt_dir = out / CHECKPOINT_DIR
    history = trainer.load_latest(ckpt_dir) if ckpt_dir.is_dir() else None
    resumed_from = trainer.step if history is not None else None
    if history is None:
        trainer.initialise(cache.sample(16_384, seed=cfg["seed"]))
        history = []
        report("train", 0, steps)
    else:
        report("resume", trainer.step, steps)

    def on_step(point: dict[str, float]) -> None:
        if on_point is not None:
            on_point(point)
        report("train", int(point["step"]), steps)

    t0 = time.perf_counter()
    start_step = trainer.step
    history = history + trainer.fit(
        cache.train_batches(opt.batch_size, seed=cfg["seed"], start_step=trainer.step), checkpoint_dir=ckpt_dir,
        report=on_step,
    )
    seconds = time.perf_counter() - t0
    sae = parallel.full_sae(trainer.sae) if parallel is not None else trainer.sae
    if sae is not None:
        sae = sae.to(device).eval()
    return _Run(sae, shape, opt, history, resumed_from, start_step, seconds)


def _evaluate(
    run: _Run, src: _Source, cfg: dict[str, Any], device: torch.device, report: Progress
) -> tuple[dict[str, Any], dict[str, Any] | None]:
    """Held-out reconstruction metrics, and splice metrics in the model for a model source."""
    from interp_agent.core.sae.metrics import reconstruction_metrics, splice_metrics

    report("evaluate", 0, 2 if src.loaded is not None else 1)
    sae = run.sae
    scale = sae.input_scale

    def recon_and_codes(x: torch.Tensor) -> tuple[torch.Tensor, torch.Tensor]:
        z = sae.encode(x * scale)
        return (z @ sae.W_dec + sae.b_dec) / scale, z

    held_metrics = reconstruction_metrics(recon_and_codes, src.cache.held_out_batches(4096), run.shape.d_sae,
                                          device=device)
    if src.loaded is None:
        return held_metrics, None
    report("evaluate", 1, 2)
    held_prompts = _held_out_prompts(src.prompts, src.cache.source)
    mean = _held_out_mean(src.cache)
    splice = splice_metrics(src.loaded, [p.text for p in held_prompts], src.cache.hookpoint,  # type: ignore[arg-type]  # src.loaded is set for a model source
                            lambda x: recon_and_codes(x)[0], torch.as_tensor(mean), max_length=cfg["max_length"])
    return held_metrics, splice


def _metrics(
    cfg: dict[str, Any], run: _Run, src: _Source, saved_as: str, device: torch.device, held_metrics: dict[str, Any],
    splice: dict[str, Any] | None, *, model: str | None, provenance: dict[str, Any],
) -> dict[str, Any]:
    """metrics.json, less ``records`` (and ``causal``, which the train-then-test workflow adds)."""
    cache, opt, shape, history = src.cache, run.opt, run.shape, run.history
    steps, batch, seconds = opt.steps, opt.batch_size, run.seconds
    return {
        "schema_version": schema_version("sae_metrics"),
        "sae": {"architecture": shape.architecture, "saved_as": saved_as, "d_in": shape.d_in, "d_sae": shape.d_sae,
                "k": shape.k, "hookpoint": cache.hookpoint, "model": model or cache.source.get("model")},
        "settings": {**{key: cfg[key] for key in ("preset", "seed", "epochs", "max_records", "max_length")},
                     **asdict(opt), "device": str(device)},
        "data": {"n_train_rows": cache.n_train, "n_held_out_rows": cache.n_held_out, "source": cache.source,
                 "feature_ids": cache.feature_ids},
        "training": {
            "steps": steps, "tokens": steps * batch, "resumed_from_step": run.resumed_from,
            "seconds_this_run": round(seconds, 3),
            "tokens_per_s_this_run": round((steps - run.start_step) * batch / seconds, 1)
            if seconds > 0 and steps > run.start_step else None,
            "final": history[-1] if history else None, "history": history,
        },
        "held_out": held_metrics,
        "splice": splice,
        "provenance": provenance,
        "notes": [
            "metrics are measured on held-out rows the SAE was not trained on",
            "the first position of every prompt is left out of training and splicing (massive activations)",
        ] if model else ["metrics are measured on held-out rows the SAE was not trained on"],
    }


def _held_out_prompts(prompts: list[ScoredPrompt], source: dict[str, Any]) -> list[ScoredPrompt]:
    from interp_agent.core.ranking.splits import HELD_OUT, assign_splits, prompt_hashes

    groups = assign_splits(prompt_hashes([p.prompt_id for p in prompts], source["salt"]), source["held_out_fraction"])
    return [p for p, g in zip(prompts, groups, strict=True) if g == HELD_OUT]


def _held_out_mean(cache: act_data.ActivationCache) -> np.ndarray:
    total, n = np.zeros(cache.d_in), 0
    for b in cache.held_out_batches(65_536):
        total += b.sum(0, dtype=np.float64)
        n += len(b)
    return (total / n).astype(np.float32)


def _write_latent_records(
    out: Path, cfg: dict[str, Any], run: _Run, src: _Source, weights: Any, device: torch.device, report: Progress, *,
    records: str | Path | None,
) -> Path | None:
    """Write the activation records of the trained latents; their path, or None when the source has none to give.

    A model source whose prompts carry criterion scores: records harvested from the model with
    the trained SAE. A records source: latent records of the input records. Else nothing.
    """
    if src.scored and src.loaded is not None:
        report("records", 0, 1)
        return _model_records(out, src.loaded, src.prompts, src.cache.hookpoint, weights,  # type: ignore[arg-type]  # src.loaded is set for a model source
                              cfg["top_latents"], cfg["max_length"])
    if records is not None:
        report("records", 0, 1)
        return _records_from_records(out, Path(records), run.sae, src.cache, cfg["top_latents"], device)
    return None


def _model_records(
    out: Path, loaded: Any, prompts: list[ScoredPrompt], hook: str, weights: Any, top_n: int, max_length: int
) -> Path:
    from interp_agent.core.models.harvest import SaeParams, write_harvested_records

    params = SaeParams(weights.W_enc.astype(np.float32), weights.b_enc.astype(np.float32),
                       weights.b_dec.astype(np.float32),
                       None if weights.threshold is None else weights.threshold.astype(np.float32), weights.k)
    return write_harvested_records(out / "records.jsonl", loaded, prompts, [hook], format="jsonl", features="sae",
                                   sae={hook: params}, top_n=top_n, pooling="max", max_length=max_length)


def _records_from_records(
    out: Path, path: Path, sae: Any, cache: act_data.ActivationCache, top_n: int, device: torch.device
) -> Path:
    """Latent records of the input records (same prompts, scores and tokens)."""
    from interp_agent.core.formats.records import ActivationRecord, FeatureMeta, RecordReader, write_records
    from interp_agent.core.ids import format_sae_latent, hook_layer

    layer = hook_layer(cache.hookpoint or "")
    col = {fid: i for i, fid in enumerate(cache.feature_ids or [])}

    def rows() -> Any:
        chunk: list[ActivationRecord] = []
        for rec in RecordReader(path):
            chunk.append(rec)
            if len(chunk) == 4096:
                yield from encode(chunk)
                chunk = []
        yield from encode(chunk)

    @torch.no_grad()
    def encode(chunk: list[ActivationRecord]) -> Any:
        if not chunk:
            return
        x = np.zeros((len(chunk), cache.d_in), np.float32)
        for i, rec in enumerate(chunk):
            x[i, [col[f] for f in rec.feature_ids]] = rec.activations
        z = sae.encode(torch.as_tensor(x, device=device) * sae.input_scale).cpu()
        top = z.topk(min(top_n, z.shape[1]), dim=1)
        for rec, idx, val in zip(chunk, top.indices.numpy(), top.values.numpy(), strict=True):
            keep = val > 0
            yield replace(rec, feature_ids=tuple(format_sae_latent(int(i), layer=layer) for i in idx[keep]),
                          activations=tuple(val[keep].tolist()), extra={})

    meta = {format_sae_latent(i, layer=layer): FeatureMeta(layer=layer) for i in range(sae.shape.d_sae)}
    return write_records(out / "records.jsonl", rows(), meta)
