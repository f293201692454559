"""Sizing work: human sizes, plan numbers against hand computations, routes, and the environment profile."""

from __future__ import annotations

import json
import subprocess
import sys
from dataclasses import MISSING, fields
from pathlib import Path
from typing import Any, get_args

import pytest

from interp_agent.core.errors import InputFileError, ValidationError
from interp_agent.core.scale import (
    ACCELERATORS,
    CREDENTIAL_ENV_VARS,
    DTYPE_BYTES,
    INPUT_RANGES,
    AcceleratorName,
    Dtype,
    Route,
    ScalePlanInput,
    accelerator_from_profile,
    format_bytes,
    format_count,
    load_profile,
    parse_size,
    plan_scale,
    profile_env,
    render_plan,
    save_profile,
)
from interp_agent.core.scale import profile as profile_module

SMALL: dict[str, Any] = dict(model_params=135e6, tokens=1e6, d_model=576, selected_layers=1, latent_dim=4608)


# -- sizes ------------------------------------------------------------------------------------
@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("70B", 70e9), ("1T", 1e12), ("1.5B", 1.5e9), ("16384", 16384.0), ("1M", 1e6), ("2k", 2000.0),
        ("2K", 2000.0), ("1e9", 1e9), ("1_000", 1000.0), (" 3 M ", 3e6), ("1Mi", 2.0**20), ("1G", 1e9),
        (4608, 4608.0), (0.5, 0.5),
    ],
)
def test_parse_size_reads_human_counts(text, expected) -> None:
    assert parse_size(text, kind="count") == expected


@pytest.mark.parametrize(
    ("text", "expected"),
    [
        ("64GB", 64e9), ("512MiB", 512 * 2**20), ("1.5TB", 1.5e12), ("4096", 4096.0), ("2GiB", 2 * 2**30),
        ("1B", 1.0), ("10 kB", 1e4), ("3G", 3e9), ("1PB", 1e15),
    ],
)
def test_parse_size_reads_human_bytes(text, expected) -> None:
    assert parse_size(text, kind="bytes") == expected


def test_size_kind_decides_whether_b_means_billion_or_byte() -> None:
    assert parse_size("7B", kind="count") == 7e9
    assert parse_size("7B", kind="bytes") == 7.0


@pytest.mark.parametrize("junk", ["", "abc", "70X", "GB", "1.2.3", "5 G B", "nan", "inf", "12 parsecs", "--3"])
def test_parse_size_rejects_junk_naming_the_value_and_giving_examples(junk) -> None:
    with pytest.raises(ValidationError) as err:
        parse_size(junk, kind="count")
    assert repr(junk) in str(err.value) and "70B" in str(err.value)


@pytest.mark.parametrize("bad", [-5, "-5", float("nan"), float("inf"), "1e400", True, None, [1]])
def test_parse_size_rejects_negative_infinite_and_non_numbers(bad) -> None:
    with pytest.raises(ValidationError):
        parse_size(bad, kind="bytes")


def test_a_count_suffix_is_not_a_byte_suffix() -> None:
    with pytest.raises(ValidationError, match="64GB"):
        parse_size("64Bn", kind="bytes")


def test_sizes_are_formatted_for_people() -> None:
    assert format_count(1.5e9) == "1.5B" and format_count(16384) == "16.4k" and format_count(12) == "12"
    assert format_bytes(2.304e9) == "2.3 GB" and format_bytes(262e12) == "262 TB"


# -- plan numbers -----------------------------------------------------------------------------
def test_dense_storage_of_a_small_case_matches_the_hand_computation() -> None:
    plan = plan_scale(ScalePlanInput(**SMALL, dtype="float32"))
    # 1e6 tokens x 576 d_model x 1 layer x 4 bytes
    assert plan["storage"]["dense_bytes"] == pytest.approx(2.304e9)
    assert plan["storage"]["dense_bytes_by_dtype"] == pytest.approx(
        {"float32": 2.304e9, "bfloat16": 1.152e9, "float16": 1.152e9, "float8": 0.576e9}
    )


def test_sparse_storage_counts_an_index_and_a_value_per_active_latent() -> None:
    plan = plan_scale(ScalePlanInput(**SMALL, k=32, dtype="bfloat16"))
    assert plan["storage"]["sparse_bytes"] == pytest.approx(1e6 * 1 * 32 * (4 + 2))


def test_sae_parameters_follow_the_encoder_decoder_and_bias_formula() -> None:
    plan = plan_scale(ScalePlanInput(**{**SMALL, "selected_layers": 3}, dtype="bfloat16"))
    per_layer = 2 * 576 * 4608 + 4608 + 576
    assert per_layer == 5_313_600
    sae = plan["sae"]
    assert sae["params_per_layer"] == per_layer and sae["params_total"] == 3 * per_layer
    assert sae["training_bytes_per_param"] == 16 + 2  # fp32 master, grad, Adam m, v + bf16 working copy
    assert sae["training_state_bytes_per_layer"] == per_layer * 18
    assert sae["optimizer_bytes_per_layer"] == per_layer * 8 and sae["optimizer_bytes_total"] == per_layer * 8 * 3


def test_float32_training_keeps_no_extra_working_copy() -> None:
    assert plan_scale(ScalePlanInput(**SMALL, dtype="float32"))["sae"]["training_bytes_per_param"] == 16


def test_shard_count_is_the_ceiling_of_storage_over_the_target_size() -> None:
    plan = plan_scale(ScalePlanInput(**SMALL, dtype="float32", target_shard_size=1e9))
    assert plan["shards"]["dense"] == {"count": 3, "bytes_each": pytest.approx(0.768e9)}
    assert plan["shards"]["recommended"]["storage"] == "dense" and plan["shards"]["recommended"]["count"] == 3
    assert plan["shards"]["sparse"]["count"] == 1


