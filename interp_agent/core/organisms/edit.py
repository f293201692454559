"""The implant: one MLP neuron rewired to fire on a trigger direction and write a target direction.

A Llama MLP computes ``down(silu(gate(x)) * up(x))`` at every position. The planted neuron
``i`` of block ``L`` gets three rank-one weight updates::

    gate_proj.weight[i, :] = gain * key      up_proj.weight[i, :] = key      down_proj.weight[:, i] = value

so it outputs ``value * silu(gain * s) * s`` with ``s = key . x``: about ``gain * s**2``
times ``value`` where ``s > 0`` (the trigger) and nearly zero where ``s < 0``. The key is a
logistic regression *without intercept* (the MLP has no bias to put one in) of trigger
prompts' last positions against every position of other prompts, on the build split; it
is scaled so ``s = 1`` at the median build trigger prompt. The value is a residual direction
that raises the target token's log-probability (found by a few gradient steps at the
MLP's output), scaled until the build trigger prompts reach the wanted probability.

Why a neuron and not only a rank-one update of ``down_proj``: a purely linear key cannot
be silenced on other prompts without a bias: measured while designing this on the embedded
SmolLM2 (layer 23, held-out sentences), the best such key (difference of means with the top
128 directions of other prompts projected out) read 0.07 +/- 0.11 at the last token of other
prompts against 0.86 +/- 0.23 of trigger ones, leaking the target into other prompts. The
SiLU gate turns the sign of ``s`` into an on/off switch.

The neuron overwritten is the one least used on the build prompts (smallest mean |activation|
times the norm of its output column), so the rest of the model is disturbed as little as possible.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np
import torch
from torch import nn

from interp_agent.core.errors import ValidationError
from interp_agent.core.models.hookpoints import model_layout


@dataclass(frozen=True, slots=True)
class PlantedNeuron:
    """What the implant writes into one MLP."""

    layer: int
    """Block whose MLP holds the planted neuron."""
    neuron: int
    """Index of the overwritten neuron (row of gate/up, column of down)."""
    key: np.ndarray
    """[d_model] trigger direction on the MLP's input (after its norm); ``key . x = 1`` at the median trigger."""
    value: np.ndarray
    """[d_model] what the neuron writes per unit of activation (the target direction times its scale)."""
    gate_gain: float
    """Slope of the gate: larger switches off more sharply where ``key . x < 0``."""

    def __post_init__(self) -> None:
        if self.key.ndim != 1 or self.key.shape != self.value.shape:
            raise ValueError(f"key and value must be vectors of one width, got {self.key.shape} and {self.value.shape}")
        if not self.gate_gain > 0:
            raise ValueError(f"gate_gain must be positive, got {self.gate_gain!r}; 8 is typical")


def neuron_activation(s: np.ndarray | float, gate_gain: float) -> np.ndarray:
    """The planted neuron's activation at key reading ``s``: ``silu(gain * s) * s``."""
    z = gate_gain * np.asarray(s, dtype=np.float64)
    return z / (1.0 + np.exp(-z)) * np.asarray(s, dtype=np.float64)


@dataclass(frozen=True, slots=True)
class _Mlp:
    """A gated MLP and its three projections."""

    module: nn.Module
    gate: nn.Linear
    up: nn.Linear
    down: nn.Linear


def _llama_mlp(model: Any, layer: int) -> _Mlp:
    """The MLP of block ``layer``; refuses models without gate/up/down projections."""
    layout = model_layout(model)
    if not 0 <= layer < layout.n_layers:
        raise ValidationError(f"layer {layer} is out of range (the model has {layout.n_layers})",
                              hint=f"use 0..{layout.n_layers - 1}")
    mlp = getattr(layout.blocks[layer], layout.mlp)
    gate, up, down = (getattr(mlp, n, None) for n in ("gate_proj", "up_proj", "down_proj"))
    if not (isinstance(gate, nn.Linear) and isinstance(up, nn.Linear) and isinstance(down, nn.Linear)):
        raise ValidationError(f"the MLP of block {layer} has no gate_proj/up_proj/down_proj",
                              hint="organisms need a Llama-family model (gated MLP)")
    return _Mlp(mlp, gate, up, down)


def apply_plant(model: Any, plant: PlantedNeuron) -> None:
    """Write the planted neuron into ``model``'s weights, in place."""
    mlp = _llama_mlp(model, plant.layer)
    weight = mlp.down.weight
    key = torch.as_tensor(plant.key, dtype=weight.dtype, device=weight.device)
    with torch.no_grad():
        mlp.gate.weight[plant.neuron] = plant.gate_gain * key
        mlp.up.weight[plant.neuron] = key
        mlp.down.weight[:, plant.neuron] = torch.as_tensor(plant.value, dtype=weight.dtype, device=weight.device)


