"""Live models: harvest a criterion's prompts on a real model for ``inspect --backend hf``, and ``intervene``.

``harvest_for_inspection`` turns a criterion set into activation records (every dimension
of each requested hookpoint, pooled per prompt, plus the contrast direction of each
hookpoint: the difference of class means on the calibration split only) and saves the
directions beside them. ``intervene`` loads a report's top features (or given ones),
fits a behaviour scorer on calibration prompts, and runs interventions with controls on
held-out prompts.
"""

from __future__ import annotations

from collections.abc import Iterator, Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import TYPE_CHECKING, Any

import numpy as np

from interp_agent.core.artifacts import run_provenance, schema_version, write_json
from interp_agent.core.errors import EvidenceError, ValidationError
from interp_agent.core.formats.interventions import write_interventions
from interp_agent.core.formats.parquet import write_parquet_dataset
from interp_agent.core.formats.prompts import ScoredPrompt
from interp_agent.core.formats.records import ActivationRecord, FeatureMeta
from interp_agent.core.ids import (
    basis_feature_id,
    basis_feature_ids,
    format_direction,
    format_sae_latent,
    match_feature_id,
    match_hookpoint,
    parse_hookpoint,
)
from interp_agent.core.progress import Progress

if TYPE_CHECKING:
    from interp_agent.core.models import Harvested

DIRECTIONS_FILE = "directions.npz"
HIGHLIGHT_MAX_LENGTH = 128
"""Tokens kept per prompt in the harvest (and so in token highlights)."""
TOKEN_MEMORY_BUDGET = 4 * 2**30
"""Bytes of per-token activations a live inspect may hold (float32, every hookpoint)."""



def feature_prefix(hookpoint: str) -> tuple[int, str]:
    """Layer and feature-id prefix of a hookpoint: resid_post dims are ``L{l}:D``, neurons ``L{l}:N``."""
    point = match_hookpoint(hookpoint)
    if point is None:
        raise ValidationError(f"unsupported hookpoint {hookpoint!r}")
    return point.layer, basis_feature_id(point, 0)[:-1]


def split_prompts(
    criterion: str, prompts: Sequence[ScoredPrompt], *, held_out_fraction: float, salt: str
) -> tuple[list[ScoredPrompt], list[ScoredPrompt]]:
    """Calibration and held-out prompts, by the same hash split ranking uses."""
    from interp_agent.core.criteria import CriterionSet, split

    return split(CriterionSet(criterion=criterion, prompts=tuple(prompts), source="file"), held_out_fraction, salt)


