"""Typed inputs and outputs of the MCP tools: the agent's manual.

Field descriptions are what an agent reads, so they say what a value means, its unit
and range, and what happens next. Every output carries ``next_actions`` (what to call
next) and, where artifacts exist, ``resources`` (their ``interp-agent://`` URIs).
"""

from __future__ import annotations

from typing import Any, Literal

from pydantic import BaseModel, ConfigDict, Field

from interp_agent.core.criteria.sets import MIN_EXAMPLES
from interp_agent.core.ranking.config import HELD_OUT_FRACTION
from interp_agent.core.ranking.heldout import POWER, POWER_ALPHA, RECOMMENDED_PROMPTS_PER_CLASS, TARGET_AUROC

JobState = Literal["working", "input_required", "completed", "failed", "cancelled"]


class ToolInput(BaseModel):
    """Base of every tool's arguments: unknown arguments are refused (a typo is an error, not ignored)."""

    model_config = ConfigDict(extra="forbid")


class NextAction(BaseModel):
    """A tool call to make next, its arguments filled in from this result: send them as they are."""

    tool: str = Field(description="Name of the tool to call")
    arguments: dict[str, Any] = Field(description="Its arguments, ready to send (paths are workspace paths)")
    why: str = Field(description="What the call gives, in one sentence")


NEXT_ACTIONS = "Tool calls to make next, arguments filled in from this result; call them as they are"


class ToolErrorInfo(BaseModel):
    """What went wrong, in a form an agent can act on."""

    code: str = Field(description="Stable error code, e.g. invalid_argument, bad_input_file, path_outside_workspace")
    message: str = Field(description="What was wrong, with the offending value")
    hint: str = Field(description="What to do about it")


# -- profile_env / plan_scale -----------------------------------------------------------------
class ProfileEnvInput(ToolInput):
    save_to: str | None = Field(
        None,
        description="Optional path (inside the workspace) to save the profile JSON, to plan for this "
        "machine from another one with plan_scale(env_profile=...). Nothing is written when omitted.",
    )


class ProfileEnvOutput(BaseModel):
    route: str = Field(description="Suggested route: local_cpu, single_gpu, multi_gpu or cluster")
    advice: str = Field(description="Why that route, in one or two sentences")
    cpu_cores: int | None = Field(None, description="Logical CPU cores")
    ram_gib: float | None = Field(None, description="Total RAM in GiB")
    disk_free_gib: float | None = Field(None, description="Free disk of the workspace in GiB")
    accelerators: list[dict[str, Any]] = Field(description="CUDA devices: name, memory GiB, capability")
    credentials: dict[str, bool] = Field(description="Which credentials are set (present/absent only, never values)")
    profile: dict[str, Any] = Field(description="The whole profile (interp-agent.env_profile.v1)")
    saved_to: str | None = Field(None, description="Where the profile was saved, if asked")
    route_advice: list[str] = Field(description="What the route means for the work: where to harvest and train")
    next_actions: list[NextAction] = Field(description=NEXT_ACTIONS)


class CapabilitiesInput(ToolInput):
    probe_accelerators: bool = Field(
        True, description="Ask the NVIDIA driver for CUDA devices (nvidia-smi, well under a second); false reports "
        "none without asking"
    )


class BackendCapability(BaseModel):
    name: str = Field(description="inspect backend name")
    works: bool = Field(description="Whether every package it needs is installed here (the network is not probed)")
    needs_extras: list[str] = Field(description="interp-agent extras it needs")
    missing_packages: list[str] = Field(description="Packages of those extras that are not installed")
    what: str = Field(description="What it does and what it needs beyond packages (files, network)")
    install: str | None = Field(None, description="The pip command that makes it work, when it does not")
    note: str | None = Field(None, description="A caveat for this machine")


class CapabilitiesOutput(BaseModel):
    interp_agent: str = Field(description="Installed interp-agent version")
    read_only: bool = Field(description="Whether this server runs in read-only mode (serve --read-only)")
    backends: list[BackendCapability] = Field(description="Each inspect backend and whether it works here")
    extras: dict[str, dict[str, Any]] = Field(description="Extra -> {installed, missing}")
    gpu: dict[str, Any] = Field(description="CUDA devices (count, names, memory GiB), the torch build and whether "
                                            "torch can use them (usable)")
    credentials: dict[str, dict[str, Any]] = Field(
        description="Credential name -> {present, used_for}; presence only, values are never read out")
    executors: list[dict[str, Any]] = Field(description="Job executors (local, ray, torchrun) and whether each works")
    models: dict[str, Any] = Field(description="The embedded model (smollm2-135m) and the sentence encoder: "
                                               "installed, cache built; nothing is loaded")
    mcp_tools: list[str] = Field(description="The tools this server serves")
    hidden_tools: dict[str, str] = Field(description="Tools hidden by read-only mode, each with why (empty "
                                                     "otherwise)")
    cli_commands: list[str] = Field(description="interp-agent CLI subcommands")
    capabilities: dict[str, Any] = Field(description="The whole object (interp-agent.capabilities.v1)")
    next_actions: list[NextAction] = Field(description=NEXT_ACTIONS)


