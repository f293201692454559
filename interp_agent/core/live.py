"""Live models: harvest a criterion's prompts on a real model for ``inspect --backend hf``, and ``intervene``.

``harvest_for_inspection`` turns a criterion set into activation records (every dimension
of each requested hookpoint, pooled per prompt, plus the contrast direction of each
hookpoint: the difference of class means on the calibration split only) and saves the
directions beside them. ``intervene`` loads a report's top features (or given ones),
fits a behaviour scorer on calibration prompts, and runs interventions with controls on
held-out prompts.
"""

from __future__ import annotations

import re
from collections.abc import Callable, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

from interp_agent.core.artifacts import run_provenance, schema_version, write_json
from interp_agent.core.errors import EvidenceError, ValidationError
from interp_agent.core.formats.interventions import write_interventions
from interp_agent.core.formats.parquet import write_parquet_dataset
from interp_agent.core.formats.prompts import ScoredPrompt
from interp_agent.core.formats.records import ActivationRecord, FeatureMeta

DIRECTIONS_FILE = "directions.npz"
_HOOK = re.compile(r"^blocks\.(\d+)\.(hook_resid_pre|hook_resid_post|hook_attn_out|hook_mlp_out|mlp\.hook_post)$")

Progress = Callable[[str, int, int | None], None]


def feature_prefix(hookpoint: str) -> tuple[int, str]:
    """Layer and feature-id prefix of a hookpoint: resid_post dims are ``L{l}:D``, neurons ``L{l}:N``."""
    m = _HOOK.match(hookpoint)
    if m is None:
        raise ValidationError(f"unsupported hookpoint {hookpoint!r}")
    layer, kind = int(m.group(1)), m.group(2)
    prefix = {"hook_resid_post": "D", "mlp.hook_post": "N"}.get(kind, f"{kind.removeprefix('hook_')}:D")
    return layer, f"L{layer}:{prefix}"


def split_prompts(criterion: str, prompts: Sequence[ScoredPrompt], *, held_out_fraction: float, salt: str) -> tuple[list[ScoredPrompt], list[ScoredPrompt]]:
    """Calibration and held-out prompts, by the same hash split ranking uses."""
    from interp_agent.core.criteria import CriterionSet, split

    return split(CriterionSet(criterion=criterion, prompts=tuple(prompts), source="file"), held_out_fraction, salt)


def load_criterion_set(criterion: str | None, dataset: str | Path | None, pack: str | None) -> tuple[str, list[ScoredPrompt], list[str] | None]:
    """The criterion text, its scored prompts and any target tokens, from a file or a built-in pack."""
    from interp_agent.core.criteria import from_file, load_pack

    if pack is not None:
        loaded = load_pack(pack)
        return criterion or loaded.criterion, list(loaded.prompts), list(loaded.targets) if loaded.targets else None
    if dataset is None:
        raise ValidationError("a live model needs prompts: --dataset FILE (scored prompts JSONL) or --pack NAME")
    if not criterion:
        raise ValidationError("--criterion is required with --dataset")
    cset = from_file(dataset, criterion)
    return criterion, list(cset.prompts), None