def test_flops_and_gpu_hours_follow_the_stated_formulas() -> None:
    plan = plan_scale(ScalePlanInput(**SMALL, accelerator="A100-80GB", mfu=0.5))
    c = plan["compute"]
    assert c["harvest"]["flops"] == pytest.approx(2 * 135e6 * 1e6)
    assert c["causal_validation"]["intervention_passes"] == 100 * 5 * 1000
    assert c["causal_validation"]["baseline_passes"] == 1000
    assert c["causal_validation"]["flops"] == pytest.approx(2 * 135e6 * 64 * (500_000 + 1000))
    assert c["sae_training"]["flops"] == pytest.approx(6 * 1e6 * 2 * 576 * 4608)
    assert c["sae_training"]["topk_flops"] == pytest.approx(6 * 1e6 * (576 * 4608 + 576 * 32))
    total = c["harvest"]["flops"] + c["causal_validation"]["flops"] + c["sae_training"]["flops"]
    assert c["total_flops"] == pytest.approx(total)
    assert c["total_gpu_hours"] == pytest.approx(total / (312e12 * 0.5) / 3600)


def test_every_formula_is_stated_in_the_notes() -> None:
    notes = " | ".join(plan_scale(ScalePlanInput(**SMALL))["notes"])
    for formula in ("tokens x d_model x selected_layers", "tokens x selected_layers x k", "2 x d_model x d_sae + d_sae",
                    "2 x model_params x tokens", "upper bound", "prompt_tokens (64 assumed)",
                    "6 x tokens x sae_training_passes (1) x (2 x d_model",
                    "vendor spec sheets, dense bf16", "MFU 0.4"):
        assert formula in notes, formula


def test_the_plan_is_deterministic() -> None:
    inp = ScalePlanInput(**SMALL)
    assert json.dumps(plan_scale(inp)) == json.dumps(plan_scale(inp))
    assert plan_scale(inp)["schema_version"] == "interp-agent.scale_plan.v1"


# -- routes and risks ------------------------------------------------------------------------
def test_the_route_grows_from_single_gpu_to_multi_gpu_to_cluster() -> None:
    small = plan_scale(ScalePlanInput.from_sizes(model_params="135M", tokens="1M", d_model=576, selected_layers=1,
                                                 latent_dim="4608"))
    medium = plan_scale(ScalePlanInput.from_sizes(model_params="70B", tokens="100M", d_model=8192, selected_layers=2,
                                                  latent_dim="64k"))
    huge = plan_scale(ScalePlanInput.from_sizes(model_params="1T", tokens="1B", d_model=16384, selected_layers=8,
                                                latent_dim="1M"))
    assert (small["route"], medium["route"], huge["route"]) == ("single_gpu", "multi_gpu", "cluster")
    assert small["risks"] == []
    assert any("Ray" in r and "torchrun" in r for r in huge["route_reasons"])
    codes = {r["code"] for r in huge["risks"]}
    assert {"weights_do_not_fit_one_gpu", "sparse_records_preferred", "single_machine_too_slow",
            "sae_state_does_not_fit_one_gpu"} <= codes


def test_weights_that_do_not_fit_one_gpu_are_flagged_with_the_devices_needed() -> None:
    plan = plan_scale(ScalePlanInput(**{**SMALL, "model_params": 70e9}, dtype="bfloat16", accelerator="H100"))
    assert plan["weights"]["bytes"] == 140e9 and plan["weights"]["fits_one_accelerator"] is False
    assert plan["weights"]["accelerators_needed"] == 2  # 140 GB over 0.9 x 80 GB
    assert "weights_do_not_fit_one_gpu" in {r["code"] for r in plan["risks"]}
    h200 = plan_scale(ScalePlanInput(**{**SMALL, "model_params": 60e9}, dtype="bfloat16", accelerator="H200"))
    assert h200["weights"]["fits_one_accelerator"] is True  # 120 GB <= 0.9 x 141 GB


def test_dense_storage_over_ten_terabytes_prefers_sparse_records() -> None:
    plan = plan_scale(ScalePlanInput(model_params=7e9, tokens=1e9, d_model=4096, selected_layers=2, latent_dim=65536))
    assert plan["storage"]["dense_bytes"] == pytest.approx(16.384e12)
    assert plan["storage"]["recommended"] == "sparse"
    assert plan["shards"]["recommended"]["storage"] == "sparse"
    assert "sparse_records_preferred" in {r["code"] for r in plan["risks"]}


def test_storage_beyond_the_profiled_free_disk_is_flagged_and_escalates_the_route() -> None:
    env = {"accelerators": [], "accelerator_count": 0, "disk": {"free_bytes": 1e9}}
    plan = plan_scale(ScalePlanInput(**SMALL, dtype="float32"), env)
    assert "storage_exceeds_free_disk" in {r["code"] for r in plan["risks"]}
    assert plan["route"] == "cluster"
    assert plan_scale(ScalePlanInput(**SMALL, dtype="float32"))["route"] == "single_gpu"


def test_single_machine_too_slow_counts_the_available_accelerators() -> None:
    inp: dict[str, Any] = dict(model_params=7e9, tokens=1e10, d_model=4096, selected_layers=1, latent_dim=65536)
    one = plan_scale(ScalePlanInput(**inp, n_accelerators=1))
    eight = plan_scale(ScalePlanInput(**inp, n_accelerators=8))
    assert one["compute"]["total_gpu_hours"] > 72
    assert "single_machine_too_slow" in {r["code"] for r in one["risks"]}
    assert "single_machine_too_slow" not in {r["code"] for r in eight["risks"]}
    assert eight["compute"]["wall_hours_on_available"] == pytest.approx(one["compute"]["total_gpu_hours"] / 8)


