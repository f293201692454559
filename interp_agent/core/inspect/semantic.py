"""Ranking a feature dump without activations: label similarity to the criterion, plus intervention evidence."""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass, replace
from typing import Any

import numpy as np

from interp_agent.core.formats.features import FeatureRecord
from interp_agent.core.inspect.report import FeatureEvidence
from interp_agent.core.ranking import METHOD, RankingConfig
from interp_agent.core.ranking.causal import CausalEvidence
from interp_agent.core.ranking.importance import IMPORTANCE_FORMULA, causal_component, importance
from interp_agent.core.ranking.rank import imported_block

SEMANTIC_ONLY_WARNING = (
    "the features backend measures no association: features are ordered by how close their "
    "label/explanation is to the criterion (semantic, all-MiniLM-L6-v2) and by any intervention "
    "evidence; add --records for measured association"
)
"""The caveat of a ranking by label similarity alone."""

SEMANTIC_METHOD = {
    "importance": IMPORTANCE_FORMULA,
    "semantic": "cosine similarity of all-MiniLM-L6-v2 embeddings of the criterion and of label + explanation "
    "(examples when there is no label)",
    "causal": METHOD["causal"],
}


@dataclass(frozen=True, slots=True)
class Ranked:
    """What a ranking gives the report: the ranked features and what the report says about them."""

    summary: dict[str, Any]
    """Counts behind the ranking."""
    warnings: tuple[str, ...]
    """The ranking's caveats, most important first."""
    method: dict[str, Any]
    """How each number was computed."""
    probe_prompts: tuple[str, ...]
    """Prompt ids of the probe set."""
    features: tuple[FeatureEvidence, ...]
    """Ranked features, best first."""
    models_seen: tuple[str, ...] = ()
    """Models named by the records."""
    synthetic_input: bool = False
    """The records say they are synthetic."""

    @classmethod
    def from_body(cls, body: dict[str, Any]) -> Ranked:
        """From ``rank_records``' result."""
        return cls(summary=dict(body["summary"]), warnings=tuple(body["warnings"]), method=dict(body["method"]),
                   probe_prompts=tuple(body["probe_prompts"]),
                   features=tuple(FeatureEvidence.from_json(f) for f in body["features"]),
                   models_seen=tuple(body.get("models_seen", ())), synthetic_input=bool(body.get("synthetic_input")))


def rank_feature_dump(
    feats: Sequence[FeatureRecord], criterion: str, config: RankingConfig, evidence: CausalEvidence | None,
    *, caveat: str = SEMANTIC_ONLY_WARNING,
) -> Ranked:
    """Order a feature dump by label similarity to ``criterion`` and any intervention evidence.

    Args:
        caveat: the warning that says nothing was measured (a backend may word it for its source).
    """
    from interp_agent.core.matching.text import default_text_encoder

    # behind the on-disk embedding cache: a rerun on the same features loads no model (nor torch)
    encoder = default_text_encoder()
    sims = encoder.encode([_describe(f) for f in feats]) @ encoder.encode([criterion])[0]
    sims_F = np.asarray(sims, dtype=np.float64)
    rows = [_row(f, float(sim), evidence, config.n_examples) for f, sim in zip(feats, sims_F, strict=True)]
    rows.sort(key=lambda r: (-r.importance, r.feature_id))
    ranked = tuple(replace(r, rank=rank) for rank, r in enumerate(rows[: config.top_k], start=1))
    summary = {"n_rows": 0, "n_prompts": 0, "n_features_tested": len(feats),
               "n_intervention_rows": evidence.n_rows if evidence else 0,
               "n_control_rows": evidence.n_control_rows if evidence else 0}
    return Ranked(summary=summary, warnings=(caveat,), method=dict(SEMANTIC_METHOD), probe_prompts=(), features=ranked)


def _row(f: FeatureRecord, sim: float, evidence: CausalEvidence | None, n_examples: int) -> FeatureEvidence:
    fc = evidence.features.get(f.feature_id) if evidence else None
    # no measured association to agree with: evidence in either direction shows relevance
    c = causal_component(fc.strong_causal_score, fc.effect.mean_effect, 1.0) if fc else 0.0
    a = max(0.0, sim)
    return FeatureEvidence(
        feature_id=f.feature_id, rank=0, importance=importance(a, None, None, c),
        direction=None if fc is None else ("promotes" if fc.effect.mean_effect >= 0 else "suppresses"),
        label=f.label, explanation=f.explanation, layer=f.layer, source=f.source or "features",
        association=None, specificity=None, stability=None, causal=fc.to_json(None) if fc else None,
        importance_components={"semantic": {"value": a, "provenance": "semantic"},
                               "causal": {"value": c, "provenance": "interventional"} if fc else None},
        provenance={"semantic": "semantic", "causal": "interventional" if fc else None,
                    "examples": "imported", "imported": "imported"},
        examples=tuple({"prompt_id": None, "text": t, "token_index": None, "token": None, "activation": None,
                        "criterion_score": None} for t in f.examples[:n_examples]),
        histogram=None, probe_activations=None,
        decoder_signature=list(f.decoder_signature) if f.decoder_signature else None,
        imported=imported_block(f), notes=(),
    )


def _describe(f: FeatureRecord) -> str:
    parts = [p for p in (f.label, f.explanation) if p]
    if not parts:
        parts = list(f.examples[:3]) or [f.feature_id]
    return ". ".join(parts)