class PlanScaleInput(ToolInput):
    model_params: int | str = Field(description="Model parameters, human size: '135M', '70B', '1T'")
    tokens: int | str = Field(description="Tokens to harvest, human size: '10M', '1B'")
    d_model: int | str = Field(description="Residual width, a number or a human size: 576, '16384', '16k'")
    selected_layers: int = Field(1, ge=1, le=1024, description="Number of layers whose activations are harvested")
    latent_dim: int | str = Field("16k", description="SAE latents per layer (d_sae), human size: '16k', '1M'")
    k: int = Field(32, ge=1, le=4096, description="Active latents per token for sparse records (TopK k)")
    dtype: Literal["float32", "bfloat16", "float16", "float8"] = Field(
        "bfloat16", description="Storage dtype of dense activations"
    )
    accelerator: Literal["H100", "H200", "A100-80GB", "A100-40GB", "L4", "RTX4090", "cpu"] | None = Field(
        None, description="Accelerator to estimate GPU-hours on; default: the profiled device (from_env / "
        "env_profile), else H100. The route still follows the machine: one without a CUDA device gets local_cpu"
    )
    n_accelerators: int | None = Field(None, ge=1, le=100000, description="How many; default from the environment or 1")
    target_shard_size: int | str = Field("64GB", description="Target size of one storage shard, e.g. '64GB'")
    causal_prompts: int | None = Field(
        None, ge=1, le=10_000_000, description="Prompts each causal intervention runs on; default min(1000, "
        "tokens / prompt_tokens): the prompts the run's own text holds, so a small run is not charged 1,000"
    )
    causal_features: int | None = Field(
        None, ge=1, le=1_000_000, description="Features validated causally (at most latent_dim); default "
        "min(100, latent_dim). It multiplies the causal cost: lower it for a quick check"
    )
    interventions_per_feature: int = Field(
        5, ge=1, le=1000, description="Forward passes per feature and prompt: 3 strengths + 2 controls (intervene's "
        "own defaults: 4 strengths + 5 controls, about 9)"
    )
    prompt_tokens: int = Field(64, ge=1, le=1_000_000, description="Assumed tokens per causal-validation prompt")
    mfu: float = Field(0.4, gt=0, le=1, description="Model FLOPs utilisation assumed (GPUs and CPU alike)")
    max_wall_hours: float = Field(72.0, gt=0, le=1e6, description="Wall hours beyond which one machine is too slow")
    cpu_peak_tflops: float = Field(
        1.0, gt=0, le=1000, description="TFLOP/s of one machine's CPUs: the peak for accelerator 'cpu' and for "
        "whether a machine without a CUDA device runs the job itself (a laptop: about 0.1-0.5)"
    )
    usable_memory_fraction: float = Field(
        0.9, gt=0, le=1, description="Share of device memory (host RAM on a CPU) the weights or SAE state may take"
    )
    gpus_per_node: int = Field(8, ge=1, le=1024, description="GPUs in one machine for the multi_gpu route")
    local_storage_limit: int | str = Field(
        "30TB", description="Storage one machine holds when no profile gives its free disk, e.g. '30TB'"
    )
    sparse_preferred_above: int | str = Field(
        "10TB", description="Dense storage above which sparse SAE records are recommended, e.g. '10TB'"
    )
    optimizer_bytes_per_param: int = Field(
        8, ge=0, le=64, description="Optimizer state per SAE parameter: 8 for Adam (fp32 m + v), 2 for 8-bit Adam, "
        "0 for SGD; fp32 master weight and gradient (8 B) come on top"
    )
    sae_training_passes: float = Field(1.0, gt=0, le=1000, description="Epochs of SAE training over the tokens")
    harvest_depth_fraction: float = Field(
        1.0, gt=0, le=1, description="Share of the forward pass a harvest runs (it may stop after the last "
        "selected layer); 1 is an upper bound"
    )
    from_env: bool = Field(False, description="Profile this machine and plan against it (disk, RAM, GPUs or none)")
    env_profile: str | None = Field(None, description="A saved profile_env JSON (inside the workspace) to plan against")
    calibration: str | None = Field(
        None, description="A calibration JSON (inside the workspace) from `interp-agent plan-scale --calibrate "
        "--calibration-out FILE`: the plan then predicts wall-clock seconds from measured tokens/s (plan.measured) "
        "and gives the ray / torchrun launch commands"
    )
    calibrate: bool = Field(
        False, description="Measure the calibration now: a short harvest of the embedded model and a short SAE "
        "training on this machine's CPU (about 30 s); ignored when calibration is given"
    )
    workers: int = Field(1, ge=1, le=100000, description="Harvest workers (Ray) the measured prediction assumes")
    ranks: int = Field(1, ge=1, le=100000, description="SAE-training ranks (torchrun) the measured prediction assumes")
    scaling_efficiency: float | None = Field(
        None, gt=0, le=1, description="Measured scaling efficiency at that many workers/ranks (tools/bench/scale.py); "
        "default 1 (ideal), which plan.measured.basis says"
    )