def load_criterion_set(
    criterion: str | None, dataset: str | Path | None, pack: str | None
) -> tuple[str, list[ScoredPrompt], list[str] | None]:
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

    One harvest pass reads every hookpoint (and the SAE's) per token; dims, neurons, SAE latents
    (``SAE:L{layer}:F{i}``, encoded per token, then pooled like the rest), contrast directions and
    the per-token values that ``add_token_highlights`` later attaches all come from it.
    """
    from interp_agent.core.models import default_hookpoints, load_model

    criterion, prompts, targets = load_criterion_set(criterion, dataset, pack)
    train, held = split_prompts(criterion, prompts, held_out_fraction=held_out_fraction, salt=split_salt)
    train_ids = {p.prompt_id for p in train}
    loaded = load_model(model)
    hooks = list(hookpoints) if hookpoints else default_hookpoints(loaded.model)
    sae_weights = None if sae is None else _checked_sae(loaded, sae, model)
    tokens = harvest_tokens(loaded, [p.text for p in prompts], hooks + ([sae_weights.hookpoint] if sae_weights else []),
                            pooling=pooling, progress=progress, prompt_ids=[p.prompt_id for p in prompts])
    in_train = np.array([p.prompt_id in train_ids for p in prompts])
    columns, meta, directions = _feature_columns(tokens, hooks, prompts, in_train, pooling)
    if sae_weights is not None:
        latents = _sae_latents(tokens, sae_weights, pooling)  # [prompts, d_sae]
        ids = [format_sae_latent(i, layer=sae_weights.layer) for i in range(latents.shape[1])]
        columns.append((ids, latents))
        meta.update({fid: FeatureMeta(layer=sae_weights.layer) for fid in ids})
    tokens.keep(hooks)
    records = write_parquet_dataset(out / "records", _rows(model, prompts, train_ids, columns), meta)
    _write_directions(out, directions, n_calibration=len(train), n_held_out=len(held))
    return {"records": records, "criterion": criterion, "hookpoints": hooks, "pooling": pooling, "targets": targets,
            "loaded": loaded, "directions": directions, "tokens": tokens,
            "model_info": {"name": loaded.name, "family": loaded.family, "n_layers": loaded.n_layers,
                           "d_model": loaded.d_model, "source": loaded.source, "device": str(loaded.device),
                           "dtype": str(loaded.dtype)}}


@dataclass(slots=True)
class TokenActivations:
    """Per-token activations of the harvested prompts, every position (the first included)."""

    by_hook: dict[str, Harvested]
    """Per hookpoint name: token rows sorted by prompt, then position."""
    n_prompts: int
    """Number of prompts harvested."""
    prompt_index: dict[str, int]
    """Index of each prompt id (and each text, for examples without an id) in the harvest."""

    def rows(self, hook: str, prompt: int, exclude_first: bool = True) -> np.ndarray:
        """Row indices of one prompt's tokens at ``hook`` (its first position left out by default)."""
        got = self.by_hook[hook]
        lo, hi = np.searchsorted(got.row_prompt, [prompt, prompt + 1])
        rows = np.arange(lo, hi)
        return rows[got.token_index[rows] >= 1] if exclude_first and got.token_index is not None else rows

    def pooled(self, hook: str, pooling: str) -> np.ndarray:
        """float32 [n_prompts, width]: the ``last`` token, or ``mean`` / ``max`` over tokens after the first."""
        got = self.by_hook[hook]
        if pooling == "last":
            return got.acts[np.searchsorted(got.row_prompt, np.arange(self.n_prompts), side="right") - 1]
        reduce = np.mean if pooling == "mean" else np.max
        return np.stack([reduce(got.acts[self.rows(hook, i)], axis=0) for i in range(self.n_prompts)])

    def keep(self, hooks: Sequence[str]) -> None:
        """Drop the activations of every hookpoint but ``hooks`` (frees an SAE-only hookpoint)."""
        self.by_hook = {h: v for h, v in self.by_hook.items() if h in hooks}


def harvest_tokens(
    loaded: Any, texts: list[str], hooks: Sequence[str], *, pooling: str, progress: Progress | None = None,
    prompt_ids: Sequence[str] | None = None,
) -> TokenActivations:
    """One harvest pass of ``texts`` at ``hooks``, kept per token; checks ``pooling`` can pool every text."""
    from interp_agent.core.models import harvest
    from interp_agent.core.models.harvest import check_options, tokenize

    if pooling not in ("last", "mean", "max"):
        raise ValidationError(f"pooling must be last, mean or max, got {pooling!r}")
    check_options(16, HIGHLIGHT_MAX_LENGTH, pooling)
    ids = tokenize(loaded.tokenizer, texts, HIGHLIGHT_MAX_LENGTH, pooling, True)  # mean/max need one after the first
    check_token_memory(loaded, ids, hooks)
    got = harvest(loaded, texts, list(dict.fromkeys(hooks)), pooling="token", exclude_first=False,
                  max_length=HIGHLIGHT_MAX_LENGTH, progress=progress)
    index = {t: i for i, t in enumerate(texts)} | {pid: i for i, pid in enumerate(prompt_ids or ())}
    return TokenActivations(got, len(texts), index)


def check_token_memory(loaded: Any, ids: Sequence[Sequence[int]], hooks: Sequence[str]) -> None:
    """Refuse, before any forward pass, a harvest whose per-token activations would exceed the budget.

    A live inspect keeps every token's activations at every hookpoint (float32) for pooling, SAE
    latents and token highlights, so its memory grows with prompts x tokens x total width.
    """
    from interp_agent.core.models import resolve_hookpoint

    n_tokens = sum(len(x) for x in ids)
    width = sum(resolve_hookpoint(loaded.model, h).width for h in dict.fromkeys(hooks))
    need = n_tokens * width * 4
    if need > TOKEN_MEMORY_BUDGET:
        raise ValidationError(
            f"a live inspect of {len(ids)} prompts ({n_tokens} tokens) at {len(set(hooks))} hookpoint(s) "
            f"({width} values a token) would hold {need / 2**30:.1f} GiB of per-token activations; "
            f"the budget is {TOKEN_MEMORY_BUDGET / 2**30:.0f} GiB",
            hint="name fewer hookpoints, or use fewer or shorter prompts (a few hundred a class is plenty "
                 "for a criterion); for corpus-scale harvests use export-records or train-sae, which stream",
        )


def _checked_sae(loaded: Any, sae: str | Path, model: str) -> Any:
    from interp_agent.core.models import resolve_hookpoint
    from interp_agent.core.sae import load_sae

    weights = load_sae(sae)
    width = resolve_hookpoint(loaded.model, weights.hookpoint).width
    if width != weights.W_enc.shape[0]:
        raise ValidationError(f"the SAE in {sae} reads {weights.W_enc.shape[0]} dims but {weights.hookpoint} "
                              f"of {model} has {width}", hint="use an SAE trained on this model")
    return weights


Columns = list[tuple[list[str], np.ndarray]]


def _feature_columns(
    tokens: TokenActivations, hooks: list[str], prompts: Sequence[ScoredPrompt], in_train: np.ndarray, pooling: str,
) -> tuple[Columns, dict[str, FeatureMeta], dict[str, tuple[str, np.ndarray]]]:
    """Basis features of every hookpoint and its contrast direction, pooled per prompt."""
    scores = np.array([p.criterion_score for p in prompts])
    positive = scores > (scores.min() + scores.max()) / 2
    columns: Columns = []
    meta: dict[str, FeatureMeta] = {}
    directions: dict[str, tuple[str, np.ndarray]] = {}
    for hook in hooks:
        acts = tokens.pooled(hook, pooling).astype(np.float64)  # [prompts, width]
        point = parse_hookpoint(hook)
        ids = basis_feature_ids(point, acts.shape[1])
        columns.append((ids, acts))
        meta.update({fid: FeatureMeta(layer=point.layer) for fid in ids})
        # contrast direction: difference of class means on the calibration (training) split only
        diff = acts[in_train & positive].mean(0) - acts[in_train & ~positive].mean(0)
        fid = format_direction("contrast", point)
        directions[fid] = (hook, diff)
        unit = diff / (np.linalg.norm(diff) or 1.0)
        columns.append(([fid], (acts @ unit)[:, None]))
        meta[fid] = FeatureMeta(
            label=f"contrast direction at {hook} (difference of class means, calibration split)", layer=point.layer,
        )
    return columns, meta, directions


def _sae_latents(tokens: TokenActivations, sae: Any, pooling: str) -> np.ndarray:
    """SAE latents per prompt: encoded per token, then pooled (last, mean or max; first position excluded)."""
    got = tokens.by_hook[sae.hookpoint]
    keep = got.token_index >= 1 if got.token_index is not None else np.ones(len(got.acts), bool)
    z = sae.encode(got.acts[keep].astype(np.float64))
    row_prompt = got.row_prompt[keep]
    out = np.zeros((tokens.n_prompts, z.shape[1]))
    for i in range(tokens.n_prompts):
        rows = np.nonzero(row_prompt == i)[0]
        if not len(rows):
            continue
        out[i] = z[rows[-1]] if pooling == "last" else (z[rows].max(0) if pooling == "max" else z[rows].mean(0))
    return out


def _rows(
    model: str, prompts: Sequence[ScoredPrompt], train_ids: set[str], columns: Columns
) -> Iterator[ActivationRecord]:
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


def _write_directions(
    out: Path, directions: dict[str, tuple[str, np.ndarray]], *, n_calibration: int, n_held_out: int
) -> None:
    arrays: dict[str, Any] = {k.replace("/", "_"): v for k, (_, v) in directions.items()}
    np.savez(out / DIRECTIONS_FILE, **arrays)
    write_json(out / "directions.json", {"schema_version": schema_version("directions"),
                                         "directions": {k: {"hookpoint": hook, "norm": float(np.linalg.norm(v)),
                                                            "key": k.replace("/", "_")}
                                                        for k, (hook, v) in directions.items()},
                                         "split": {"calibration": n_calibration, "held_out": n_held_out}})


def add_token_highlights(live: dict[str, Any], features: list[dict[str, Any]], *, n_features: int = 10) -> None:
    """Attach per-token activations (``examples[i].tokens``) to the top features' examples, in place.

    The values come from the harvest's own per-token activations: no forward pass runs here.
    """
    tokens: TokenActivations = live["tokens"]
    for feature in features[:n_features]:
        column = _highlight_column(feature["feature_id"], live["directions"], tokens)
        if column is None:
            continue
        hook, u = column
        got = tokens.by_hook[hook]
        names = got.tokens or []
        for example in feature.get("examples") or []:
            if not example.get("text"):
                continue
            i = tokens.prompt_index.get(example.get("prompt_id") or "", tokens.prompt_index.get(example["text"]))
            if i is None:
                continue
            rows = tokens.rows(hook, i)
            values = got.acts[rows, u] if isinstance(u, int) else got.acts[rows] @ u
            example["tokens"] = [[names[r], float(v)] for r, v in zip(rows, values, strict=True)]


def _highlight_column(
    fid: str, directions: dict[str, tuple[str, np.ndarray]], tokens: TokenActivations
) -> tuple[str, int | np.ndarray] | None:
    """Hookpoint and column (a dim index, or a unit direction) of a feature with token highlights."""
    if fid in directions:
        hook, vector = directions[fid]
        return hook, vector / (np.linalg.norm(vector) or 1.0)
    parsed = match_feature_id(fid)
    if parsed is None or parsed.kind not in ("dim", "neuron") or parsed.index is None:
        return None
    point = parsed.hookpoint
    if point is None or point.site not in ("hook_resid_post", "mlp.hook_post") or point.name not in tokens.by_hook:
        return None
    return point.name, parsed.index


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
    from interp_agent.core.interventions import InterveneConfig, run_interventions
    from interp_agent.core.models import load_model

    out = Path(out)
    criterion, prompts, pack_targets = load_criterion_set(criterion, dataset, pack)
    calibration, held = split_prompts(criterion, prompts, held_out_fraction=held_out_fraction, salt=split_salt)
    chosen, expected, directions = _chosen_features(report, features, top_k)
    loaded = load_model(model)
    target_list = _targets(loaded, chosen, directions, sae)
    behaviour, scorer_report = _behaviour_scorer(
        scorer, loaded, calibration, held, targets=list(targets or pack_targets or []) or None,
        min_auroc=min_scorer_auroc, max_new_tokens=max_new_tokens,
    )
    run = run_interventions(loaded, target_list, behaviour, calibration=calibration, held_out=held, criterion=criterion,
                            model_name=model, expected_sign=expected, progress=progress,
                            config=InterveneConfig(mode=mode, strengths=tuple(strengths)))
    out.mkdir(parents=True, exist_ok=True)
    paths = {"interventions": write_interventions(out / "interventions.jsonl", run.records)}
    summary = {
        "schema_version": schema_version("intervention_summary"),
        "model": model,
        "criterion": criterion,
        "provenance": run_provenance({"dataset": dataset, "report": report}),
        "settings": {"mode": mode, "strengths": list(strengths), "held_out_fraction": held_out_fraction,
                     "scorer": scorer, "split_salt": split_salt, "n_calibration": len(calibration),
                     "n_held_out": len(held)},
        "scorer": scorer_report.to_json() | (
            {"applied_to": f"greedy continuations of {max_new_tokens} tokens"} if scorer == "classifier" else {}),
        "features": run.features,
        "method": INTERVENE_METHOD,
    }
    return InterveneResult(summary=summary, paths=paths | {"summary": write_json(out / "summary.json", summary)})


INTERVENE_METHOD = (
    "strength chosen on calibration prompts (largest effect in the expected direction whose KL on the "
    "other class stays within budget); effects measured on held-out prompts with Student-t 95% "
    "intervals: removals (ablation, negative steering) on positives, pushes toward the criterion on "
    "negatives; controls: random directions of matched norm and random features of matched activation "
    "spread; side effects: KL of next-token distributions and score change on the other class; "
    "verdict causal when "
    "the interval excludes 0 and the effect exceeds every control, weak when one of the two holds, "
    "contradicts when the interval excludes 0 on the wrong side, else no_effect"
)
"""The ``method`` text of summary.json."""


def _chosen_features(
    report: str | Path | None, features: Sequence[str] | None, top_k: int
) -> tuple[list[str], dict[str, int], dict[str, tuple[str, np.ndarray]]]:
    """Features to intervene on, the sign each is expected to move the score, and the report's directions."""
    import json

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
                      if _intervenable(f["feature_id"]) or f["feature_id"] in directions]
            chosen = usable[:top_k]
            best_direction = next((f for f in usable if f.startswith("direction:")), None)
            if best_direction and best_direction not in chosen:
                chosen.append(best_direction)  # the contrast direction is always worth a causal test
    if not chosen:
        raise ValidationError("nothing to intervene on: give --report (with features) or --feature ID")
    return chosen, expected, directions