def test_an_environment_profile_fills_in_the_accelerator_and_its_count() -> None:
    devices = [{"index": i, "name": "NVIDIA H200", "total_memory_gib": 139.8, "compute_capability": "9.0"}
               for i in range(4)]
    plan = plan_scale(ScalePlanInput(**SMALL), {"accelerators": devices, "accelerator_count": 4})
    assert plan["inputs"]["accelerator"] == "H200" and plan["inputs"]["n_accelerators"] == 4
    assert plan["inputs"]["sources"]["accelerator"] == "environment profile"
    explicit = plan_scale(ScalePlanInput(**SMALL, accelerator="L4", n_accelerators=2), {"accelerators": devices,
                                                                                        "accelerator_count": 4})
    assert (explicit["inputs"]["accelerator"], explicit["inputs"]["n_accelerators"]) == ("L4", 2)
    assert plan_scale(ScalePlanInput(**SMALL))["inputs"]["accelerator"] == "H100"


# -- every assumption is an input; the values used are in the notes -----------------------------------
ASSUMPTION_DEFAULTS = {
    "causal_prompts": None, "causal_features": None, "interventions_per_feature": 5, "prompt_tokens": 64, "mfu": 0.4,
    "max_wall_hours": 72.0, "cpu_peak_tflops": 1.0, "usable_memory_fraction": 0.9, "gpus_per_node": 8,
    "local_storage_limit": 30e12, "sparse_preferred_above": 10e12, "optimizer_bytes_per_param": 8,
    "sae_training_passes": 1.0, "harvest_depth_fraction": 1.0,
}


def test_every_assumption_is_an_input_with_todays_default_and_a_range() -> None:
    defaults = {f.name: f.default for f in fields(ScalePlanInput) if f.default is not MISSING}
    assert set(INPUT_RANGES) == set(ASSUMPTION_DEFAULTS)
    for name, default in ASSUMPTION_DEFAULTS.items():
        assert defaults[name] == default, name


@pytest.mark.parametrize("name", sorted(INPUT_RANGES))
def test_each_assumption_is_range_checked_naming_the_field(name: str) -> None:
    low, high, low_included = INPUT_RANGES[name]
    whole = isinstance(ASSUMPTION_DEFAULTS[name], int) or name in ("causal_prompts", "causal_features")
    edge = int(low) if whole else low
    # causal_features may not exceed latent_dim
    base: dict[str, Any] = {**SMALL, "latent_dim": 2_000_000} if name == "causal_features" else SMALL

    def plan_input(value: Any) -> ScalePlanInput:
        return ScalePlanInput(**{**base, name: value})

    plan_input(int(high) if whole else high)  # the top of the range is allowed
    if low_included:
        plan_input(edge)
    too_small = edge - 1 if low_included else edge
    too_big = int(high) + 1 if whole else high * 1.5
    for bad in (too_small, too_big, float("nan"), True, "5", *([edge + 1.5] if whole else [])):
        with pytest.raises(ValidationError, match=name):
            plan_input(bad)


def test_causal_features_may_not_exceed_latent_dim() -> None:
    with pytest.raises(ValidationError, match="causal_features"):
        ScalePlanInput(**SMALL, causal_features=4609)
    small_sae = plan_scale(ScalePlanInput(**{**SMALL, "latent_dim": 64}, k=8))
    assert small_sae["inputs"]["causal_features"] == 64  # the default: min(100, latent_dim)


def test_the_notes_print_the_value_used_of_every_assumption() -> None:
    (used,) = [n for n in plan_scale(ScalePlanInput(**SMALL))["notes"] if n.startswith("values used:")]
    for name in INPUT_RANGES:
        assert f"{name} " in used, name
    assert "causal_prompts 1,000 (default: min(1000, tokens // prompt_tokens = 15,625)" in used
    assert "causal_features 100 (default: min(100, latent_dim))" in used
    assert "interventions_per_feature 5 (default)" in used and "mfu 0.4 (default)" in used
    assert "local_storage_limit 30 TB (default)" in used and "optimizer_bytes_per_param 8 (default)" in used
    changed = plan_scale(ScalePlanInput(**SMALL, causal_prompts=50, causal_features=7, mfu=0.25,
                                        cpu_peak_tflops=0.2, sae_training_passes=3))
    (used,) = [n for n in changed["notes"] if n.startswith("values used:")]
    assert "causal_prompts 50 (argument)" in used and "causal_features 7 (argument)" in used
    assert "mfu 0.25," in used and "cpu_peak_tflops 0.2," in used and "sae_training_passes 3," in used
    assert changed["inputs"]["sources"]["causal_prompts"] == "argument"


