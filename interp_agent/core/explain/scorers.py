"""Scoring every explanation of a run: the embedding score, judged detection and fuzzing, the output side.

:class:`ExplainScorer` holds what all explanations of a run share: the evidence, a sentence
encoder that embeds each context once (:class:`MemoEncoder`), the judge, and the pool the
random-explanation null draws from (another feature's explanation, chosen by a seeded
generator keyed on the feature id, never the feature's own).

The output-side score (``output``) steers the feature: its write direction, scaled to its
largest activation on the corpus, is added at the hookpoint while the model continues
neutral prompts (the openings of held-out contexts where the feature does not fire). The
explanation should embed closer to the steered continuations than to the unsteered ones:
AUROC of its cosine similarity, steered (positive) vs unsteered (negative), with the same
nulls. Its provenance is ``interventional``.
"""

from __future__ import annotations

import random
from collections.abc import Sequence
from typing import Any

import numpy as np

from interp_agent.core.explain.evidence import EvidenceSet, FeatureEvidence
from interp_agent.core.explain.explanations import Explanation, Score
from interp_agent.core.explain.harvest import FeatureSource
from interp_agent.core.explain.judges import ModelJudge, run_judge
from interp_agent.core.explain.scoring import detection_task, embedding_score, fuzzing_task, score_from_item_scores

OUTPUT_PROMPTS = 8
OUTPUT_PROMPT_TOKENS = 12
OUTPUT_NEW_TOKENS = 16


class MemoEncoder:
    """Embeds each distinct text once per process run (contexts recur across features)."""

    def __init__(self, encoder: Any) -> None:
        self.encoder = encoder
        self.cache: dict[str, np.ndarray] = {}

    def encode(self, texts: list[str]) -> np.ndarray:
        """Unit-norm embeddings [len(texts), d], computing only texts not seen before."""
        missing = list(dict.fromkeys(t for t in texts if t not in self.cache))
        if missing:
            for text, row in zip(missing, self.encoder.encode(missing), strict=True):
                self.cache[text] = row
        if not texts:
            return np.zeros((0, 384), dtype=np.float32)
        return np.stack([self.cache[t] for t in texts])


