"""Hookpoints: TransformerLens names resolved onto Hugging Face modules.

Names and where they live (``L`` is the block index, 0-based)::

    blocks.L.hook_resid_pre    input of block L            pre-hook on the block        d_model
    blocks.L.hook_attn_out     output of the attention     hook on self_attn / attn     d_model
    blocks.L.hook_mlp_out      output of the MLP           hook on mlp                  d_model
    blocks.L.mlp.hook_post     MLP hidden activation       pre-hook on down_proj/c_proj d_mlp
    blocks.L.hook_resid_post   output of block L           hook on the block            d_model

Two layouts are known: the Llama family (``model.model.layers[L]`` with ``self_attn`` and
``mlp.down_proj``: Llama, SmolLM2, Mistral, Qwen2, …) and the GPT-2 family
(``model.transformer.h[L]`` with ``attn`` and ``mlp.c_proj``).
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Literal

import torch
from torch import nn

from interp_agent.core.errors import ValidationError
from interp_agent.core.ids import HOOKPOINT_FORMS, SITES, Hookpoint, Site, format_hookpoint, match_hookpoint

Family = Literal["llama", "gpt2"]
Mode = Literal["output", "input"]


@dataclass(frozen=True, slots=True)
class Layout:
    """Where a model keeps its blocks and their parts."""

    family: Family
    """``llama`` (model.model.layers) or ``gpt2`` (model.transformer.h)."""
    blocks: nn.ModuleList
    """The transformer blocks, in order."""
    attn: str
    """Attribute of a block holding the attention module."""
    mlp: str
    """Attribute of a block holding the MLP module."""
    mlp_out_proj: str
    """Attribute of the MLP holding its output projection (its input is mlp.hook_post)."""
    d_model: int
    """Width of the residual stream."""

    @property
    def n_layers(self) -> int:
        """Number of blocks."""
        return len(self.blocks)


@dataclass(frozen=True, slots=True)
class HookPoint:
    """A named activation site resolved onto a module of a model."""

    name: str
    """TransformerLens name, e.g. ``blocks.5.hook_resid_post``."""
    layer: int
    """Block index."""
    module: nn.Module
    """The module whose output (mode ``output``) or first input (mode ``input``) is the activation."""
    mode: Mode
    """``output``: a forward hook on ``module``; ``input``: a forward pre-hook."""
    width: int
    """Size of the activation's last dimension."""

    @property
    def site(self) -> str:
        """The name without its block prefix, e.g. ``hook_resid_post`` or ``mlp.hook_post``."""
        return self.name.split(".", 2)[2]


def unwrap(model: Any) -> nn.Module:
    """The torch module of ``model`` (a module itself, or a LoadedModel-like object holding one)."""
    if isinstance(model, nn.Module):
        return model
    inner = getattr(model, "model", None)
    if isinstance(inner, nn.Module) and hasattr(model, "tokenizer"):
        return inner
    raise ValidationError(
        f"expected a torch model or a LoadedModel, got {type(model).__name__}",
        hint="load one with interp_agent.core.models.load_model(NAME)",
    )


def model_layout(model: Any) -> Layout:
    """Find the blocks of a Llama-family or GPT-2-family model.

    Raises:
        ValidationError: the architecture is neither.
    """
    m = unwrap(model)
    base = getattr(m, "model", None)
    base_layers = getattr(base, "layers", None) if isinstance(base, nn.Module) else None
    own_layers = getattr(m, "layers", None)
    if isinstance(base_layers, nn.ModuleList):
        blocks = base_layers
    elif isinstance(own_layers, nn.ModuleList):
        blocks = own_layers
    else:
        base = getattr(m, "transformer", None)
        blocks = getattr(base, "h", None) if base is not None else getattr(m, "h", None)
        if isinstance(blocks, nn.ModuleList) and len(blocks) and hasattr(blocks[0], "attn"):
            return Layout("gpt2", blocks, "attn", "mlp", "c_proj", _d_model(m))
        raise ValidationError(
            f"unsupported architecture {type(m).__name__}: no Llama-style model.layers or GPT-2-style transformer.h",
            hint="use a Llama-family (Llama, SmolLM2, Mistral, Qwen2) or GPT-2-family causal LM",
        )
    if not len(blocks) or not hasattr(blocks[0], "self_attn") or not hasattr(blocks[0], "mlp"):
        raise ValidationError(f"unsupported architecture {type(m).__name__}: its layers have no self_attn and mlp")
    return Layout("llama", blocks, "self_attn", "mlp", "down_proj", _d_model(m))


