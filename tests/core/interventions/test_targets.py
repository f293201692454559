"""Intervention targets read feature ids through the one grammar (interp_agent.core.ids)."""

from __future__ import annotations

import numpy as np
import pytest

from interp_agent.core.errors import ValidationError
from interp_agent.core.interventions.targets import parse_target

WIDTHS = {"blocks.2.hook_resid_post": 8, "blocks.2.mlp.hook_post": 16, "blocks.2.hook_attn_out": 8}


@pytest.mark.parametrize(("feature_id", "hookpoint", "kind", "index"), [
    ("L2:D3", "blocks.2.hook_resid_post", "dim", 3),
    ("L2:N9", "blocks.2.mlp.hook_post", "neuron", 9),
    ("L2:attn_out:D5", "blocks.2.hook_attn_out", "dim", 5),
])
def test_a_basis_feature_id_becomes_a_unit_vector_at_its_hookpoint(feature_id: str, hookpoint: str, kind: str,
                                                                    index: int) -> None:
    target = parse_target(feature_id, WIDTHS)
    assert (target.feature_id, target.hookpoint, target.kind, target.index) == (feature_id, hookpoint, kind, index)
    assert target.direction[index] == 1.0 and float(np.abs(target.direction).sum()) == 1.0


@pytest.mark.parametrize("feature_id", ["L2:F3", "SAE:F3", "SAE:res-jb:F3", "weird"])
def test_an_id_that_names_no_intervenable_unit_is_refused_with_the_forms(feature_id: str) -> None:
    with pytest.raises(ValidationError, match="cannot intervene") as err:
        parse_target(feature_id, WIDTHS)
    assert "L{layer}:D{dim}" in (err.value.hint or "")


def test_a_basis_id_at_a_hookpoint_the_model_lacks_names_it() -> None:
    with pytest.raises(ValidationError, match="blocks.7.hook_resid_post does not exist"):
        parse_target("L7:D0", WIDTHS)
