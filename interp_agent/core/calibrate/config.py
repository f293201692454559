"""What a calibration plants and what it expects: difficulty levels, their thresholds, and the run's settings."""

from __future__ import annotations

from dataclasses import asdict, dataclass, field
from typing import Any

from interp_agent.core.errors import ValidationError
from interp_agent.core.synthetic import MAX_PLANTED_EFFECT as MAX_EFFECT


@dataclass(frozen=True, slots=True)
class Thresholds:
    """What the pipeline must achieve on one level for ``CalibrationResult.passed``; None leaves a metric unchecked.

    Means are over seeds; the decoy and false-causal bounds hold on every seed, since one
    bad world is a failure a mean would hide.
    """

    min_precision: float | None = None
    """Least mean precision@k at k = number of true features."""
    max_always_on_rate: float | None = None
    """Most share of the top k (k = number of true features) any seed gives to always-on decoys."""
    min_spearman: float | None = None
    """Least mean Spearman correlation between the true features' planted and estimated effect sizes."""
    min_causal_recovery: float | None = None
    """Least mean share of true features whose verdict is ``causal``."""
    max_false_causal: float | None = None
    """Most share of zero-effect decoys judged ``causal`` on any seed."""
    require_held_out: bool = True
    """Every seed must hold prompts out, report held-out evidence, and rank the same when held-out scores change."""
    require_quiet_controls: bool = True
    """Every seed's report must summarise its control rows, which must not look causal (``metrics.controls_block``)."""

    def __post_init__(self) -> None:
        for name in ("min_precision", "max_always_on_rate", "min_causal_recovery", "max_false_causal"):
            value = getattr(self, name)
            if value is not None and not 0.0 <= value <= 1.0:
                raise ValidationError(f"Thresholds.{name} must be in [0, 1] or None, got {value}")
        if self.min_spearman is not None and not -1.0 <= self.min_spearman <= 1.0:
            raise ValidationError(f"Thresholds.min_spearman must be in [-1, 1] or None, got {self.min_spearman}")


@dataclass(frozen=True, slots=True)
class CalibrationLevel:
    """One difficulty of planted world: how strongly the true features show, how often they are absent, how noisy
    the interventions are."""

    name: str
    """Short name (``easy``, ``hard``), used in tables and file keys."""
    signal: float
    """Strength of the true features' dependence on the criterion (``PlantedConfig.signal``; 1.0 is the toy default)."""
    absent_rate: float = 0.0
    """Share of the prompts a true feature should fire on where it is absent (``PlantedConfig.absent_rate``)."""
    effect_noise: float = 0.05
    """Standard deviation of each intervention row's measurement noise, in score units (0..1)."""
    thresholds: Thresholds = field(default_factory=Thresholds)
    """What this level must achieve; the default checks only held-out use and quiet controls."""

    def __post_init__(self) -> None:
        if not self.name or not self.name.replace("-", "").replace("_", "").isalnum():
            raise ValidationError(f"CalibrationLevel.name must be a short word (letters, digits, -, _), "
                                  f"got {self.name!r}")
        if self.signal <= 0:
            raise ValidationError(f"CalibrationLevel.signal must be > 0, got {self.signal}; 1.0 is easy, 0.1 hard")
        if not 0.0 <= self.absent_rate < 1.0:
            raise ValidationError(f"CalibrationLevel.absent_rate must be in [0, 1), got {self.absent_rate}")
        if self.effect_noise < 0:
            raise ValidationError(f"CalibrationLevel.effect_noise must be >= 0, got {self.effect_noise}")


EASY = CalibrationLevel(
    name="easy", signal=1.0, absent_rate=0.1, effect_noise=0.05,
    thresholds=Thresholds(min_precision=0.8, max_always_on_rate=0.1, min_spearman=0.7, min_causal_recovery=0.8,
                          max_false_causal=0.0),
)
"""The toy backend's signal with a tenth of true activations missing: the pipeline must get this right."""

HARD = CalibrationLevel(
    name="hard", signal=0.2, absent_rate=0.3, effect_noise=0.15,
    thresholds=Thresholds(min_precision=0.3, max_always_on_rate=0.1, min_spearman=0.5, min_causal_recovery=0.5,
                          max_false_causal=0.25),
)
"""Weak true features (about as associated as the confounder-tied decoys), 30% absent, noisy interventions.

Over seeds 0-9 precision@8 is 0.53 +- 0.25 (seeds 0-2: 0.71): the bar of 0.3 is over ten times chance (8/318)
and about one seed-sd under the mean, so it catches a ranking that stops separating true features from decoys
without failing on an unlucky set of three seeds."""

EDGE = CalibrationLevel(name="edge", signal=0.15, absent_rate=0.3, effect_noise=0.15)
"""Past where the ranking holds: confounder-tied decoys outrank most true features. Reported, only held-out use
and controls checked."""

LEVELS = {level.name: level for level in (EASY, HARD, EDGE)}
"""The built-in levels by name (``calibrate --levels``)."""

DEFAULT_LEVELS = (EASY, HARD)
"""The levels ``calibrate`` runs unless told otherwise."""


