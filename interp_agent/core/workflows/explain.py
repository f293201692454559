"""``explain``: harvest corpus evidence for features, explain them, score the explanations on held-out contexts.

Steps (each a core piece; this module only sequences them and writes the run folder):

1. load the model, resolve the hookpoint, build the feature source (an SAE folder, the
   hookpoint's basis, or an inspect run's directions) and tokenize the corpus into contexts,
   half of them held out by a hash fixed before any activation is seen;
2. one streamed harvest pass (``core.explain.harvest``) and the logit-lens output side;
3. explanations: a local explainer (token frequencies, or the embedded model prompted with the
   evidence), a chat endpoint, imported ones, or none (the agent writes them through the tools);
4. scores on held-out contexts only: the embedding score always, detection and fuzzing with a
   judge, the output side by steering; each next to the random-explanation and shuffled-label nulls.

The run folder holds ``evidence/`` (Parquet, reused by every later explain or score call),
``explanations.jsonl``, ``labels.parquet``, ``explain.json`` (settings, timings, per-feature scores
and their distribution) and ``report.html`` (feature cards).
"""

from __future__ import annotations

import random
import time
from collections.abc import Sequence
from dataclasses import dataclass, field, replace
from pathlib import Path
from typing import Any, Literal, cast

import numpy as np

from interp_agent.core.artifacts import run_provenance, schema_version, write_json, write_text
from interp_agent.core.errors import EvidenceError, ValidationError, arg
from interp_agent.core.explain.corpus import load_corpus, tokenize_corpus
from interp_agent.core.explain.evidence import EvidenceManifest, EvidenceSet, FeatureEvidence, write_evidence
from interp_agent.core.explain.explanations import Explanation, Score, ScoredExplanation, write_explanations
from interp_agent.core.explain.harvest import FeatureSource, harvest_evidence
from interp_agent.core.explain.select import Selection
from interp_agent.core.progress import Progress

ExplainerName = Literal["local", "model", "chat", "none"]
EXPLAINERS: tuple[str, ...] = ("local", "model", "chat", "none")
SCORERS: tuple[str, ...] = ("embedding", "detection", "fuzzing", "output")
JUDGES: tuple[str, ...] = ("model", "chat")
EXPLAIN_SCHEMA = schema_version("explain")
MIN_FIRING_CONTEXTS = 12
"""A feature is explained only when it fires in at least this many contexts (about 6 per split)."""


@dataclass(frozen=True, slots=True)
class ExplainRequest:
    """Everything an explain run needs; every field has the default a user would expect."""

    out: str
    """Run folder."""
    model: str = "smollm2-135m"
    sae: str | None = None
    """SAE folder (SAE Lens or sparsify); its hookpoint is used unless ``hookpoint`` says otherwise."""
    hookpoint: str | None = None
    """For basis features (``L15:D3``, ``L15:N7``) without an SAE; defaults to the SAE's."""
    feature_ids: tuple[str, ...] = ()
    """Features to explain; empty: ``n_features`` live ones drawn at random (seeded)."""
    n_features: int = 32
    corpus: str = "builtin"
    text_field: str = "text"
    max_contexts: int | None = 2048
    context_length: int = 64
    held_out_fraction: float = 0.5
    explainer: ExplainerName = "local"
    scorers: tuple[str, ...] = ("embedding",)
    judge: str | None = None
    """``model`` (the embedded model, a weak judge) or ``chat``; needed by detection and fuzzing."""
    explanations: str | None = None
    """A file of explanations to score as well (``explanations.jsonl``, a feature JSONL, a Neuronpedia export)."""
    seed: int = 0
    batch_size: int = 32
    device: str = "auto"
    directions: dict[str, np.ndarray] = field(default_factory=dict)
    """Learned directions to explain (feature id -> vector at ``hookpoint``)."""
    report: str | None = None
    """An inspect report: explain its top ``top_k`` features and write the report again with them attached."""
    top_k: int = 10


