"""Back-of-envelope sizing of a harvest → SAE training → causal validation job.

``plan_scale`` turns a model size, a token budget and an SAE shape into storage, memory,
FLOPs, GPU-hours, shards, risks and a route (this machine's CPUs, one GPU, one multi-GPU
machine, or a cluster). Every formula it uses is stated in the plan's ``notes``, and every
assumption is an input of :class:`ScalePlanInput` (``scale.inputs``) whose value used is printed there too;
the numbers are estimates to decide on hardware with, not measurements. Pure arithmetic:
no torch, no I/O.
"""

from __future__ import annotations

import math
from dataclasses import asdict, dataclass, replace
from typing import Any

from interp_agent._version import __version__
from interp_agent.core.scale.inputs import (
    _BYTES,
    _DEFAULTS,
    ACCELERATORS,
    DEFAULT_CAUSAL_FEATURES,
    DEFAULT_CAUSAL_PROMPTS,
    DTYPE_BYTES,
    INPUT_RANGES,
    MASTER_AND_GRAD_BYTES_PER_PARAM,
    SCALE_PLAN_SCHEMA,
    AcceleratorSpec,
    Route,
    ScalePlanInput,
    StorageKind,
)
from interp_agent.core.scale.profile import accelerator_from_profile
from interp_agent.core.scale.sizes import format_bytes, format_count


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


def _cpu_spec(inp: ScalePlanInput) -> AcceleratorSpec:
    """The cpu entry of :data:`ACCELERATORS` with ``inp``'s cpu_peak_tflops."""
    cpu = ACCELERATORS["cpu"]
    if inp.cpu_peak_tflops == cpu.peak_tflops:
        return cpu
    return replace(cpu, peak_tflops=inp.cpu_peak_tflops, source="cpu_peak_tflops given")


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
    spec: AcceleratorSpec
    """Peak throughput and memory of the accelerator (a cpu's peak is the input's cpu_peak_tflops)."""
    usable_fraction: float
    """Share of the memory the weights or SAE training state may take (the input's usable_memory_fraction)."""

    @property
    def usable_bytes(self) -> float | None:
        """Memory the weights or SAE training state may take; None when unknown."""
        return self.memory_bytes * self.usable_fraction if self.memory_bytes else None

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
        spec = _cpu_spec(inp) if name == "cpu" else ACCELERATORS[name]
        memory_bytes: float | None = spec.memory_gb * 1e9 if spec.memory_gb is not None else None
        if memory_bytes is None and env:
            memory_bytes = (env.get("memory") or {}).get("total_bytes")
        return cls(name, name_source, count, count_source, memory_bytes, spec, inp.usable_memory_fraction)


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
    """Sparse when dense storage exceeds the input's sparse_preferred_above, else dense."""
    recommended_bytes: float
    """Storage of the recommended kind."""
    disk_free: Any
    """Free disk bytes from the environment profile, as it gives them; None without one."""
    limit_bytes: float
    """Storage the output must fit: the free disk, else the input's local_storage_limit."""
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
        recommended: StorageKind = "sparse" if dense > inp.sparse_preferred_above else "dense"
        # where the output goes
        disk_free = (env or {}).get("disk", {}).get("free_bytes") if env else None
        storage_limit = float(disk_free) if disk_free is not None else inp.local_storage_limit
        storage_limit_source = "free disk in the environment profile" if disk_free is not None else (
            f"assumed local storage of {format_bytes(inp.local_storage_limit)} (no environment profile)")
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
    usable_fraction: float
    """Share of the memory the weights may take."""

    @classmethod
    def estimate(cls, inp: ScalePlanInput, hardware: Hardware) -> WeightsEstimate:
        """Size ``inp``'s model weights on ``hardware``."""
        value_bytes = DTYPE_BYTES[inp.dtype]
        usable = hardware.usable_bytes
        weights = inp.model_params * value_bytes
        return cls(weights, value_bytes, math.ceil(weights / usable) if usable else 1,
                   weights <= usable if usable else None, hardware.usable_fraction)

    def to_json(self) -> dict[str, Any]:
        """The plan's ``weights`` block."""
        return {"bytes": self.weight_bytes, "bytes_per_param": self.bytes_per_param,
                "fits_one_accelerator": self.fits_one_accelerator, "accelerators_needed": self.accelerators_needed,
                "usable_memory_fraction": self.usable_fraction}


