"""Back-of-envelope sizing of a harvest → SAE training → causal validation job.

``plan_scale`` turns a model size, a token budget and an SAE shape into storage, memory,
FLOPs, GPU-hours, shards, risks and a route (one GPU, one multi-GPU machine, or a
cluster). Every formula it uses is stated in the plan's ``notes``; the numbers are
estimates to decide on hardware with, not measurements. Pure arithmetic: no torch, no I/O.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, fields
from typing import Any, Literal

from interp_agent._version import __version__
from interp_agent.core.artifacts import schema_version
from interp_agent.core.errors import ValidationError
from interp_agent.core.scale.profile import accelerator_from_profile
from interp_agent.core.scale.sizes import format_bytes, format_count, parse_size

Dtype = Literal["float32", "bfloat16", "float16", "float8"]
"""Storage and weight precision."""

AcceleratorName = Literal["H100", "H200", "A100-80GB", "A100-40GB", "L4", "RTX4090", "cpu"]
"""Accelerators the plan knows peak throughput and memory for."""

Route = Literal["single_gpu", "multi_gpu", "cluster"]
"""Where the job should run: one GPU, one machine with up to 8 GPUs, or a distributed engine."""

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
"""Known accelerators; peaks are vendor spec-sheet numbers, dense bf16."""

USABLE_MEMORY_FRACTION = 0.9
"""Share of device memory the weights or SAE training state may take; the rest holds activations and the CUDA
context."""
GPUS_PER_NODE = 8
"""Accelerators in one machine (an HGX/DGX board) for the multi_gpu route."""
LOCAL_STORAGE_LIMIT_BYTES = 30e12
"""Storage one machine is assumed to hold when no environment profile gives its free disk."""
SPARSE_PREFERRED_ABOVE_BYTES = 10e12
"""Dense storage above which sparse SAE records are recommended."""
ADAM_TRAINING_BYTES_PER_PARAM = 16
"""fp32 master weights (4) + fp32 gradients (4) + Adam first and second moments (4 + 4)."""


@dataclass(frozen=True, slots=True)
class ScalePlanInput:
    """The workload to size: model, token budget, SAE shape, hardware and causal checks."""

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
    """Accelerator to plan for; None takes the environment profile's device, else H100."""
    n_accelerators: int | None = None
    """Accelerators available; None takes the environment profile's count, else 1."""
    target_shard_size: float = 64e9
    """Bytes per storage shard wanted (default 64 GB)."""
    causal_prompts: int = 1000
    """Prompts each causal intervention is run on."""
    causal_features: int = 100
    """Features validated causally (top of the ranking)."""
    interventions_per_feature: int = 5
    """Interventions per feature and prompt: 3 steering strengths + 2 controls by default."""
    prompt_tokens: int = 64
    """Assumed tokens per causal-validation prompt."""
    mfu: float = 0.4
    """Model FLOPs utilisation assumed when turning FLOPs into hours, in (0, 1]."""
    max_wall_hours: float = 72.0
    """Wall-clock hours beyond which one machine counts as too slow."""

    def __post_init__(self) -> None:
        for name in ("model_params", "tokens", "target_shard_size", "max_wall_hours"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, (int, float)) or not math.isfinite(value) or value <= 0:
                raise ValidationError(
                    f"{name} must be a positive number, got {value!r}; "
                    "ScalePlanInput.from_sizes reads human sizes like '70B'"
                )
        for name in ("d_model", "selected_layers", "latent_dim", "k", "causal_prompts", "causal_features",
                     "interventions_per_feature", "prompt_tokens"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValidationError(f"{name} must be a whole number of at least 1, got {value!r}")
        if self.k > self.latent_dim:
            raise ValidationError(f"k ({self.k}) must not exceed latent_dim ({self.latent_dim}); k=32 is typical")
        if self.dtype not in DTYPE_BYTES:
            raise ValidationError(f"dtype must be one of {sorted(DTYPE_BYTES)}, got {self.dtype!r}")
        if self.accelerator is not None and self.accelerator not in ACCELERATORS:
            raise ValidationError(f"accelerator must be one of {list(ACCELERATORS)}, got {self.accelerator!r}")
        if self.n_accelerators is not None and (
            isinstance(self.n_accelerators, bool) or not isinstance(self.n_accelerators, int) or self.n_accelerators < 1
        ):
            raise ValidationError(f"n_accelerators must be a whole number of at least 1, got {self.n_accelerators!r}")
        if not (isinstance(self.mfu, (int, float)) and 0.0 < self.mfu <= 1.0):
            raise ValidationError(f"mfu must be in (0, 1], got {self.mfu!r}; 0.4 is typical for large dense models")

    @classmethod
    def from_sizes(cls, **values: Any) -> ScalePlanInput:
        """Build from human sizes: ``from_sizes(model_params="70B", tokens="1B", latent_dim="1M", ...)``.

        Strings are read with :func:`parse_size` (``target_shard_size`` as bytes, the rest as
        counts); whole-number fields must come out whole.

        Raises:
            ValidationError: a size is unreadable, a whole-number field is fractional, or a
                field is unknown.
        """
        known = {f.name for f in fields(cls)}
        unknown = sorted(set(values) - known)
        if unknown:
            raise ValidationError(f"unknown ScalePlanInput field(s) {unknown}; known: {sorted(known)}")
        ints = {"d_model", "selected_layers", "latent_dim", "k", "n_accelerators", "causal_prompts",
                "causal_features", "interventions_per_feature", "prompt_tokens"}
        sized = {"model_params", "tokens", "target_shard_size"} | ints
        parsed: dict[str, Any] = {}
        for name, value in values.items():
            if name in sized and value is not None and not isinstance(value, bool):
                try:
                    number = parse_size(value, kind="bytes" if name == "target_shard_size" else "count")
                except ValidationError as exc:
                    raise ValidationError(f"{name}: {exc.message}", hint=exc.hint) from exc
                if name in ints:
                    if number != int(number):
                        raise ValidationError(f"{name} must be a whole number, got {value!r} (= {number})")
                    value = int(number)
                else:
                    value = number
            parsed[name] = value
        return cls(**parsed)


def _hours(flops: float, spec: AcceleratorSpec, mfu: float) -> float:
    """GPU-hours that ``flops`` take on one ``spec`` accelerator at utilisation ``mfu``."""
    return flops / (spec.peak_tflops * 1e12 * mfu) / 3600.0


def _h(hours: float) -> str:
    """Hours for people: whole above 100, one decimal above 1, three significant digits below."""
    return f"{hours:,.0f}" if hours >= 100 else f"{hours:.1f}" if hours >= 1 else f"{hours:.3g}"


def _shards(total: float, target: float) -> dict[str, Any]:
    """Shard count and bytes per shard that split ``total`` bytes into shards of at most about ``target``."""
    count = max(1, math.ceil(total / target))
    return {"count": count, "bytes_each": total / count}


@dataclass(frozen=True, slots=True)
class Hardware:
    """The accelerator a plan is for, how many are available, and where each choice came from."""

    name: str
    """Accelerator name, a key of :data:`ACCELERATORS`."""
    name_source: str
    """Where the name came from: the argument, the environment profile or the default."""
    count: int
    """Accelerators available."""
    count_source: str
    """Where the count came from: the argument, the environment profile or the default."""
    memory_bytes: float | None
    """Memory of one accelerator: the vendor figure, for a CPU the profiled host RAM; None when unknown."""

    @property
    def spec(self) -> AcceleratorSpec:
        """Peak throughput and memory of the accelerator."""
        return ACCELERATORS[self.name]

    @property
    def usable_bytes(self) -> float | None:
        """Memory the weights or SAE training state may take (:data:`USABLE_MEMORY_FRACTION`); None when unknown."""
        return self.memory_bytes * USABLE_MEMORY_FRACTION if self.memory_bytes else None

    @classmethod
    def resolve(cls, inp: ScalePlanInput, env: dict[str, Any] | None) -> Hardware:
        """The arguments first, then the environment profile, then the defaults (one H100)."""
        detected = accelerator_from_profile(env) if env else None
        if inp.accelerator is not None:
            name, name_source = inp.accelerator, "argument"
        elif detected is not None:
            name, name_source = detected, "environment profile"
        else:
            name, name_source = "H100", "default (no known accelerator in an environment profile)"
        env_count = int((env or {}).get("accelerator_count") or 0)
        if inp.n_accelerators is not None:
            count, count_source = inp.n_accelerators, "argument"
        elif env_count > 0:
            count, count_source = env_count, "environment profile"
        else:
            count, count_source = 1, "default"
        # device memory: vendor GB; a CPU uses the profiled host RAM when there is one
        spec = ACCELERATORS[name]
        memory_bytes: float | None = spec.memory_gb * 1e9 if spec.memory_gb is not None else None
        if memory_bytes is None and env:
            memory_bytes = (env.get("memory") or {}).get("total_bytes")
        return cls(name, name_source, count, count_source, memory_bytes)


@dataclass(frozen=True, slots=True)
class StorageEstimate:
    """Dense and sparse activation storage, the kind recommended, and the space it has to fit in."""

    dense_bytes_by_dtype: dict[str, float]
    """Dense storage in each dtype of :data:`DTYPE_BYTES`."""
    dense_bytes: float
    """Dense storage in the input's dtype."""
    sparse_bytes: float
    """Sparse SAE-record storage (k latents per token and layer: index + value)."""
    sparse_index_bytes: int
    """Bytes per latent index: 4, or 8 when latent_dim exceeds 2**32."""
    recommended: StorageKind
    """Sparse when dense storage exceeds :data:`SPARSE_PREFERRED_ABOVE_BYTES`, else dense."""
    recommended_bytes: float
    """Storage of the recommended kind."""
    disk_free: Any
    """Free disk bytes from the environment profile, as it gives them; None without one."""
    limit_bytes: float
    """Storage the output must fit: the free disk, else :data:`LOCAL_STORAGE_LIMIT_BYTES`."""
    limit_source: str
    """Where limit_bytes comes from, in words."""

    @classmethod
    def estimate(cls, inp: ScalePlanInput, env: dict[str, Any] | None) -> StorageEstimate:
        """Storage of ``inp``'s activations, and the limit the environment profile (if any) sets."""
        value_bytes = DTYPE_BYTES[inp.dtype]
        layers = inp.selected_layers
        dense_by_dtype = {d: inp.tokens * inp.d_model * layers * b for d, b in DTYPE_BYTES.items()}
        dense = dense_by_dtype[inp.dtype]
        index_bytes = 4 if inp.latent_dim <= 2**32 else 8
        sparse = inp.tokens * layers * inp.k * (index_bytes + value_bytes)
        recommended: StorageKind = "sparse" if dense > SPARSE_PREFERRED_ABOVE_BYTES else "dense"
        # where the output goes
        disk_free = (env or {}).get("disk", {}).get("free_bytes") if env else None
        storage_limit = float(disk_free) if disk_free is not None else LOCAL_STORAGE_LIMIT_BYTES
        storage_limit_source = "free disk in the environment profile" if disk_free is not None else (
            f"assumed local storage of {format_bytes(LOCAL_STORAGE_LIMIT_BYTES)} (no environment profile)")
        return cls(dense_by_dtype, dense, sparse, index_bytes, recommended,
                   sparse if recommended == "sparse" else dense, disk_free, storage_limit, storage_limit_source)

    def shards(self, target: float) -> dict[str, Any]:
        """The plan's ``shards`` block: dense, sparse and recommended shards of about ``target`` bytes."""
        shards = {"target_shard_bytes": target, "dense": _shards(self.dense_bytes, target),
                  "sparse": _shards(self.sparse_bytes, target)}
        shards["recommended"] = {"storage": self.recommended, **shards[self.recommended]}
        return shards

    def to_json(self) -> dict[str, Any]:
        """The plan's ``storage`` block."""
        return {
            "dense_bytes_by_dtype": self.dense_bytes_by_dtype,
            "dense_bytes": self.dense_bytes,
            "sparse_bytes": self.sparse_bytes,
            "sparse_index_bytes": self.sparse_index_bytes,
            "recommended": self.recommended,
            "recommended_bytes": self.recommended_bytes,
            "limit_bytes": self.limit_bytes,
        }


@dataclass(frozen=True, slots=True)
class WeightsEstimate:
    """The model weights against one accelerator's usable memory."""

    weight_bytes: float
    """Bytes of the weights in the input's dtype."""
    bytes_per_param: int
    """Bytes per weight."""
    accelerators_needed: int
    """Accelerators the weights need to be sharded over (1 when the memory is unknown)."""
    fits_one_accelerator: bool | None
    """Whether one accelerator holds the weights; None when its memory is unknown."""

    @classmethod
    def estimate(cls, inp: ScalePlanInput, hardware: Hardware) -> WeightsEstimate:
        """Size ``inp``'s model weights on ``hardware``."""
        value_bytes = DTYPE_BYTES[inp.dtype]
        usable = hardware.usable_bytes
        weights = inp.model_params * value_bytes
        return cls(weights, value_bytes, math.ceil(weights / usable) if usable else 1,
                   weights <= usable if usable else None)

    def to_json(self) -> dict[str, Any]:
        """The plan's ``weights`` block."""
        return {"bytes": self.weight_bytes, "bytes_per_param": self.bytes_per_param,
                "fits_one_accelerator": self.fits_one_accelerator, "accelerators_needed": self.accelerators_needed,
                "usable_memory_fraction": USABLE_MEMORY_FRACTION}


@dataclass(frozen=True, slots=True)
class SaeEstimate:
    """Parameters and training-state memory of one layer's SAE."""

    params_per_layer: int
    """Encoder, decoder and both biases."""
    training_bytes_per_param: int
    """Adam training state per parameter, plus a working copy below float32."""
    state_bytes_per_layer: int
    """Training state of one layer's SAE."""
    fits_one_accelerator: bool | None
    """Whether one accelerator holds that state; None when its memory is unknown."""

    @classmethod
    def estimate(cls, inp: ScalePlanInput, hardware: Hardware) -> SaeEstimate:
        """Size one layer's SAE of ``inp`` on ``hardware``."""
        usable, value_bytes = hardware.usable_bytes, DTYPE_BYTES[inp.dtype]
        sae_params = 2 * inp.d_model * inp.latent_dim + inp.latent_dim + inp.d_model
        train_bytes_per_param = ADAM_TRAINING_BYTES_PER_PARAM + (value_bytes if inp.dtype != "float32" else 0)
        sae_state = sae_params * train_bytes_per_param
        return cls(sae_params, train_bytes_per_param, sae_state, sae_state <= usable if usable else None)

    def to_json(self, layers: int) -> dict[str, Any]:
        """The plan's ``sae`` block, per layer and over ``layers`` layers."""
        return {
            "params_per_layer": self.params_per_layer,
            "params_total": self.params_per_layer * layers,
            "training_bytes_per_param": self.training_bytes_per_param,
            "training_state_bytes_per_layer": self.state_bytes_per_layer,
            "training_state_bytes_total": self.state_bytes_per_layer * layers,
            "optimizer_bytes_per_layer": 8 * self.params_per_layer,
            "optimizer_bytes_total": 8 * self.params_per_layer * layers,
            "fits_one_accelerator": self.fits_one_accelerator,
        }


@dataclass(frozen=True, slots=True)
class ComputeEstimate:
    """FLOPs and GPU-hours of harvesting, SAE training and causal validation."""

    harvest_flops: float
    """One forward pass per harvested token (an upper bound)."""
    intervention_passes: int
    """Forward passes of the causal interventions."""
    baseline_passes: int
    """Forward passes of the causal baselines (one per prompt)."""
    causal_flops: float
    """FLOPs of all causal-validation passes."""
    sae_flops_per_layer: float
    """Dense SAE training FLOPs of one layer."""
    sae_topk_flops_per_layer: float
    """TopK SAE training FLOPs of one layer (the decoder touches k latents)."""
    total_flops: float
    """Harvest + causal validation + dense SAE training."""
    total_gpu_hours: float
    """GPU-hours of total_flops."""
    wall_hours: float
    """Wall-clock hours on the available accelerators."""
    accelerators_for_max_wall: int
    """Accelerators that finish within max_wall_hours."""

    @classmethod
    def estimate(cls, inp: ScalePlanInput, hardware: Hardware) -> ComputeEstimate:
        """Count ``inp``'s FLOPs and turn them into hours on ``hardware``."""
        harvest_flops = 2.0 * inp.model_params * inp.tokens
        intervention_passes = inp.causal_features * inp.interventions_per_feature * inp.causal_prompts
        baseline_passes = inp.causal_prompts
        causal_flops = 2.0 * inp.model_params * inp.prompt_tokens * (intervention_passes + baseline_passes)
        sae_flops_layer = 6.0 * inp.tokens * (2.0 * inp.d_model * inp.latent_dim)
        sae_topk_flops_layer = 6.0 * inp.tokens * (inp.d_model * inp.latent_dim + inp.d_model * inp.k)
        phases = {
            "harvest": harvest_flops,
            "causal_validation": causal_flops,
            "sae_training": sae_flops_layer * inp.selected_layers,
        }
        total_flops = sum(phases.values())
        total_gpu_hours = _hours(total_flops, hardware.spec, inp.mfu)
        return cls(harvest_flops, intervention_passes, baseline_passes, causal_flops, sae_flops_layer,
                   sae_topk_flops_layer, total_flops, total_gpu_hours, total_gpu_hours / hardware.count,
                   max(1, math.ceil(total_gpu_hours / inp.max_wall_hours)))

    def to_json(self, inp: ScalePlanInput, spec: AcceleratorSpec) -> dict[str, Any]:
        """The plan's ``compute`` block, with GPU-hours on ``spec`` at ``inp``'s MFU."""
        layers = inp.selected_layers
        return {
            "harvest": {"flops": self.harvest_flops, "gpu_hours": _hours(self.harvest_flops, spec, inp.mfu),
                        "upper_bound": True},
            "causal_validation": {"intervention_passes": self.intervention_passes,
                                  "baseline_passes": self.baseline_passes,
                                  "prompt_tokens": inp.prompt_tokens, "flops": self.causal_flops,
                                  "gpu_hours": _hours(self.causal_flops, spec, inp.mfu)},
            "sae_training": {"flops_per_layer": self.sae_flops_per_layer, "flops": self.sae_flops_per_layer * layers,
                             "gpu_hours": _hours(self.sae_flops_per_layer * layers, spec, inp.mfu),
                             "topk_flops": self.sae_topk_flops_per_layer * layers,
                             "topk_gpu_hours": _hours(self.sae_topk_flops_per_layer * layers, spec, inp.mfu)},
            "total_flops": self.total_flops,
            "total_gpu_hours": self.total_gpu_hours,
            "wall_hours_on_available": self.wall_hours,
            "accelerators_for_max_wall": self.accelerators_for_max_wall,
        }


@dataclass(frozen=True, slots=True)
class Sizing:
    """Every estimate of one plan, computed once and read by its risks, route, notes and JSON."""

    inp: ScalePlanInput
    """The workload."""
    hardware: Hardware
    """The accelerators it is planned for."""
    storage: StorageEstimate
    """Activation storage."""
    weights: WeightsEstimate
    """Model weights against device memory."""
    sae: SaeEstimate
    """One layer's SAE against device memory."""
    compute: ComputeEstimate
    """FLOPs and hours."""

    @classmethod
    def of(cls, inp: ScalePlanInput, env: dict[str, Any] | None) -> Sizing:
        """Resolve the hardware of ``inp`` (and ``env``) and size the job on it."""
        hardware = Hardware.resolve(inp, env)
        return cls(inp, hardware, StorageEstimate.estimate(inp, env), WeightsEstimate.estimate(inp, hardware),
                   SaeEstimate.estimate(inp, hardware), ComputeEstimate.estimate(inp, hardware))


def _risks(s: Sizing) -> list[dict[str, str]]:
    """What could go wrong with the job as sized: one ``{code, message}`` per risk found, in a fixed order."""
    inp, name, n_acc = s.inp, s.hardware.name, s.hardware.count
    dense, sparse, weights = s.storage.dense_bytes, s.storage.sparse_bytes, s.weights.weight_bytes
    gpus_for_weights, total_gpu_hours = s.weights.accelerators_needed, s.compute.total_gpu_hours
    recommended, recommended_bytes, disk_free = s.storage.recommended, s.storage.recommended_bytes, s.storage.disk_free
    risks: list[dict[str, str]] = []
    if s.weights.fits_one_accelerator is False:
        risks.append({"code": "weights_do_not_fit_one_gpu", "message": (
            f"{inp.dtype} weights take {format_bytes(weights)}, more than {USABLE_MEMORY_FRACTION:.0%} of one {name}'s "
            f"{format_bytes(s.hardware.memory_bytes or 0)}; shard the model over {gpus_for_weights} devices "
            "(tensor/pipeline parallel)")})
    if gpus_for_weights > n_acc:
        risks.append({"code": "too_few_accelerators_for_weights", "message": (
            f"the weights need at least {gpus_for_weights} x {name} but only {n_acc} available")})
    if s.sae.fits_one_accelerator is False:
        risks.append({"code": "sae_state_does_not_fit_one_gpu", "message": (
            f"one layer's SAE training state is {format_bytes(s.sae.state_bytes_per_layer)} "
            f"({format_count(s.sae.params_per_layer)} parameters x "
            f"{s.sae.training_bytes_per_param} B), more than one {name} holds; shard it (FSDP) or reduce latent_dim")})
    if dense > SPARSE_PREFERRED_ABOVE_BYTES:
        risks.append({"code": "sparse_records_preferred", "message": (
            f"dense {inp.dtype} activations take {format_bytes(dense)} (> "
            f"{format_bytes(SPARSE_PREFERRED_ABOVE_BYTES)}); "
            f"store sparse SAE records at k={inp.k} ({format_bytes(sparse)}) and train the SAE streaming from the "
            "model")})
    if disk_free is not None and recommended_bytes > disk_free:
        risks.append({"code": "storage_exceeds_free_disk", "message": (
            f"{recommended} storage needs {format_bytes(recommended_bytes)} but the workspace has "
            f"{format_bytes(disk_free)} free; write shards to object storage or a larger volume")})
    if s.compute.wall_hours > inp.max_wall_hours:
        risks.append({"code": "single_machine_too_slow", "message": (
            f"{_h(total_gpu_hours)} GPU-hours on {n_acc} x {name} is {_h(s.compute.wall_hours)} h wall "
            f"(> {inp.max_wall_hours:g} h); "
            f"{s.compute.accelerators_for_max_wall} x {name} would finish in {inp.max_wall_hours:g} h")})
    if name == "cpu" and total_gpu_hours > 1.0:
        risks.append({"code": "cpu_only", "message": (
            f"this job takes about {_h(total_gpu_hours)} hours of CPU time at the assumed 1 TFLOP/s; use a GPU")})
    return risks


def _cluster_reasons(s: Sizing, storage_ok: bool) -> list[str]:
    """Why neither one GPU nor one machine will do, and what to use instead."""
    name, gpus_for_weights, usable = s.hardware.name, s.weights.accelerators_needed, s.hardware.usable_bytes
    total_gpu_hours, sae_state = s.compute.total_gpu_hours, s.sae.state_bytes_per_layer
    reasons: list[str] = []
    if gpus_for_weights > GPUS_PER_NODE:
        reasons.append(f"the weights need {gpus_for_weights} x {name}, more than one {GPUS_PER_NODE}-GPU machine")
    if total_gpu_hours / GPUS_PER_NODE > s.inp.max_wall_hours:
        reasons.append(f"{_h(total_gpu_hours)} GPU-hours take {_h(total_gpu_hours / GPUS_PER_NODE)} h on one "
                       f"{GPUS_PER_NODE}-GPU machine (> {s.inp.max_wall_hours:g} h)")
    if usable is not None and sae_state > usable * GPUS_PER_NODE:
        reasons.append(f"one layer's SAE training state ({format_bytes(sae_state)}) exceeds one machine's memory")
    if not storage_ok:
        reasons.append(f"{s.storage.recommended} storage of {format_bytes(s.storage.recommended_bytes)} exceeds "
                       f"{s.storage.limit_source}")
    reasons.append("use a distributed engine: Ray for orchestration and sharded harvesting, torchrun/DDP "
                   "(FSDP for large SAEs) for SAE training; interp-agent ships no cluster code of its own")
    return reasons


def _route(s: Sizing) -> tuple[Route, list[str]]:
    """The smallest route that holds the weights and SAE state, finishes in time and fits the storage; with reasons."""
    name, gpus_for_weights, usable = s.hardware.name, s.weights.accelerators_needed, s.hardware.usable_bytes
    total_gpu_hours, sae_state, max_wall = s.compute.total_gpu_hours, s.sae.state_bytes_per_layer, s.inp.max_wall_hours
    one_gpu_ok = gpus_for_weights == 1 and s.sae.fits_one_accelerator is not False and total_gpu_hours <= max_wall
    node_ok = (gpus_for_weights <= GPUS_PER_NODE
               and (usable is None or sae_state <= usable * GPUS_PER_NODE)
               and total_gpu_hours / GPUS_PER_NODE <= max_wall)
    storage_ok = s.storage.recommended_bytes <= s.storage.limit_bytes
    if one_gpu_ok and storage_ok:
        return "single_gpu", [f"the weights and one layer's SAE training state fit one {name}, and the job takes "
                              f"{_h(total_gpu_hours)} GPU-hours (<= {max_wall:g} h)"]
    if not (node_ok and storage_ok):
        return "cluster", _cluster_reasons(s, storage_ok)
    reasons: list[str] = []
    if not one_gpu_ok:
        reasons.append(f"one {name} is not enough: weights need {gpus_for_weights} device(s), SAE state "
                       f"{format_bytes(sae_state)} per layer, {_h(total_gpu_hours)} GPU-hours in all")
    reasons.append(f"one machine with {GPUS_PER_NODE} x {name} holds the weights and finishes in "
                   f"{_h(total_gpu_hours / GPUS_PER_NODE)} h: data-parallel harvesting, "
                   "torchrun/DDP (or FSDP) SAE training")
    return "multi_gpu", reasons


def _notes(s: Sizing) -> list[str]:
    """The formulas behind every number of the plan, with this plan's constants filled in."""
    inp, name, spec = s.inp, s.hardware.name, s.hardware.spec
    value_bytes = DTYPE_BYTES[inp.dtype]
    return [
        "dense activation storage = tokens x d_model x selected_layers x bytes per value "
        f"({inp.dtype}: {value_bytes} B)",
        "sparse SAE-record storage = tokens x selected_layers x k x "
        f"({s.storage.sparse_index_bytes} B latent index + {value_bytes} B value)",
        f"recommended storage is sparse when dense storage exceeds {format_bytes(SPARSE_PREFERRED_ABOVE_BYTES)}; "
        "shard count = ceil(storage / target_shard_size)",
        "SAE parameters per layer = 2 x d_model x d_sae + d_sae + d_model (encoder, decoder, two biases)",
        f"SAE training state per parameter = {ADAM_TRAINING_BYTES_PER_PARAM} B "
        "(fp32 master 4 + fp32 grad 4 + Adam m 4 + v 4)"
        + (f" + {value_bytes} B {inp.dtype} working copy" if inp.dtype != "float32" else "")
        + "; Adam optimizer memory alone = 8 B per parameter",
        "harvest FLOPs = 2 x model_params x tokens (one forward pass per token); an upper bound, since harvesting "
        "stops after the last selected layer",
        f"causal validation forward passes = causal_features x interventions_per_feature x causal_prompts "
        f"+ causal_prompts baselines; FLOPs = 2 x model_params x prompt_tokens ({inp.prompt_tokens} assumed) per pass",
        "SAE training FLOPs per layer = 6 x tokens x (2 x d_model x d_sae) for a dense encoder and decoder "
        "(forward 2, backward 4 FLOPs per weight and token); a TopK decoder touches only k latents: "
        "6 x tokens x (d_model x d_sae + d_model x k)",
        f"GPU-hours = FLOPs / (peak x MFU) / 3600 with peak {spec.peak_tflops:g} TFLOP/s for {name} "
        f"({spec.source}) and MFU {inp.mfu:g}; the dense SAE figure is used (conservative)",
        f"weights fit one accelerator when model_params x {value_bytes} B <= {USABLE_MEMORY_FRACTION:.0%} of its memory"
        + (f" ({spec.memory_gb:g} GB for {name}, vendor figure)" if spec.memory_gb else " (host RAM for cpu)"),
        f"routes: single_gpu if one {name} holds weights and SAE state and the job takes <= {inp.max_wall_hours:g} "
        f"GPU-hours; multi_gpu if one {GPUS_PER_NODE}-GPU machine does it in <= {inp.max_wall_hours:g} h; "
        "else cluster; "
        f"storage must fit {s.storage.limit_source}",
    ]


def _engines(route: Route) -> dict[str, str]:
    """The plan's ``engines`` block: what runs the harvest and the SAE training on ``route``."""
    return {
        "harvest": ("one process per GPU" if route != "cluster"
                    else "Ray: one task per shard of prompts, writing shards"),
        "sae_training": "single process" if route == "single_gpu" else "torchrun with DDP (FSDP when the SAE state "
                                                                      "does not fit one device)",
    }


def plan_scale(inp: ScalePlanInput, env: dict[str, Any] | None = None) -> dict[str, Any]:
    """Size a harvest → SAE training → causal validation job and pick a route.

    Args:
        inp: the workload.
        env: an ``interp-agent.env_profile.v1`` object (from ``profile_env`` or
            ``load_profile``); fills in the accelerator, their count and the free disk.

    Returns:
        The ``interp-agent.scale_plan.v1`` object: storage, shards, SAE memory, compute,
        weights fit, risks, route with reasons, and the formulas used (``notes``).
        Deterministic: the same input gives the same plan.
    """
    s = Sizing.of(inp, env)
    hw, spec = s.hardware, s.hardware.spec
    risks = _risks(s)
    route, reasons = _route(s)
    return {
        "schema_version": SCALE_PLAN_SCHEMA,
        "tool": "interp-agent",
        "tool_version": __version__,
        "inputs": {**asdict(inp), "accelerator": hw.name, "n_accelerators": hw.count,
                   "sources": {"accelerator": hw.name_source, "n_accelerators": hw.count_source,
                               "storage_limit": s.storage.limit_source}},
        "accelerator": {"name": hw.name, "peak_tflops": spec.peak_tflops, "memory_gb": spec.memory_gb,
                        "memory_bytes": hw.memory_bytes, "mfu": inp.mfu, "source": spec.source},
        "storage": s.storage.to_json(),
        "shards": s.storage.shards(inp.target_shard_size),
        "weights": s.weights.to_json(),
        "sae": s.sae.to_json(inp.selected_layers),
        "compute": s.compute.to_json(inp, spec),
        "route": route,
        "route_reasons": reasons,
        "engines": _engines(route),
        "risks": risks,
        "notes": _notes(s),
    }


def render_plan(plan: dict[str, Any]) -> str:
    """A few readable lines: the headline numbers and the route."""
    i, s, c, w = plan["inputs"], plan["storage"], plan["compute"], plan["weights"]
    acc = plan["accelerator"]
    rec = plan["shards"]["recommended"]
    lines = [
        f"plan: {format_count(i['model_params'])} params, {format_count(i['tokens'])} tokens, "
        f"{i['selected_layers']} layer(s), d_model {i['d_model']}, d_sae {format_count(i['latent_dim'])}, k {i['k']}, "
        f"{i['dtype']}, {i['n_accelerators']} x {acc['name']}",
        f"storage: dense {format_bytes(s['dense_bytes'])}, sparse (k={i['k']}) {format_bytes(s['sparse_bytes'])}; "
        f"use {s['recommended']}: {rec['count']} shard(s) of {format_bytes(rec['bytes_each'])}",
        f"weights: {format_bytes(w['bytes'])}; fit one {acc['name']}: "
        f"{ {True: 'yes', False: 'no', None: 'unknown'}[w['fits_one_accelerator']] } "
        f"(needs {w['accelerators_needed']})",
        f"SAE: {format_count(plan['sae']['params_per_layer'])} params/layer, training state "
        f"{format_bytes(plan['sae']['training_state_bytes_per_layer'])}/layer",
        f"compute: harvest {_h(c['harvest']['gpu_hours'])}, SAE training {_h(c['sae_training']['gpu_hours'])}, "
        f"causal {_h(c['causal_validation']['gpu_hours'])} GPU-hours; total {_h(c['total_gpu_hours'])} "
        f"= {_h(c['wall_hours_on_available'])} h wall on {i['n_accelerators']} x {acc['name']} at MFU {acc['mfu']:g}",
        f"route: {plan['route']} — {'; '.join(plan['route_reasons'])}",
    ]
    lines += [f"risk {r['code']}: {r['message']}" for r in plan["risks"]]
    return "\n".join(lines)

