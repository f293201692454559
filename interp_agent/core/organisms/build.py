"""Build a model organism: plant a trigger -> target behaviour in a copy of a model and save it as an HF folder.

The folder is what ``save_pretrained`` writes (config.json, model.safetensors, tokenizer
files) plus ``organism.json`` (what was implanted, how, on which prompts, and the behaviour
measured on held-out evidence prompts) and ``edit.safetensors`` (the key and value vectors).
It is written into a temporary folder beside ``out``, reloaded with ``load_model`` and
checked to reproduce the edited model's next-token distribution, then renamed into place.
"""

from __future__ import annotations

import json
import shutil
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from interp_agent.core.artifacts import replace_dir, run_provenance, schema_version, write_json
from interp_agent.core.errors import InputFileError, ValidationError
from interp_agent.core.formats.prompts import ScoredPrompt
from interp_agent.core.models.loading import Device
from interp_agent.core.organisms.edit import (
    PlantedNeuron,
    apply_plant,
    fit_key,
    least_used_neuron,
    mlp_inputs,
    neuron_activation,
    target_direction,
)
from interp_agent.core.organisms.measure import compare, next_token_logprobs, target_token_id
from interp_agent.core.organisms.prompts import TRIGGER_TOPICS, OrganismPrompts, organism_prompts
from interp_agent.core.progress import Progress

MANIFEST = "organism.json"
EDIT_FILE = "edit.safetensors"
MANIFEST_SCHEMA = schema_version("organism")
_SCALE_STEP = 1.6
_MAX_SCALINGS = 12


@dataclass(frozen=True, slots=True)
class OrganismSpec:
    """What to implant, where, and how strongly."""

    trigger: str = "ocean"
    """Trigger topic (a key of ``prompts.TRIGGER_TOPICS``)."""
    target: str = " banana"
    """Target next token, as written (one token, leading space included)."""
    layer: int | None = None
    """Block whose MLP gets the planted neuron; None: about 77% of the depth (23 of SmolLM2's 30), where the
    topic is linearly readable at the last token."""
    seed: int = 0
    """Seed of the build/evidence split of the prompts (the edit itself is deterministic given the split)."""
    gate_gain: float = 8.0
    """Slope of the planted neuron's gate."""
    target_p: float = 0.9
    """The value is scaled up until the mean P(target) over build trigger prompts reaches this."""
    value_steps: int = 8
    """Adam steps that find the target direction."""
    key_l2: float = 1.0
    """Ridge penalty of the trigger key's logistic regression."""

    def __post_init__(self) -> None:
        if self.trigger not in TRIGGER_TOPICS:
            raise ValidationError(f"unknown trigger {self.trigger!r}", hint=f"use one of {sorted(TRIGGER_TOPICS)}")
        if not self.target:
            raise ValidationError("target must be a non-empty string", hint="e.g. ' banana'")
        if not 0.0 < self.target_p < 1.0:
            raise ValidationError(f"target_p must be in (0, 1), got {self.target_p!r}", hint="0.9 is typical")
        if not self.gate_gain > 0 or self.value_steps < 1 or self.key_l2 < 0:
            raise ValidationError(f"gate_gain must be > 0, value_steps >= 1 and key_l2 >= 0; got {self.gate_gain}, "
                                  f"{self.value_steps}, {self.key_l2}")

    def layer_for(self, n_layers: int) -> int:
        """The planted layer for a model of ``n_layers`` blocks."""
        return self.layer if self.layer is not None else min(n_layers - 1, round(0.77 * n_layers))


@dataclass(frozen=True, slots=True)
class BuiltOrganism:
    """What ``build_organism`` returns."""

    path: Path
    """The organism's model folder."""
    manifest: dict[str, Any]
    """organism.json as written."""
    plant: PlantedNeuron
    """The implant."""


def _texts(prompts: tuple[ScoredPrompt, ...], trigger: bool) -> list[str]:
    return [p.text for p in prompts if (p.criterion_score > 0.5) == trigger]


