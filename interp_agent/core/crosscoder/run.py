"""``train_crosscoder``: paired activations → a trained, saved crosscoder → exclusivity table → optional ranking.

Sources are two (or more) models at one hookpoint (``models`` + one hookpoint), several
hookpoints of one model (one model + ``hookpoints``), or stored arrays (``activations``, one
``.npy`` per source). Texts come from ``texts`` or a ``corpus`` (default the built-in one, whose
passages are generated text). Texts, not tokens, are split: a seeded ``held_out_fraction`` of them
is held out, and the FVU, the dead fraction and the Latent Scaling β are measured on their
tokens only. The crosscoder never sees the scored prompts of ``pack`` / ``dataset``; those are
only used to rank its latents (``rank.py``), whose own split keeps selection and evidence apart.

Everything is written into a temporary folder beside ``out`` and swapped in whole at the end,
so a failure (a bad input is refused before any model runs) leaves ``out`` as it was. Progress
phases: ``load``, ``harvesting``, ``train``, ``evaluate``, ``exclusivity``, ``records``, ``rank``, ``done``.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from collections.abc import Callable, Sequence
from dataclasses import asdict
from pathlib import Path
from typing import Any

import numpy as np

from interp_agent.core.artifacts import replace_dir, run_provenance, schema_version, write_json, write_text
from interp_agent.core.crosscoder.exclusive import ExclusivityConfig, exclusivity_table
from interp_agent.core.crosscoder.io import trainer_config, write_crosscoder_files
from interp_agent.core.crosscoder.model import CrosscoderShape
from interp_agent.core.crosscoder.paired import Paired, Source, paired_activations, paired_from_arrays
from interp_agent.core.crosscoder.rank import latent_ids, rank_latents, write_latent_records
from interp_agent.core.crosscoder.train import CrosscoderTraining, fit_crosscoder, held_out_metrics
from interp_agent.core.errors import ValidationError, arg
from interp_agent.core.formats.prompts import ScoredPrompt
from interp_agent.core.ids import hook_layer
from interp_agent.core.progress import Progress


def _no_progress(phase: str, done: int, total: int | None) -> None:
    """The progress callback when none is given: reports nothing."""


def resolve_sources(models: Sequence[str] | None, hookpoints: Sequence[str], *, device: str = "cpu") -> list[Source]:
    """Load the models and pair them with hookpoints: several models × one hookpoint, or one model × several.

    A model named twice is loaded once (two sources reading the same model: a plumbing check).
    """
    models = list(models or [])
    hooks = list(hookpoints)
    if not models or not hooks:
        raise ValidationError(f"a crosscoder needs {arg('models')} and {arg('hookpoints')}",
                              hint="two models and one hookpoint, or one model and two or more hookpoints")
    if len(models) > 1 and len(hooks) > 1:
        raise ValidationError(f"{len(models)} models and {len(hooks)} hookpoints: give several models at one "
                              "hookpoint, or one model at several hookpoints")
    if len(models) * len(hooks) < 2:
        raise ValidationError(f"one model at one hookpoint is one source ({models[0]} @ {hooks[0]}); a crosscoder "
                              "needs two or more", hint="add a second model, or a second hookpoint")
    from interp_agent.core.models import load_model

    loaded: dict[str, Any] = {}
    for name in models:
        if name not in loaded:
            loaded[name] = load_model(name, device=device)  # type: ignore[arg-type]  # a plain str from the CLI/API
    if len(models) > 1:
        return [(loaded[name], hooks[0]) for name in models]
    return [(loaded[models[0]], h) for h in hooks]


def _texts(texts: Sequence[str] | None, corpus: str | None, max_texts: int) -> tuple[list[str], dict[str, Any]]:
    if texts is not None:
        chosen = [t for t in texts if t.strip()][:max_texts]
        return chosen, {"name": "texts", "n_passages": len(chosen), "synthetic": False}
    from interp_agent.core.explain.corpus import load_corpus

    c = load_corpus(corpus or "builtin", max_passages=max_texts)
    return list(c.passages), c.describe()


def _split(paired: Paired, n_texts: int | None, fraction: float, seed: int) -> tuple[np.ndarray, np.ndarray]:
    """Boolean masks (train, held out) over tokens: whole texts held out, or rows when there are no texts."""
    rng = np.random.default_rng([seed, 7])
    if paired.row_prompt is None or n_texts is None:
        held = np.zeros(len(paired.acts), dtype=bool)
        held[rng.permutation(len(held))[: max(1, round(len(held) * fraction))]] = True
    else:
        held_texts = rng.permutation(n_texts)[: max(1, round(n_texts * fraction))]
        held = np.isin(paired.row_prompt, held_texts)
    if held.all() or not held.any():
        raise ValidationError(f"the {arg('held_out_fraction', fraction)} split leaves no training or no held-out "
                              "tokens", hint="give more texts")
    return ~held, held


def _scored_prompts(pack: str | None, dataset: str | None, criterion: str | None) -> tuple[list[ScoredPrompt], str]:
    if pack:
        from interp_agent.core.criteria import load_pack

        p = load_pack(pack)
        return list(p.prompts), criterion or p.criterion
    from interp_agent.core.sae.train import read_prompt_file

    assert dataset is not None
    prompts, scored = read_prompt_file(dataset)
    if not scored or not criterion:
        raise ValidationError(f"ranking needs scored prompts and a criterion: {arg('pack')}, or {arg('dataset')} "
                              f"with criterion_score on every row and {arg('criterion')}")
    return prompts, criterion


def _check_request(models: Sequence[str] | None, activations: Sequence[str] | None, pack: str | None,
                   dataset: str | None, criterion: str | None, latent_dim: int, k: int) -> None:
    """Refuse a bad combination before any model is loaded."""
    if bool(models) == bool(activations):
        raise ValidationError(f"give exactly one source: {arg('models')} (with {arg('hookpoints')}) or "
                              f"{arg('activations')} (one .npy per source)")
    if (pack or dataset) and activations:
        raise ValidationError(f"ranking ({arg('pack')} / {arg('dataset')}) needs models to read the prompts on, "
                              f"not stored {arg('activations')}")
    if dataset and not criterion:
        raise ValidationError(f"{arg('dataset')} needs {arg('criterion')} to rank the latents against")
    if not 0 < k <= latent_dim:
        raise ValidationError(f"{arg('k', k)} must satisfy 0 < k <= latent_dim ({latent_dim})")


def train_crosscoder(
    *,
    out: str | Path,
    models: Sequence[str] | None = None,
    hookpoints: Sequence[str] = (),
    activations: Sequence[str] | None = None,
    texts: Sequence[str] | None = None,
    corpus: str | None = "builtin",
    pack: str | None = None,
    dataset: str | None = None,
    criterion: str | None = None,
    latent_dim: int = 1152,
    k: int = 32,
    steps: int = 300,
    batch_size: int = 1024,
    lr: float | None = None,
    seed: int = 0,
    max_length: int = 64,
    max_texts: int = 400,
    held_out_fraction: float = 0.1,
    norm_share: float = 0.9,
    max_nu: float = 0.3,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Train a BatchTopK crosscoder, save it in ``out`` (ae.pt, config.json, metrics.json, exclusivity.json),
    and with ``pack`` (or ``dataset`` + ``criterion``) rank its latents (records.jsonl, report/).

    Returns a JSON-able summary: paths, held-out FVU per source, exclusivity counts, the latents that
    passed both exclusivity checks, and the ranking's top features.

    Raises:
        ValidationError: a bad combination of arguments; sources of different widths or tokenizers;
            stored arrays of different lengths (each naming the side that is wrong).
    """
    _check_request(models, activations, pack, dataset, criterion, latent_dim, k)
    report: Progress = progress or _no_progress
    training = CrosscoderTraining(batch_size=batch_size, steps=steps, lr=lr, seed=seed)
    excl = ExclusivityConfig(norm_share=norm_share, max_nu=max_nu)
    scored = _scored_prompts(pack, dataset, criterion) if (pack or dataset) else None
    paired, sources, corpus_info, n_texts = _read_sources(models, hookpoints, activations, texts, corpus, max_texts,
                                                          max_length, report)
    train_mask, held_mask = _split(paired, n_texts, held_out_fraction, seed)
    shape = CrosscoderShape(len(paired.names), int(paired.acts.shape[2]), latent_dim, k)
    report("train", 0, steps)
    model, fit = fit_crosscoder(paired.acts[train_mask], shape, training,
                                report=lambda p: report("train", int(p["step"]), steps))
    report("evaluate", 0, 1)
    held = held_out_metrics(model, paired.acts[held_mask], paired.names)
    report("exclusivity", 0, 1)
    table = exclusivity_table(model, paired.acts[held_mask], paired.names, excl, feature_ids=latent_ids(latent_dim))
    summary = _write_atomically(Path(out), lambda tmp, target: _write_run(
        tmp, target, model, fit, held, table, paired, sources, scored, training, corpus_info,
        int(train_mask.sum()), max_length, report))
    report("done", 1, 1)
    return summary


