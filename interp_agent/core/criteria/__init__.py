"""Criteria: a criterion in words becomes scored prompt sets and behaviour scorers.

- :mod:`.packs`: built-in, hand-written criterion packs and the checks they pass.
- :mod:`.sets`: :class:`CriterionSet` from a file, examples or a pack; the calibration /
  held-out split shared with ranking.
- :mod:`.scorers`: scorers that measure the criterion on model behaviour (next-token
  probability on target tokens, or a text classifier) and refuse when near chance.

Importing this package does not import torch or the sentence encoder.
"""

from __future__ import annotations

from interp_agent.core.criteria.packs import (
    CriterionPack,
    LengthStats,
    binary_labels,
    length_stats,
    list_packs,
    load_pack,
    pack_dirs,
    validate_pack,
)
from interp_agent.core.criteria.scorers import (
    MIN_AUROC,
    ScorerReport,
    TargetTokenScorer,
    auroc,
    choose_threshold,
    fit_target_scorer,
    next_token_probabilities,
)
from interp_agent.core.criteria.sets import (
    CriterionSet,
    CriterionWarning,
    from_examples,
    from_file,
    from_pack,
    split,
)
from interp_agent.core.criteria.text_scorer import TextClassifierScorer, fit_text_scorer

__all__ = [
    "MIN_AUROC",
    "CriterionPack",
    "CriterionSet",
    "CriterionWarning",
    "LengthStats",
    "ScorerReport",
    "TargetTokenScorer",
    "TextClassifierScorer",
    "auroc",
    "binary_labels",
    "choose_threshold",
    "fit_target_scorer",
    "fit_text_scorer",
    "from_examples",
    "from_file",
    "from_pack",
    "length_stats",
    "list_packs",
    "load_pack",
    "next_token_probabilities",
    "pack_dirs",
    "split",
    "validate_pack",
]
