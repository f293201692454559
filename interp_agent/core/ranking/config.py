"""Settings of a ranking run."""

from __future__ import annotations

from dataclasses import asdict, dataclass
from typing import Any

from interp_agent.core.errors import ValidationError

HELD_OUT_FRACTION = 0.3
"""Default expected share of prompts held out as evidence (every tool's default, so their splits agree)."""
SPLIT_SALT = "interp-agent"
"""Default salt of the prompt-id hash (``interp_agent.core.ranking.splits``); change it to draw another split."""


@dataclass(frozen=True, slots=True)
class RankingConfig:
    """How features are ranked against a criterion."""

    held_out_fraction: float = HELD_OUT_FRACTION
    """Share of prompts (by hash of prompt_id) kept out of ranking and used as evidence."""
    split_salt: str = SPLIT_SALT
    """Salt of the prompt hash; change it to draw a different split."""
    top_k: int = 20
    """Number of features in the report."""
    candidates: int = 200
    """Features (highest |r| on the training split) that get the full second-pass analysis."""
    bootstrap: int = 50
    """Poisson bootstrap resamples of the training split used for stability."""
    seed: int = 0
    """Seed of the bootstrap weights."""
    alpha: float = 0.05
    """False discovery rate for q-values (significance and held-out support)."""
    auroc_bins: int = 1024
    """Histogram bins per feature for AUROC; ties within a bin count half."""
    hist_bins: int = 32
    """Bins of the histograms drawn in the report (must divide auroc_bins)."""
    n_examples: int = 5
    """Top-activating examples kept per feature."""
    n_probes: int = 256
    """Probe prompts whose activations fingerprint a feature for cross-model matching."""

    def __post_init__(self) -> None:
        if not 0.0 < self.held_out_fraction < 1.0:
            raise ValidationError(f"held_out_fraction must be in (0, 1), got {self.held_out_fraction}; "
                                  f"{HELD_OUT_FRACTION} is typical")
        for name in ("top_k", "candidates", "n_examples", "n_probes", "auroc_bins", "hist_bins"):
            if getattr(self, name) < 1:
                raise ValidationError(f"{name} must be at least 1, got {getattr(self, name)}")
        if self.bootstrap < 2:
            raise ValidationError(f"bootstrap must be at least 2 resamples, got {self.bootstrap}; 50 is typical")
        if not 0.0 < self.alpha < 1.0:
            raise ValidationError(f"alpha must be in (0, 1), got {self.alpha}")
        if self.auroc_bins % self.hist_bins:
            raise ValidationError(
                f"hist_bins ({self.hist_bins}) must divide auroc_bins ({self.auroc_bins}); try hist_bins=32"
            )
        if self.candidates < self.top_k:
            raise ValidationError(f"candidates ({self.candidates}) must be at least top_k ({self.top_k})")

    def to_json(self) -> dict[str, Any]:
        """The settings as a JSON object."""
        return asdict(self)
