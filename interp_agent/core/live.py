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
from interp_agent.core.errors import EvidenceError, ValidationError, arg
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
from interp_agent.core.ranking.config import HELD_OUT_FRACTION, SPLIT_SALT
from interp_agent.core.ranking.verdict import VERDICT_RULE_TEXT

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
        raise ValidationError(f"a live model needs prompts: {arg('dataset')} (scored prompts JSONL) or {arg('pack')}")
    if not criterion:
        raise ValidationError(f"{arg('criterion')} is required with {arg('dataset')}")
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
    held_out_fraction: float = HELD_OUT_FRACTION,
    split_salt: str = SPLIT_SALT,
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
    held_out_fraction: float = HELD_OUT_FRACTION,
    split_salt: str = SPLIT_SALT,
    min_scorer_auroc: float = 0.6,
    scorer: str = "auto",
    max_new_tokens: int = 12,
    sae: str | Path | None = None,
    probe_hookpoint: str | None = None,
    progress: Progress | None = None,
) -> InterveneResult:
    """Intervene on features of ``model`` with controls; write interventions.jsonl and summary.json into ``out``.

    Features come from ``report`` (its top ``top_k`` that can be intervened on, with the
    directions saved beside it) or from ``features``. The behaviour score (``scorer``):

    - ``target``: next-token probability mass on target tokens (given, from the pack, or
      inferred on calibration prompts: then stand-ins, flagged in the summary);
    - ``classifier``: an all-MiniLM-L6-v2 classifier fitted on calibration prompts, applied
      to the model's greedy continuations of ``max_new_tokens`` tokens;
    - ``probe``: a logistic-regression probe on the model's residual stream
      (``probe_hookpoint``, default the last block's ``hook_resid_post``, mean-pooled) for
      criteria about the input itself;
    - ``auto`` (default): chosen by :data:`SCORER_RULE`.

    Every scorer is validated on calibration prompts only, on the kind of text it is applied
    to (``validated_on``), and must beat ``min_scorer_auroc`` there and on held-out prompts
    before it is used.
    """
    from interp_agent.core.interventions import InterveneConfig, run_interventions
    from interp_agent.core.models import load_model

    out = Path(out)
    plan = _plan_intervention(criterion, dataset=dataset, pack=pack, report=report, features=features, sae=sae,
                              top_k=top_k, targets=targets, scorer=scorer, held_out_fraction=held_out_fraction,
                              split_salt=split_salt)
    loaded = load_model(model)
    target_list, behaviour, scorer_report = _targets_and_scorer(
        loaded, plan, sae, min_auroc=min_scorer_auroc, max_new_tokens=max_new_tokens, probe_hookpoint=probe_hookpoint)
    run = run_interventions(loaded, target_list, behaviour, calibration=plan.calibration, held_out=plan.held,
                            criterion=plan.criterion, model_name=model, expected_sign=plan.expected, progress=progress,
                            config=InterveneConfig(mode=mode, strengths=tuple(strengths)))
    return _write_intervention(out, model, plan, run, scorer_report, inputs={"dataset": dataset, "report": report},
                               scorer=scorer, mode=mode, strengths=strengths, held_out_fraction=held_out_fraction,
                               split_salt=split_salt, max_new_tokens=max_new_tokens)


INTERVENE_METHOD = (
    "strength chosen on calibration prompts (largest effect in the expected direction whose KL on the "
    "other class stays within budget; the grid widens on calibration prompts when the chosen strength uses "
    "under 10% of the budget); effects measured on held-out prompts with Student-t 95% "
    "intervals: removals (ablation, negative steering) on positives, pushes toward the criterion on "
    "negatives; controls: random directions of matched norm and random features of matched activation "
    "spread; side effects: KL of next-token distributions and score change on the other class; "
    "stability: the held-out verdict at the other strengths tried, reported only; " + VERDICT_RULE_TEXT
)
"""The ``method`` text of summary.json."""