def _intervenable(fid: str) -> bool:
    """A residual dim (``L{l}:D{d}``), an MLP neuron (``L{l}:N{i}``) or an SAE latent of a known layer."""
    parsed = match_feature_id(fid)
    if parsed is None:
        return False
    if parsed.kind == "sae":
        return parsed.layer is not None
    return parsed.kind == "neuron" or (parsed.kind == "dim" and parsed.site == "hook_resid_post")


def _targets(
    loaded: Any, chosen: list[str], directions: dict[str, tuple[str, np.ndarray]], sae: str | Path | None
) -> list[Any]:
    """Intervention targets of the chosen features (SAE latents through the SAE given)."""
    from interp_agent.core.interventions import parse_target
    from interp_agent.core.models import resolve_hookpoint

    saes = {}
    if sae is not None:
        from interp_agent.core.sae import load_sae

        weights = load_sae(sae)
        saes[weights.layer] = weights
    width_of = {}
    for fid in chosen:
        if fid.startswith("SAE:"):
            continue
        hook = directions[fid][0] if fid in directions else _basis_hook(fid)
        width_of[hook] = resolve_hookpoint(loaded.model, hook).width
    for weights in saes.values():
        width = resolve_hookpoint(loaded.model, weights.hookpoint).width
        if width != weights.W_enc.shape[0]:
            raise ValidationError(f"the SAE reads {weights.W_enc.shape[0]} dims but {weights.hookpoint} has {width}")
    return [parse_target(fid, width_of, directions, saes) for fid in chosen]


