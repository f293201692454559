"""Compact rows of an inspection report: what tool results and the command line show of each feature.

One definition for the MCP ``inspect`` / ``job_result`` rows (``server.models.FeatureRow``)
and the CLI's table and ``--json`` output, so the same report reads the same everywhere.
"""

from __future__ import annotations

from typing import Any

from interp_agent.core.reports.markdown import dig

COMPACT_FIELDS = (
    "rank", "feature_id", "label", "importance", "direction", "r_train", "r_held_out", "r_held_out_ci95",
    "auroc_held_out", "auroc_held_out_ci95", "n_held_out_prompts", "held_out_excludes_chance",
    "held_out_prompts_needed", "held_out_supported", "strong_causal_score", "notes",
)
"""Keys of a compact row, in order."""


def compact_feature(row: dict[str, Any]) -> dict[str, Any]:
    """A report feature row reduced to the fields an agent reads first, held-out intervals included."""
    association = row.get("association")
    held = dig(association, "held_out")
    power = dig(association, "held_out_power")
    n_prompts = dig(held, "n_prompts")
    return {
        "rank": row.get("rank"),
        "feature_id": row.get("feature_id"),
        "label": row.get("label"),
        "importance": row.get("importance"),
        "direction": row.get("direction"),
        "r_train": dig(association, "train", "pearson_r"),
        "r_held_out": dig(held, "pearson_r"),
        "r_held_out_ci95": dig(held, "pearson_r_ci95"),
        "auroc_held_out": dig(held, "auroc"),
        "auroc_held_out_ci95": dig(held, "auroc_ci95"),
        "n_held_out_prompts": n_prompts if n_prompts is not None else dig(power, "n_held_out_prompts"),
        "held_out_excludes_chance": dig(held, "ci_excludes_chance"),
        "held_out_prompts_needed": dig(power, "prompts_needed_at_train_r"),
        "held_out_supported": dig(association, "held_out_supported"),
        "strong_causal_score": dig(row, "causal", "strong_causal_score"),
        "notes": list(row.get("notes") or []),
    }