def check_request(req: ExplainRequest) -> None:
    """Model-free checks of a request; ValidationError names the argument."""
    if req.explainer not in EXPLAINERS:
        raise ValidationError(f"{arg('explainer', req.explainer)} is not one of {list(EXPLAINERS)}")
    bad = [s for s in req.scorers if s not in SCORERS]
    if bad or not req.scorers:
        raise ValidationError(f"{arg('scorers', list(req.scorers))}: use some of {list(SCORERS)}")
    judged = [s for s in req.scorers if s in ("detection", "fuzzing")]
    if judged and req.judge not in JUDGES:
        raise ValidationError(f"{arg('scorers')} {judged} need a judge: {arg('judge')} 'model' (the embedded model, "
                              "a weak judge) or 'chat' (an OpenAI-compatible endpoint)",
                              hint="or let the agent judge through the score_explanation tool")
    if req.sae is None and req.hookpoint is None and not req.directions and req.report is None:
        raise ValidationError(f"give {arg('sae')} (an SAE folder) or {arg('hookpoint')} (to explain its basis "
                              "features)")
    if not 1 <= req.n_features <= 100_000:
        raise ValidationError(f"{arg('n_features', req.n_features)} must be from 1 to 100000")
    if req.explainer == "none" and req.explanations is None:
        raise ValidationError(f"{arg('explainer')} 'none' with no {arg('explanations')} leaves nothing to score",
                              hint="use explainer 'local', or submit explanations with the score_explanation tool")


@dataclass(slots=True)
class ExplainRun:
    """What a run produced, in memory."""

    evidence: EvidenceSet
    explained: dict[str, ScoredExplanation]
    summary: dict[str, Any]
    folder: Path


def run_explain(req: ExplainRequest, *, progress: Progress | None = None) -> ExplainRun:
    """Run the whole explain step (see the module docstring) and write its folder."""
    check_request(req)
    if req.report is not None:
        req = from_report(req)
    timings: dict[str, float] = {}
    started = time.perf_counter()
    loaded, point, source = _load(req)
    timings["load_s"] = time.perf_counter() - started
    evidence = _harvest(req, loaded, point, source, timings, progress)
    folder = Path(req.out)
    write_evidence(folder / "evidence", evidence)
    chosen, warnings = _chosen(req, evidence)
    explanations = _explanations(req, evidence, chosen, loaded, timings, progress)
    explained = _score_all(req, evidence, explanations, loaded, source, timings, warnings, progress)
    summary = write_run(folder, req, evidence, explained, timings, warnings)
    if req.report is not None:
        attach_to_report(req.report, explained, folder)
    return ExplainRun(evidence, explained, summary, folder)


def from_report(req: ExplainRequest) -> ExplainRequest:
    """``req`` with the hookpoint, features and directions of its report's top features."""
    assert req.report is not None
    hook, ids, directions = report_features(req.report, req.top_k)
    if any(f.startswith("SAE:") for f in ids) and req.sae is None:
        raise ValidationError(f"the top features of {arg('report')} are SAE latents ({ids[:3]}); pass {arg('sae')}, "
                              "the SAE folder they came from")
    return replace(req, hookpoint=hook, feature_ids=tuple(ids), directions=directions)


def _load(req: ExplainRequest) -> tuple[Any, Any, FeatureSource]:
    from interp_agent.core.explain.sources import basis_source, direction_source, sae_source
    from interp_agent.core.models.hookpoints import resolve_hookpoint
    from interp_agent.core.models.loading import load_model

    loaded = load_model(req.model, device=cast(Any, req.device))  # load_model checks the device name
    ids = list(req.feature_ids) or None
    if req.sae is not None:
        from interp_agent.core.sae.lens import load_sae

        weights = load_sae(req.sae)
        point = resolve_hookpoint(loaded.model, req.hookpoint or weights.hookpoint)
        return loaded, point, sae_source(weights, point, feature_ids=ids, path=req.sae, device=loaded.device)
    point = resolve_hookpoint(loaded.model, str(req.hookpoint))
    if req.directions:
        return loaded, point, direction_source(req.directions, point)
    return loaded, point, basis_source(loaded, point, feature_ids=ids)