@dataclass(frozen=True, slots=True)
class _InterventionPlan:
    """What ``intervene`` settles before any model loads: prompts, features and behaviour scorer."""

    criterion: str
    """The criterion text (the pack's when none was given)."""
    calibration: list[ScoredPrompt]
    held: list[ScoredPrompt]
    """The held-out prompts."""
    chosen: list[str]
    """Ids of the features to intervene on."""
    expected: dict[str, int]
    """The sign each feature of the report is expected to move the score."""
    directions: dict[str, tuple[str, np.ndarray]]
    """The report's saved directions: feature id -> (hookpoint, vector)."""
    targets: list[str] | None
    """Target tokens given (by the caller, else the pack's), or None."""
    scorer_kind: str
    """``target``, ``classifier`` or ``probe``."""
    scorer_rule: str | None
    """Which step of :data:`SCORER_RULE` chose the scorer (None when the caller named it)."""


def _plan_intervention(
    criterion: str | None, *, dataset: str | Path | None, pack: str | None, report: str | Path | None,
    features: Sequence[str] | None, sae: str | Path | None, top_k: int, targets: Sequence[str] | None,
    scorer: str, held_out_fraction: float, split_salt: str,
) -> _InterventionPlan:
    """Check the inputs (ids, files and SAE folder), then split the prompts, choose the features and the scorer."""
    from interp_agent.core.preflight import check_intervene_inputs

    report_file = None if report is None else (Path(report) / "report.json" if Path(report).is_dir() else report)
    check_intervene_inputs({"dataset": dataset, "pack": pack, "report": report_file, "sae": sae,
                            "features": features})  # ids, files and SAE folder, before any model loads
    criterion, prompts, pack_targets = load_criterion_set(criterion, dataset, pack)
    calibration, held = split_prompts(criterion, prompts, held_out_fraction=held_out_fraction, salt=split_salt)
    chosen, expected, directions = _chosen_features(report, features, top_k)
    given_targets = list(targets or pack_targets or []) or None
    scorer_kind, scorer_rule = resolve_scorer(scorer, criterion, given_targets)
    return _InterventionPlan(criterion, calibration, held, chosen, expected, directions, given_targets,
                             scorer_kind, scorer_rule)


def _targets_and_scorer(
    loaded: Any, plan: _InterventionPlan, sae: str | Path | None, *, min_auroc: float, max_new_tokens: int,
    probe_hookpoint: str | None,
) -> tuple[list[Any], Any, Any]:
    """The intervention targets of the planned features, and the behaviour scorer (with its held-out report)."""
    target_list = _targets(loaded, plan.chosen, plan.directions, sae)
    behaviour, scorer_report = _behaviour_scorer(
        plan.scorer_kind, loaded, plan.calibration, plan.held, targets=plan.targets,
        min_auroc=min_auroc, max_new_tokens=max_new_tokens,
        edited_hookpoints=[t.hookpoint for t in target_list], probe_hookpoint=probe_hookpoint,
    )
    return target_list, behaviour, scorer_report


def _write_intervention(
    out: Path, model: str, plan: _InterventionPlan, run: Any, scorer_report: Any, *,
    inputs: dict[str, str | Path | None], scorer: str, mode: str, strengths: Sequence[float],
    held_out_fraction: float, split_salt: str, max_new_tokens: int,
) -> InterveneResult:
    """Write interventions.jsonl, then summary.json (whose provenance hashes ``inputs`` after the first write)."""
    out.mkdir(parents=True, exist_ok=True)
    paths = {"interventions": write_interventions(out / "interventions.jsonl", run.records)}
    summary = {
        "schema_version": schema_version("intervention_summary"),
        "model": model,
        "criterion": plan.criterion,
        "provenance": run_provenance(inputs),
        "settings": {"mode": mode, "strengths": list(strengths), "held_out_fraction": held_out_fraction,
                     "scorer": plan.scorer_kind, "split_salt": split_salt, "n_calibration": len(plan.calibration),
                     "n_held_out": len(plan.held), "scorer_requested": scorer, "scorer_rule": plan.scorer_rule},
        "scorer": scorer_report.to_json()
        | {"applied_to": _applied_to(plan.scorer_kind, scorer_report, max_new_tokens)},
        "warnings": scorer_warnings(scorer_report),
        "features": run.features,
        "method": INTERVENE_METHOD,
        "verdict_rule": run.verdict_rule,
    }
    return InterveneResult(summary=summary, paths=paths | {"summary": write_json(out / "summary.json", summary)})


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


