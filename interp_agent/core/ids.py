"""The grammar of feature ids and hookpoints: one parser and one formatter for each form.

Hookpoints use TransformerLens names (``L`` is the block index, 0-based)::

    blocks.{L}.hook_resid_pre | hook_attn_out | hook_mlp_out | mlp.hook_post | hook_resid_post

Feature ids name where a feature lives::

    L{layer}:D{dim}                           residual dimension at blocks.{L}.hook_resid_post
    L{layer}:{resid_pre|attn_out|mlp_out}:D{dim}   dimension of another d_model site
    L{layer}:N{i}                             MLP neuron at blocks.{L}.mlp.hook_post
    L{layer}:F{i}                             dictionary feature (seed files, synthetic data)
    SAE:L{layer}:F{i}                         SAE latent (also SAE:{sae_id}:F{i} and SAE:F{i}
                                              when the layer is unknown)
    direction:NAME[@blocks.{L}.{site}]        learned direction, optionally at a hookpoint

``parse_*`` raise a ``ValidationError`` naming the text given and the forms expected;
``match_*`` return None instead. ``format_*`` build the text. Stdlib only.
"""

from __future__ import annotations

import re
from dataclasses import dataclass
from typing import Literal, get_args

from interp_agent.core.errors import ValidationError

Site = Literal["hook_resid_pre", "hook_attn_out", "hook_mlp_out", "mlp.hook_post", "hook_resid_post"]
"""Where in a block a hookpoint reads."""

SITES: tuple[Site, ...] = get_args(Site)
"""Hookpoint sites of a block, in the order hookpoint lists give them (the forward pass's, except that
``mlp.hook_post``, the MLP's hidden activation, is computed before ``hook_mlp_out``)."""

FeatureKind = Literal["dim", "neuron", "dictionary", "sae", "direction"]
"""What a feature id names."""

HOOKPOINT_FORMS = ", ".join(f"blocks.{{L}}.{s}" for s in SITES)
"""The hookpoint forms, for error messages."""

FEATURE_ID_FORMS = (
    "L{layer}:D{dim} (residual dimension), L{layer}:{resid_pre|attn_out|mlp_out}:D{dim} (dimension of another "
    "site), L{layer}:N{i} (MLP neuron), L{layer}:F{i} (dictionary feature), SAE:L{layer}:F{i} (SAE latent; "
    "SAE:{sae_id}:F{i} or SAE:F{i} without a layer), direction:NAME[@blocks.{L}.hook_resid_post] (learned direction)"
)
"""The feature-id forms, for error messages."""

_SITE_ALT = "|".join(re.escape(s) for s in SITES)
_HOOKPOINT = re.compile(rf"^blocks\.(\d+)\.({_SITE_ALT})$")
_BLOCK = re.compile(r"^blocks\.(\d+)\.")
_DIM_SITES: dict[str, Site] = {"resid_pre": "hook_resid_pre", "attn_out": "hook_attn_out", "mlp_out": "hook_mlp_out"}
_DIM_TAGS: dict[Site, str] = {site: tag for tag, site in _DIM_SITES.items()}
_BASIS = re.compile(rf"^L(\d+):(?:({'|'.join(_DIM_SITES)}):)?([DNF])(\d+)$")
_SAE = re.compile(r"^SAE:(?:(.+):)?F(\d+)$")
_SAE_LAYER = re.compile(r"^L(\d+)$")
_DIRECTION = "direction:"


@dataclass(frozen=True, slots=True)
class Hookpoint:
    """A TransformerLens hookpoint name, parsed."""

    layer: int
    """Block index (0-based)."""
    site: Site
    """Where in the block it reads, e.g. ``hook_resid_post`` or ``mlp.hook_post``."""

    def __post_init__(self) -> None:
        if self.layer < 0:
            raise ValidationError(f"Hookpoint.layer must be >= 0, got {self.layer}",
                                  hint=f"use one of {HOOKPOINT_FORMS}")
        if self.site not in SITES:
            raise ValidationError(f"Hookpoint.site {self.site!r} is not a known site",
                                  hint=f"use one of {', '.join(SITES)}")

    @property
    def name(self) -> str:
        """The TransformerLens name, e.g. ``blocks.5.hook_resid_post``."""
        return format_hookpoint(self.layer, self.site)