class PlanScaleOutput(BaseModel):
    route: str = Field(
        description="local_cpu (the machine has no CUDA device: run on its CPUs; risk needs_gpu_machine when the "
        "job does not fit them, plan.accelerator_route then says the GPU route), single_gpu, multi_gpu, or cluster "
        "(a distributed engine such as Ray / torchrun)"
    )
    headline: dict[str, Any] = Field(description="Key numbers: storage bytes, GPU-hours, shard count")
    risk_flags: list[dict[str, Any]] = Field(description="Risks, each {code, message}")
    notes: list[str] = Field(description="The formulas behind every estimate")
    route_reasons: list[str] = Field(description="Why this route: what fits where, and what to use")
    plan: dict[str, Any] = Field(description="The whole plan (interp-agent.scale_plan.v1)")
    next_actions: list[NextAction] = Field(description=NEXT_ACTIONS)


# -- jobs ---------------------------------------------------------------------------------------
class JobView(BaseModel):
    """A background job as the agent sees it."""

    job_id: str = Field(description="Handle for job_status / job_result / job_cancel / job_resume")
    kind: str = Field(description="What the job does: inspect, match, …")
    state: JobState = Field(description="working (queued or running), input_required, completed, failed, cancelled")
    progress: float = Field(ge=0, le=1, description="Fraction done, 0..1")
    message: str = Field(description="Latest progress message, or the error")
    run_id: str = Field(description="Folder of the job's artifacts: interp-agent://runs/{run_id}/…")
    created_at: float = Field(description="Unix seconds")
    started_at: float | None = Field(None, description="Unix seconds; null while queued")
    finished_at: float | None = Field(None, description="Unix seconds; null until terminal")
    error: str | None = Field(None, description="Why the job failed or was cancelled")
    error_info: ToolErrorInfo | None = Field(
        None, description="A failed job's error as {code, message, hint}, the shape of a tool error")
    attempts: int = Field(1, ge=1, description="Runs of the job so far: 1, plus one per job_resume")


class JobIdInput(ToolInput):
    job_id: str = Field(min_length=8, max_length=64, description="A job_id returned by inspect, match, …")


class JobListInput(ToolInput):
    limit: int = Field(20, ge=1, le=200, description="Most recent jobs to list")
    state: JobState | None = Field(None, description="Only jobs in this state")


class JobStatusOutput(BaseModel):
    job: JobView
    resources: list[str] = Field(description="URIs of the job's artifacts so far (log included)")
    next_actions: list[NextAction] = Field(description=NEXT_ACTIONS)


class JobResultOutput(BaseModel):
    job: JobView
    result: dict[str, Any] | None = Field(None, description="The job's result when completed, else null")
    resources: list[str] = Field(description="URIs of the job's artifacts")
    next_actions: list[NextAction] = Field(description=NEXT_ACTIONS)


class JobListOutput(BaseModel):
    jobs: list[JobView]
    next_actions: list[NextAction] = Field(description=NEXT_ACTIONS)


# -- inspect / match -------------------------------------------------------------------------------
class JobStartInput(ToolInput):
    """Base of the arguments of a tool that starts a background job."""

    wait_seconds: float = Field(
        0.0, ge=0, le=50,
        description="Seconds to wait for the job before returning its handle; a job that finishes "
        "in time comes back with its result. Hosts cut calls near 60 s, so keep this under 50.",
    )


DOSSIER_NAME_PATTERN = r"^[A-Za-z0-9][A-Za-z0-9._-]{0,79}$"
"""Dossier names: a file name (letters, digits, dot, dash, underscore), so a name cannot leave dossiers/."""


class EvidenceJobInput(JobStartInput):
    """Base of the arguments of a job that measures evidence: it can file what it measured into a dossier."""

    dossier: str | None = Field(
        None, pattern=DOSSIER_NAME_PATTERN,
        description="Name of a dossier (an investigation's record of claims and their evidence, in "
        "dossiers/NAME.json of the workspace; created if new) to file what this job measured into once it "
        "finishes. Read it with the dossier tool; plan_evidence says what each claim still lacks",
    )


class PromptsInput(EvidenceJobInput):
    """Where a live model's prompts come from, besides a dataset file."""

    pack: Literal["measurement_unit", "french", "python_code", "negative_sentiment", "question"] | None = Field(
        None, description="A built-in criterion pack instead of a dataset (hf backend for inspect)"
    )
    positives: list[str] | None = Field(
        None, max_length=2000,
        description=f"Instead of a dataset: texts where the criterion holds: at least {MIN_EXAMPLES}, and about "
        f"{RECOMMENDED_PROMPTS_PER_CLASS} (as many negatives) so that the {HELD_OUT_FRACTION:.0%} held-out split can "
        f"detect a held-out AUROC of {TARGET_AUROC} (alpha {POWER_ALPHA}, power {POWER:.0%}); fewer get a warning. "
        "Write negatives that match them in length, topic and style so features track the criterion, not a confound",
    )
    negatives: list[str] | None = Field(
        None, max_length=2000,
        description=f"Texts where the criterion does not hold, paired with the positives (as many: at least "
        f"{MIN_EXAMPLES}, about {RECOMMENDED_PROMPTS_PER_CLASS})",
    )