@dataclass(frozen=True, slots=True)
class SaeEstimate:
    """Parameters and training-state memory of one layer's SAE."""

    params_per_layer: int
    """Encoder, decoder and both biases."""
    optimizer_bytes_per_param: int
    """Optimizer state per parameter (the input's optimizer_bytes_per_param)."""
    training_bytes_per_param: int
    """fp32 master weight and gradient, the optimizer state, plus a working copy below float32."""
    state_bytes_per_layer: int
    """Training state of one layer's SAE."""
    fits_one_accelerator: bool | None
    """Whether one accelerator holds that state; None when its memory is unknown."""

    @classmethod
    def estimate(cls, inp: ScalePlanInput, hardware: Hardware) -> SaeEstimate:
        """Size one layer's SAE of ``inp`` on ``hardware``."""
        usable, value_bytes = hardware.usable_bytes, DTYPE_BYTES[inp.dtype]
        sae_params = 2 * inp.d_model * inp.latent_dim + inp.latent_dim + inp.d_model
        train_bytes_per_param = (MASTER_AND_GRAD_BYTES_PER_PARAM + inp.optimizer_bytes_per_param
                                 + (value_bytes if inp.dtype != "float32" else 0))
        sae_state = sae_params * train_bytes_per_param
        return cls(sae_params, inp.optimizer_bytes_per_param, train_bytes_per_param, sae_state,
                   sae_state <= usable if usable else None)

    def to_json(self, layers: int) -> dict[str, Any]:
        """The plan's ``sae`` block, per layer and over ``layers`` layers."""
        optimizer = self.optimizer_bytes_per_param * self.params_per_layer
        return {
            "params_per_layer": self.params_per_layer,
            "params_total": self.params_per_layer * layers,
            "training_bytes_per_param": self.training_bytes_per_param,
            "training_state_bytes_per_layer": self.state_bytes_per_layer,
            "training_state_bytes_total": self.state_bytes_per_layer * layers,
            "optimizer_bytes_per_param": self.optimizer_bytes_per_param,
            "optimizer_bytes_per_layer": optimizer,
            "optimizer_bytes_total": optimizer * layers,
            "fits_one_accelerator": self.fits_one_accelerator,
        }