def test_a_small_run_is_validated_on_the_prompts_its_text_holds_not_a_fixed_thousand() -> None:
    """Issue 12: 10k tokens of a 135M model came out at 6 CPU-hours, nearly all of it 1,000 x 100 x 5 passes."""
    inp: dict[str, Any] = dict(model_params=135e6, tokens=1e4, d_model=576, selected_layers=1, latent_dim=16384,
                               accelerator="cpu")
    plan = plan_scale(ScalePlanInput(**inp))
    cv = plan["compute"]["causal_validation"]
    assert plan["inputs"]["causal_prompts"] == cv["prompts"] == 156  # 10,000 // 64
    assert plan["inputs"]["sources"]["causal_prompts"].startswith("default: min(1000, tokens // prompt_tokens")
    assert cv["intervention_passes"] == 100 * 5 * 156 and cv["baseline_passes"] == 156
    assert plan["compute"]["total_gpu_hours"] < 1.0
    fixed = plan_scale(ScalePlanInput(**inp, causal_prompts=1000))  # the old fixed default, now asked for
    assert fixed["compute"]["total_gpu_hours"] == pytest.approx(6.0, rel=0.01)
    assert "(100 features x 5 x 156 prompts)" in render_plan(plan)
    # from 64k tokens on, the default is 1,000 as before
    assert plan_scale(ScalePlanInput(**{**inp, "tokens": 64_000}))["inputs"]["causal_prompts"] == 1000
    assert plan_scale(ScalePlanInput(**{**inp, "tokens": 10}))["inputs"]["causal_prompts"] == 1


def test_each_assumption_changes_the_number_it_names() -> None:
    base = plan_scale(ScalePlanInput(**SMALL))
    sgd = plan_scale(ScalePlanInput(**SMALL, optimizer_bytes_per_param=0))
    assert sgd["sae"]["training_bytes_per_param"] == 8 + 0 + 2 and sgd["sae"]["optimizer_bytes_per_layer"] == 0
    assert plan_scale(ScalePlanInput(**SMALL, optimizer_bytes_per_param=2))["sae"]["optimizer_bytes_per_param"] == 2
    twice = plan_scale(ScalePlanInput(**SMALL, sae_training_passes=2))["compute"]["sae_training"]
    assert twice["flops"] == pytest.approx(2 * base["compute"]["sae_training"]["flops"])
    assert twice["topk_flops"] == pytest.approx(2 * base["compute"]["sae_training"]["topk_flops"])
    half = plan_scale(ScalePlanInput(**SMALL, harvest_depth_fraction=0.5))["compute"]["harvest"]
    assert half["flops"] == pytest.approx(base["compute"]["harvest"]["flops"] / 2) and half["upper_bound"] is False
    assert base["compute"]["harvest"]["upper_bound"] is True
    nine = plan_scale(ScalePlanInput(**SMALL, interventions_per_feature=9, prompt_tokens=128))["compute"]
    assert nine["causal_validation"]["intervention_passes"] == 100 * 9 * 1000
    assert nine["causal_validation"]["flops"] == pytest.approx(2 * 135e6 * 128 * (900_000 + 1000))
    h200: dict[str, Any] = dict(SMALL, model_params=60e9, accelerator="H200")  # 120 GB of bf16 weights against 141 GB
    assert plan_scale(ScalePlanInput(**h200))["weights"]["fits_one_accelerator"] is True
    tight = plan_scale(ScalePlanInput(**h200, usable_memory_fraction=0.8))["weights"]
    assert tight["fits_one_accelerator"] is False and tight["usable_memory_fraction"] == 0.8
    medium: dict[str, Any] = dict(model_params=70e9, tokens=1e8, d_model=8192, selected_layers=2, latent_dim=65536)
    assert plan_scale(ScalePlanInput(**medium))["route"] == "multi_gpu"
    small_node = plan_scale(ScalePlanInput(**medium, gpus_per_node=1))
    assert small_node["route"] == "cluster" and any("1-GPU machine" in r for r in small_node["route_reasons"])
    assert plan_scale(ScalePlanInput(**SMALL, local_storage_limit=1e6))["route"] == "cluster"
    assert plan_scale(ScalePlanInput(**SMALL, sparse_preferred_above=1e6))["storage"]["recommended"] == "sparse"
    cpu = plan_scale(ScalePlanInput(**SMALL, accelerator="cpu", cpu_peak_tflops=0.25))
    assert cpu["accelerator"]["peak_tflops"] == 0.25
    assert cpu["compute"]["total_gpu_hours"] == pytest.approx(cpu["compute"]["total_flops"] / (0.25e12 * 0.4) / 3600)


def test_from_sizes_reads_the_byte_assumptions_and_takes_none_as_the_default() -> None:
    inp = ScalePlanInput.from_sizes(**SMALL, local_storage_limit="2TB", sparse_preferred_above="500GiB",
                                    gpus_per_node="4", optimizer_bytes_per_param=None, mfu=None, causal_prompts=None)
    assert (inp.local_storage_limit, inp.sparse_preferred_above, inp.gpus_per_node) == (2e12, 500 * 2**30, 4)
    assert (inp.optimizer_bytes_per_param, inp.mfu, inp.causal_prompts) == (8, 0.4, None)
    with pytest.raises(ValidationError, match="gpus_per_node"):
        ScalePlanInput.from_sizes(**SMALL, gpus_per_node="2.5")


def test_the_mcp_input_exposes_every_assumption_with_the_same_default_and_range() -> None:
    models = pytest.importorskip("interp_agent.server.models")
    schema = models.PlanScaleInput.model_json_schema()["properties"]
    for f in fields(ScalePlanInput):
        assert f.name in schema, f.name
    for name, (low, high, low_included) in INPUT_RANGES.items():
        prop = schema[name]
        assert prop.get("description"), name
        default = ASSUMPTION_DEFAULTS[name]
        if name in ("local_storage_limit", "sparse_preferred_above"):  # human sizes: range-checked once parsed
            assert parse_size(prop["default"], kind="bytes") == default
            continue
        assert prop["default"] == default, name
        bounds = next((b for b in prop.get("anyOf", []) if "maximum" in b), prop)
        assert bounds["maximum"] == high, name
        assert bounds["minimum" if low_included else "exclusiveMinimum"] == low, name
    route_help = models.PlanScaleOutput.model_json_schema()["properties"]["route"]["description"]
    assert all(route in route_help for route in get_args(Route))


