"""Model diffing: a model against its fine-tune, with held-out evidence.

    texts      the built-in fine-tune text set: synthetic negative reviews from hand-written phrase lists
    finetune   a short, seeded CPU fine-tune of a few MLPs, saved as an HF folder with finetune.json; cached
    behaviour  the criterion's behaviour (log-likelihood of its held-out prompts), base vs tuned
    select     appear / vanish / change chosen on the selection half of the probes, shown on the held-out half
    diff       diff_models: one harvest per model, the selection, criterion movers and the behaviour change
    report     diff.json and diff.md
"""

from interp_agent.core.diffing.diff import DIFF_SCHEMA, diff_models
from interp_agent.core.diffing.finetune import (
    FINETUNE_DIR_ENV,
    FinetuneResult,
    FinetuneSpec,
    build_finetune,
    ensure_finetuned,
    finetune_root,
    read_manifest,
)
from interp_agent.core.diffing.select import DiffConfig

__all__ = [
    "DIFF_SCHEMA",
    "FINETUNE_DIR_ENV",
    "DiffConfig",
    "FinetuneResult",
    "FinetuneSpec",
    "build_finetune",
    "diff_models",
    "ensure_finetuned",
    "finetune_root",
    "read_manifest",
]
