"""Model names that stand for a built model: ``finetune:default``, the built-in fine-tune of SmolLM2-135M."""

from __future__ import annotations

from interp_agent.core.progress import Progress

FINETUNE_DEFAULT = "finetune:default"
"""The name of the built-in fine-tune (``core.diffing.finetune.ensure_finetuned()`` with its defaults)."""


def resolve_model_name(name: str, *, progress: Progress | None = None) -> str:
    """``name``, or for :data:`FINETUNE_DEFAULT` the folder of the built-in fine-tune (built once if missing)."""
    if name.strip() != FINETUNE_DEFAULT:
        return name
    from interp_agent.core.diffing.finetune import ensure_finetuned

    return str(ensure_finetuned(progress=progress))