def _harvest(req: ExplainRequest, loaded: Any, point: Any, source: FeatureSource, timings: dict[str, float],
             progress: Progress | None) -> EvidenceSet:
    from interp_agent.core.explain.sources import logit_effects
    from interp_agent.core.shards import is_manifest, stored_contexts

    t0 = time.perf_counter()
    stored = None
    if is_manifest(req.corpus):  # a corpus harvest: its stored activations stand in for the model's pass
        contexts, corpus_info, stored = stored_contexts(
            req.corpus, model=loaded.name, hookpoint=point.name, tokenizer=loaded.tokenizer,
            context_length=req.context_length, max_contexts=req.max_contexts,
            held_out_fraction=req.held_out_fraction, seed=req.seed)
    else:
        corpus = load_corpus(req.corpus, text_field=req.text_field)
        corpus_info = corpus.describe()
        contexts = tokenize_corpus(loaded.tokenizer, corpus, context_length=req.context_length,
                                   max_contexts=req.max_contexts, held_out_fraction=req.held_out_fraction,
                                   seed=req.seed)
    timings["tokenize_s"] = time.perf_counter() - t0
    selection = Selection()
    features, harvest_t = harvest_evidence(loaded, contexts, point, source, selection=selection,
                                           batch_size=req.batch_size, seed=req.seed, progress=progress,
                                           stored=stored)
    timings.update(harvest_t)
    t0 = time.perf_counter()
    if source.output_directions is not None:
        for fid, (up, down) in zip(source.ids, logit_effects(loaded, source.output_directions), strict=True):
            features[fid] = replace(features[fid], promoted=up, suppressed=down)
    timings["logits_s"] = time.perf_counter() - t0
    manifest = EvidenceManifest(
        model=loaded.name, hookpoint=point.name, feature_source=source.description, corpus=corpus_info,
        context_length=contexts.length, n_contexts=len(contexts), held_out_fraction=req.held_out_fraction,
        seed=req.seed, n_tokens=len(contexts) * (contexts.length - 1),
        settings={"n_top": selection.n_top, "n_bins": selection.n_bins, "per_bin": selection.per_bin,
                  "n_random": selection.n_random, "batch_size": req.batch_size},
        provenance={**run_provenance({"sae": req.sae}), "timings": dict(timings)})
    return EvidenceSet(manifest, contexts, features)


MIN_HELD_OUT = 3
"""Held-out activating and non-firing contexts a feature needs to be scored (``scoring.MIN_PER_CLASS``)."""


def live_features(evidence: EvidenceSet) -> list[str]:
    """Features that can be explained and scored: they fire in at least MIN_FIRING_CONTEXTS contexts, in the
    explain split, and in at least MIN_HELD_OUT held-out contexts, and stay quiet in as many held-out ones."""
    out = []
    for fid, f in evidence.features.items():
        if (f.n_active_contexts >= MIN_FIRING_CONTEXTS and f.select("top", "explain")
                and len(f.select(("top", "quantile"), "held_out")) >= MIN_HELD_OUT
                and len(f.select("random", "held_out")) >= MIN_HELD_OUT):
            out.append(fid)
    return out


def _chosen(req: ExplainRequest, evidence: EvidenceSet) -> tuple[list[str], list[str]]:
    """The features to explain, and a warning for each named one that cannot be (too rare, or never quiet)."""
    live = set(live_features(evidence))
    if req.feature_ids:
        skipped = [f for f in req.feature_ids if f not in live]
        warnings = [f"{f}: not explained: it fires in {evidence.features[f].n_active_contexts} of "
                    f"{len(evidence.contexts)} contexts; explaining and scoring need at least {MIN_FIRING_CONTEXTS} "
                    f"firing contexts and {MIN_HELD_OUT} held-out contexts where it is quiet" for f in skipped]
        return [f for f in req.feature_ids if f in live], warnings
    rng = random.Random(req.seed)
    order = list(evidence.features)
    picked = sorted(rng.sample(sorted(live, key=order.index), min(req.n_features, len(live))), key=order.index)
    warnings = [] if picked else [f"no feature of {len(order)} fires often enough to explain "
                                  f"(>= {MIN_FIRING_CONTEXTS} contexts) and stays quiet in held-out contexts"]
    return picked, warnings