@dataclass(frozen=True, slots=True)
class CalibrationConfig:
    """Which planted worlds a calibration builds and how it measures the ranking on them."""

    seeds: tuple[int, ...] = (0, 1, 2)
    """One planted world per seed and level; spreads are across these."""
    levels: tuple[CalibrationLevel, ...] = DEFAULT_LEVELS
    """Difficulty levels, each run on every seed."""
    n_prompts: int = 400
    """Prompts (one record each) per world."""
    n_true: int = 8
    """True features per world (the last one suppresses the criterion); each gets a distinct planted effect."""
    n_always_on: int = 60
    """Always-on, high-variance decoys."""
    n_rare: int = 60
    """Rare decoys (fire strongly on 2-4 positive prompts)."""
    n_confounded: int = 40
    """Confounder-tied decoys (correlated with the criterion through a confounder, no causal effect)."""
    n_noise: int = 150
    """Sparse random decoys (some serve as intervention controls)."""
    ks: tuple[int, ...] | None = None
    """Cut-offs of precision/recall@k and the decoy rates; None: n_true // 2, n_true and 2 * n_true."""
    effect_range: tuple[float, float] = (0.1, 0.4)
    """Smallest and largest planted |effect| of the true features (score units), evenly spaced between."""
    n_null: int = 4
    """Confounder-tied decoys given ablation rows with zero planted effect."""
    n_controls: int = 8
    """Sparse-noise features given ``random_feature`` control rows (8 x 8 rows: their pooled mean is tight enough
    that zero-effect controls rarely look causal by chance)."""
    prompts_per_feature: int = 8
    """Held-out prompts each intervened feature (and control) is ablated on."""
    explicit_zero_rate: float = 0.5
    """Share of rows that write absent true features as explicit zeros (the rest omit them)."""
    leakage_check: bool = True
    """Rank each world again with its held-out scores flipped; the ranking must not change."""

    def __post_init__(self) -> None:
        if not self.seeds:
            raise ValidationError("CalibrationConfig.seeds is empty; give at least one seed, e.g. (0, 1, 2)")
        if len(set(self.seeds)) != len(self.seeds):
            raise ValidationError(f"CalibrationConfig.seeds repeats a seed: {list(self.seeds)}")
        if not self.levels:
            raise ValidationError("CalibrationConfig.levels is empty; use DEFAULT_LEVELS")
        names = [lv.name for lv in self.levels]
        if len(set(names)) != len(names):
            raise ValidationError(f"CalibrationConfig.levels repeats a name: {names}")
        if self.n_true < 3:
            raise ValidationError(f"CalibrationConfig.n_true must be at least 3 (a rank correlation of effects needs "
                                  f"3), got {self.n_true}")
        for name in ("n_always_on", "n_rare", "n_confounded", "n_noise"):
            if getattr(self, name) < 0:
                raise ValidationError(f"CalibrationConfig.{name} must be >= 0, got {getattr(self, name)}")
        self._check_interventions()
        if self.ks is not None and not self.ks:
            raise ValidationError("CalibrationConfig.ks is empty; give at least one k, or None for the defaults")
        for k in self.cutoffs:
            if not 1 <= k <= self.n_features:
                raise ValidationError(f"CalibrationConfig.ks: k={k} must be in [1, {self.n_features}] (the features "
                                      "planted per world); lower k or plant more features")

    def _check_interventions(self) -> None:
        """Planted effects, null decoys and controls must fit the families they are drawn from."""
        if not 0 <= self.n_null <= self.n_confounded:
            raise ValidationError(f"CalibrationConfig.n_null must be in [0, n_confounded={self.n_confounded}], "
                                  f"got {self.n_null}")
        if not 1 <= self.n_controls <= self.n_noise:
            raise ValidationError(f"CalibrationConfig.n_controls must be in [1, n_noise={self.n_noise}] (controls must "
                                  f"be present), got {self.n_controls}")
        low, high = self.effect_range
        if not 0.0 < low < high <= MAX_EFFECT:
            raise ValidationError(f"CalibrationConfig.effect_range must satisfy 0 < low < high <= {MAX_EFFECT} (the "
                                  f"scores stay in 0..1), got {self.effect_range}; (0.1, 0.4) is the default")
        if self.prompts_per_feature < 2:
            raise ValidationError(f"CalibrationConfig.prompts_per_feature must be at least 2, got "
                                  f"{self.prompts_per_feature}")
        if not 0.0 <= self.explicit_zero_rate <= 1.0:
            raise ValidationError(f"CalibrationConfig.explicit_zero_rate must be in [0, 1], got "
                                  f"{self.explicit_zero_rate}")

    @property
    def n_features(self) -> int:
        """Features planted per world."""
        return self.n_true + self.n_always_on + self.n_rare + self.n_confounded + self.n_noise

    @property
    def cutoffs(self) -> tuple[int, ...]:
        """The k of precision/recall@k, ascending, always including n_true."""
        ks = self.ks if self.ks is not None else (max(1, self.n_true // 2), self.n_true, 2 * self.n_true)
        return tuple(sorted({*ks, self.n_true}))

    def to_json(self) -> dict[str, Any]:
        """The settings as a JSON object (levels with their thresholds; ks as the cut-offs used)."""
        return asdict(self) | {"ks": list(self.cutoffs)}

    @classmethod
    def from_json(cls, data: dict[str, Any]) -> CalibrationConfig:
        """The config ``to_json`` wrote (e.g. calibration.json's ``config``), to rerun a calibration as it was."""
        levels = tuple(CalibrationLevel(**(lv | {"thresholds": Thresholds(**lv["thresholds"])}))
                       for lv in data["levels"])
        fields: dict[str, Any] = dict(data)
        fields |= {k: tuple(data[k]) for k in ("seeds", "ks", "effect_range") if data.get(k) is not None}
        fields["levels"] = levels
        return cls(**fields)