class InspectInput(PromptsInput):
    model: str = Field(
        min_length=1,
        description="Model: 'smollm2-135m' (embedded, for backend 'hf'), a local folder or hub id (hf), or the name "
        "the evidence belongs to (records/features), e.g. 'gpt2-small' or 'toy/model-a'",
    )
    criterion: str = Field(
        "", max_length=2000, description="Natural-language criterion to rank features against (a pack brings its own)"
    )
    backend: Literal["records", "features", "toy", "hf", "neuronpedia", "saelens", "jsonl"] | None = Field(
        None,
        description="Default: inferred from what is given (positives/negatives, dataset or pack: hf; records: "
        "records; features: features; neuronpedia: neuronpedia; saelens_release: saelens). "
        "records: activation records (needs records); features (alias jsonl, interp-lab's name): a "
        "feature JSONL dump, ordered by label similarity (no measured association); toy: generated planted data, "
        "labelled synthetic; hf: harvest "
        "a live model on a prompt set (needs dataset or pack); neuronpedia: import feature cards (needs "
        "neuronpedia; reads the network for refs; no criterion measurement unless records are given); saelens: hf "
        "with an SAE (sae, or saelens_release + saelens_id): its latents are harvested at its hookpoint and ranked",
    )
    records: str | None = Field(
        None, description="Activation records: JSONL file or Parquet dataset folder (workspace path)"
    )
    features: str | None = Field(None, description="Feature JSONL with labels and signatures (workspace path)")
    interventions: str | list[str] | None = Field(
        None, description="Intervention records JSONL for causal evidence (workspace path), or several: their rows "
        "are pooled, e.g. the interventions.jsonl of each intervene run"
    )
    dataset: str | None = Field(
        None,
        description="hf backend: scored prompts JSONL {prompt_id, text, criterion_score} (workspace path). Write "
        f"about {RECOMMENDED_PROMPTS_PER_CLASS} prompts where the criterion holds and as many where it does not "
        f"({2 * RECOMMENDED_PROMPTS_PER_CLASS} in all), so that the {HELD_OUT_FRACTION:.0%} held-out split can detect "
        f"a held-out AUROC of {TARGET_AUROC} (alpha {POWER_ALPHA}, power {POWER:.0%}); match negatives to positives "
        "in length, topic and style so the features found track the criterion, not a confound",
    )
    hookpoints: list[str] | None = Field(
        None, max_length=16,
        description="hf backend: TransformerLens hookpoints, e.g. ['blocks.15.hook_resid_post']; default: a few "
        "middle layers",
    )
    pooling: Literal["last", "mean", "max"] = Field(
        "last", description="hf backend: one row per prompt from its tokens"
    )
    sae: str | None = Field(None, description="hf backend: SAE Lens folder (workspace path) whose latents are ranked "
                                              "too, as SAE:L{layer}:F{i}")
    saelens_release: str | None = Field(
        None, max_length=200,
        description="saelens backend: SAE Lens pretrained release, e.g. 'gemma-scope-2b-pt-res-canonical' (the model "
        "must be the one it was trained on). Fetched once from the Hugging Face hub or its local cache, then cached",
    )
    saelens_id: str | None = Field(
        None, max_length=200, description="saelens backend: SAE id in the release, e.g. 'layer_12/width_16k/canonical'"
    )
    neuronpedia: list[str] | None = Field(
        None, max_length=100,
        description="neuronpedia backend: features as 'gpt2-small@6-res_scefr-ajt:650', neuronpedia.org feature or "
        "API URLs (fetched over the network, cached; key from NEURONPEDIA_API_KEY if set), or SAEDashboard export "
        "files (workspace paths). Labels, top examples, logit effects and density are imported, not measured",
    )
    top_k: int = Field(20, ge=1, le=500, description="Features in the report")
    held_out_fraction: float = Field(0.3, gt=0, lt=1, description="Share of prompts held out as evidence")
    allow_intervention_criterion_mismatch: bool = Field(
        False, description="Use intervention rows whose criterion text differs from this criterion"
    )


