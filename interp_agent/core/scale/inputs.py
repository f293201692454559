"""The input of a scale plan: the workload, the hardware it may run on and every assumption, with their ranges.

:class:`ScalePlanInput` checks each value against :data:`INPUT_RANGES` and reads human sizes
(``from_sizes``); :data:`ACCELERATORS` holds the peak throughput and memory the plan knows.
"""

from __future__ import annotations

import math
from dataclasses import MISSING, dataclass, fields
from typing import Any, Literal, TypeGuard

from interp_agent.core.artifacts import schema_version
from interp_agent.core.errors import ValidationError
from interp_agent.core.scale.sizes import parse_size

Dtype = Literal["float32", "bfloat16", "float16", "float8"]
"""Storage and weight precision."""

AcceleratorName = Literal["H100", "H200", "A100-80GB", "A100-40GB", "L4", "RTX4090", "cpu"]
"""Accelerators the plan knows peak throughput and memory for."""

Route = Literal["local_cpu", "single_gpu", "multi_gpu", "cluster"]
"""Where the job should run: this machine's CPUs (it has no CUDA device), one GPU, one machine with several GPUs,
or a distributed engine."""

StorageKind = Literal["dense", "sparse"]
"""Dense activations (d_model values per token and layer) or sparse SAE records (k latents)."""

SCALE_PLAN_SCHEMA = schema_version("scale_plan")

DTYPE_BYTES: dict[str, int] = {"float32": 4, "bfloat16": 2, "float16": 2, "float8": 1}
"""Bytes per value of each dtype."""


@dataclass(frozen=True, slots=True)
class AcceleratorSpec:
    """Peak throughput and memory of one accelerator."""

    name: str
    """Name used in plans, e.g. ``"H100"``."""
    peak_tflops: float
    """Peak dense bf16 tensor throughput, TFLOP/s (no structured sparsity)."""
    memory_gb: float | None
    """Device memory in GB as the vendor states it; None for a CPU (host RAM varies)."""
    source: str
    """Where the numbers come from."""


_VENDOR = "vendor spec sheets, dense bf16"
ACCELERATORS: dict[str, AcceleratorSpec] = {
    "H100": AcceleratorSpec("H100", 989.0, 80.0, _VENDOR + " (H100 SXM)"),
    "H200": AcceleratorSpec("H200", 989.0, 141.0, _VENDOR + " (H200 SXM)"),
    "A100-80GB": AcceleratorSpec("A100-80GB", 312.0, 80.0, _VENDOR),
    "A100-40GB": AcceleratorSpec("A100-40GB", 312.0, 40.0, _VENDOR),
    "L4": AcceleratorSpec("L4", 121.0, 24.0, _VENDOR),
    "RTX4090": AcceleratorSpec("RTX4090", 165.0, 24.0, _VENDOR + " (fp32 accumulate)"),
    "cpu": AcceleratorSpec("cpu", 1.0, None, "order of magnitude for a many-core server CPU"),
}
"""Known accelerators; peaks are vendor spec-sheet numbers, dense bf16. The cpu peak is the default of
:attr:`ScalePlanInput.cpu_peak_tflops`, which replaces it in a plan."""

DEFAULT_CAUSAL_PROMPTS = 1000
"""Causal-validation prompts of a run large enough to hold them (see :attr:`ScalePlanInput.causal_prompts`)."""
DEFAULT_CAUSAL_FEATURES = 100
"""Features validated causally when latent_dim has as many (see :attr:`ScalePlanInput.causal_features`)."""
MASTER_AND_GRAD_BYTES_PER_PARAM = 8
"""fp32 master weight (4) + fp32 gradient (4) of each SAE parameter; the optimizer state comes on top."""

# The ranges every assumption of ScalePlanInput is checked against: (low, high, low included).
# server/models.py repeats them as ge/gt/le on PlanScaleInput (tests/core/test_scale.py keeps them equal).
INPUT_RANGES: dict[str, tuple[float, float, bool]] = {
    "causal_prompts": (1, 10_000_000, True),
    "causal_features": (1, 1_000_000, True),
    "interventions_per_feature": (1, 1000, True),
    "prompt_tokens": (1, 1_000_000, True),
    "mfu": (0.0, 1.0, False),
    "max_wall_hours": (0.0, 1e6, False),
    "cpu_peak_tflops": (0.0, 1000.0, False),
    "usable_memory_fraction": (0.0, 1.0, False),
    "gpus_per_node": (1, 1024, True),
    "local_storage_limit": (0.0, 1e18, False),
    "sparse_preferred_above": (0.0, 1e18, False),
    "optimizer_bytes_per_param": (0, 64, True),
    "sae_training_passes": (0.0, 1000.0, False),
    "harvest_depth_fraction": (0.0, 1.0, False),
}
"""Allowed values of the plan's assumptions: ``(low, high, low_included)``; high is always included."""