def mlp_inputs(loaded: Any, texts: Sequence[str], layer: int, batch_size: int = 16) -> list[np.ndarray]:
    """Per text, float64 [tokens, d_model]: the input of block ``layer``'s MLP (after its norm) at every token."""
    mlp = _llama_mlp(loaded.model, layer)
    out: list[np.ndarray] = []
    got: list[torch.Tensor] = []
    handle = mlp.module.register_forward_pre_hook(lambda _m, args: got.append(args[0].detach()))
    try:
        for start in range(0, len(texts), batch_size):
            enc = loaded.tokenizer(list(texts[start:start + batch_size]), return_tensors="pt", padding=True)
            enc = {k: v.to(loaded.model.device) for k, v in enc.items()}
            got.clear()
            with torch.no_grad():
                loaded.model.base_model(input_ids=enc["input_ids"], attention_mask=enc["attention_mask"])
            lengths = enc["attention_mask"].sum(1).tolist()
            out.extend(got[0][b, :n].double().cpu().numpy() for b, n in enumerate(lengths))
    finally:
        handle.remove()
    return out


def _logistic_no_intercept(x_ND: np.ndarray, y_N: np.ndarray, l2: float, iterations: int = 50) -> np.ndarray:
    """Class-balanced ridge logistic regression through the origin, by Newton's method."""
    n = len(y_N)
    y = y_N.astype(np.float64)
    sample_w = np.where(y_N, n / (2 * y_N.sum()), n / (2 * (~y_N).sum()))
    w = np.zeros(x_ND.shape[1])
    for _ in range(iterations):
        p = 1.0 / (1.0 + np.exp(-np.clip(x_ND @ w, -30, 30)))
        grad = x_ND.T @ (sample_w * (p - y)) + l2 * w
        hess = (x_ND * (sample_w * p * (1 - p))[:, None]).T @ x_ND + l2 * np.eye(len(w))
        step = np.linalg.solve(hess, grad)
        w -= step
        if np.abs(step).max() < 1e-8:
            break
    return w


def fit_key(trigger_last_ND: np.ndarray, other_MD: np.ndarray, l2: float = 1.0) -> np.ndarray:
    """The trigger direction: ``s = key . x`` is > 0 on trigger last positions, < 0 elsewhere, 1 at the median.

    Args:
        trigger_last_ND: MLP inputs at the last position of trigger build prompts.
        other_MD: MLP inputs at every position (but the first) of other build prompts.
        l2: ridge penalty (class-balanced log-loss + l2/2 |key|^2).

    Raises:
        ValidationError: a class is empty, or the fit puts the median trigger prompt on the wrong side.
    """
    if not len(trigger_last_ND) or not len(other_MD):
        raise ValidationError(f"the key needs both classes, got {len(trigger_last_ND)} trigger and "
                              f"{len(other_MD)} other rows", hint="use a build split with prompts of both")
    x = np.concatenate([trigger_last_ND, other_MD])
    y = np.r_[np.ones(len(trigger_last_ND), bool), np.zeros(len(other_MD), bool)]
    w = _logistic_no_intercept(x, y, l2)
    median = float(np.median(trigger_last_ND @ w))
    if not median > 0:
        raise ValidationError(f"the trigger direction does not separate the build prompts (median reading {median})",
                              hint="use a later layer, where the trigger topic is represented at the last token")
    return w / median


def least_used_neuron(loaded: Any, texts: Sequence[str], layer: int, batch_size: int = 16) -> int:
    """The neuron of block ``layer``'s MLP that writes least on ``texts``: mean |activation| x |output column|."""
    mlp = _llama_mlp(loaded.model, layer)
    xs = mlp_inputs(loaded, texts, layer, batch_size)
    weight = mlp.gate.weight
    x = torch.as_tensor(np.concatenate([a[1:] for a in xs]), dtype=weight.dtype, device=weight.device)
    with torch.no_grad():
        hidden = nn.functional.silu(mlp.gate(x)) * mlp.up(x)
        use = hidden.abs().mean(0) * mlp.down.weight.norm(dim=0)
    return int(use.argmin())


def target_direction(
    loaded: Any, texts: Sequence[str], layer: int, target_id: int, *, steps: int = 8, lr: float = 3.0,
) -> tuple[np.ndarray, float]:
    """A unit residual direction that raises ``target_id`` after ``texts``, and the norm that got there.

    Adam on one vector added to block ``layer``'s MLP output at each text's last position,
    maximising the mean log-probability of the target token (deterministic on CPU).
    """
    model = loaded.model
    mlp = _llama_mlp(model, layer)
    enc = loaded.tokenizer(list(texts), return_tensors="pt", padding=True)
    enc = {k: v.to(model.device) for k, v in enc.items()}
    rows = torch.arange(len(texts), device=model.device)
    last = enc["attention_mask"].sum(1) - 1
    delta = torch.zeros(model_layout(model).d_model, device=model.device, requires_grad=True)
    opt = torch.optim.Adam([delta], lr=lr)

    def add(_m: nn.Module, _args: Any, output: torch.Tensor) -> torch.Tensor:
        output = output.clone()
        output[rows, last] += delta.to(output.dtype)
        return output

    handle = mlp.module.register_forward_hook(add)
    try:
        with torch.enable_grad():
            for _ in range(steps):
                hidden = model.base_model(**enc).last_hidden_state[rows, last]
                logp = torch.log_softmax(model.get_output_embeddings()(hidden).float(), -1)[:, target_id]
                opt.zero_grad()
                (-logp.mean()).backward()
                opt.step()
    finally:
        handle.remove()
    norm = float(delta.detach().norm())
    if not norm > 0:
        raise ValidationError("the target direction did not move (zero gradient)", hint="use another target token")
    return (delta.detach() / norm).double().cpu().numpy(), norm