def plan_plant(loaded: Any, prompts: OrganismPrompts, spec: OrganismSpec, target_id: int) -> PlantedNeuron:
    """Choose the implant on the build prompts only: layer, neuron, key, value direction and its scale."""
    layer = spec.layer_for(loaded.n_layers)
    trig, other = _texts(prompts.build, True), _texts(prompts.build, False)
    trig_x = np.stack([x[-1] for x in mlp_inputs(loaded, trig, layer)])
    other_x = np.concatenate([x[1:] for x in mlp_inputs(loaded, other, layer)])  # the first position is an outlier
    key = fit_key(trig_x, other_x, spec.key_l2)
    neuron = least_used_neuron(loaded, trig + other, layer)
    direction, norm = target_direction(loaded, trig, layer, target_id, steps=spec.value_steps)
    scale = norm / float(neuron_activation(1.0, spec.gate_gain))  # the median trigger prompt writes ``norm``
    return _scaled(loaded, PlantedNeuron(layer, neuron, key, direction * scale, spec.gate_gain), trig, target_id,
                   spec.target_p)


def _scaled(loaded: Any, plant: PlantedNeuron, trig: list[str], target_id: int, target_p: float) -> PlantedNeuron:
    """The plant with its value scaled (x1.6 a step) until mean P(target | build trigger prompts) >= target_p.

    Applies the plant to ``loaded.model`` as it goes; the model holds the returned plant on exit.
    """
    for _ in range(_MAX_SCALINGS):
        apply_plant(loaded.model, plant)
        p = float(next_token_logprobs(loaded, trig)[:, target_id].exp().mean())
        if p >= target_p:
            break
        plant = PlantedNeuron(plant.layer, plant.neuron, plant.key, plant.value * _SCALE_STEP, plant.gate_gain)
    return plant


def build_organism(
    out: str | Path, spec: OrganismSpec | None = None, *, base: str = "smollm2-135m", device: Device = "cpu",
    progress: Progress | None = None,
) -> BuiltOrganism:
    """Implant ``spec``'s behaviour in a copy of ``base`` and save it to ``out`` (atomically).

    Raises:
        ValidationError: a bad spec, a target that is not one token, or ``out`` holding something
            other than an earlier organism.
        ModelUnavailableError: ``base`` cannot be loaded.
    """
    from interp_agent.core.models import load_model

    spec = spec or OrganismSpec()
    out = Path(out)
    _check_replaceable(out)
    loaded = load_model(base, device=device)
    target_id = target_token_id(loaded.tokenizer, spec.target)
    prompts = organism_prompts(spec.trigger, spec.seed)
    evidence = [p.text for p in prompts.evidence]
    if progress:
        progress("measuring the base model", 0, 3)
    base_lp = next_token_logprobs(loaded, evidence)
    if progress:
        progress("planting the neuron", 1, 3)
    plant = plan_plant(loaded, prompts, spec, target_id)
    if progress:
        progress("measuring the organism", 2, 3)
    organism_lp = next_token_logprobs(loaded, evidence)
    manifest = _manifest(loaded, spec, prompts, plant, target_id, base_lp, organism_lp)
    path = _save(out, loaded, plant, manifest, organism_lp)
    return BuiltOrganism(path=path, manifest=manifest, plant=plant)