_WHOLE = frozenset({"d_model", "selected_layers", "latent_dim", "k", "n_accelerators", "causal_prompts",
                    "causal_features", "interventions_per_feature", "prompt_tokens", "gpus_per_node",
                    "optimizer_bytes_per_param"})
"""Fields that must be whole numbers."""
_BYTES = frozenset({"target_shard_size", "local_storage_limit", "sparse_preferred_above"})
"""Fields measured in bytes (read with ``kind="bytes"``: ``"64GB"``)."""


def _number(value: object) -> TypeGuard[float]:
    """A finite int or float, not a bool."""
    return not isinstance(value, bool) and isinstance(value, (int, float)) and math.isfinite(value)


@dataclass(frozen=True, slots=True)
class ScalePlanInput:
    """The workload to size: model, token budget, SAE shape, hardware, causal checks and every assumption.

    Each assumption has a default (the value used when it is not given) and a range
    (:data:`INPUT_RANGES`); the plan's ``notes`` print the value used of every one.
    """

    model_params: float
    """Parameters of the model activations are harvested from (e.g. 7e10 for 70B)."""
    tokens: float
    """Tokens whose activations are harvested and the SAE is trained on."""
    d_model: int
    """d_model: residual-stream width at the harvested hookpoints."""
    selected_layers: int
    """Layers (hookpoints) harvested, one SAE each."""
    latent_dim: int
    """d_sae: latents per SAE."""
    k: int = 32
    """k: active latents per token of a TopK SAE (sets the sparse record size)."""
    dtype: Dtype = "bfloat16"
    """Precision of stored activations and of the model weights."""
    accelerator: AcceleratorName | None = None
    """Accelerator to estimate on; None takes the environment profile's device, else H100. The route still
    judges the profiled machine: one without a CUDA device gets ``local_cpu`` (see :func:`plan_scale`)."""
    n_accelerators: int | None = None
    """Accelerators available; None takes the environment profile's count, else 1."""
    target_shard_size: float = 64e9
    """Bytes per storage shard wanted (default 64 GB)."""
    causal_prompts: int | None = None
    """Prompts each causal intervention is run on, 1 to 10M. None (the default): min(1000, tokens //
    prompt_tokens), at least 1. The prompts come from the run's own text, which holds about tokens /
    prompt_tokens of them, so the default scales with a small run (10k tokens: 156 prompts) instead of
    charging it a fixed 1,000; from 64k tokens up it is 1,000. The value used is in ``inputs`` and ``notes``."""
    causal_features: int | None = None
    """Features validated causally (top of the ranking), 1 to 1M and at most latent_dim. None (the default):
    min(100, latent_dim). Fixed rather than scaled with tokens: how many features are worth validating is a
    choice about the report, not about the data; lower it for a quick check (it multiplies the causal cost)."""
    interventions_per_feature: int = 5
    """Forward passes per feature and prompt, 1 to 1000: 3 steering strengths + 2 controls by default.
    Fixed: the protocol's size does not grow with the run. ``intervene``'s own defaults try 4 strengths, then
    3 random-direction + 2 matched-feature controls at the chosen one: about 9 sizes that."""
    prompt_tokens: int = 64
    """Assumed tokens per causal-validation prompt, 1 to 1M."""
    mfu: float = 0.4
    """Model FLOPs utilisation assumed when turning FLOPs into hours, in (0, 1]; 0.4 is typical for large
    dense models (GPUs and the CPU alike)."""
    max_wall_hours: float = 72.0
    """Wall-clock hours beyond which one machine counts as too slow, in (0, 1e6]."""
    cpu_peak_tflops: float = 1.0
    """Throughput of one machine's CPUs together, TFLOP/s, in (0, 1000]: the peak for accelerator ``"cpu"``,
    and what decides whether a machine without a CUDA device runs the job itself. 1 is the order of
    magnitude of a many-core server; a laptop manages about 0.1-0.5."""
    usable_memory_fraction: float = 0.9
    """Share of device memory (host RAM on a CPU) the weights or one layer's SAE training state may take,
    in (0, 1]; the rest holds activations and the CUDA context."""
    gpus_per_node: int = 8
    """Accelerators in one machine for the multi_gpu route (an HGX/DGX board has 8), 1 to 1024."""
    local_storage_limit: float = 30e12
    """Bytes one machine is assumed to store when no environment profile gives its free disk (default
    30 TB), in (0, 1e18]."""
    sparse_preferred_above: float = 10e12
    """Dense storage in bytes above which sparse SAE records are recommended (default 10 TB), in (0, 1e18]."""
    optimizer_bytes_per_param: int = 8
    """Optimizer state per SAE parameter, 0 to 64 B: 8 for Adam's fp32 first and second moments (2 for 8-bit
    Adam, 4 for SGD with momentum, 0 for plain SGD). The training state adds 8 B of fp32 master weight and
    gradient, and a working copy below float32."""
    sae_training_passes: float = 1.0
    """Passes (epochs) of SAE training over the harvested tokens, in (0, 1000]."""
    harvest_depth_fraction: float = 1.0
    """Share of the model's forward pass a harvest runs, in (0, 1]: it may stop after the last selected layer
    (e.g. 0.5 when that is the middle one). 1, the default, is an upper bound."""

    def __post_init__(self) -> None:
        for name in ("model_params", "tokens", "target_shard_size"):
            value = getattr(self, name)
            if not _number(value) or value <= 0:
                raise ValidationError(
                    f"{name} must be a positive number, got {value!r}; "
                    "ScalePlanInput.from_sizes reads human sizes like '70B'"
                )
        for name in ("d_model", "selected_layers", "latent_dim", "k"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValidationError(f"{name} must be a whole number of at least 1, got {value!r}")
        for name, (low, high, low_included) in INPUT_RANGES.items():
            value = getattr(self, name)
            if value is None and name in ("causal_prompts", "causal_features"):
                continue
            whole = name in _WHOLE
            ok = (_number(value) and (isinstance(value, int) or not whole)
                  and (value >= low if low_included else value > low) and value <= high)
            if not ok:
                kind = "a whole number" if whole else "a number"
                span = f"{'[' if low_included else '('}{low:g}, {high:g}]"
                default = _DEFAULTS[name]
                raise ValidationError(f"{name} must be {kind} in {span}, got {value!r}; "
                                      + (f"the default is {default!r}" if default is not None
                                         else "leave it out (None) for the default"))
        if self.k > self.latent_dim:
            raise ValidationError(f"k ({self.k}) must not exceed latent_dim ({self.latent_dim}); k=32 is typical")
        if self.causal_features is not None and self.causal_features > self.latent_dim:
            raise ValidationError(f"causal_features ({self.causal_features}) must not exceed latent_dim "
                                  f"({self.latent_dim})")
        if self.dtype not in DTYPE_BYTES:
            raise ValidationError(f"dtype must be one of {sorted(DTYPE_BYTES)}, got {self.dtype!r}")
        if self.accelerator is not None and self.accelerator not in ACCELERATORS:
            raise ValidationError(f"accelerator must be one of {list(ACCELERATORS)}, got {self.accelerator!r}")
        if self.n_accelerators is not None and (
            isinstance(self.n_accelerators, bool) or not isinstance(self.n_accelerators, int) or self.n_accelerators < 1
        ):
            raise ValidationError(f"n_accelerators must be a whole number of at least 1, got {self.n_accelerators!r}")

    @classmethod
    def from_sizes(cls, **values: Any) -> ScalePlanInput:
        """Build from human sizes: ``from_sizes(model_params="70B", tokens="1B", latent_dim="1M", ...)``.

        Strings are read with :func:`parse_size` (``target_shard_size``, ``local_storage_limit``
        and ``sparse_preferred_above`` as bytes, the rest as counts); whole-number fields must
        come out whole. A value of None means the field's default.

        Raises:
            ValidationError: a size is unreadable, a whole-number field is fractional, or a
                field is unknown.
        """
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValidationError(f"unknown ScalePlanInput field(s) {unknown}; known: {sorted(known)}")
        sized = {"model_params", "tokens"} | _BYTES | _WHOLE
        parsed: dict[str, Any] = {}
        for name, value in values.items():
            if value is None and _DEFAULTS[name] not in (None, MISSING):
                continue  # None: the field's default
            if name in sized and value is not None and not isinstance(value, bool):
                try:
                    number = parse_size(value, kind="bytes" if name in _BYTES else "count")
                except ValidationError as exc:
                    raise ValidationError(f"{name}: {exc.message}", hint=exc.hint) from exc
                if name in _WHOLE:
                    if number != int(number):
                        raise ValidationError(f"{name} must be a whole number, got {value!r} (= {number})")
                    value = int(number)
                else:
                    value = number
            parsed[name] = value
        return cls(**parsed)


_DEFAULTS: dict[str, Any] = {f.name: f.default for f in fields(ScalePlanInput)}
"""Each field's default (``dataclasses.MISSING`` for the required ones)."""
