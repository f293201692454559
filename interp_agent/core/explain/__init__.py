"""Explanations: corpus evidence per feature, explainers, and scores on held-out contexts.

- ``evidence``: what a corpus harvest keeps per feature, and its Parquet folder.
- ``select``: which contexts represent a feature (top, quantile-stratified, random non-firing).
- ``explanations``: explanations, their authors and scores, and ``explanations.jsonl``.
"""