def _explanations(req: ExplainRequest, evidence: EvidenceSet, chosen: Sequence[str], loaded: Any,
                  timings: dict[str, float], progress: Progress | None) -> list[Explanation]:
    t0 = time.perf_counter()
    out: list[Explanation] = []
    if req.explanations is not None:
        from interp_agent.core.explain.labels import read_explanations_file

        out += [e for e in read_explanations_file(req.explanations) if e.feature_id in evidence.features]
    explainer = _explainer(req, loaded)
    if explainer is not None:
        for i, fid in enumerate(chosen, 1):
            out.append(explainer.explain(evidence.features[fid], evidence.contexts))
            if progress is not None:
                progress("explaining", i, len(chosen))
    timings["explain_s"] = time.perf_counter() - t0
    return out


def _explainer(req: ExplainRequest, loaded: Any) -> Any:
    from interp_agent.core.explain import explainers

    if req.explainer == "local":
        return explainers.TokenExplainer()
    if req.explainer == "model":
        return explainers.ModelExplainer(loaded)
    if req.explainer == "chat":
        from interp_agent.core.explain.chat import ChatEndpoint

        return explainers.ChatExplainer(ChatEndpoint.from_env())
    return None


def _score_all(req: ExplainRequest, evidence: EvidenceSet, explanations: Sequence[Explanation], loaded: Any,
               source: FeatureSource, timings: dict[str, float], warnings: list[str], progress: Progress | None
               ) -> dict[str, ScoredExplanation]:
    from interp_agent.core.explain.scorers import ExplainScorer

    t0 = time.perf_counter()
    scorer = ExplainScorer.for_run(evidence, explanations, req.scorers, judge=req.judge, loaded=loaded,
                                   source=source, seed=req.seed)
    out: dict[str, ScoredExplanation] = {}
    for i, explanation in enumerate(explanations, 1):
        key = explanation.feature_id if explanation.feature_id not in out else \
            f"{explanation.feature_id}#{explanation.author.kind}"
        try:
            out[key] = ScoredExplanation(explanation, scorer.score(explanation))
        except EvidenceError as exc:  # an imported or named feature the held-out contexts cannot score
            warnings.append(f"{explanation.feature_id}: not scored: {exc.message}")
        if progress is not None:
            progress("scoring", i, len(explanations))
    timings["score_s"] = time.perf_counter() - t0
    return out


def score_distribution(explained: dict[str, ScoredExplanation], method: str = "embedding") -> dict[str, Any]:
    """Quartiles of a method's AUROC and of its random-explanation null, and how many beat the null."""
    scores: list[Score] = [s for item in explained.values() for s in item.scores if s.method == method]
    if not scores:
        return {"method": method, "n": 0}

    def quartiles(values: list[float]) -> dict[str, float]:
        q = np.percentile(values, [25, 50, 75]) if values else [float("nan")] * 3
        return {"q25": float(q[0]), "median": float(q[1]), "q75": float(q[2])}

    real = [s.auroc.value for s in scores if s.auroc.value is not None]
    null = [s.null_random_explanation.value for s in scores if s.null_random_explanation.value is not None]
    shuffled = [s.null_shuffled_labels.value for s in scores if s.null_shuffled_labels.value is not None]
    margin = [s.margin_over_random.value for s in scores if s.margin_over_random.value is not None]
    return {"method": method, "n": len(scores), "auroc": quartiles(real), "null_random_explanation": quartiles(null),
            "null_shuffled_labels": quartiles(shuffled), "margin_over_random": quartiles(margin),
            "n_beat_random": sum(s.beats_random for s in scores),
            "rule": "beats random: the paired-bootstrap 95% interval of AUROC minus the random-explanation null's "
                    "AUROC lies above 0"}