def harvest_for_inspection(
    model: str,
    criterion: str | None,
    *,
    out: Path,
    dataset: str | Path | None = None,
    pack: str | None = None,
    hookpoints: Sequence[str] | None = None,
    pooling: str = "last",
    held_out_fraction: float = 0.3,
    split_salt: str = "interp-agent",
    sae: str | Path | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Harvest activations of the criterion's prompts; write records and contrast directions into ``out``.

    With ``sae`` (an SAE Lens folder), the SAE's latents at its hookpoint are added as
    ``SAE:L{layer}:F{i}`` features (encoded per token, then pooled like the rest).
    """
    from interp_agent.core.models import default_hookpoints, harvest, load_model, resolve_hookpoint

    criterion, prompts, targets = load_criterion_set(criterion, dataset, pack)
    train, held = split_prompts(criterion, prompts, held_out_fraction=held_out_fraction, salt=split_salt)
    train_ids = {p.prompt_id for p in train}
    loaded = load_model(model)
    hooks = list(hookpoints) if hookpoints else default_hookpoints(loaded.model)
    sae_weights = None
    if sae is not None:
        from interp_agent.core.sae import load_sae

        sae_weights = load_sae(sae)
        width = resolve_hookpoint(loaded.model, sae_weights.hookpoint).width
        if width != sae_weights.W_enc.shape[0]:
            raise ValidationError(f"the SAE in {sae} reads {sae_weights.W_enc.shape[0]} dims but {sae_weights.hookpoint} "
                                  f"of {model} has {width}", hint="use an SAE trained on this model")
    texts = [p.text for p in prompts]
    per_batch = (lambda done, total: progress("harvesting", done, total)) if progress else None
    harvested = harvest(loaded, texts, hooks, pooling=pooling, progress=per_batch)

    scores = np.array([p.criterion_score for p in prompts])
    positive = scores > (scores.min() + scores.max()) / 2
    in_train = np.array([p.prompt_id in train_ids for p in prompts])
    columns: list[tuple[list[str], np.ndarray]] = []
    meta: dict[str, FeatureMeta] = {}
    directions: dict[str, np.ndarray] = {}
    direction_hooks: dict[str, str] = {}
    for hook in hooks:
        acts = harvested[hook].acts.astype(np.float64)  # [prompts, width] (pooled)
        layer, prefix = feature_prefix(hook)
        ids = [f"{prefix}{d}" for d in range(acts.shape[1])]
        columns.append((ids, acts))
        for fid in ids:
            meta[fid] = FeatureMeta(layer=layer)
        # contrast direction: difference of class means on the calibration (training) split only
        diff = acts[in_train & positive].mean(0) - acts[in_train & ~positive].mean(0)
        fid = f"direction:contrast@{hook}"
        directions[fid] = diff
        direction_hooks[fid] = hook
        unit = diff / (np.linalg.norm(diff) or 1.0)
        columns.append(([fid], (acts @ unit)[:, None]))
        meta[fid] = FeatureMeta(
            label=f"contrast direction at {hook} (difference of class means, calibration split)", layer=layer,
        )

    if sae_weights is not None:
        latents = _sae_latents(loaded, texts, sae_weights, pooling)  # [prompts, d_sae]
        ids = [f"SAE:L{sae_weights.layer}:F{i}" for i in range(latents.shape[1])]
        columns.append((ids, latents))
        for fid in ids:
            meta[fid] = FeatureMeta(layer=sae_weights.layer)

    def rows() -> Any:
        for i, p in enumerate(prompts):
            fids: list[str] = []
            vals: list[float] = []
            for ids, acts in columns:
                if ids and ids[0].startswith("SAE:"):  # sparse: only latents that fire
                    nz = np.nonzero(acts[i])[0]
                    fids.extend(ids[j] for j in nz)
                    vals.extend(acts[i, nz].tolist())
                else:
                    fids.extend(ids)
                    vals.extend(acts[i].tolist())
            yield ActivationRecord(prompt_id=p.prompt_id, criterion_score=p.criterion_score, feature_ids=tuple(fids),
                                   activations=tuple(vals), text=p.text, model=model,
                                   split="train" if p.prompt_id in train_ids else "held_out")

    records = write_parquet_dataset(out / "records", rows(), meta)
    np.savez(out / DIRECTIONS_FILE, **{k.replace("/", "_"): v for k, v in directions.items()})
    write_json(out / "directions.json", {"schema_version": schema_version("directions"),
                                         "directions": {k: {"hookpoint": direction_hooks[k], "norm": float(np.linalg.norm(v)),
                                                            "key": k.replace("/", "_")} for k, v in directions.items()},
                                         "split": {"calibration": len(train), "held_out": len(held)}})
    return {"records": records, "criterion": criterion, "hookpoints": hooks, "pooling": pooling, "targets": targets,
            "loaded": loaded, "directions": {k: (direction_hooks[k], v) for k, v in directions.items()},
            "model_info": {"name": loaded.name, "family": loaded.family, "n_layers": loaded.n_layers,
                           "d_model": loaded.d_model, "source": loaded.source, "device": str(loaded.device),
                           "dtype": str(loaded.dtype)}}


def _sae_latents(loaded: Any, texts: list[str], sae: Any, pooling: str) -> np.ndarray:
    """SAE latents per prompt: encoded per token, then pooled (last, mean or max; first position excluded)."""
    from interp_agent.core.models import harvest

    got = harvest(loaded, texts, [sae.hookpoint], pooling="token")[sae.hookpoint]
    z = sae.encode(got.acts.astype(np.float64))
    out = np.zeros((len(texts), z.shape[1]))
    for i in range(len(texts)):
        rows = np.nonzero(got.row_prompt == i)[0]
        if not len(rows):
            continue
        out[i] = z[rows[-1]] if pooling == "last" else (z[rows].max(0) if pooling == "max" else z[rows].mean(0))
    return out


def add_token_highlights(live: dict[str, Any], features: list[dict[str, Any]], *, n_features: int = 10) -> None:
    """Attach per-token activations (``examples[i].tokens``) to the top features' examples, in place."""
    from interp_agent.core.models import harvest

    loaded = live["loaded"]
    width = {h: None for h in live["hookpoints"]}
    for feature in features[:n_features]:
        fid = feature["feature_id"]
        if fid in live["directions"]:
            hook, vector = live["directions"][fid]
            u = vector / (np.linalg.norm(vector) or 1.0)
        else:
            m = re.match(r"^L(\d+):([DN])(\d+)$", fid)
            if m is None:
                continue
            hook = f"blocks.{m.group(1)}.{'hook_resid_post' if m.group(2) == 'D' else 'mlp.hook_post'}"
            if hook not in width:
                continue
            u = int(m.group(3))
        examples = [e for e in feature.get("examples") or [] if e.get("text")]
        if not examples:
            continue
        got = harvest(loaded, [e["text"] for e in examples], [hook], pooling="token")[hook]
        values = got.acts[:, u] if isinstance(u, int) else got.acts @ u
        for i, example in enumerate(examples):
            rows = np.nonzero(got.row_prompt == i)[0]
            example["tokens"] = [[got.tokens[r], float(values[r])] for r in rows]


def load_directions(folder: Path) -> dict[str, tuple[str, np.ndarray]]:
    """Directions saved by an inspect run: feature id -> (hookpoint, vector)."""
    index = folder / "directions.json"
    if not index.is_file():
        return {}
    import json

    info = json.loads(index.read_text())["directions"]
    arrays = np.load(folder / DIRECTIONS_FILE)
    return {fid: (d["hookpoint"], arrays[d["key"]]) for fid, d in info.items()}


@dataclass(frozen=True, slots=True)
class InterveneResult:
    """What ``intervene`` returns."""

    summary: dict[str, Any]
    """summary.json: scorer report and one entry per feature with its verdict."""
    paths: dict[str, Path]
    """interventions.jsonl and summary.json."""


def intervene(
    model: str,
    criterion: str | None,
    *,
    out: str | Path,
    dataset: str | Path | None = None,
    pack: str | None = None,
    report: str | Path | None = None,
    features: Sequence[str] | None = None,
    top_k: int = 3,
    mode: str = "steer",
    strengths: Sequence[float] = (-1.0, -0.5, 0.5, 1.0),
    targets: Sequence[str] | None = None,
    held_out_fraction: float = 0.3,
    split_salt: str = "interp-agent",
    min_scorer_auroc: float = 0.6,
    scorer: str = "target",
    max_new_tokens: int = 12,
    sae: str | Path | None = None,
    progress: Progress | None = None,
) -> InterveneResult:
    """Intervene on features of ``model`` with controls; write interventions.jsonl and summary.json into ``out``.

    Features come from ``report`` (its top ``top_k`` that can be intervened on, with the
    directions saved beside it) or from ``features``. The behaviour score is the
    next-token probability mass on target tokens (given, from the pack, or inferred on
    calibration prompts); it must beat chance on held-out prompts before it is used.
    """
    import json

    from interp_agent.core.criteria import TargetTokenScorer
    from interp_agent.core.interventions import InterveneConfig, parse_target, run_interventions
    from interp_agent.core.models import load_model, resolve_hookpoint

    out = Path(out)
    criterion, prompts, pack_targets = load_criterion_set(criterion, dataset, pack)
    calibration, held = split_prompts(criterion, prompts, held_out_fraction=held_out_fraction, salt=split_salt)
    expected: dict[str, int] = {}
    directions: dict[str, tuple[str, np.ndarray]] = {}
    chosen: list[str] = list(features or [])
    if report is not None:
        report_path = Path(report)
        report_path = report_path / "report.json" if report_path.is_dir() else report_path
        data = json.loads(report_path.read_text())
        directions = load_directions(report_path.parent)
        for f in data["features"]:
            expected[f["feature_id"]] = -1 if f.get("direction") == "suppresses" else 1
        if not chosen:
            usable = [f["feature_id"] for f in data["features"]
                      if re.match(r"^(L\d+:[DN]\d+|SAE:L\d+:F\d+)$", f["feature_id"]) or f["feature_id"] in directions]
            chosen = usable[:top_k]
            best_direction = next((f for f in usable if f.startswith("direction:")), None)
            if best_direction and best_direction not in chosen:
                chosen.append(best_direction)  # the contrast direction is always worth a causal test
    if not chosen:
        raise ValidationError("nothing to intervene on: give --report (with features) or --feature ID")
    loaded = load_model(model)
    saes = {}
    if sae is not None:
        from interp_agent.core.sae import load_sae

        weights = load_sae(sae)
        saes[weights.layer] = weights
    width_of = {}
    for fid in chosen:
        if fid.startswith("SAE:"):
            continue
        hook = directions[fid][0] if fid in directions else (
            f"blocks.{fid[1:].split(':')[0]}.mlp.hook_post" if ":N" in fid else f"blocks.{fid[1:].split(':')[0]}.hook_resid_post")
        width_of[hook] = resolve_hookpoint(loaded.model, hook).width
    for weights in saes.values():
        width = resolve_hookpoint(loaded.model, weights.hookpoint).width
        if width != weights.W_enc.shape[0]:
            raise ValidationError(f"the SAE reads {weights.W_enc.shape[0]} dims but {weights.hookpoint} has {width}")
    target_list = [parse_target(fid, width_of, directions, saes) for fid in chosen]

    if scorer not in ("target", "classifier"):
        raise ValidationError(f"scorer must be 'target' or 'classifier', got {scorer!r}")
    if scorer == "classifier":
        from interp_agent.core.criteria import TextClassifierScorer
        from interp_agent.core.interventions.continuation import ContinuationScorer

        classifier = TextClassifierScorer(min_auroc=min_scorer_auroc)
        classifier.fit(calibration)
        scorer_report = classifier.evaluate(held)
        behaviour: Any = ContinuationScorer(classifier, max_new_tokens=max_new_tokens)
    else:
        target_scorer = TargetTokenScorer(targets=list(targets or pack_targets or []) or None)
        target_scorer.fit(loaded.model, loaded.tokenizer, calibration)
        scorer_report = target_scorer.evaluate(loaded.model, loaded.tokenizer, held)
        behaviour = target_scorer
    if not scorer_report.usable or (scorer_report.auroc or 0) < min_scorer_auroc:
        raise EvidenceError(
            f"the behaviour scorer is near chance on held-out prompts (AUROC {scorer_report.auroc}); "
            "interventions measured with it would mean nothing",
            hint="give target tokens (--targets) or a clearer prompt set",
        )
    config = InterveneConfig(mode=mode, strengths=tuple(strengths))
    run = run_interventions(loaded, target_list, behaviour, calibration=calibration, held_out=held, criterion=criterion,
                            model_name=model, expected_sign=expected, config=config, progress=progress)
    out.mkdir(parents=True, exist_ok=True)
    paths = {"interventions": write_interventions(out / "interventions.jsonl", run.records)}
    summary = {
        "schema_version": schema_version("intervention_summary"),
        "model": model,
        "criterion": criterion,
        "provenance": run_provenance({"dataset": dataset, "report": report}),
        "settings": {"mode": mode, "strengths": list(strengths), "held_out_fraction": held_out_fraction, "scorer": scorer,
                     "split_salt": split_salt, "n_calibration": len(calibration), "n_held_out": len(held)},
        "scorer": scorer_report.to_json() | (
            {"applied_to": f"greedy continuations of {max_new_tokens} tokens"} if scorer == "classifier" else {}),
        "features": run.features,
        "method": ("strength chosen on calibration prompts (largest effect in the expected direction whose KL on the "
                   "other class stays within budget); effects measured on held-out prompts with Student-t 95% "
                   "intervals: removals (ablation, negative steering) on positives, pushes toward the criterion on "
                   "negatives; controls: random directions of matched norm and random features of matched activation "
                   "spread; side effects: KL of next-token distributions and score change on the other class; "
                   "verdict causal when "
                   "the interval excludes 0 and the effect exceeds every control, weak when one of the two holds, "
                   "contradicts when the interval excludes 0 on the wrong side, else no_effect"),
    }
    paths["summary"] = write_json(out / "summary.json", summary)
    return InterveneResult(summary=summary, paths=paths)
