"""The feature-id and hookpoint grammar (interp_agent.core.ids)."""

from __future__ import annotations

import subprocess
import sys

import pytest

from interp_agent.core.errors import ValidationError
from interp_agent.core.ids import (
    SITES,
    FeatureId,
    Hookpoint,
    basis_feature_ids,
    format_dim,
    format_direction,
    format_hookpoint,
    format_neuron,
    format_sae_latent,
    hook_layer,
    layer_of,
    match_feature_id,
    match_hookpoint,
    parse_feature_id,
    parse_hookpoint,
)


@pytest.mark.parametrize("site", SITES)
def test_every_hookpoint_site_round_trips(site: str) -> None:
    name = f"blocks.12.{site}"
    point = parse_hookpoint(name)
    assert point == Hookpoint(12, site)  # type: ignore[arg-type]  # site is one of SITES, pytest erases the Literal
    assert point.name == name == format_hookpoint(12, point.site)


@pytest.mark.parametrize("text", ["blocks.x.hook_resid_post", "blocks.3.hook_resid_mid", "layers.3", "",
                                  " blocks.3.hook_mlp_out"])
def test_a_bad_hookpoint_error_names_the_text_and_the_forms(text: str) -> None:
    with pytest.raises(ValidationError) as err:
        parse_hookpoint(text)
    assert repr(text) in err.value.message
    hint = err.value.hint or ""
    assert "blocks.{L}.hook_resid_post" in hint and "blocks.{L}.mlp.hook_post" in hint
    assert match_hookpoint(text) is None


@pytest.mark.parametrize(("text", "expected"), [
    ("L3:D5", FeatureId("dim", layer=3, index=5, site="hook_resid_post")),
    ("L3:resid_pre:D5", FeatureId("dim", layer=3, index=5, site="hook_resid_pre")),
    ("L3:attn_out:D5", FeatureId("dim", layer=3, index=5, site="hook_attn_out")),
    ("L3:mlp_out:D5", FeatureId("dim", layer=3, index=5, site="hook_mlp_out")),
    ("L3:N7", FeatureId("neuron", layer=3, index=7, site="mlp.hook_post")),
    ("L18:F104921", FeatureId("dictionary", layer=18, index=104921)),
    ("SAE:L6:F650", FeatureId("sae", layer=6, index=650)),
    ("SAE:res-jb:F17", FeatureId("sae", index=17, sae_id="res-jb")),
    ("SAE:F17", FeatureId("sae", index=17)),
    ("direction:contrast@blocks.15.hook_resid_post",
     FeatureId("direction", layer=15, site="hook_resid_post", name="contrast")),
    ("direction:contrast", FeatureId("direction", name="contrast")),
    ("direction:a@b", FeatureId("direction", name="a@b")),
])
def test_every_feature_id_form_round_trips(text: str, expected: FeatureId) -> None:
    fid = parse_feature_id(text)
    assert fid == expected
    assert fid.text == str(fid) == text
    assert parse_feature_id(fid.text) == fid


@pytest.mark.parametrize("text", ["weird", "L3:attn_out:N5", "L3:D", "SAE:L3", "direction:", "l3:d5", "L-1:D2"])
def test_a_bad_feature_id_error_names_the_id_and_the_forms(text: str) -> None:
    with pytest.raises(ValidationError) as err:
        parse_feature_id(text)
    assert repr(text) in err.value.message
    hint = err.value.hint or ""
    for form in ("L{layer}:D{dim}", "L{layer}:N{i}", "SAE:L{layer}:F{i}", "direction:NAME"):
        assert form in hint
    assert match_feature_id(text) is None


def test_a_feature_id_knows_its_hookpoint() -> None:
    assert parse_feature_id("L3:D5").hookpoint == Hookpoint(3, "hook_resid_post")
    assert parse_feature_id("L3:N5").hookpoint == Hookpoint(3, "mlp.hook_post")
    assert parse_feature_id("L3:mlp_out:D5").hookpoint == Hookpoint(3, "hook_mlp_out")
    assert parse_feature_id("SAE:L3:F5").hookpoint is None
    assert parse_feature_id("direction:c@blocks.2.hook_attn_out").hookpoint == Hookpoint(2, "hook_attn_out")


def test_formatters_spell_each_form() -> None:
    assert format_dim(4, 9) == "L4:D9"
    assert format_dim(4, 9, "hook_attn_out") == "L4:attn_out:D9"
    assert format_neuron(4, 9) == "L4:N9"
    assert format_sae_latent(9, layer=4) == "SAE:L4:F9"
    assert format_sae_latent(9, sae_id="4-res-jb") == "SAE:4-res-jb:F9"
    assert format_sae_latent(9) == "SAE:F9"
    at = Hookpoint(15, "hook_resid_post")
    assert format_direction("contrast", at) == "direction:contrast@blocks.15.hook_resid_post"
    assert format_direction("direction:contrast") == "direction:contrast"
    with pytest.raises(ValidationError, match="mlp.hook_post"):
        format_dim(4, 9, "mlp.hook_post")


def test_basis_ids_are_neurons_at_mlp_hook_post_and_dims_elsewhere() -> None:
    assert basis_feature_ids(Hookpoint(2, "mlp.hook_post"), 2) == ["L2:N0", "L2:N1"]
    assert basis_feature_ids(Hookpoint(2, "hook_resid_post"), 2) == ["L2:D0", "L2:D1"]
    assert basis_feature_ids(Hookpoint(2, "hook_resid_pre"), 1) == ["L2:resid_pre:D0"]


def test_layer_of_reads_feature_ids_and_any_block_hook_name() -> None:
    assert layer_of("SAE:L6:F650") == 6
    assert layer_of("direction:c@blocks.4.hook_resid_post") == 4
    assert layer_of("SAE:res-jb:F1") is None
    assert layer_of("blocks.7.hook_resid_mid") == 7
    assert hook_layer("blocks.7.attn.hook_z") == 7
    assert layer_of("weird") is None


def test_inconsistent_fields_are_refused_with_the_field_named() -> None:
    with pytest.raises(ValidationError, match="neuron lives at mlp.hook_post"):
        FeatureId("neuron", layer=1, index=2, site="hook_resid_post")
    with pytest.raises(ValidationError, match="index must be >= 0"):
        FeatureId("dim", layer=1, index=-2, site="hook_resid_post")
    with pytest.raises(ValidationError, match="layer must be >= 0"):
        Hookpoint(-1, "hook_resid_post")


def test_the_grammar_imports_neither_torch_nor_numpy() -> None:
    code = "import sys, interp_agent.core.ids; print('torch' in sys.modules or 'numpy' in sys.modules)"
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True).stdout
    assert out.strip() == "False"