SCORERS: tuple[str, ...] = ("auto", "target", "classifier", "probe")
"""The behaviour scorers ``intervene`` accepts."""

SCORER_RULE = (
    "auto picks the behaviour scorer from what the caller gave, never from the prompts: "
    "(1) target tokens given (targets=… or the pack's) -> 'target'; "
    "(2) else, the criterion text names the next token ('next token', 'next-token' or 'next word') -> 'target' "
    "with targets inferred on calibration prompts (stand-ins, flagged in the summary); "
    "(3) else -> 'probe': a scored prompt set labels the prompts themselves, so without next-token targets "
    "the criterion is read as a property of the input, on the model's own representation of it. "
    "'classifier' (criteria about what the model writes) is never picked automatically: ask for it"
)
"""How ``scorer='auto'`` is decided (recorded as ``settings.scorer_rule`` in summary.json)."""

_NEXT_TOKEN_PHRASES = ("next token", "next word")


def resolve_scorer(scorer: str, criterion: str, targets: Sequence[str] | None) -> tuple[str, str | None]:
    """The scorer to use (``target``, ``classifier`` or ``probe``) and, for ``auto``, which step of
    :data:`SCORER_RULE` chose it (None when the caller named the scorer)."""
    if scorer not in SCORERS:
        raise ValidationError(f"scorer must be one of {list(SCORERS)}, got {scorer!r}",
                              hint="'probe' for criteria about the prompt itself, 'target' for the next token")
    if scorer != "auto":
        return scorer, None
    if targets:
        return "target", "auto (1): target tokens were given"
    text = " ".join(criterion.casefold().replace("-", " ").split())
    if any(phrase in text for phrase in _NEXT_TOKEN_PHRASES):
        return "target", "auto (2): no target tokens, and the criterion names the next token: targets are inferred"
    return "probe", "auto (3): no target tokens, and the criterion does not name the next token: an input probe"


def _applied_to(kind: str, report: Any, max_new_tokens: int) -> str:
    """What the behaviour score is computed on, in words (``scorer.applied_to`` of summary.json)."""
    if kind == "classifier":
        return f"greedy continuations of {max_new_tokens} tokens"
    if kind == "probe":
        return (f"the probe's probability on the (edited) forward pass of each prompt, read at {report.hookpoint} "
                f"({report.pooling}-pooled over the prompt's tokens after the first)")
    return "next-token probability mass on the target tokens after each (edited) prompt"


def scorer_warnings(report: Any) -> list[str]:
    """Warnings about the behaviour scorer for summary.json (empty when none)."""
    out: list[str] = []
    if report.targets_inferred:
        out.append(
            f"target tokens inferred as stand-ins: no targets were given, so the scorer chose the tokens most "
            f"raised after positive calibration prompts ({', '.join(repr(t) for t in report.targets or ())}); the "
            "behaviour score is their next-token probability, which the criterion does not name. For a criterion "
            "about the prompt itself an input probe (scorer='probe') may fit better; for a next-token criterion "
            "give targets"
        )
    return out


def _probe_hookpoint(loaded: Any, requested: str | None, edited: Sequence[str]) -> str:
    """The probe's hookpoint: the one asked for, else the last block's resid_post; never upstream of an edit."""
    from interp_agent.core.criteria.probe import default_probe_hookpoint

    hook = requested or default_probe_hookpoint(loaded.model)
    point = match_hookpoint(hook)
    if point is None:
        raise ValidationError(f"unsupported probe hookpoint {hook!r}", hint="e.g. blocks.29.hook_resid_post")
    for name in edited:
        e = match_hookpoint(name)
        if e is not None and (e.layer > point.layer or (e.layer == point.layer and point.site != "hook_resid_post")):
            raise ValidationError(
                f"the probe at {hook} reads upstream of (or beside) the edit at {name}: the edit could not change "
                "what the probe reads",
                hint="leave probe_hookpoint unset (the last block's hook_resid_post), or name one at a later layer",
            )
    return hook