class InterveneInput(PromptsInput):
    model: str = Field(min_length=1, description="'smollm2-135m' (embedded), a local folder or a hub id")
    criterion: str = Field("", max_length=2000, description="The criterion (a pack brings its own)")
    dataset: str | None = Field(None, description="Scored prompts JSONL (workspace path); the same set the report used")
    report: str | None = Field(None, description="run_id of an hf inspect job (or its report.json path): its top "
                                                 "features and contrast directions")
    features: list[str] | None = Field(
        None, max_length=32, description="Feature ids to test instead: L{layer}:D{dim}, L{layer}:N{i}, "
                                         "SAE:L{layer}:F{i} (needs sae), direction:…"
    )
    sae: str | None = Field(None, description="SAE Lens folder (cfg.json + sae_weights.safetensors, workspace path) "
                                              "for SAE:L{layer}:F{i} features")
    top_k: int = Field(
        3, ge=1, le=20, description="Top features of the report to test (its contrast direction is added)"
    )
    mode: Literal["ablate", "mean_ablate", "clamp", "steer", "patch"] = Field(
        "steer", description="What to do to each feature"
    )
    strengths: list[float] = Field(
        default_factory=lambda: [-1.0, -0.5, 0.5, 1.0], min_length=1, max_length=8,
        description="steer/clamp strengths in units of the feature's scale (a direction's own norm, else its std; "
                    "negative removes it); the best within a KL budget is chosen on calibration prompts only",
    )
    targets: list[str] | None = Field(None, max_length=64, description="Target next tokens of the behaviour score "
                                                                       "(default: the pack's, else inferred)")
    scorer: Literal["auto", "target", "classifier", "probe"] = Field(
        "auto",
        description="Behaviour score: 'target': next-token probability of target tokens (next-token criteria); "
        "'classifier': an all-MiniLM-L6-v2 classifier applied to 12-token greedy continuations (criteria about what "
        "the model writes: French, code, sentiment; slower); 'probe': a logistic probe on the last block's residual "
        "stream, mean-pooled (criteria about the prompt itself, e.g. 'is a question about geography'). Each is "
        "cross-validated on calibration prompts, on the kind of text it scores, before it may serve. 'auto': target "
        "when targets are given (or the pack's) or the criterion names the next token, else probe",
    )


class InterveneResultModel(BaseModel):
    scorer: dict[str, Any] = Field(description="The behaviour scorer: its kind, its validation on calibration "
                                   "prompts (validated_on, validation_auroc) and its held-out AUROC/accuracy")
    warnings: list[str] = Field(default_factory=list, description="Caveats, e.g. inferred stand-in target tokens")
    features: list[dict[str, Any]] = Field(
        description="Per feature: verdict (causal, weak, no_effect, contradicts) and verdict_reason, effect with 95% "
                    "CI, control effect, side effect (KL on the other class), stability (share of the strengths tried "
                    "with the same verdict), a quotable confidence line, and a note when the edit changed no score"
    )
    interventions: str = Field(description="URI of interventions.jsonl (seed format; feed it to inspect)")
    summary: str = Field(description="URI of summary.json")


class InterveneOutput(BaseModel):
    job: JobView
    result: InterveneResultModel | None = Field(None, description="Present when the job finished within wait_seconds")
    resources: list[str]
    next_actions: list[NextAction] = Field(description=NEXT_ACTIONS)


class TrainSaeInput(JobStartInput):
    model: str | None = Field(None,
                              description="Source 1: a live model ('smollm2-135m' embedded, a local folder or hub id), "
                              "harvested at hookpoint over dataset or pack")
    dataset: str | None = Field(None, description="With model: prompts (workspace path): scored-prompts JSONL, JSONL "
                                                  "with 'text', or .txt one per line")
    pack: Literal["measurement_unit", "french", "python_code", "negative_sentiment", "question"] | None = Field(
        None,
        description="With model: a built-in criterion pack as the prompts (scored: latent records and causal test "
        "possible)",
    )
    criterion: str | None = Field(
        None, max_length=2000, description="The criterion of a scored dataset (a pack brings its own)"
    )
    hookpoint: str | None = Field(
        None, description="TransformerLens hook name, e.g. blocks.15.hook_resid_post (required with model)"
    )
    activations: list[str] | None = Field(None, max_length=256, description="Source 2: stored activations (workspace "
                                                                            "paths): .safetensors, .npy or .parquet, "
                                                                            "or a harvest folder (the harvest tool)")
    records: str | None = Field(
        None, description="Source 3: activation records JSONL (workspace path); each feature id is a dimension"
    )
    causal: bool = Field(False,
                         description="After training, rank the latents on training prompts and steer the top 3 with "
                         "controls on held-out prompts (needs model and scored prompts; minutes on a CPU)")
    preset: Literal["minimal", "production"] = Field(
        "minimal",
        description="minimal: 4x latents, k 16, 300 steps (seconds on a CPU); "
        "production: 32x latents, k 32, batch 4096, one pass over the data",
    )
    architecture: Literal["topk", "batchtopk", "relu", "jumprelu"] | None = Field(None, description="Default topk")
    latent_dim: int | None = Field(None, ge=1, le=1 << 24, description="Number of latents (wins over expansion_factor)")
    expansion_factor: float | None = Field(None, gt=0, le=1024, description="Latents per input dimension")
    k: int | None = Field(None, ge=1, le=4096, description="Active latents per token (topk, batchtopk)")
    batch_size: int | None = Field(None, ge=1, le=1 << 16, description="Rows per step")
    steps: int | None = Field(None, ge=1, le=10_000_000, description="Optimiser steps (production default: one pass)")
    lr: float | None = Field(None, gt=0, le=1, description="Adam learning rate")
    sparsity_coefficient: float | None = Field(None, ge=0, description="relu: L1 weight; jumprelu: L0 weight")
    seed: int = Field(0, ge=0, description="Seed: on a CPU the same seed gives the same SAE")
    device: str = Field("auto", description="auto (CUDA when present), cpu, cuda, cuda:1")
    max_records: int | None = Field(None, ge=2, description="Keep a uniform reservoir sample of this many rows")
    held_out_fraction: float | None = Field(
        None, gt=0, lt=1, description="Share held out for metrics (0.3 for scored prompts, else 0.1)"
    )
    checkpoint_every: int | None = Field(
        None, ge=1, description="Steps between checkpoints (resume continues from the newest)"
    )