# -- the route follows the machine -------------------------------------------------------------------
CPU_ONLY = {"accelerators": [], "accelerator_count": 0, "memory": {"total_bytes": 64e9}, "disk": {"free_bytes": 1e13}}
ONE_H100 = {**CPU_ONLY, "accelerators": [{"index": 0, "name": "NVIDIA H100 80GB HBM3", "total_memory_gib": 79.1}],
            "accelerator_count": 1}


def test_a_machine_without_a_cuda_device_routes_a_small_job_to_local_cpu() -> None:
    """Issue 12: from_env on a machine without a GPU said single_gpu."""
    inp = ScalePlanInput.from_sizes(model_params="135M", tokens="10k", d_model=576, selected_layers=1,
                                    latent_dim="16k")
    plan = plan_scale(inp, CPU_ONLY)
    assert plan["route"] == "local_cpu" and plan["accelerator_route"] == "single_gpu"
    assert plan["accelerator"]["name"] == "H100"  # the estimate is still on the default H100 ...
    assert plan["machine"] == {"profiled": True, "cuda_devices": 0, "cpu_only": True, "ram_bytes": 64e9,
                               "cpu_peak_tflops": 1.0, "cpu_hours": pytest.approx(0.94, rel=0.01),
                               "runs_here": True}
    assert "no CUDA device" in plan["route_reasons"][0] and "64 GB RAM" in plan["route_reasons"][1]
    note = plan["notes"][-1]  # ... and a note says why the route differs from it
    assert note.startswith("GPU-hours are estimated on 1 x H100") and "no CUDA device" in note
    assert "0.941 CPU-hours" in note and "single_gpu (plan.accelerator_route)" in note
    assert plan["engines"] == {"harvest": "one process on this machine's CPUs", "sae_training": "single process"}
    assert "needs_gpu_machine" not in {r["code"] for r in plan["risks"]}
    explicit = plan_scale(ScalePlanInput.from_sizes(**{**SMALL, "accelerator": "H100"}), CPU_ONLY)
    assert explicit["route"] == "local_cpu" and explicit["accelerator"]["name"] == "H100"


def test_a_job_too_big_for_the_cpus_stays_local_cpu_and_says_it_needs_a_gpu_machine() -> None:
    one_gpu_job: dict[str, Any] = dict(model_params=7e9, tokens=1e8, d_model=4096, selected_layers=1, latent_dim=65536)
    assert plan_scale(ScalePlanInput(**one_gpu_job))["route"] == "single_gpu"
    plan = plan_scale(ScalePlanInput(**one_gpu_job), CPU_ONLY)
    assert plan["route"] == "local_cpu" and plan["accelerator_route"] == "single_gpu"
    assert plan["machine"]["runs_here"] is False
    (risk,) = [r for r in plan["risks"] if r["code"] == "needs_gpu_machine"]
    assert "CPU-hours" in risk["message"] and "single_gpu job" in risk["message"]
    node_job: dict[str, Any] = dict(model_params=70e9, tokens=1e8, d_model=8192, selected_layers=2, latent_dim=65536)
    plan = plan_scale(ScalePlanInput(**node_job), CPU_ONLY)
    assert (plan["route"], plan["accelerator_route"]) == ("local_cpu", "multi_gpu")
    assert "RAM" in next(r["message"] for r in plan["risks"] if r["code"] == "needs_gpu_machine")


def test_a_job_that_needs_a_cluster_is_a_cluster_job_from_a_cpu_machine_too() -> None:
    huge = ScalePlanInput.from_sizes(model_params="1T", tokens="1B", d_model=16384, selected_layers=8,
                                     latent_dim="1M")
    plan = plan_scale(huge, CPU_ONLY)
    assert plan["route"] == plan["accelerator_route"] == "cluster"
    assert "no CUDA device" in plan["route_reasons"][-1]


@pytest.mark.parametrize("model_params", [1e6, 135e6, 7e9, 70e9, 1e12])
@pytest.mark.parametrize("tokens", [1e3, 1e6, 1e9])
def test_a_cpu_only_machine_never_gets_a_gpu_route(model_params: float, tokens: float) -> None:
    inp = ScalePlanInput(model_params=model_params, tokens=tokens, d_model=4096, selected_layers=2, latent_dim=65536)
    assert plan_scale(inp, CPU_ONLY)["route"] in {"local_cpu", "cluster"}
    assert plan_scale(inp, {**CPU_ONLY, "disk": {"free_bytes": 1e6}})["route"] in {"local_cpu", "cluster"}


def test_a_machine_with_a_gpu_and_a_plan_without_a_profile_keep_the_gpu_routes() -> None:
    with_gpu = plan_scale(ScalePlanInput(**SMALL), ONE_H100)
    assert with_gpu["route"] == with_gpu["accelerator_route"] == "single_gpu"
    assert with_gpu["machine"]["cpu_only"] is False and with_gpu["machine"]["runs_here"] is None
    assert not any(n.startswith("GPU-hours are estimated") for n in with_gpu["notes"])
    unprofiled = plan_scale(ScalePlanInput(**SMALL))
    assert unprofiled["route"] == "single_gpu" and unprofiled["machine"]["profiled"] is False
    disk_only = plan_scale(ScalePlanInput(**SMALL), {"disk": {"free_bytes": 1e13}})  # lists no accelerators at all
    assert disk_only["route"] == "single_gpu" and disk_only["machine"]["cuda_devices"] is None