@dataclass(frozen=True, slots=True)
class FeatureId:
    """A feature id, parsed: what the feature is and where it lives."""

    kind: FeatureKind
    """``dim``, ``neuron``, ``dictionary``, ``sae`` or ``direction``."""
    layer: int | None = None
    """Block index; None for an SAE latent of unknown layer or a direction without a hookpoint."""
    index: int | None = None
    """Dimension, neuron, dictionary feature or latent number; None for a direction."""
    site: Site | None = None
    """Hookpoint site of a dim (``hook_resid_post`` unless tagged), neuron (``mlp.hook_post``) or direction."""
    sae_id: str | None = None
    """For an SAE latent of unknown layer: the SAE's own id (``SAE:{sae_id}:F{i}``), if any."""
    name: str | None = None
    """For a direction: its name (the text between ``direction:`` and ``@``)."""

    def __post_init__(self) -> None:
        if self.layer is not None and self.layer < 0:
            raise ValidationError(f"FeatureId.layer must be >= 0, got {self.layer}")
        if self.index is not None and self.index < 0:
            raise ValidationError(f"FeatureId.index must be >= 0, got {self.index}")
        if self.kind == "direction":
            if not self.name:
                raise ValidationError("FeatureId.name is required for a direction", hint="e.g. direction:contrast")
            if (self.layer is None) != (self.site is None):
                raise ValidationError(f"direction {self.name!r}: give both layer and site, or neither (got "
                                      f"layer={self.layer}, site={self.site!r})")
            return
        if self.index is None:
            raise ValidationError(f"FeatureId.index is required for kind {self.kind!r}")
        if self.kind != "sae" and self.layer is None:
            raise ValidationError(f"FeatureId.layer is required for kind {self.kind!r}")
        if self.kind == "dim" and self.site not in _DIM_TAGS and self.site != "hook_resid_post":
            raise ValidationError(f"a dim lives at a d_model site, got site={self.site!r}",
                                  hint="use hook_resid_post, hook_resid_pre, hook_attn_out or hook_mlp_out")
        if self.kind == "neuron" and self.site != "mlp.hook_post":
            raise ValidationError(f"a neuron lives at mlp.hook_post, got site={self.site!r}")

    @property
    def hookpoint(self) -> Hookpoint | None:
        """Where the feature lives, when the id says (dims, neurons, directions at a hookpoint)."""
        if self.layer is None or self.site is None:
            return None
        return Hookpoint(self.layer, self.site)

    @property
    def text(self) -> str:
        """The id as text (canonical form)."""
        if self.kind == "direction":
            assert self.name is not None  # __post_init__
            return format_direction(self.name, self.hookpoint)
        assert self.index is not None  # __post_init__
        if self.kind == "sae":
            return format_sae_latent(self.index, layer=self.layer, sae_id=self.sae_id)
        assert self.layer is not None  # __post_init__
        if self.kind == "dim":
            return format_dim(self.layer, self.index, self.site or "hook_resid_post")
        if self.kind == "neuron":
            return format_neuron(self.layer, self.index)
        return format_dictionary_feature(self.layer, self.index)

    def __str__(self) -> str:
        return self.text


# --- hookpoints ------------------------------------------------------------------------------


def format_hookpoint(layer: int, site: Site = "hook_resid_post") -> str:
    """``blocks.{layer}.{site}``."""
    return f"blocks.{layer}.{site}"


def match_hookpoint(text: str) -> Hookpoint | None:
    """The hookpoint ``text`` names, or None when it is not one of the known forms."""
    m = _HOOKPOINT.match(text) if isinstance(text, str) else None
    if m is None:
        return None
    site = m.group(2)
    assert site in SITES  # the regex alternates SITES
    return Hookpoint(int(m.group(1)), site)


def parse_hookpoint(text: str) -> Hookpoint:
    """Parse a TransformerLens hookpoint name.

    Raises:
        ValidationError: not a known form (names the text and the forms expected).
    """
    point = match_hookpoint(text)
    if point is None:
        raise ValidationError(f"unknown hookpoint {text!r}", hint=f"use one of {HOOKPOINT_FORMS}")
    return point


def hook_layer(name: str) -> int | None:
    """The block index of any TransformerLens name under ``blocks.{L}.`` (known site or not), else None."""
    m = _BLOCK.match(name) if isinstance(name, str) else None
    return int(m.group(1)) if m else None


# --- feature ids -----------------------------------------------------------------------------


def format_dim(layer: int, dim: int, site: Site = "hook_resid_post") -> str:
    """``L{layer}:D{dim}`` at the residual stream after the block, ``L{layer}:{tag}:D{dim}`` at another d_model site."""
    if site == "hook_resid_post":
        return f"L{layer}:D{dim}"
    tag = _DIM_TAGS.get(site)
    if tag is None:
        raise ValidationError(f"no dim ids at site {site!r}", hint="MLP hidden units are neurons: use format_neuron")
    return f"L{layer}:{tag}:D{dim}"