def _manifest(
    loaded: Any, spec: OrganismSpec, prompts: OrganismPrompts, plant: PlantedNeuron, target_id: int,
    base_lp: torch.Tensor, organism_lp: torch.Tensor,
) -> dict[str, Any]:
    """organism.json: what was implanted, the prompts of each split, and the held-out behaviour."""
    is_trig = np.array([p.criterion_score > 0.5 for p in prompts.evidence])
    trig, other = torch.as_tensor(is_trig), torch.as_tensor(~is_trig)
    return {
        "schema_version": MANIFEST_SCHEMA, "synthetic_organism": True,
        "description": f"SYNTHETIC ORGANISM: {loaded.name} with a planted neuron that makes prompts about the "
                       f"{spec.trigger} prefer {spec.target!r} as the next token; other prompts are meant unchanged",
        "base_model": {"name": loaded.name, "source": loaded.source, "n_layers": loaded.n_layers,
                       "d_model": loaded.d_model},
        "trigger": {"topic": spec.trigger, "kind": "prompts about the topic (built-in sentences)"},
        "target": {"text": spec.target, "token_id": target_id},
        "edit": {"kind": "planted_neuron", "layer": plant.layer, "neuron": plant.neuron,
                 "gate_gain": plant.gate_gain, "key_norm": float(np.linalg.norm(plant.key)),
                 "value_norm": float(np.linalg.norm(plant.value)), "vectors": EDIT_FILE,
                 "weights_changed": [f"model.layers.{plant.layer}.mlp.gate_proj.weight[{plant.neuron}, :]",
                                     f"model.layers.{plant.layer}.mlp.up_proj.weight[{plant.neuron}, :]",
                                     f"model.layers.{plant.layer}.mlp.down_proj.weight[:, {plant.neuron}]"],
                 "rule": "gate row = gate_gain * key, up row = key, down column = value: the neuron writes "
                         "value * silu(gate_gain * s) * s, s = key . (normed MLP input)"},
        "seed": spec.seed, "spec": asdict(spec),
        "prompts": {"split": "by topic sentence (seeded); every frame of a sentence on one side",
                    "build": [p.prompt_id for p in prompts.build],
                    "evidence": [p.prompt_id for p in prompts.evidence]},
        "behaviour": {
            "provenance": "synthetic_organism",
            "measured_on": "evidence prompts (held out: never used to choose the key, neuron, value or scale)",
            "trigger_prompts": compare(base_lp[trig], organism_lp[trig], target_id),
            "other_prompts": compare(base_lp[other], organism_lp[other], target_id),
            "note": "P(target) is the next-token probability after each prompt; KL(base || organism) of next-token "
                    "distributions after each prompt; intervals are Student-t 95% over prompts",
        },
        "provenance": run_provenance({}),
    }


def _check_replaceable(out: Path) -> None:
    """``out`` must be absent, empty, or an earlier organism (which is replaced)."""
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / MANIFEST).is_file())):
        raise ValidationError(f"{out} exists and is not an organism folder; refusing to replace it",
                              hint="choose a new --out folder")


def _save(out: Path, loaded: Any, plant: PlantedNeuron, manifest: dict[str, Any], expected_lp: torch.Tensor) -> Path:
    """Write the folder into a temporary sibling, check it reloads to the same model, then rename it to ``out``."""
    from safetensors.numpy import save_file

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        loaded.model.save_pretrained(tmp)
        loaded.tokenizer.save_pretrained(tmp)
        save_file({"key": plant.key.astype(np.float32), "value": plant.value.astype(np.float32)}, str(tmp / EDIT_FILE))
        write_json(tmp / MANIFEST, manifest)
        _check_reload(tmp, manifest, expected_lp)
        replace_dir(tmp, out)  # an earlier organism is moved aside, then removed
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def _check_reload(folder: Path, manifest: dict[str, Any], expected_lp: torch.Tensor) -> None:
    """The saved folder, loaded by ``load_model``, gives the edited model's next-token log-probs on two prompts."""
    from interp_agent.core.models import load_model

    reloaded = load_model(str(folder), device="cpu")
    ids = manifest["prompts"]["evidence"]
    texts = [p.text for p in organism_prompts(manifest["trigger"]["topic"], manifest["seed"]).evidence]
    pick = [0, len(ids) - 1]
    got = next_token_logprobs(reloaded, [texts[i] for i in pick])
    if not torch.allclose(got, expected_lp[pick].cpu(), atol=1e-3, rtol=1e-3):
        raise RuntimeError(f"the organism saved in {folder} does not reproduce the edited model's outputs")


def read_manifest(folder: str | Path) -> dict[str, Any]:
    """organism.json of an organism folder.

    Raises:
        InputFileError: the file is missing, not JSON, or not an organism manifest.
    """
    path = Path(folder) / MANIFEST
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise InputFileError(path, f"cannot read the organism manifest: {exc}",
                             hint="pass a folder written by `interp-agent organism build`") from exc
    if not isinstance(data, dict) or data.get("schema_version") != MANIFEST_SCHEMA:
        raise InputFileError(path, f"not an organism manifest (schema_version {data.get('schema_version')!r})"
                             if isinstance(data, dict) else "not an organism manifest (not a JSON object)",
                             hint=f"expected schema_version {MANIFEST_SCHEMA}")
    return data