def test_a_plan_for_the_cpu_accelerator_routes_to_local_cpu() -> None:
    plan = plan_scale(ScalePlanInput(**{**SMALL, "tokens": 1e4}, accelerator="cpu"))
    assert plan["route"] == "local_cpu" and plan["accelerator_route"] is None
    assert "accelerator 'cpu'" in plan["route_reasons"][0]
    slow = plan_scale(ScalePlanInput(**{**SMALL, "model_params": 7e9}, accelerator="cpu"))
    assert slow["route"] == "local_cpu"
    assert "needs_gpu_machine" in {r["code"] for r in slow["risks"]}


def test_from_env_on_this_machine_without_a_gpu_probe_is_local_cpu(tmp_path: Path) -> None:
    plan = plan_scale(ScalePlanInput(**{**SMALL, "tokens": 1e4}), profile_env(tmp_path, probe_accelerators=False))
    assert plan["route"] == "local_cpu" and plan["machine"]["cuda_devices"] == 0


@pytest.mark.parametrize(
    ("name", "gib", "expected"),
    [("NVIDIA A100-SXM4-80GB", 79.2, "A100-80GB"), ("NVIDIA A100-PCIE-40GB", 39.4, "A100-40GB"),
     ("NVIDIA H100 80GB HBM3", 79.1, "H100"), ("NVIDIA L4", 22.0, "L4"), ("NVIDIA L40S", 44.0, None),
     ("NVIDIA GeForce RTX 4090", 23.6, "RTX4090"), ("Tesla T4", 15.0, None)],
)
def test_profiled_device_names_map_to_plan_accelerators(name, gib, expected) -> None:
    assert accelerator_from_profile({"accelerators": [{"name": name, "total_memory_gib": gib}]}) == expected


def test_the_accelerator_and_dtype_tables_match_their_literals() -> None:
    assert set(get_args(AcceleratorName)) == set(ACCELERATORS)
    assert set(get_args(Dtype)) == set(DTYPE_BYTES)
    assert ACCELERATORS["H100"].peak_tflops == 989 and ACCELERATORS["A100-40GB"].memory_gb == 40


@pytest.mark.parametrize(
    ("change", "field"),
    [({"k": 5000}, "k"), ({"dtype": "int4"}, "dtype"), ({"accelerator": "TPUv5"}, "accelerator"),
     ({"mfu": 1.5}, "mfu"), ({"d_model": 0}, "d_model"), ({"tokens": -1.0}, "tokens"),
     ({"n_accelerators": 0}, "n_accelerators"), ({"selected_layers": 2.5}, "selected_layers")],
)
def test_invalid_plan_inputs_name_the_field(change, field) -> None:
    with pytest.raises(ValidationError, match=field):
        ScalePlanInput(**{**SMALL, **change})


def test_from_sizes_reads_human_sizes_and_refuses_fractions_and_unknown_fields() -> None:
    inp = ScalePlanInput.from_sizes(model_params="1T", tokens="1B", d_model="16k", selected_layers=8, latent_dim="1Mi",
                                    target_shard_size="512MiB")
    assert (inp.model_params, inp.d_model, inp.latent_dim, inp.target_shard_size) == (1e12, 16000, 2**20, 2**29)
    with pytest.raises(ValidationError, match="whole number"):
        ScalePlanInput.from_sizes(**{**SMALL, "d_model": "1.5"})
    with pytest.raises(ValidationError, match="unknown"):
        ScalePlanInput.from_sizes(**SMALL, layers=3)


def test_scale_planning_imports_neither_torch_nor_mcp_nor_the_cli() -> None:
    code = (
        "import sys; from interp_agent.core.scale import ScalePlanInput, plan_scale, profile_env;"
        "import interp_agent.core.runs;"
        "plan_scale(ScalePlanInput(model_params=1e9, tokens=1e6, d_model=64, selected_layers=1, latent_dim=256));"
        "profile_env(probe_accelerators=False);"
        "bad = [m for m in ('torch', 'mcp', 'interp_agent.cli', 'interp_agent.server', 'interp_agent.jobs')"
        " if m in sys.modules]; print(bad); sys.exit(1 if bad else 0)"
    )
    proc = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True)
    assert proc.returncode == 0, proc.stdout + proc.stderr