@dataclass(frozen=True, slots=True)
class CausalSize:
    """How many prompts and features the causal validation runs, and where each number came from."""

    prompts: int
    """Prompts each intervention runs on."""
    prompts_source: str
    """``"argument"``, or the default's rule with its value."""
    features: int
    """Features validated."""
    features_source: str
    """``"argument"``, or the default's rule with its value."""

    @classmethod
    def resolve(cls, inp: ScalePlanInput) -> CausalSize:
        """The input's numbers, else the defaults: min(1000, tokens // prompt_tokens) prompts, min(100, latent_dim)."""
        if inp.causal_prompts is not None:
            prompts, prompts_source = inp.causal_prompts, "argument"
        else:
            held = max(1, int(inp.tokens // inp.prompt_tokens))
            prompts = min(DEFAULT_CAUSAL_PROMPTS, held)
            prompts_source = (f"default: min({DEFAULT_CAUSAL_PROMPTS}, tokens // prompt_tokens = {held:,}), "
                              "the prompts the run's text holds")
        if inp.causal_features is not None:
            features, features_source = inp.causal_features, "argument"
        else:
            features = min(DEFAULT_CAUSAL_FEATURES, inp.latent_dim)
            features_source = f"default: min({DEFAULT_CAUSAL_FEATURES}, latent_dim)"
        return cls(prompts, prompts_source, features, features_source)


@dataclass(frozen=True, slots=True)
class ComputeEstimate:
    """FLOPs and GPU-hours of harvesting, SAE training and causal validation."""

    harvest_flops: float
    """One forward pass (or its harvest_depth_fraction) per harvested token."""
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
    def estimate(cls, inp: ScalePlanInput, hardware: Hardware, causal: CausalSize) -> ComputeEstimate:
        """Count ``inp``'s FLOPs and turn them into hours on ``hardware``."""
        harvest_flops = 2.0 * inp.model_params * inp.tokens * inp.harvest_depth_fraction
        intervention_passes = causal.features * inp.interventions_per_feature * causal.prompts
        baseline_passes = causal.prompts
        causal_flops = 2.0 * inp.model_params * inp.prompt_tokens * (intervention_passes + baseline_passes)
        trained = inp.tokens * inp.sae_training_passes
        sae_flops_layer = 6.0 * trained * (2.0 * inp.d_model * inp.latent_dim)
        sae_topk_flops_layer = 6.0 * trained * (inp.d_model * inp.latent_dim + inp.d_model * inp.k)
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

    def to_json(self, inp: ScalePlanInput, spec: AcceleratorSpec, causal: CausalSize) -> dict[str, Any]:
        """The plan's ``compute`` block, with GPU-hours on ``spec`` at ``inp``'s MFU."""
        layers = inp.selected_layers
        return {
            "harvest": {"flops": self.harvest_flops, "gpu_hours": _hours(self.harvest_flops, spec, inp.mfu),
                        "upper_bound": inp.harvest_depth_fraction == 1.0,
                        "depth_fraction": inp.harvest_depth_fraction},
            "causal_validation": {"intervention_passes": self.intervention_passes,
                                  "baseline_passes": self.baseline_passes,
                                  "prompts": causal.prompts, "features": causal.features,
                                  "interventions_per_feature": inp.interventions_per_feature,
                                  "prompt_tokens": inp.prompt_tokens, "flops": self.causal_flops,
                                  "gpu_hours": _hours(self.causal_flops, spec, inp.mfu)},
            "sae_training": {"flops_per_layer": self.sae_flops_per_layer, "flops": self.sae_flops_per_layer * layers,
                             "passes": inp.sae_training_passes,
                             "gpu_hours": _hours(self.sae_flops_per_layer * layers, spec, inp.mfu),
                             "topk_flops": self.sae_topk_flops_per_layer * layers,
                             "topk_gpu_hours": _hours(self.sae_topk_flops_per_layer * layers, spec, inp.mfu)},
            "total_flops": self.total_flops,
            "total_gpu_hours": self.total_gpu_hours,
            "wall_hours_on_available": self.wall_hours,
            "accelerators_for_max_wall": self.accelerators_for_max_wall,
        }


@dataclass(frozen=True, slots=True)
class Machine:
    """The machine the route is judged for: the environment profile's when there is one.

    A machine is ``cpu_only`` when its profile lists no CUDA device, or when the plan is for
    accelerator ``"cpu"``; then the route says what its CPUs can do, whatever accelerator the
    GPU-hours were estimated on.
    """

    profiled: bool
    """An environment profile was given."""
    cuda_devices: int | None
    """CUDA devices in the profile; None without one (or when it does not list accelerators)."""
    cpu_only: bool
    """No CUDA device to run on (see the class docstring)."""
    ram_bytes: float | None
    """Host RAM from the profile; None without one."""
    cpu_spec: AcceleratorSpec
    """The CPUs' throughput (the input's cpu_peak_tflops)."""
    cpu_hours: float
    """Hours the job's FLOPs take on those CPUs at the input's MFU."""

    @classmethod
    def of(cls, inp: ScalePlanInput, env: dict[str, Any] | None, hardware: Hardware, total_flops: float) -> Machine:
        """The profiled machine (``env``), or the machine the plan's hardware describes."""
        devices: int | None = None
        ram: float | None = None
        if env is not None:
            if "accelerators" in env or "accelerator_count" in env:  # a profile always says; a partial dict may not
                devices = max(int(env.get("accelerator_count") or 0), len(env.get("accelerators") or []))
            ram = (env.get("memory") or {}).get("total_bytes")
        cpu = _cpu_spec(inp)
        return cls(env is not None, devices, hardware.name == "cpu" or devices == 0, float(ram) if ram else None,
                   cpu, _hours(total_flops, cpu, inp.mfu))

    def to_json(self, runs_here: bool | None) -> dict[str, Any]:
        """The plan's ``machine`` block; ``runs_here``: whether a cpu_only machine runs the job (None otherwise)."""
        return {"profiled": self.profiled, "cuda_devices": self.cuda_devices, "cpu_only": self.cpu_only,
                "ram_bytes": self.ram_bytes, "cpu_peak_tflops": self.cpu_spec.peak_tflops,
                "cpu_hours": self.cpu_hours, "runs_here": runs_here}


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
    causal: CausalSize
    """Prompts and features of the causal validation."""
    compute: ComputeEstimate
    """FLOPs and hours."""
    machine: Machine
    """The machine the route is judged for."""

    @classmethod
    def of(cls, inp: ScalePlanInput, env: dict[str, Any] | None) -> Sizing:
        """Resolve the hardware of ``inp`` (and ``env``) and size the job on it."""
        hardware = Hardware.resolve(inp, env)
        causal = CausalSize.resolve(inp)
        compute = ComputeEstimate.estimate(inp, hardware, causal)
        return cls(inp, hardware, StorageEstimate.estimate(inp, env), WeightsEstimate.estimate(inp, hardware),
                   SaeEstimate.estimate(inp, hardware), causal, compute,
                   Machine.of(inp, env, hardware, compute.total_flops))


def _cpu_blockers(s: Sizing) -> list[str]:
    """What keeps the job off a cpu_only machine: too slow on its CPUs, too big for its RAM or disk (empty: none)."""
    inp, m = s.inp, s.machine
    usable_ram = m.ram_bytes * inp.usable_memory_fraction if m.ram_bytes else None
    blockers: list[str] = []
    if m.cpu_hours > inp.max_wall_hours:
        blockers.append(f"it takes {_h(m.cpu_hours)} CPU-hours at {m.cpu_spec.peak_tflops:g} TFLOP/s x MFU "
                        f"{inp.mfu:g} (> {inp.max_wall_hours:g} h)")
    if usable_ram is not None and s.weights.weight_bytes > usable_ram:
        blockers.append(f"the {inp.dtype} weights ({format_bytes(s.weights.weight_bytes)}) exceed "
                        f"{inp.usable_memory_fraction:.0%} of its {format_bytes(m.ram_bytes or 0)} RAM")
    if usable_ram is not None and s.sae.state_bytes_per_layer > usable_ram:
        blockers.append(f"one layer's SAE training state ({format_bytes(s.sae.state_bytes_per_layer)}) exceeds "
                        f"{inp.usable_memory_fraction:.0%} of its RAM")
    if s.storage.recommended_bytes > s.storage.limit_bytes:
        blockers.append(f"{s.storage.recommended} storage of {format_bytes(s.storage.recommended_bytes)} exceeds "
                        f"{s.storage.limit_source}")
    return blockers


def _where(s: Sizing) -> str:
    """The cpu_only machine in words: the profiled one, or the CPU the plan is for."""
    if s.machine.profiled:
        return "this machine has no CUDA device (environment profile)"
    return "the plan is for accelerator 'cpu'"


def _risks(s: Sizing, route: Route, accelerator_route: Route | None) -> list[dict[str, str]]:
    """What could go wrong with the job as sized: one ``{code, message}`` per risk found, in a fixed order."""
    inp, name, n_acc = s.inp, s.hardware.name, s.hardware.count
    dense, sparse, weights = s.storage.dense_bytes, s.storage.sparse_bytes, s.weights.weight_bytes
    gpus_for_weights, total_gpu_hours = s.weights.accelerators_needed, s.compute.total_gpu_hours
    recommended, recommended_bytes, disk_free = s.storage.recommended, s.storage.recommended_bytes, s.storage.disk_free
    risks: list[dict[str, str]] = []
    if s.weights.fits_one_accelerator is False:
        risks.append({"code": "weights_do_not_fit_one_gpu", "message": (
            f"{inp.dtype} weights take {format_bytes(weights)}, more than {inp.usable_memory_fraction:.0%} of one "
            f"{name}'s {format_bytes(s.hardware.memory_bytes or 0)}; shard the model over {gpus_for_weights} devices "
            "(tensor/pipeline parallel)")})
    if gpus_for_weights > n_acc:
        risks.append({"code": "too_few_accelerators_for_weights", "message": (
            f"the weights need at least {gpus_for_weights} x {name} but only {n_acc} available")})
    if s.sae.fits_one_accelerator is False:
        risks.append({"code": "sae_state_does_not_fit_one_gpu", "message": (
            f"one layer's SAE training state is {format_bytes(s.sae.state_bytes_per_layer)} "
            f"({format_count(s.sae.params_per_layer)} parameters x "
            f"{s.sae.training_bytes_per_param} B), more than one {name} holds; shard it (FSDP) or reduce latent_dim")})
    if dense > inp.sparse_preferred_above:
        risks.append({"code": "sparse_records_preferred", "message": (
            f"dense {inp.dtype} activations take {format_bytes(dense)} (> "
            f"{format_bytes(inp.sparse_preferred_above)}); "
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
            f"this job takes about {_h(total_gpu_hours)} hours of CPU time at the assumed "
            f"{inp.cpu_peak_tflops:g} TFLOP/s; use a GPU")})
    if route == "local_cpu" and (blockers := _cpu_blockers(s)):
        elsewhere = (f"on {name} it is a {accelerator_route} job: run it on a machine with one"
                     if accelerator_route is not None else
                     "plan it with accelerator='H100' (or the GPU to use) for the GPU route")
        risks.append({"code": "needs_gpu_machine", "message": (
            f"{_where(s)} and the job does not fit its CPUs: {'; '.join(blockers)}; {elsewhere}")})
    return risks


def _cluster_reasons(s: Sizing, storage_ok: bool) -> list[str]:
    """Why neither one GPU nor one machine will do, and what to use instead."""
    name, gpus_for_weights, usable = s.hardware.name, s.weights.accelerators_needed, s.hardware.usable_bytes
    total_gpu_hours, sae_state, node = s.compute.total_gpu_hours, s.sae.state_bytes_per_layer, s.inp.gpus_per_node
    reasons: list[str] = []
    if gpus_for_weights > node:
        reasons.append(f"the weights need {gpus_for_weights} x {name}, more than one {node}-GPU machine")
    if total_gpu_hours / node > s.inp.max_wall_hours:
        reasons.append(f"{_h(total_gpu_hours)} GPU-hours take {_h(total_gpu_hours / node)} h on one "
                       f"{node}-GPU machine (> {s.inp.max_wall_hours:g} h)")
    if usable is not None and sae_state > usable * node:
        reasons.append(f"one layer's SAE training state ({format_bytes(sae_state)}) exceeds one machine's memory")
    if not storage_ok:
        reasons.append(f"{s.storage.recommended} storage of {format_bytes(s.storage.recommended_bytes)} exceeds "
                       f"{s.storage.limit_source}")
    reasons.append("use a distributed engine: Ray for orchestration and sharded harvesting, torchrun/DDP "
                   "(FSDP for large SAEs) for SAE training; interp-agent ships no cluster code of its own")
    return reasons


def _accelerator_route(s: Sizing) -> tuple[Route, list[str]]:
    """The smallest route on the estimate accelerator that holds the weights and SAE state, finishes in time and
    fits the storage; with reasons. Whether this machine has such an accelerator is :func:`_route`'s question."""
    name, gpus_for_weights, usable = s.hardware.name, s.weights.accelerators_needed, s.hardware.usable_bytes
    total_gpu_hours, sae_state, max_wall = s.compute.total_gpu_hours, s.sae.state_bytes_per_layer, s.inp.max_wall_hours
    node = s.inp.gpus_per_node
    one_gpu_ok = gpus_for_weights == 1 and s.sae.fits_one_accelerator is not False and total_gpu_hours <= max_wall
    node_ok = (gpus_for_weights <= node
               and (usable is None or sae_state <= usable * node)
               and total_gpu_hours / node <= max_wall)
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
    reasons.append(f"one machine with {node} x {name} holds the weights and finishes in "
                   f"{_h(total_gpu_hours / node)} h: data-parallel harvesting, "
                   "torchrun/DDP (or FSDP) SAE training")
    return "multi_gpu", reasons


def _route(s: Sizing) -> tuple[Route, list[str], Route | None]:
    """The route with its reasons, and the route on the estimate accelerator (None when that is a cpu).

    With a CUDA device (or no profile and a GPU to plan for), the route is the estimate accelerator's:
    single_gpu, multi_gpu or cluster. On a cpu_only machine (profiled without a CUDA device, or planned for
    accelerator ``"cpu"``) it is ``local_cpu`` (never single_gpu or multi_gpu: the machine has no GPU),
    except that a job needing a distributed engine on GPUs stays ``cluster``; risk ``needs_gpu_machine``
    says when a local_cpu job does not fit the CPUs.
    """
    route, reasons = _accelerator_route(s)
    accelerator_route: Route | None = None if s.hardware.name == "cpu" else route
    if not s.machine.cpu_only:
        return route, reasons, accelerator_route
    if route == "cluster":
        return "cluster", [*reasons, f"{_where(s)}: start the distributed engine from here"], accelerator_route
    blockers = _cpu_blockers(s)
    if not blockers:
        ram = s.machine.ram_bytes
        fits = [f"{_where(s)}: the job runs on its CPUs in about {_h(s.machine.cpu_hours)} h at "
                f"{s.machine.cpu_spec.peak_tflops:g} TFLOP/s x MFU {s.inp.mfu:g} (<= {s.inp.max_wall_hours:g} h)"]
        if ram:
            fits.append(f"the weights and one layer's SAE training state fit its {format_bytes(ram)} RAM")
        return "local_cpu", fits, accelerator_route
    elsewhere = (f"on {s.hardware.name} it is a {accelerator_route} job ({'; '.join(reasons)}): run it on a machine "
                 "with one" if accelerator_route is not None else "it needs a GPU machine")
    return ("local_cpu", [f"{_where(s)}, and the job does not fit its CPUs: {'; '.join(blockers)}", elsewhere],
            accelerator_route)


def _values_used(s: Sizing) -> str:
    """The note listing every assumption's value used, with where the causal sizes came from."""
    inp = s.inp
    parts = [f"causal_prompts {s.causal.prompts:,} ({s.causal.prompts_source})",
             f"causal_features {s.causal.features:,} ({s.causal.features_source})"]
    for name in INPUT_RANGES:
        if name in ("causal_prompts", "causal_features"):
            continue
        value = getattr(inp, name)
        shown = format_bytes(value) if name in _BYTES else f"{value:g}"
        parts.append(f"{name} {shown}" + (" (default)" if value == _DEFAULTS[name] else ""))
    parts.append(f"target_shard_size {format_bytes(inp.target_shard_size)}")
    return "values used: " + ", ".join(parts)


def _notes(s: Sizing, accelerator_route: Route | None) -> list[str]:
    """The formulas behind every number of the plan, with this plan's constants filled in."""
    inp, name, spec = s.inp, s.hardware.name, s.hardware.spec
    value_bytes = DTYPE_BYTES[inp.dtype]
    node = inp.gpus_per_node
    notes = [
        _values_used(s),
        "dense activation storage = tokens x d_model x selected_layers x bytes per value "
        f"({inp.dtype}: {value_bytes} B)",
        "sparse SAE-record storage = tokens x selected_layers x k x "
        f"({s.storage.sparse_index_bytes} B latent index + {value_bytes} B value)",
        f"recommended storage is sparse when dense storage exceeds {format_bytes(inp.sparse_preferred_above)}; "
        "shard count = ceil(storage / target_shard_size)",
        "SAE parameters per layer = 2 x d_model x d_sae + d_sae + d_model (encoder, decoder, two biases)",
        f"SAE training state per parameter = {s.sae.training_bytes_per_param} B "
        f"(fp32 master 4 + fp32 grad 4 + optimizer {inp.optimizer_bytes_per_param}"
        + (f" + {value_bytes} B {inp.dtype} working copy)" if inp.dtype != "float32" else ")")
        + f"; optimizer memory alone = {inp.optimizer_bytes_per_param} B per parameter (8: Adam m 4 + v 4)",
        f"harvest FLOPs = 2 x model_params x tokens x harvest_depth_fraction ({inp.harvest_depth_fraction:g}; "
        "one forward pass per token)"
        + ("; an upper bound, since harvesting stops after the last selected layer"
           if inp.harvest_depth_fraction == 1.0 else ""),
        f"causal validation forward passes = causal_features ({s.causal.features:,}) x interventions_per_feature "
        f"({inp.interventions_per_feature}) x causal_prompts ({s.causal.prompts:,}) + causal_prompts baselines; "
        f"FLOPs = 2 x model_params x prompt_tokens ({inp.prompt_tokens} assumed) per pass",
        f"SAE training FLOPs per layer = 6 x tokens x sae_training_passes ({inp.sae_training_passes:g}) x "
        "(2 x d_model x d_sae) for a dense encoder and decoder "
        "(forward 2, backward 4 FLOPs per weight and token); a TopK decoder touches only k latents: "
        "6 x tokens x sae_training_passes x (d_model x d_sae + d_model x k)",
        f"GPU-hours = FLOPs / (peak x MFU) / 3600 with peak {spec.peak_tflops:g} TFLOP/s for {name} "
        f"({spec.source}) and MFU {inp.mfu:g}; the dense SAE figure is used (conservative)",
        f"weights fit one accelerator when model_params x {value_bytes} B <= {inp.usable_memory_fraction:.0%} of its "
        "memory" + (f" ({spec.memory_gb:g} GB for {name}, vendor figure)" if spec.memory_gb else " (host RAM for cpu)"),
        "routes: local_cpu when the machine has no CUDA device (an environment profile lists none, or the plan is "
        f"for accelerator 'cpu'), unless the job needs a cluster; single_gpu if one {name} holds weights and SAE "
        f"state and the job takes <= {inp.max_wall_hours:g} GPU-hours; multi_gpu if one {node}-GPU machine does it in "
        f"<= {inp.max_wall_hours:g} h; else cluster; "
        f"storage must fit {s.storage.limit_source}",
    ]
    if s.machine.cpu_only and name != "cpu":
        notes.append(
            f"GPU-hours are estimated on {s.hardware.count} x {name} (accelerator from: {s.hardware.name_source}); "
            "the route is for "
            f"the machine that runs the job, and {_where(s)}: it judges the same FLOPs on its CPUs at "
            f"cpu_peak_tflops {s.machine.cpu_spec.peak_tflops:g} x MFU {inp.mfu:g} = {_h(s.machine.cpu_hours)} "
            f"CPU-hours, against its RAM and storage; on {name} the job would be {accelerator_route} "
            "(plan.accelerator_route)")
    return notes


def _engines(route: Route) -> dict[str, str]:
    """The plan's ``engines`` block: what runs the harvest and the SAE training on ``route``."""
    harvest = {"local_cpu": "one process on this machine's CPUs", "cluster": "Ray: one task per shard of prompts, "
               "writing shards"}.get(route, "one process per GPU")
    return {
        "harvest": harvest,
        "sae_training": "single process" if route in ("single_gpu", "local_cpu")
        else "torchrun with DDP (FSDP when the SAE state does not fit one device)",
    }


def plan_scale(inp: ScalePlanInput, env: dict[str, Any] | None = None) -> dict[str, Any]:
    """Size a harvest → SAE training → causal validation job and pick a route.

    Args:
        inp: the workload.
        env: an ``interp-agent.env_profile.v1`` object (from ``profile_env`` or
            ``load_profile``); fills in the accelerator, their count, the host RAM and the
            free disk, and says whether the machine has a CUDA device at all.

    Returns:
        The ``interp-agent.scale_plan.v1`` object: storage, shards, SAE memory, compute,
        weights fit, risks, route with reasons, and the formulas and values used (``notes``).
        ``route`` is where to run: ``local_cpu`` on a machine without a CUDA device (or a
        plan for accelerator ``"cpu"``) unless the job needs a cluster, else ``single_gpu``,
        ``multi_gpu`` or ``cluster`` on the estimate accelerator; ``accelerator_route`` is
        the route on the estimate accelerator alone (None when that is a cpu), and
        ``machine`` what the route judged. Deterministic: the same input gives the same plan.
    """
    s = Sizing.of(inp, env)
    hw, spec = s.hardware, s.hardware.spec
    route, reasons, accelerator_route = _route(s)
    risks = _risks(s, route, accelerator_route)
    return {
        "schema_version": SCALE_PLAN_SCHEMA,
        "tool": "interp-agent",
        "tool_version": __version__,
        "inputs": {**asdict(inp), "accelerator": hw.name, "n_accelerators": hw.count,
                   "causal_prompts": s.causal.prompts, "causal_features": s.causal.features,
                   "sources": {"accelerator": hw.name_source, "n_accelerators": hw.count_source,
                               "storage_limit": s.storage.limit_source, "causal_prompts": s.causal.prompts_source,
                               "causal_features": s.causal.features_source}},
        "accelerator": {"name": hw.name, "peak_tflops": spec.peak_tflops, "memory_gb": spec.memory_gb,
                        "memory_bytes": hw.memory_bytes, "mfu": inp.mfu, "source": spec.source},
        "storage": s.storage.to_json(),
        "shards": s.storage.shards(inp.target_shard_size),
        "weights": s.weights.to_json(),
        "sae": s.sae.to_json(inp.selected_layers),
        "compute": s.compute.to_json(inp, spec, s.causal),
        "route": route,
        "route_reasons": reasons,
        "accelerator_route": accelerator_route,
        "machine": s.machine.to_json(not _cpu_blockers(s) if s.machine.cpu_only else None),
        "engines": _engines(route),
        "risks": risks,
        "notes": _notes(s, accelerator_route),
    }


def render_plan(plan: dict[str, Any]) -> str:
    """A few readable lines: the headline numbers and the route."""
    i, s, c, w = plan["inputs"], plan["storage"], plan["compute"], plan["weights"]
    acc = plan["accelerator"]
    rec = plan["shards"]["recommended"]
    cv = c["causal_validation"]
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
        f"causal {_h(cv['gpu_hours'])} ({cv['features']:,} features x {cv['interventions_per_feature']} x "
        f"{cv['prompts']:,} prompts) GPU-hours; total {_h(c['total_gpu_hours'])} "
        f"= {_h(c['wall_hours_on_available'])} h wall on {i['n_accelerators']} x {acc['name']} at MFU {acc['mfu']:g}",
        f"route: {plan['route']} — {'; '.join(plan['route_reasons'])}",
    ]
    lines += [f"risk {r['code']}: {r['message']}" for r in plan["risks"]]
    if "measured" in plan:  # throughput.plan_with_calibration
        m = plan["measured"]
        lines += [
            f"measured on this machine: harvest {m['harvest']['seconds'] / 3600:,.2f} h on {m['harvest']['workers']} "
            f"worker(s), SAE training {m['sae_training']['seconds'] / 3600:,.2f} h on {m['sae_training']['ranks']} "
            f"rank(s); {m['shards']['count']} harvest shard(s) of {format_count(m['shards']['tokens_each'])} tokens",
            f"launch harvest: {m['commands']['harvest']}",
            f"launch training: {m['commands']['sae_training']}",
        ]
    return "\n".join(lines)
