"""Model organisms: a known behaviour planted behind a known trigger in a real model, to check the tools on.

    prompts  the built-in trigger-topic and other-topic prompts, split by sentence into build and evidence
    edit     the implant: one MLP neuron rewired to fire on a trigger direction and write a target direction
    measure  P(target) next, top-1 rate and KL between two models, with intervals
    build    build_organism -> an HF model folder with organism.json (what was implanted, measured on evidence)
    check    check_organism: the investigation on the organism and its base model, with baselines
    baselines  difference-of-means and probe AUROCs, and steering by prompting (AxBench's baselines)
    report   organism_check.md

Everything an organism produces is labelled ``synthetic_organism``: the behaviour was put there on purpose.
"""

from interp_agent.core.organisms.build import (
    BuiltOrganism,
    OrganismSpec,
    build_organism,
    read_manifest,
)
from interp_agent.core.organisms.check import CheckConfig, CheckResult, check_organism
from interp_agent.core.organisms.edit import PlantedNeuron, apply_plant
from interp_agent.core.organisms.prompts import TRIGGER_TOPICS, OrganismPrompts, organism_prompts

__all__ = [
    "TRIGGER_TOPICS",
    "BuiltOrganism",
    "CheckConfig",
    "CheckResult",
    "OrganismPrompts",
    "OrganismSpec",
    "PlantedNeuron",
    "apply_plant",
    "build_organism",
    "check_organism",
    "organism_prompts",
    "read_manifest",
]