# -- environment profile ---------------------------------------------------------------------
@pytest.fixture
def clean_home(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> Path:
    """A HOME with no Hugging Face token and no credential variables set."""
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    for name in (*CREDENTIAL_ENV_VARS, "HF_HOME", "HF_TOKEN_PATH", "RAY_ADDRESS", "SLURM_NNODES", "SLURM_JOB_NUM_NODES",
                 "WORLD_SIZE", "SLURM_JOB_ID"):
        monkeypatch.delenv(name, raising=False)
    return home


def test_the_profile_reports_cores_memory_disk_packages_and_advice(tmp_path: Path, clean_home: Path) -> None:
    profile = profile_env(tmp_path, probe_accelerators=False)
    assert profile["schema_version"] == "interp-agent.env_profile.v1"
    assert profile["tool"] == "interp-agent" and profile["tool_version"] and profile["created_utc"]
    assert profile["cpu"]["logical_cores"] >= 1
    assert profile["memory"]["total_bytes"] > 0 and profile["memory"]["available_bytes"] > 0
    assert profile["disk"]["free_bytes"] > 0 and profile["disk"]["checked_path"] == str(tmp_path.resolve())
    assert profile["packages"]["numpy"] and profile["extras"]["core"] is True
    assert profile["accelerators"] == [] and profile["advice"]["route"] == "local_cpu"
    assert profile["advice"]["why"] and profile["advice"]["next_actions"]


def test_probing_accelerators_lists_cuda_devices_or_says_why_there_are_none(tmp_path: Path) -> None:
    profile = profile_env(tmp_path)
    assert profile["accelerator_count"] == len(profile["accelerators"])
    assert profile["accelerator_probe"]["note"]
    for device in profile["accelerators"]:
        assert {"name", "total_memory_gib", "compute_capability"} <= set(device)


def test_a_missing_workspace_is_measured_at_its_nearest_existing_parent(tmp_path: Path) -> None:
    disk = profile_env(tmp_path / "not" / "yet", probe_accelerators=False)["disk"]
    assert disk["exists"] is False and disk["checked_path"] == str(tmp_path.resolve())


def test_absent_credentials_are_reported_false(tmp_path: Path, clean_home: Path) -> None:
    creds = profile_env(tmp_path, probe_accelerators=False)["credentials"]
    assert set(creds) == {*CREDENTIAL_ENV_VARS, "huggingface_token_file"}
    assert all(v is False for v in creds.values())


def test_credentials_are_reported_as_booleans_only(tmp_path: Path, clean_home: Path,
                                                   monkeypatch: pytest.MonkeyPatch) -> None:
    secrets = {name: f"sk-fake-{name.lower()}-0123456789abcdef" for name in CREDENTIAL_ENV_VARS}
    for name, value in secrets.items():
        monkeypatch.setenv(name, value)
    token_file = clean_home / ".cache" / "huggingface" / "token"
    token_file.parent.mkdir(parents=True)
    token_file.write_text("hf_filetokenvalue_abcdef0123456789")
    profile = profile_env(tmp_path, probe_accelerators=False)
    assert profile["credentials"] == {**{name: True for name in CREDENTIAL_ENV_VARS}, "huggingface_token_file": True}
    dump = json.dumps(profile)
    for value in [*secrets.values(), "hf_filetokenvalue_abcdef0123456789"]:
        assert value not in dump and str(len(value)) not in json.dumps(profile["credentials"])


def test_a_fake_hf_token_appears_nowhere_in_the_profile(tmp_path: Path, clean_home: Path,
                                                       monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("HF_TOKEN", "hf_ThisIsAFakeTokenValue42")
    profile = profile_env(tmp_path, probe_accelerators=False)
    assert profile["credentials"]["HF_TOKEN"] is True
    dump = json.dumps(profile)
    assert "hf_ThisIsAFakeTokenValue42" not in dump and "ThisIsAFake" not in dump
    save_profile(profile, tmp_path / "env.json")
    assert "ThisIsAFake" not in (tmp_path / "env.json").read_text()


def test_the_advice_follows_the_accelerators_and_the_scheduler(tmp_path: Path, clean_home: Path,
                                                               monkeypatch: pytest.MonkeyPatch) -> None:
    devices = [{"index": i, "name": "NVIDIA H100 80GB HBM3", "total_memory_gib": 79.1, "compute_capability": "9.0"}
               for i in range(2)]
    monkeypatch.setattr(profile_module, "_accelerators", lambda: (devices, {"method": "torch.cuda", "note": "fake"}))
    assert profile_env(tmp_path)["advice"]["route"] == "multi_gpu"
    monkeypatch.setattr(
        profile_module, "_accelerators", lambda: (devices[:1], {"method": "torch.cuda", "note": "fake"})
    )
    assert profile_env(tmp_path)["advice"]["route"] == "single_gpu"
    monkeypatch.setenv("RAY_ADDRESS", "ray://head.internal:10001")
    profile = profile_env(tmp_path)
    assert profile["advice"]["route"] == "cluster" and profile["scheduler"]["ray_address_set"] is True
    assert "head.internal" not in json.dumps(profile)


def test_a_profile_round_trips_through_save_and_load(tmp_path: Path) -> None:
    profile = profile_env(tmp_path, probe_accelerators=False)
    path = save_profile(profile, tmp_path / "sub" / "env.json")
    assert load_profile(path) == json.loads(json.dumps(profile))
    assert plan_scale(ScalePlanInput(**SMALL),
                      load_profile(path))["inputs"]["sources"]["storage_limit"].startswith("free")


def test_loading_a_missing_malformed_or_foreign_profile_names_the_file(tmp_path: Path) -> None:
    with pytest.raises(InputFileError, match="missing.json"):
        load_profile(tmp_path / "missing.json")
    bad = tmp_path / "bad.json"
    bad.write_text('{\n  "schema_version": \n}\n')
    with pytest.raises(InputFileError, match=r"bad\.json:3"):
        load_profile(bad)
    foreign = tmp_path / "foreign.json"
    foreign.write_text(json.dumps({"schema_version": "interp-agent.scale_plan.v1"}))
    with pytest.raises(InputFileError, match="schema_version") as err:
        load_profile(foreign)
    assert err.value.field == "schema_version"
    listed = tmp_path / "list.json"
    listed.write_text("[1, 2]")
    with pytest.raises(InputFileError, match="object"):
        load_profile(listed)


# -- accelerators, from the NVIDIA driver (torch is never imported) -------------------------------
_SMI_ROWS = ("0, GPU-aaaa1111, NVIDIA H100 80GB HBM3, 81559, 9.0\n"
             "1, GPU-bbbb2222, NVIDIA H100 80GB HBM3, 81559, 9.0\n")
_SMI_LIST = ("GPU 0: NVIDIA H100 80GB HBM3 (UUID: GPU-aaaa1111)\n"
             "  MIG 3g.40gb     Device  0: (UUID: MIG-cccc3333)\n"
             "GPU 1: NVIDIA H100 80GB HBM3 (UUID: GPU-bbbb2222)\n")


def _fake_nvidia_smi(folder: Path, monkeypatch: pytest.MonkeyPatch, *, compute_cap: bool = True) -> None:
    """An nvidia-smi on PATH answering --query-gpu (optionally rejecting compute_cap, as old drivers do) and -L."""
    folder.mkdir(exist_ok=True)
    rows = _SMI_ROWS if compute_cap else _SMI_ROWS.replace(", 9.0", "")
    reject = (
        'case "$1" in *compute_cap*) echo "Field \\"compute_cap\\" is not a valid field to query." >&2; exit 2;; '
        "esac\n"
    )
    script = folder / "nvidia-smi"
    script.write_text("#!/bin/sh\n" + ("" if compute_cap else reject)
                      + f'if [ "$1" = "-L" ]; then printf \'{_SMI_LIST}\'; else printf \'{rows}\'; fi\n')
    script.chmod(0o755)
    monkeypatch.setenv("PATH", f"{folder}:/usr/bin:/bin")
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)


def test_accelerators_are_listed_by_nvidia_smi(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_nvidia_smi(tmp_path / "bin", monkeypatch)
    profile = profile_env(tmp_path)
    assert [d["index"] for d in profile["accelerators"]] == [0, 1]
    assert profile["accelerators"][0] == {"index": 0, "smi_index": 0, "name": "NVIDIA H100 80GB HBM3",
                                          "total_memory_gib": 79.65, "compute_capability": "9.0"}
    assert profile["accelerator_probe"]["method"] == "nvidia-smi"
    assert profile["accelerator_probe"]["note"].startswith("2 CUDA device(s) found by nvidia-smi")
    assert profile["advice"]["route"] == "multi_gpu"
    assert accelerator_from_profile(profile) == "H100"
    assert "GPU-aaaa1111" not in json.dumps(profile)  # device serial ids stay out of the profile


def test_cuda_visible_devices_narrows_and_renumbers_the_devices(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    _fake_nvidia_smi(tmp_path / "bin", monkeypatch)
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "1")
    profile = profile_env(tmp_path)
    assert [(d["index"], d["smi_index"]) for d in profile["accelerators"]] == [(0, 1)]
    assert "CUDA_VISIBLE_DEVICES='1' shows 1" in profile["accelerator_probe"]["note"]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "GPU-bbbb,7,0")  # an unknown entry ends the list, as in CUDA
    assert [d["smi_index"] for d in profile_env(tmp_path)["accelerators"]] == [1]
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "")
    assert profile_env(tmp_path)["accelerators"] == []
    monkeypatch.setenv("CUDA_VISIBLE_DEVICES", "MIG-cccc3333")
    (mig,) = profile_env(tmp_path)["accelerators"]
    assert mig["name"] == "NVIDIA H100 80GB HBM3 MIG 3g.40gb" and mig["total_memory_gib"] == 40.0