def _basis_hook(fid: str) -> str:
    """The hookpoint of a basis feature id (its own site when the id says, else resid_post of its layer)."""
    parsed = match_feature_id(fid)
    if parsed is not None and parsed.hookpoint is not None:
        return parsed.hookpoint.name
    layer = fid[1:].split(":")[0]  # unparsed ids: let resolve_hookpoint / parse_target name what is wrong
    return f"blocks.{layer}.mlp.hook_post" if ":N" in fid else f"blocks.{layer}.hook_resid_post"


def _behaviour_scorer(
    scorer: str, loaded: Any, calibration: list[ScoredPrompt], held: list[ScoredPrompt], *,
    targets: list[str] | None, min_auroc: float, max_new_tokens: int,
) -> tuple[Any, Any]:
    """The behaviour scorer fitted on calibration prompts, and its held-out report; EvidenceError near chance."""
    from interp_agent.core.criteria import TargetTokenScorer

    if scorer not in ("target", "classifier"):
        raise ValidationError(f"scorer must be 'target' or 'classifier', got {scorer!r}")
    if scorer == "classifier":
        from interp_agent.core.criteria import TextClassifierScorer
        from interp_agent.core.interventions.continuation import ContinuationScorer

        classifier = TextClassifierScorer(min_auroc=min_auroc)
        classifier.fit(calibration)
        scorer_report = classifier.evaluate(held)
        behaviour: Any = ContinuationScorer(classifier, max_new_tokens=max_new_tokens)
    else:
        target_scorer = TargetTokenScorer(targets=targets)
        target_scorer.fit(loaded.model, loaded.tokenizer, calibration)
        scorer_report = target_scorer.evaluate(loaded.model, loaded.tokenizer, held)
        behaviour = target_scorer
    if not scorer_report.usable or (scorer_report.auroc or 0) < min_auroc:
        raise EvidenceError(
            f"the behaviour scorer is near chance on held-out prompts (AUROC {scorer_report.auroc}); "
            "interventions measured with it would mean nothing",
            hint="give target tokens (--targets) or a clearer prompt set",
        )
    return behaviour, scorer_report