class HarvestInput(JobStartInput):
    model: str = Field("smollm2-135m", description="The model: 'smollm2-135m' (embedded), a local folder or a hub id")
    hookpoint: str = Field(description="TransformerLens hook name, e.g. blocks.15.hook_resid_post")
    dataset: str | None = Field(None, description="Input 1: scored prompts JSONL (workspace path); shards get "
                                                  "per-prompt records with each prompt's criterion score")
    pack: Literal["measurement_unit", "french", "python_code", "negative_sentiment", "question"] | None = Field(
        None, description="Input 2: a built-in criterion pack as the prompts (records included)")
    corpus: str | None = Field(None, description="Input 3: a corpus ('builtin', or a .txt/.jsonl/.parquet workspace "
                                                 "path) cut into context_length-token contexts; no records")
    shard_size: int = Field(256, ge=1, le=10_000_000, description="Prompts (or contexts) per shard")
    engine: Literal["local", "ray"] = Field(
        "local", description="local: in the job's worker; ray: Ray actors, one model replica each (needs a cluster)")
    workers: int = Field(1, ge=1, le=4096, description="Ray actors (engine ray); the local engine runs one")
    ray_address: str | None = Field(None, description="Ray cluster host:port (engine ray); default RAY_ADDRESS or "
                                                      "the cluster `ray start` left on this machine")
    torch_threads: int = Field(1, ge=1, le=1024, description="torch threads of each Ray worker")
    max_length: int = Field(128, ge=2, le=8192, description="Tokens kept per prompt")
    pooling: Literal["last", "mean", "max"] = Field("last", description="Pooling of the per-prompt records (last, "
                                                                        "as inspect's hf backend)")
    context_length: int = Field(64, ge=8, le=1024, description="Tokens per corpus context")
    max_contexts: int | None = Field(None, ge=1, description="Corpus contexts read at most")


class HarvestOutput(BaseModel):
    job: JobView
    result: dict[str, Any] | None = Field(
        None, description="When finished within wait_seconds: model, hookpoint, d_in, mode, records, n_shards, "
        "complete, totals (shards, rows, tokens, bytes, seconds), source, folder, manifest")
    resources: list[str]
    next_actions: list[NextAction] = Field(description=NEXT_ACTIONS)


class TrainSaeResult(BaseModel):
    sae: dict[str, Any] = Field(description="architecture, saved_as, d_in, d_sae, k, hookpoint, model")
    held_out: dict[str, Any] = Field(
        description="On held-out rows: mse, fvu, l0, dead_fraction, dense_fraction, firing-rate quantiles"
    )
    splice: dict[str, Any] | None = Field(description="From a model: next-token CE clean / spliced / mean-ablated, "
                                                      "loss_recovered, KL per token (held-out prompts)")
    training: dict[str, Any] = Field(
        description="steps, tokens, resumed_from_step, tokens_per_s_this_run, final loss terms"
    )
    causal: dict[str, Any] | None = Field(
        None, description="With causal: per steered latent its verdict, effect and control effect"
    )
    files: dict[str, str] = Field(
        description="URIs: cfg.json, sae_weights.safetensors (SAE Lens layout), metrics.json, records.jsonl"
    )


class TrainSaeOutput(BaseModel):
    job: JobView
    result: TrainSaeResult | None = Field(None, description="Present when the job finished within wait_seconds")
    resources: list[str]
    next_actions: list[NextAction] = Field(description=NEXT_ACTIONS)