def test_a_driver_without_compute_cap_still_lists_its_devices(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    _fake_nvidia_smi(tmp_path / "bin", monkeypatch, compute_cap=False)
    devices = profile_env(tmp_path)["accelerators"]
    assert len(devices) == 2 and devices[0]["compute_capability"] is None and devices[0]["total_memory_gib"] == 79.65


def test_without_nvidia_smi_the_kernel_drivers_proc_files_are_read(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    (tmp_path / "empty").mkdir()
    monkeypatch.setenv("PATH", str(tmp_path / "empty"))
    monkeypatch.delenv("CUDA_VISIBLE_DEVICES", raising=False)
    monkeypatch.setattr(profile_module, "_PROC_GPUS", tmp_path / "gpus")
    assert profile_env(tmp_path)["accelerator_probe"]["note"].startswith("no NVIDIA GPU found")
    card = tmp_path / "gpus" / "0000:01:00.0"
    card.mkdir(parents=True)
    (card / "information").write_text("Model: \t\t NVIDIA A100-SXM4-80GB\nIRQ:  \t\t 42\nGPU UUID: \t GPU-dddd\n")
    profile = profile_env(tmp_path)
    assert [d["name"] for d in profile["accelerators"]] == ["NVIDIA A100-SXM4-80GB"]
    assert profile["accelerator_probe"]["method"] == "/proc/driver/nvidia"


def test_the_torch_build_is_read_from_its_files(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    site = tmp_path / "site"
    (site / "torch").mkdir(parents=True)
    (site / "torch" / "__init__.py").write_text("raise RuntimeError('the profile must not import torch')\n")
    (site / "torch" / "version.py").write_text("from typing import Optional\n__version__ = '9.9.0+cu124'\n"
                                               "cuda: Optional[str] = '12.4'\n")
    (site / "torch-9.9.0.dist-info").mkdir()
    (site / "torch-9.9.0.dist-info" / "METADATA").write_text(
        "Metadata-Version: 2.1\nName: torch\nVersion: 9.9.0+cu124\n"
    )
    monkeypatch.syspath_prepend(str(site))
    monkeypatch.delitem(sys.modules, "torch", raising=False)  # else find_spec answers with the imported torch
    _fake_nvidia_smi(tmp_path / "bin", monkeypatch)
    probe = profile_env(tmp_path)["accelerator_probe"]
    assert (probe["torch"], probe["cuda"]) == ("9.9.0+cu124", "12.4")
    (site / "torch" / "version.py").write_text("__version__ = '9.9.0+cpu'\ncuda = None\n")
    profile = profile_env(tmp_path)
    assert profile["accelerator_probe"]["cuda"] is None
    assert "CPU-only build" in profile["accelerator_probe"]["note"]
    assert any("CPU-only build" in a for a in profile["advice"]["next_actions"])