def feature_summary(feature: FeatureEvidence) -> dict[str, Any]:
    """The few numbers of a feature's evidence that go next to its explanation."""
    return {"density": feature.density, "max_activation": feature.max_activation,
            "n_active_contexts": feature.n_active_contexts, "kind": feature.kind,
            "promoted": [t for t, _ in feature.promoted[:5]]}


MAX_CARDS = 100
"""Feature cards report.html shows (explained features in order, about 22 KB each); explain.json has every score."""


def report_verdicts(report_path: str | Path | None) -> dict[str, dict[str, Any]]:
    """Causal verdicts of a report's features, for their cards: verdict, effect, interval, controls."""
    if report_path is None:
        return {}
    from interp_agent.core.graphs import load_report_file

    report, _ = load_report_file(report_path)
    out = {}
    for f in report.get("features", []):
        causal = f.get("causal")
        if isinstance(causal, dict) and causal.get("verdict"):
            out[f["feature_id"]] = {"verdict": causal["verdict"], "effect": causal.get("mean_effect"),
                                    "ci95": causal.get("ci95"), "control_effect": causal.get("control_effect"),
                                    "provenance": causal.get("provenance", "interventional")}
    return out


def write_run(folder: Path, req: ExplainRequest | None, evidence: EvidenceSet,
              explained: dict[str, ScoredExplanation], timings: dict[str, float],
              warnings: Sequence[str] = ()) -> dict[str, Any]:
    """Write explanations.jsonl, labels.parquet, explain.json and report.html; return explain.json's content."""
    from dataclasses import asdict

    from interp_agent.core.explain.explanations import to_json
    from interp_agent.core.explain.labels import write_label_table
    from interp_agent.core.reports.explain_html import render_explain_html

    folder.mkdir(parents=True, exist_ok=True)
    write_explanations(folder / "explanations.jsonl", explained.values())
    write_label_table(folder / "labels.parquet", explained.values())
    m = evidence.manifest
    n_contexts = len(evidence.contexts)
    n_feat = max(len(evidence.features), 1)
    summary = {
        "schema_version": EXPLAIN_SCHEMA, "model": m.model, "hookpoint": m.hookpoint, "corpus": m.corpus,
        "feature_source": m.feature_source, "n_contexts": n_contexts,
        "n_held_out_contexts": int(evidence.contexts.held_out.sum()), "context_length": m.context_length,
        "n_features_harvested": len(evidence.features), "n_live_features": len(live_features(evidence)),
        "request": None if req is None else {k: v for k, v in asdict(req).items() if k != "directions"},
        "timings": timings, "warnings": list(warnings),
        "seconds_per_feature": {"harvest": timings.get("harvest_s", 0.0) / n_feat,
                                "explain_and_score": (timings.get("explain_s", 0.0) + timings.get("score_s", 0.0))
                                / max(len(explained), 1)},
        "distribution": {method: score_distribution(explained, method) for method in SCORERS},
        "provenance_note": "explanation scores are measured on held-out contexts that no explainer was shown "
                           "(held_out_text); output-side scores steer the model (interventional)",
        "features": [{**to_json(item), "evidence": feature_summary(evidence.features[item.explanation.feature_id])}
                     for item in explained.values()],
    }
    write_json(folder / "explain.json", summary)
    shown = list(dict.fromkeys(item.explanation.feature_id for item in explained.values()))[:MAX_CARDS]
    by_feature = {item.explanation.feature_id: item for item in explained.values()}
    title = "interp-agent explanations"
    if len(shown) < len(by_feature):
        title += f" (cards of the first {len(shown)} of {len(by_feature)} explained features; explain.json has all)"
    write_text(folder / "report.html", render_explain_html(
        evidence, by_feature, feature_ids=shown, verdicts=report_verdicts(req.report if req else None), title=title))
    return summary


