"""What a run costs in forward passes and seconds: the estimates behind the evidence plan.

Forward passes are counted as ``core.models.passes`` counts them: one sequence through the
model once. The counts below follow each step's own loop, so they are estimates, not promises:

- inspect (hf, saelens): one pass per prompt (every hookpoint is read in the same pass); the
  records, features, toy and neuronpedia backends run no model.
- intervene, per feature: the strength sweep on calibration prompts (``n_calibration`` per
  strength), then on held-out prompts the chosen strength, the controls (3 random directions
  and 2 matched features by default, ``InterveneConfig``) and the other strengths of its sign;
  once per run, the unedited baseline of every prompt. A ``classifier`` scorer generates 12
  tokens per scored prompt, so each of those passes counts 12 times.
- explain: one pass per harvested context (``max_contexts``, default 2048), then explaining and
  scoring per feature, timed separately (``seconds_per_feature`` of explain.json).

Seconds per pass come from the dossier's own runs when any filed run has both seconds and
passes; otherwise :data:`DEFAULT_SECONDS_PER_PASS`, measured for the embedded model on a
2-core CPU.
"""

from __future__ import annotations

DEFAULT_SECONDS_PER_PASS = 0.056
"""Seconds per forward pass of the embedded smollm2-135m (float32, 2 CPU cores, batches of 32 sequences of
64 tokens): the demo's explain harvest read 256 contexts in 14.3 s. Shorter prompts take less; a larger model
takes roughly proportionally more (parameters x tokens)."""
DEFAULT_BASIS = ("default: smollm2-135m on a 2-core CPU, about 0.056 s per 64-token sequence "
                 "(the demo's explain harvest: 256 contexts in 14.3 s)")
MODEL_LOAD_SECONDS = 5.0
"""Loading the embedded model from its cache and tokenizing: a fixed cost of every call that runs a model."""
NO_MODEL_SECONDS = {"inspect": 2.0, "match": 10.0, "score_explanation": 10.0, "feature_evidence": 1.0}
"""Calls that run no language model: a toy or records inspect (about 1 s measured, plus margin), match with
the text component (loading the sentence encoder, about 7 s, once per process), score_explanation (the sentence
encoder on the held-out contexts) and feature_evidence (reading Parquet)."""
EXPLAIN_SECONDS_PER_FEATURE = 2.0
"""Explaining and embedding-scoring one feature with the local explainer (the demo: 1.8 s)."""
N_CONTROLS = 5
"""Control interventions per feature: 3 random directions and 2 matched features (``InterveneConfig``)."""
GENERATED_TOKENS = 12
"""Tokens a classifier scorer generates per scored prompt (``intervene``'s ``max_new_tokens``)."""
DEFAULT_MAX_CONTEXTS = 2048
"""explain's default ``max_contexts``."""


def inspect_passes(backend: str | None, n_prompts: int) -> int:
    """Forward passes of an inspect run: one per prompt when a model is harvested, else none."""
    return n_prompts if backend in ("hf", "saelens") else 0


def intervene_passes(n_features: int, n_calibration: int, n_held_out: int, n_strengths: int, *,
                     scorer: str | None = None) -> int:
    """Forward passes of an intervene run (see the module docstring)."""
    other_same_sign = max(0, (n_strengths + 1) // 2 - 1)
    per_feature = n_calibration * n_strengths + n_held_out * (1 + N_CONTROLS + other_same_sign)
    passes = n_features * per_feature + n_calibration + n_held_out
    return passes * (GENERATED_TOKENS if scorer == "classifier" else 1)


def explain_passes(n_contexts: int) -> int:
    """Forward passes of an explain run's harvest: one per context."""
    return n_contexts