class ExplainScorer:
    """Scores explanations of one evidence set by the methods asked for."""

    def __init__(self, evidence: EvidenceSet, methods: Sequence[str], *, encoder: Any, judge: Any = None,
                 loaded: Any = None, source: FeatureSource | None = None, pool: dict[str, str] | None = None,
                 seed: int = 0) -> None:
        self.evidence = evidence
        self.methods = tuple(methods)
        self.encoder = encoder
        self.judge = judge
        self.loaded = loaded
        self.source = source
        self.pool = dict(pool or {})
        self.seed = seed

    @classmethod
    def for_run(cls, evidence: EvidenceSet, explanations: Sequence[Explanation], methods: Sequence[str], *,
                judge: str | None, loaded: Any, source: FeatureSource | None, seed: int) -> ExplainScorer:
        """A scorer whose null pool is the run's own explanations (the local explainer fills gaps)."""
        from interp_agent.core.matching.text import load_text_encoder

        encoder = MemoEncoder(load_text_encoder())
        pool = {e.feature_id: e.text for e in explanations}
        scorer = cls(evidence, methods, encoder=encoder, judge=make_judge(judge, loaded), loaded=loaded,
                     source=source, pool=pool, seed=seed)
        scorer.warm({e.feature_id for e in explanations})
        return scorer

    def warm(self, feature_ids: set[str]) -> None:
        """Embed every example context of ``feature_ids`` in one batch."""
        texts = {self.evidence.contexts.text(e.context) for fid in feature_ids if fid in self.evidence.features
                 for e in self.evidence.features[fid].examples}
        self.encoder.encode(sorted(texts))

    def null_for(self, feature_id: str) -> tuple[str | None, str | None]:
        """(feature, explanation) of the random-explanation null for ``feature_id``."""
        others = sorted(f for f in self.pool if f != feature_id)
        if not others:
            others = [f for f in self.evidence.features if f != feature_id
                      and self.evidence.features[f].n_active_contexts > 0][:50]
            if not others:
                return None, None
            from interp_agent.core.explain.explainers import TokenExplainer

            pick = random.Random(f"{self.seed}:{feature_id}").choice(others)
            return pick, TokenExplainer().explain(self.evidence.features[pick], self.evidence.contexts).text
        pick = random.Random(f"{self.seed}:{feature_id}").choice(others)
        return pick, self.pool[pick]

    def score(self, explanation: Explanation) -> tuple[Score, ...]:
        """Every asked-for score of ``explanation`` (held-out contexts only)."""
        feature = self.evidence.feature(explanation.feature_id)
        null_feature, null_text = self.null_for(explanation.feature_id)
        out: list[Score] = []
        for method in self.methods:
            if method == "embedding":
                out.append(embedding_score(feature, self.evidence.contexts, explanation.text, self.encoder,
                                           null_text=null_text, null_feature=null_feature,
                                           shown=explanation.shown_contexts, seed=self.seed))
            elif method in ("detection", "fuzzing"):
                out.append(self._judged(method, feature, explanation, null_feature, null_text))
            elif method == "output":
                out.append(self.output_score(feature, explanation.text, null_feature, null_text))
        return tuple(out)

    def _judged(self, method: str, feature: FeatureEvidence, explanation: Explanation, null_feature: str | None,
                null_text: str | None) -> Score:
        build = detection_task if method == "detection" else fuzzing_task
        task, key = build(feature, self.evidence.contexts, explanation.text, shown=explanation.shown_contexts,
                          seed=self.seed)
        return run_judge(self.judge, task, key, null_text=null_text, null_feature=null_feature, seed=self.seed)

    def output_score(self, feature: FeatureEvidence, text: str, null_feature: str | None,
                     null_text: str | None) -> Score:
        """Steered vs unsteered continuations, by similarity to the explanation (see the module docstring)."""
        steered, plain, prompts = self.continuations(feature)
        texts = [text] + ([null_text] if null_text else [])
        emb = self.encoder.encode(texts + steered + plain)
        sims = emb[: len(texts)] @ emb[len(texts):].T
        labels = [True] * len(steered) + [False] * len(plain)
        score = score_from_item_scores("output", labels, sims[0], threshold=None,
                                       null_scores=sims[1] if null_text else None, contexts=prompts,
                                       null_feature=null_feature, seed=self.seed,
                                       note=f"steered at {feature.max_activation:.3g} x its write direction, "
                                            f"{OUTPUT_NEW_TOKENS} greedy tokens on {len(prompts)} held-out openings; "
                                            f"steered, e.g.: {' | '.join(repr(t[:60]) for t in steered[:2])}; "
                                            f"unsteered: {' | '.join(repr(t[:60]) for t in plain[:2])}")
        from dataclasses import replace

        return replace(score, provenance="interventional")

    def continuations(self, feature: FeatureEvidence) -> tuple[list[str], list[str], list[int]]:
        """(steered, unsteered) greedy continuations of held-out non-firing openings, and their contexts."""
        import torch

        from interp_agent.core.interventions.continuation import ContinuationScorer
        from interp_agent.core.models.hooks import edit

        if self.loaded is None or self.source is None or self.source.output_directions is None:
            from interp_agent.core.errors import ValidationError

            raise ValidationError("the output score needs the model and the features' write directions",
                                  hint="run it inside explain, with the model loaded")
        contexts = self.evidence.contexts
        prompts = [e.context for e in feature.select("random", "held_out")][:OUTPUT_PROMPTS]
        texts = ["".join(contexts.tokens[c][1:OUTPUT_PROMPT_TOKENS]) for c in prompts]
        gen = ContinuationScorer(None, max_new_tokens=OUTPUT_NEW_TOKENS)
        model, tok = self.loaded.model, self.loaded.tokenizer
        plain = gen.continuations(model, tok, texts)
        column = self.source.ids.index(feature.feature_id)
        vec = torch.as_tensor(self.source.output_directions[column] * feature.max_activation, dtype=torch.float32)
        with edit(model, self.evidence.manifest.hookpoint, lambda acts: acts + vec.to(acts.device, acts.dtype)):
            steered = gen.continuations(model, tok, texts)
        return steered, plain, prompts


def make_judge(judge: str | None, loaded: Any) -> Any:
    """The judge named: ``model`` (the embedded model: a weak local judge), ``chat``, or None."""
    if judge == "model":
        return ModelJudge(loaded)
    if judge == "chat":
        from interp_agent.core.explain.chat import ChatEndpoint, ChatJudge

        return ChatJudge(ChatEndpoint.from_env())
    return None