# --- explaining the top features of an inspect report ----------------------------------------


def report_features(report_path: str | Path, top_k: int) -> tuple[str, list[str], dict[str, np.ndarray]]:
    """(hookpoint, feature ids, directions) of a report's top features of the same place and kind as its best one.

    A live harvest computes one kind of feature at one hookpoint per pass, so the top ``top_k``
    features that share the best harvestable feature's hookpoint and kind (SAE latent, basis
    feature or saved direction) are taken, in rank order.

    Raises:
        ValidationError: the report has no feature with a hookpoint a live model can harvest.
    """
    from interp_agent.core.graphs import load_report_file
    from interp_agent.core.ids import match_feature_id
    from interp_agent.core.live import load_directions

    report, report_path = load_report_file(report_path)
    directions = load_directions(Path(report_path).parent)
    group: tuple[str, str] | None = None
    ids: list[str] = []
    for f in report.get("features", [])[:top_k]:
        fid = f["feature_id"]
        parsed = match_feature_id(fid)
        where = directions[fid][0] if fid in directions else _hookpoint_of(parsed)
        if where is None:
            continue
        kind = "direction" if fid in directions else ("sae" if parsed is not None and parsed.kind == "sae" else "basis")
        group = group or (where, kind)
        if (where, kind) == group:
            ids.append(fid)
    if group is None:
        raise ValidationError(f"{arg('report')}: none of its top {top_k} features names a hookpoint "
                              "(L{layer}:D{i}, L{layer}:N{i}, SAE:L{layer}:F{i} or a saved direction)",
                              hint="explain an SAE's latents with sae, or a hookpoint's basis with hookpoint")
    return group[0], ids, {f: directions[f][1] for f in ids if f in directions}


def _hookpoint_of(parsed: Any) -> str | None:
    if parsed is None:
        return None
    if parsed.kind == "sae" and parsed.layer is not None:
        return f"blocks.{parsed.layer}.hook_resid_post"
    return parsed.hookpoint.name if parsed.hookpoint is not None else None


def attach_to_report(report_path: str | Path, explained: dict[str, ScoredExplanation], folder: Path) -> Path:
    """Copy the report into ``folder`` with each explained feature's ``explained`` entry, and render it again."""
    from dataclasses import asdict

    from interp_agent.core.graphs import load_report_file
    from interp_agent.core.reports.html import render_html

    report, _ = load_report_file(report_path)
    by_feature = {item.explanation.feature_id: item for item in explained.values()}
    for f in report.get("features", []):
        item = by_feature.get(f["feature_id"])
        if item is not None:
            f["explained"] = {"text": item.explanation.text, "author": asdict(item.explanation.author),
                              "scores": [asdict(s) for s in item.scores]}
    path = write_json(folder / "report.json", report)
    write_text(folder / "inspect_report.html", render_html(report))
    return path


def compact_summary(summary: dict[str, Any], limit: int = 10) -> dict[str, Any]:
    """The few lines of an explain result a caller reads first: distribution and best-scored features."""
    rows = []
    for f in summary["features"][:limit]:
        emb = next((s for s in f["scores"] if s["method"] == "embedding"), None)
        rows.append({"feature_id": f["feature_id"], "explanation": f["text"], "author": f["author"]["kind"],
                     "embedding_auroc": None if emb is None else emb["auroc"],
                     "null_random_explanation": None if emb is None else emb["null_random_explanation"],
                     "beats_random": None if emb is None else _beats(emb)})
    return {"model": summary["model"], "hookpoint": summary["hookpoint"], "corpus": summary["corpus"]["name"],
            "n_contexts": summary["n_contexts"], "n_explained": len(summary["features"]),
            "warnings": summary.get("warnings", [])[:10],
            "distribution": summary["distribution"]["embedding"], "features": rows}


def _beats(score: dict[str, Any]) -> bool:
    ci = (score.get("margin_over_random") or {}).get("ci95")
    return bool(ci) and ci[0] > 0