class FeatureRow(BaseModel):
    """One ranked feature, compact."""

    rank: int
    feature_id: str
    label: str | None = None
    importance: float = Field(description="Ranking score; formula in the report's method section")
    direction: str | None = Field(None, description="promotes or suppresses the criterion")
    r_train: float | None = Field(None, description="Pearson r on the training split (correlational)")
    r_held_out: float | None = Field(None, description="Pearson r on held-out prompts (correlational)")
    r_held_out_ci95: list[float] | None = Field(
        None, description="95% interval [low, high] of the held-out r (Fisher z over held-out prompts); null "
        "when there are 3 or fewer held-out prompts")
    auroc_held_out: float | None = Field(
        None, description="AUROC on held-out prompts, 0..1 (binary scores; correlational)"
    )
    auroc_held_out_ci95: list[float] | None = Field(
        None, description="95% interval [low, high] of the held-out AUROC (DeLong, logit scale)")
    n_held_out_prompts: int | None = Field(None, description="Held-out prompts the held-out numbers rest on")
    held_out_excludes_chance: bool | None = Field(
        None, description="The held-out r interval excludes 0 and the AUROC interval excludes 0.5; false: "
        "the held-out evidence cannot tell this feature from noise (see notes)")
    held_out_prompts_needed: int | None = Field(
        None, description="Held-out prompts a test of r = 0 needs to detect the training r (alpha 0.05, power 0.8)")
    held_out_supported: bool | None = Field(None, description="Same sign and q < 0.05 on held-out prompts")
    strong_causal_score: float | None = Field(
        None, description="Effect beyond side effect and controls (interventional)"
    )
    notes: list[str] = Field(default_factory=list, description="Caveats on this feature's evidence, e.g. a held-out "
                             "set too small to exclude chance and how many prompts would be needed")


class InspectResult(BaseModel):
    synthetic: bool = Field(description="True when built from generated data: no model was measured")
    summary: dict[str, Any] = Field(
        description="Counts: rows, prompts, features tested, significant, held-out supported"
    )
    warnings: list[str]
    top: list[FeatureRow] = Field(description="The first ranked features (up to 10)")
    directions: list[dict[str, Any]] = Field(
        default_factory=list, description="Contrast directions a live inspect saved, each {feature_id, hookpoint, "
        "rank}: ids to pass to intervene(features=...) with report=<run_id>, whether or not they made the top rows")
    report: str = Field(description="URI of report.json")
    html: str = Field(description="URI of the readable report.html")
    csv: str | None = Field(None, description="URI of features.csv: every ranked feature as one row (held-out "
                            "statistics with intervals, causal effect, verdict, provenance; an empty cell is null)")


MODEL_ARG = "'smollm2-135m' (embedded), a local model folder (workspace path, e.g. a fine-tune) or a hub id"


class SideSpec(ToolInput):
    """One side of an activation match: a model, a hookpoint and the features read there."""

    model: str = Field("smollm2-135m", min_length=1, description=MODEL_ARG)
    hookpoint: str = Field(min_length=1, description="TransformerLens hookpoint, e.g. 'blocks.15.hook_resid_post' "
                           "(neurons: 'blocks.15.mlp.hook_post')")
    features: Literal["dims", "neurons", "sae"] = Field(
        "dims", description="dims (residual dimensions), neurons (MLP neurons, at mlp.hook_post) or sae (the latents "
        "of the SAE folder given as sae)")
    sae: str | None = Field(None, description="SAE Lens or sparsify folder (workspace path), with features='sae'")
    feature_ids: list[str] | None = Field(None, max_length=20_000, description="Keep only these features (ids as "
                                          "this side names them, e.g. 'L15:D3', 'SAE:L15:F12'); default all")
    label: str = Field("", max_length=200, description="How the result names this side (default model@hookpoint)")



class MatchInput(EvidenceJobInput):
    method: Literal["fingerprint", "activations"] = Field(
        "fingerprint", description="fingerprint: compare two inspection reports (left, right) on their saved "
        "evidence; activations: harvest two sides (left_side, right_side: model, hookpoint, features) on one probe "
        "set and match by activation correlation, with a shuffled-probe null and held-out correlations")
    left: str | None = Field(None, description="fingerprint: a run_id of an earlier inspect job, or a report.json "
                             "path (workspace path)")
    right: str | None = Field(None, description="fingerprint: a run_id of an earlier inspect job, or a report.json "
                              "path (workspace path)")
    left_side: SideSpec | None = Field(None, description="activations: the left side")
    right_side: SideSpec | None = Field(None, description="activations: the right side")
    probes: str = Field("builtin", description="activations: the probe prompts both sides read: 'builtin' (general "
                        "English corpus), a pack name (its prompts) or a scored-prompts JSONL / corpus file "
                        "(workspace path)")
    pooling: Literal["token", "mean", "max"] = Field(
        "token", description="activations: correlate over tokens (both models must tokenize alike) or per prompt "
        "(mean/max: works across tokenizers)")
    max_prompts: int = Field(200, ge=10, le=20_000, description="activations: probe prompts used (a seeded sample)")
    min_similarity: float = Field(0.3, ge=-1, le=1, description="Smallest similarity (fingerprint: combined; "
                                  "activations: correlation) kept as a match")
    use_text: bool = Field(True, description="fingerprint: compare labels with the all-MiniLM-L6-v2 sentence encoder")


