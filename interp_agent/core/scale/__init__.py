"""Sizing work before running it: profile this machine, plan storage, memory, compute and route.

    from interp_agent.core.scale import ScalePlanInput, plan_scale, profile_env
    env = profile_env()
    plan = plan_scale(ScalePlanInput.from_sizes(model_params="70B", tokens="1B", d_model=8192,
                                                selected_layers=4, latent_dim="1M"), env)
"""

from interp_agent.core.scale.inputs import (
    ACCELERATORS,
    DTYPE_BYTES,
    INPUT_RANGES,
    SCALE_PLAN_SCHEMA,
    AcceleratorName,
    AcceleratorSpec,
    Dtype,
    Route,
    ScalePlanInput,
    StorageKind,
)
from interp_agent.core.scale.plan import plan_scale, render_plan
from interp_agent.core.scale.profile import (
    CREDENTIAL_ENV_VARS,
    ENV_PROFILE_SCHEMA,
    EnvRoute,
    accelerator_from_profile,
    load_profile,
    profile_env,
    render_profile,
    save_profile,
)
from interp_agent.core.scale.sizes import SizeKind, format_bytes, format_count, parse_size

__all__ = [
    "ACCELERATORS",
    "CREDENTIAL_ENV_VARS",
    "DTYPE_BYTES",
    "ENV_PROFILE_SCHEMA",
    "INPUT_RANGES",
    "SCALE_PLAN_SCHEMA",
    "AcceleratorName",
    "AcceleratorSpec",
    "Dtype",
    "EnvRoute",
    "Route",
    "ScalePlanInput",
    "SizeKind",
    "StorageKind",
    "accelerator_from_profile",
    "format_bytes",
    "format_count",
    "load_profile",
    "parse_size",
    "plan_scale",
    "profile_env",
    "render_plan",
    "render_profile",
    "save_profile",
]