def _write_atomically(target: Path, write: Callable[[Path, Path], dict[str, Any]]) -> dict[str, Any]:
    """``write(tmp, target)`` into a fresh folder beside ``target``, then that folder renamed onto ``target``."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=f".tmp{os.getpid()}", dir=target.parent))
    try:
        summary = write(tmp, target)
        replace_dir(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return summary


def _read_sources(
    models: Sequence[str] | None, hookpoints: Sequence[str], activations: Sequence[str] | None,
    texts: Sequence[str] | None, corpus: str | None, max_texts: int, max_length: int, report: Progress,
) -> tuple[Paired, list[Source], dict[str, Any], int | None]:
    """The paired activations, the sources read (none for stored arrays), the texts' description, their count."""
    if not models:
        return paired_from_arrays(list(activations or [])), [], {"name": "activations", "paths": list(
            activations or [])}, None
    report("load", 0, 1)
    sources = resolve_sources(models, hookpoints)
    text_list, corpus_info = _texts(texts, corpus, max_texts)
    return paired_activations(sources, text_list, max_length=max_length, progress=report), sources, corpus_info, len(
        text_list)


def _sources_block(paired: Paired, sources: Sequence[Source]) -> list[dict[str, Any]]:
    if not sources:
        return [{"name": n} for n in paired.names]
    return [{"name": n, "model": m.name, "hookpoint": h} for n, (m, h) in zip(paired.names, sources, strict=True)]


