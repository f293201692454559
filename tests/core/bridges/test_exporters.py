"""TransformerLens and nnsight exporters give the records our own harvesting gives, on SmolLM2-135M.

Tolerances: nnsight reads the very modules our hooks read, so its records match to
``atol=1e-5`` (bit-identical on CPU float32). TransformerLens's bridge forces eager attention
where our load uses SDPA, which moves float32 activations by up to ~4e-4 at magnitudes
up to ~900 (residual stream at layer 20 of SmolLM2): ``atol=1e-3, rtol=1e-5``.
"""

from __future__ import annotations

import json
import subprocess
import sys
import textwrap
from pathlib import Path

import pytest
import torch

from interp_agent.core.bridges.exporters import (
    export_records,
    import_nnsight,
    prompts_for_export,
    records_via_nnsight,
    records_via_transformer_lens,
)
from interp_agent.core.errors import ValidationError
from interp_agent.core.formats.records import read_records

pytestmark = pytest.mark.slow

HOOKS = ["blocks.20.hook_resid_post", "blocks.5.hook_resid_post"]
TOLERANCE = {"transformer-lens": {"atol": 1e-3, "rtol": 1e-5}, "nnsight": {"atol": 1e-5, "rtol": 0.0}}
READERS = {"transformer-lens": records_via_transformer_lens, "nnsight": records_via_nnsight}


@pytest.fixture(scope="module")
def loaded():
    from interp_agent.core.models import load_model

    return load_model("smollm2-135m", device="cpu")


@pytest.fixture(scope="module")
def prompts():
    return prompts_for_export(pack="measurement_unit")[:6]


@pytest.fixture(autouse=True)
def _offline(monkeypatch):
    monkeypatch.setenv("HF_HUB_OFFLINE", "1")  # the bridges must not reach for the hub


def _assert_same_records(ours: list, theirs: list, tolerance: dict[str, float]) -> None:
    assert len(theirs) == len(ours) and ours
    for a, b in zip(ours, theirs, strict=True):
        assert (b.prompt_id, b.token_index, b.token, b.split, b.model) == (
            a.prompt_id, a.token_index, a.token, a.split, a.model
        )
        assert b.feature_ids == a.feature_ids
        torch.testing.assert_close(torch.tensor(b.activations), torch.tensor(a.activations), **tolerance)


@pytest.mark.parametrize("via", ["transformer-lens", "nnsight"])
@pytest.mark.parametrize("pooling", ["mean", "token"])
def test_exported_records_equal_our_harvest_at_two_layers(loaded, prompts, via: str, pooling: str) -> None:
    from interp_agent.core.models import harvest_records

    ours = list(harvest_records(loaded, prompts, HOOKS, pooling=pooling, batch_size=4))
    theirs = list(READERS[via](loaded, prompts, HOOKS, pooling=pooling, batch_size=4))
    _assert_same_records(ours, theirs, TOLERANCE[via])
    assert {f.split(":")[0] for f in ours[0].feature_ids} == {"L20", "L5"}
    if pooling == "token":
        assert all(r.token_index >= 1 for r in theirs)  # the first position is left out, as in ours
    assert max(abs(v) for r in ours for v in r.activations) > 50  # magnitudes the tolerance is relative to


def test_the_callers_model_is_left_untouched_by_the_transformer_lens_bridge(loaded, prompts) -> None:
    from interp_agent.core.models import harvest_records

    before = type(loaded.model.model.layers[0])
    list(records_via_transformer_lens(loaded, prompts[:2], HOOKS[:1], pooling="last"))
    assert type(loaded.model.model.layers[0]) is before
    assert loaded.tokenizer.padding_side == "right"
    list(records_via_nnsight(loaded, prompts[:2], HOOKS[:1], pooling="last"))
    assert loaded.tokenizer.padding_side == "right"  # nnsight left-pads its own copy only
    assert list(harvest_records(loaded, prompts[:2], HOOKS[:1], pooling="last"))


def test_export_writes_a_records_file_the_ranking_reads(loaded, prompts, tmp_path: Path) -> None:
    out = export_records(tmp_path / "records.jsonl", loaded, prompts, ["blocks.5.mlp.hook_post"], via="nnsight",
                         pooling="max")
    rows, meta = read_records(out)
    assert len(rows) == len(prompts) and rows[0].feature_ids[0].startswith("L5:N") and meta["L5:N0"].layer == 5
    first = json.loads(out.read_text().splitlines()[0])
    assert first["model"] == "smollm2-135m"


def test_remote_runs_need_a_hub_id_not_a_local_model(loaded, prompts) -> None:
    with pytest.raises(ValidationError, match="hub id"):
        list(records_via_nnsight(loaded, prompts, HOOKS, remote=True))
    with pytest.raises(ValidationError, match="hub id"):
        list(records_via_nnsight("smollm2-135m", prompts, HOOKS, remote=True))


# --- nnsight's .save mount ------------------------------------------------------------------
# ``import nnsight`` mounts ``save`` on ``object`` (nnsight/_c/py_mount.c), after which anyio's
# TypedAttributeSet subclasses, hence ``import mcp``, raise "Attribute 'save' is missing its
# type annotation" (see import_nnsight). Fresh interpreters: in this one anyio's modules may
# already be loaded, and a class defined before the mount never sees it.


def _python(code: str) -> subprocess.CompletedProcess[str]:
    return subprocess.run([sys.executable, "-c", textwrap.dedent(code)], capture_output=True, text=True, timeout=300)


def _define_an_attribute_set() -> None:
    """Raises the TypeError while ``save`` is mounted on object, whatever anyio modules are loaded."""
    from anyio import TypedAttributeSet, typed_attribute

    class Probe(TypedAttributeSet):
        value: int = typed_attribute()


def test_importing_nnsight_through_the_exporter_leaves_mcp_importable() -> None:
    done = _python("""
        from interp_agent.core.bridges.exporters import import_nnsight

        import_nnsight()
        from nnsight.modeling.transformers import TransformersModel  # what nnsight_model imports next
        assert "save" not in vars(object)
        import anyio.streams.file, anyio.streams.tls
        import mcp
        from interp_agent.server.models import InspectInput
        print("ok")
    """)
    assert done.returncode == 0 and done.stdout.strip() == "ok", done.stderr[-3000:]


def test_a_plain_import_nnsight_breaks_anyio_and_a_callers_mount_is_left_alone() -> None:
    done = _python("""
        import nnsight

        if "save" not in vars(object):
            print("no mount")
            raise SystemExit
        from interp_agent.core.bridges.exporters import import_nnsight

        import_nnsight()
        assert "save" in vars(object), "the caller's own mount was taken away"
        try:
            import anyio.streams.file
        except TypeError as error:
            print(error)
    """)
    assert done.returncode == 0, done.stderr[-3000:]
    if done.stdout.strip() == "no mount":
        pytest.skip("nnsight no longer mounts .save on object: import_nnsight has nothing to take back")
    assert done.stdout.strip() == "Attribute 'save' is missing its type annotation"


def test_an_nnsight_export_leaves_no_save_on_every_object(loaded, prompts) -> None:
    assert list(records_via_nnsight(loaded, prompts[:2], HOOKS[:1], pooling="last"))
    assert import_nnsight().save  # the function form the exporter saves with
    assert "save" not in vars(object) and not hasattr(loaded.model, "save")
    _define_an_attribute_set()