def format_neuron(layer: int, index: int) -> str:
    """``L{layer}:N{index}``: an MLP neuron at ``blocks.{layer}.mlp.hook_post``."""
    return f"L{layer}:N{index}"


def format_dictionary_feature(layer: int, index: int) -> str:
    """``L{layer}:F{index}``: a dictionary feature (seed feature files, synthetic data)."""
    return f"L{layer}:F{index}"


def format_sae_latent(index: int, *, layer: int | None = None, sae_id: str | None = None) -> str:
    """``SAE:L{layer}:F{index}`` when the layer is known, else ``SAE:{sae_id}:F{index}``, else ``SAE:F{index}``."""
    if layer is not None:
        return f"SAE:L{layer}:F{index}"
    return f"SAE:{sae_id}:F{index}" if sae_id else f"SAE:F{index}"


def format_direction(name: str, hookpoint: Hookpoint | str | None = None) -> str:
    """``direction:{name}``, with ``@{hookpoint}`` when given; a name already starting ``direction:`` is kept."""
    base = name if name.startswith(_DIRECTION) else f"{_DIRECTION}{name}"
    if hookpoint is None:
        return base
    return f"{base}@{hookpoint.name if isinstance(hookpoint, Hookpoint) else hookpoint}"


def basis_feature_id(point: Hookpoint, index: int) -> str:
    """Id of basis unit ``index`` of a hookpoint: a neuron at ``mlp.hook_post``, else a dim."""
    if point.site == "mlp.hook_post":
        return format_neuron(point.layer, index)
    return format_dim(point.layer, index, point.site)


def basis_feature_ids(point: Hookpoint, width: int) -> list[str]:
    """Ids of all ``width`` basis units of a hookpoint, in order."""
    return [basis_feature_id(point, i) for i in range(width)]


def match_feature_id(text: str) -> FeatureId | None:
    """The feature ``text`` names, or None when it is not one of the known forms."""
    if not isinstance(text, str):
        return None
    if text.startswith(_DIRECTION):
        return _direction(text[len(_DIRECTION):])
    if (m := _SAE.match(text)) is not None:
        label, index = m.group(1), int(m.group(2))
        if label is not None and (lm := _SAE_LAYER.match(label)) is not None:
            return FeatureId("sae", layer=int(lm.group(1)), index=index)
        return FeatureId("sae", index=index, sae_id=label)
    if (m := _BASIS.match(text)) is None:
        return None
    layer, tag, letter, index = int(m.group(1)), m.group(2), m.group(3), int(m.group(4))
    if letter == "D":
        return FeatureId("dim", layer=layer, index=index, site=_DIM_SITES[tag] if tag else "hook_resid_post")
    if tag is not None:  # site tags are only defined for dims
        return None
    if letter == "N":
        return FeatureId("neuron", layer=layer, index=index, site="mlp.hook_post")
    return FeatureId("dictionary", layer=layer, index=index)


def _direction(rest: str) -> FeatureId | None:
    if not rest:
        return None
    name, at, hook = rest.rpartition("@")
    point = match_hookpoint(hook) if at and name else None
    if point is None:
        return FeatureId("direction", name=rest)
    return FeatureId("direction", layer=point.layer, site=point.site, name=name)


def parse_feature_id(text: str) -> FeatureId:
    """Parse a feature id.

    Raises:
        ValidationError: not a known form (names the text and the forms expected).
    """
    fid = match_feature_id(text)
    if fid is None:
        raise ValidationError(f"unknown feature id {text!r}", hint=f"use one of {FEATURE_ID_FORMS}")
    return fid


def layer_of(text: str) -> int | None:
    """The layer a feature id or hookpoint name says, or None (unknown form, or no layer in it)."""
    fid = match_feature_id(text)
    return fid.layer if fid is not None else hook_layer(text)


__all__ = [
    "FEATURE_ID_FORMS", "HOOKPOINT_FORMS", "SITES", "FeatureId", "FeatureKind", "Hookpoint", "Site",
    "basis_feature_id", "basis_feature_ids", "format_dictionary_feature", "format_dim", "format_direction",
    "format_hookpoint", "format_neuron", "format_sae_latent", "hook_layer", "layer_of", "match_feature_id",
    "match_hookpoint", "parse_feature_id", "parse_hookpoint",
]