class MatchResult(BaseModel):
    summary: dict[str, Any] = Field(
        description="n_left, n_right, n_matches, mean similarity, mutual nearest, sign agreement"
    )
    notes: list[str] = Field(description="Dropped components and why")
    matches: list[dict[str, Any]] = Field(
        description="Best matches first (up to 10): ids, labels, similarity, components"
    )
    matches_json: str = Field(description="URI of matches.json")
    matches_md: str = Field(description="URI of matches.md")


class InspectOutput(BaseModel):
    job: JobView
    result: InspectResult | None = Field(None, description="Present when the job finished within wait_seconds")
    resources: list[str]
    next_actions: list[NextAction] = Field(description=NEXT_ACTIONS)


class MatchOutput(BaseModel):
    job: JobView
    result: MatchResult | None = Field(None, description="Present when the job finished within wait_seconds")
    resources: list[str]
    next_actions: list[NextAction] = Field(description=NEXT_ACTIONS)


# -- publish ---------------------------------------------------------------------------------------
class PublishInput(JobStartInput):
    path: str = Field(min_length=1, description="What to publish: a run_id (its folder runs/<run_id>) or a folder path "
                      "inside the workspace or a read root, e.g. the folder of a train_sae or inspect run")
    repo_id: str = Field(
        min_length=3, max_length=193, description="Hugging Face Hub repo 'owner/name', e.g. 'my-user/smollm2-unit-sae'"
    )
    repo_type: Literal["model", "dataset"] = Field(
        "model", description="model (SAEs) or dataset (reports and records only)"
    )
    dry_run: bool = Field(
        True,
        description="true (default): list every file and its size and render the card; nothing is uploaded and no "
        "token is needed. false: create the repo if missing and upload in one commit",
    )
    private: bool = Field(True, description="Create the repo private (applies only when the repo does not exist yet)")
    commit_message: str | None = Field(
        None, max_length=500, description="Commit message; default names the run folder and file count"
    )


class PublishResult(BaseModel):
    dry_run: bool = Field(description="True when nothing was sent to the Hub")
    uploaded: bool = Field(description="True when the commit was made")
    repo_id: str
    repo_type: str
    endpoint: str = Field(description="Hub endpoint (HF_ENDPOINT when set)")
    token_present: bool = Field(description="Whether HF_TOKEN is set (its value is never shown)")
    files: list[dict[str, Any]] = Field(
        description="Every file uploaded (or that would be): path in the repo, bytes; README.md is generated"
    )
    skipped: list[dict[str, Any]] = Field(
        description="Files left behind (checkpoints, caches, job.log, temporaries, credential-like files), with why"
    )
    total_bytes: int = Field(description="Bytes of all files, card included")
    card: str = Field(description="URI of the generated card (card.md in this job's run folder)")
    card_preview: str = Field(description="The card's first 1,500 characters")
    repo_url: str | None = Field(None, description="The repo's URL after an upload")
    commit_url: str | None = Field(None, description="The commit's URL after an upload")
    message: str = Field(description="What happened, in one sentence")


class PublishOutput(BaseModel):
    job: JobView
    result: PublishResult | None = Field(None, description="Present when the job finished within wait_seconds")
    resources: list[str]
    next_actions: list[NextAction] = Field(description=NEXT_ACTIONS)


# -- feature cards ---------------------------------------------------------------------------
class FeatureCardInput(ToolInput):
    run_id: str = Field(min_length=1, max_length=64, description="run_id of a completed inspect job")
    feature_id: str | None = Field(
        None, max_length=200, description="A feature id of its report, e.g. 'L15:D42' or "
        "'direction:contrast@blocks.15.hook_resid_post'; default: the top-ranked feature")


class FeatureCardOutput(BaseModel):
    card: dict[str, Any] = Field(
        description="The feature: the compact row (rank, held-out r and AUROC with 95% intervals, notes), its "
        "association, specificity, stability and causal blocks, provenance and top examples")
    criterion: str | None = Field(None, description="The criterion the report ranked against")
    synthetic: bool = Field(description="True when the report was built from generated data")
    n_features: int = Field(description="Features in the report")
    report: str = Field(description="URI of the whole report.json")
    next_actions: list[NextAction] = Field(description=NEXT_ACTIONS)


# -- artifacts -------------------------------------------------------------------------------------
class ListArtifactsInput(ToolInput):
    run_id: str | None = Field(None, max_length=64, description="Only this run; all runs when omitted")
    limit: int = Field(100, ge=1, le=1000, description="Most artifacts to list")


class Artifact(BaseModel):
    uri: str = Field(description="Read it with resources/read")
    run_id: str
    file: str
    bytes: int = Field(description="Size in bytes (a folder: of all its files)")
    mime_type: str = Field(description="inode/directory for a folder, whose resource is a JSON listing")
    path: str | None = Field(None, description="A folder's workspace path, to pass as a tool argument (records=…)")


class ListArtifactsOutput(BaseModel):
    artifacts: list[Artifact]
    next_actions: list[NextAction] = Field(description=NEXT_ACTIONS)