def _d_model(m: nn.Module) -> int:
    config = getattr(m, "config", None)
    for key in ("hidden_size", "n_embd", "d_model"):
        value = getattr(config, key, None)
        if isinstance(value, int):
            return value
    raise ValidationError(f"cannot tell the residual width of {type(m).__name__}: its config has no hidden_size")


def _in_features(module: nn.Module) -> int:
    """Input width of a Linear (``in_features``) or a GPT-2 Conv1D (weight is [in, out])."""
    in_features = getattr(module, "in_features", None)
    if isinstance(in_features, int):
        return in_features
    weight = module.weight
    assert isinstance(weight, torch.Tensor), f"{type(module).__name__}.weight is not a tensor"
    return int(weight.shape[0])


def resolve_hookpoint(model: Any, name: str) -> HookPoint:
    """Resolve a TransformerLens hookpoint name onto ``model``.

    Raises:
        ValidationError: the name is not a known form, or its layer is out of range
            (the message lists the valid forms and the layer range).
    """
    layout = model_layout(model)
    n = layout.n_layers
    point = match_hookpoint(name.strip()) if isinstance(name, str) else None
    if point is None:
        raise ValidationError(
            f"unknown hookpoint {name!r}",
            hint=f"use one of {HOOKPOINT_FORMS} with L in 0..{n - 1}",
        )
    layer, site = point.layer, point.site
    if layer >= n:
        raise ValidationError(
            f"hookpoint {name!r}: layer {layer} is out of range; this model has layers 0..{n - 1}",
            hint=f"use one of {HOOKPOINT_FORMS} with L in 0..{n - 1}",
        )
    block = layout.blocks[layer]
    name = point.name
    if site == "hook_resid_pre":
        return HookPoint(name, layer, block, "input", layout.d_model)
    if site == "hook_resid_post":
        return HookPoint(name, layer, block, "output", layout.d_model)
    if site == "hook_attn_out":
        return HookPoint(name, layer, getattr(block, layout.attn), "output", layout.d_model)
    mlp = getattr(block, layout.mlp)
    if site == "hook_mlp_out":
        return HookPoint(name, layer, mlp, "output", layout.d_model)
    proj = getattr(mlp, layout.mlp_out_proj, None)
    if not isinstance(proj, nn.Module):
        raise ValidationError(
            f"hookpoint {name!r}: the MLP of this model ({type(mlp).__name__}) has no {layout.mlp_out_proj}",
            hint="use hook_mlp_out or a residual hookpoint instead",
        )
    return HookPoint(name, layer, proj, "input", _in_features(proj))


def list_hookpoints(model: Any) -> list[str]:
    """Every hookpoint name of ``model``, block by block in forward order."""
    layout = model_layout(model)
    has_post = hasattr(getattr(layout.blocks[0], layout.mlp), layout.mlp_out_proj)
    sites: list[Site] = [s for s in SITES if has_post or s != "mlp.hook_post"]
    return [format_hookpoint(layer, site) for layer in range(layout.n_layers) for site in sites]


def default_hookpoints(model: Any) -> list[str]:
    """Residual stream after the blocks at 1/3, 1/2 and 2/3 depth (e.g. 10, 15, 20 of 30)."""
    n = model_layout(model).n_layers
    layers = sorted({n // 3, n // 2, (2 * n) // 3})
    return [Hookpoint(layer, "hook_resid_post").name for layer in layers]
