"""Explanations: corpus evidence per feature, explainers, and scores on held-out contexts.

- ``corpus``: corpora (files, folders, ``hf:`` ids, the built-in generated one) cut into contexts.
- ``evidence``: what a corpus harvest keeps per feature, and its Parquet folder.
- ``select``: which contexts represent a feature (top, quantile-stratified, random non-firing).
- ``harvest`` / ``sources``: the one streamed pass, the feature sources and their logit-lens output side.
- ``explanations``: explanations, their authors and scores, and ``explanations.jsonl``.
- ``explainers``: the agent's evidence view, the token-statistics, embedded-model and chat explainers.
- ``scoring`` / ``judges`` / ``chat``: held-out scoring protocols (embedding, detection, fuzzing) with nulls
  and bootstrap intervals, their judges, and the OpenAI-compatible endpoint.
- ``scorers``: every score of a run's explanations, the output side (steering) included.
- ``labels``: imports (Neuronpedia, Goodfire, feature JSONL) and exports (label tables, Neuronpedia).
"""