def _fitted_scorer(
    scorer: str, loaded: Any, calibration: list[ScoredPrompt], *, targets: list[str] | None, min_auroc: float,
    max_new_tokens: int, edited_hookpoints: Sequence[str], probe_hookpoint: str | None,
) -> tuple[Any, Any]:
    """The behaviour scorer fitted on calibration prompts, and the scorer that holds its validation and reports.

    The two differ for ``classifier`` only: the behaviour scorer applies the fitted text
    classifier (validated here, on the continuations of the calibration prompts) to the
    model's greedy continuations.
    """
    from interp_agent.core.criteria import TargetTokenScorer

    if scorer not in ("target", "classifier", "probe"):
        raise ValidationError(f"scorer must be 'target', 'classifier' or 'probe', got {scorer!r}")
    model, tokenizer = loaded.model, loaded.tokenizer
    if scorer == "classifier":
        from interp_agent.core.criteria import TextClassifierScorer
        from interp_agent.core.interventions.continuation import ContinuationScorer

        classifier = TextClassifierScorer(min_auroc=min_auroc)
        classifier.fit(calibration)
        behaviour: Any = ContinuationScorer(classifier, max_new_tokens=max_new_tokens)
        continuations = behaviour.continuations(model, tokenizer, [p.text for p in calibration])
        classifier.validate_on_texts(continuations, calibration, on="continuations", method=(
            f"classifier fitted on calibration prompts, applied to the model's greedy {max_new_tokens}-token "
            "continuations of those prompts, each labelled by its prompt's class"))
        return behaviour, classifier
    if scorer == "probe":
        from interp_agent.core.criteria.probe import InputProbeScorer

        behaviour = InputProbeScorer(_probe_hookpoint(loaded, probe_hookpoint, edited_hookpoints), min_auroc=min_auroc)
        behaviour.fit(model, tokenizer, calibration)
        return behaviour, behaviour
    behaviour = TargetTokenScorer(targets=targets, min_auroc=min_auroc)
    behaviour.fit(model, tokenizer, calibration)
    return behaviour, behaviour


def _require_validated(scorer: str, fitted: Any, min_auroc: float) -> None:
    """EvidenceError unless the fitted scorer's validation on calibration prompts is usable."""
    validation = fitted.validation
    if validation is None or not validation.usable:
        auroc = None if validation is None else round(validation.auroc, 3)
        raise EvidenceError(
            f"the {scorer} scorer is near chance in validation on calibration "
            f"{validation.on if validation else 'prompts'} (AUROC {auroc} < {min_auroc}; "
            f"{validation.method if validation else 'not validated'}); interventions measured with it would "
            "mean nothing",
            hint=fitted.validation_hint(),
        )


def _behaviour_scorer(
    scorer: str, loaded: Any, calibration: list[ScoredPrompt], held: list[ScoredPrompt], *,
    targets: list[str] | None, min_auroc: float, max_new_tokens: int,
    edited_hookpoints: Sequence[str] = (), probe_hookpoint: str | None = None,
) -> tuple[Any, Any]:
    """The behaviour scorer fitted on calibration prompts, and its held-out report.

    Each scorer is validated on calibration prompts only, on the kind of text it is applied
    to, before any held-out prompt is scored: the target scorer on the prompts' next-token
    mass (cross-validated when the targets are inferred), the probe by cross-validation on
    the prompts, the classifier on the model's greedy continuations of the prompts.
    EvidenceError when validation or the held-out AUROC is below ``min_auroc``.
    """
    behaviour, fitted = _fitted_scorer(scorer, loaded, calibration, targets=targets, min_auroc=min_auroc,
                                       max_new_tokens=max_new_tokens, edited_hookpoints=edited_hookpoints,
                                       probe_hookpoint=probe_hookpoint)
    _require_validated(scorer, fitted, min_auroc)
    model, tokenizer = loaded.model, loaded.tokenizer
    if scorer == "classifier":
        held_continuations = behaviour.continuations(model, tokenizer, [p.text for p in held])
        scorer_report = fitted.evaluate(held, texts=held_continuations, on="continuations")
    else:
        scorer_report = fitted.evaluate(model, tokenizer, held)
    if not scorer_report.usable or (scorer_report.auroc or 0) < min_auroc:
        raise EvidenceError(
            f"the behaviour scorer is near chance on held-out prompts (AUROC {scorer_report.auroc}); "
            "interventions measured with it would mean nothing",
            hint="give target tokens (--targets) or a clearer prompt set; for a criterion about the prompt itself "
                 "try scorer='probe'",
        )
    return behaviour, scorer_report