def _write_run(
    tmp: Path, target: Path, model: Any, fit: dict[str, Any], held: dict[str, Any], table: dict[str, Any],
    paired: Paired, sources: Sequence[Source], scored: tuple[list[ScoredPrompt], str] | None,
    training: CrosscoderTraining, corpus_info: dict[str, Any], n_train: int, max_length: int, report: Progress,
) -> dict[str, Any]:
    """Write every file of the run into ``tmp``; the summary names them at ``target``, where they will be."""
    shape = model.shape
    steps = training.steps
    settings = {**asdict(training), "lr": training.resolved_lr(shape.latent_dim),
                "warmup_steps": max(1, round(steps * training.warmup_fraction)),
                "decay_start": steps - round(steps * training.decay_fraction),
                "threshold_start_step": int(steps * training.threshold_start_fraction), "max_length": max_length}
    hooks = [h for _, h in sources]
    layers = {hook_layer(h) for h in hooks}
    block = {"sources": _sources_block(paired, sources), "training": settings,
             "shape": {"n_sources": shape.n_sources, "d": shape.d, "latent_dim": shape.latent_dim, "k": shape.k},
             "feature_ids": "SAE:crosscoder:F{i}"}
    config = {"trainer": trainer_config(model, settings, lm_name="+".join(dict.fromkeys(m.name for m, _ in sources)),
                                        layer=layers.pop() if len(layers) == 1 else None,
                                        submodule_name=",".join(dict.fromkeys(hooks))),
              "interp_agent": block}
    paths = write_crosscoder_files(tmp, model, config)
    metrics = {"schema_version": schema_version("crosscoder_metrics"), **block,
               "data": {"n_train_tokens": n_train, "n_held_out_tokens": held["n_tokens"], "texts": corpus_info},
               "training_run": fit, "held_out": held, "provenance": run_provenance({}),
               "notes": ["held-out metrics are measured on tokens of texts the crosscoder was not trained on",
                         "activations are real model activations; the built-in corpus's texts are generated"]}
    paths["metrics"] = write_json(tmp / "metrics.json", metrics)
    paths["exclusivity"] = write_json(tmp / "exclusivity.json",
                                      {"schema_version": schema_version("crosscoder_exclusivity"), **table})
    ranking = None
    if scored is not None:
        ranking = _rank(tmp, target, model, sources, scored, max_length, report, paths)
    return {
        "out": str(target), "paths": {k: str(target / v.relative_to(tmp)) for k, v in paths.items()},
        "sources": paired.names, "held_out": held, "exclusivity": table["summary"],
        "exclusive_latents": [{k: r[k] for k in ("feature_id", "exclusive_to", "passed", "nu_error",
                                                   "nu_reconstruction", "norm_share")}
                              for r in table["latents"] if r["exclusive_to"]][:50],
        "ranking": ranking,
    }


def _point_at_final_folder(folder: Path, tmp: Path, target: Path) -> None:
    """The report names its records file by path: the temporary folder's, until the swap makes it ``target``'s."""
    for path in folder.iterdir():
        if path.is_file() and path.suffix in (".json", ".md", ".html"):
            text = path.read_text(encoding="utf-8")
            if str(tmp) in text:
                write_text(path, text.replace(str(tmp), str(target)))


def _rank(tmp: Path, target: Path, model: Any, sources: Sequence[Source], scored: tuple[list[ScoredPrompt], str],
          max_length: int, report: Progress, paths: dict[str, Path]) -> dict[str, Any]:
    prompts, criterion = scored
    name = "crosscoder(" + "|".join(f"{m.name}@{h}" for m, h in sources) + ")"
    report("records", 0, 1)
    paths["records"] = write_latent_records(tmp / "records.jsonl", model, sources, prompts, model_name=name,
                                            max_length=max_length)
    report("rank", 0, 1)
    inspection = rank_latents(paths["records"], model_name=name, criterion=criterion, out=tmp / "report")
    paths["report"] = tmp / "report"
    _point_at_final_folder(paths["report"], tmp, target)
    features = inspection.get("features", [])
    return {"criterion": criterion, "n_prompts": len(prompts), "summary": inspection.get("summary"),
            "top": [_top_entry(f) for f in features[:10]]}


def _top_entry(feature: dict[str, Any]) -> dict[str, Any]:
    """A ranked feature's id, rank, verdict and held-out association (r, AUROC), for the summary."""
    held = (feature.get("association") or {}).get("held_out") or {}
    return {"feature_id": feature.get("feature_id"), "rank": feature.get("rank"), "verdict": feature.get("verdict"),
            "held_out_r": held.get("pearson_r"), "held_out_auroc": held.get("auroc"), "provenance": "correlational"}
