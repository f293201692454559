"""Hookpoint names, capture, edit and StopForward on tiny random Llama and GPT-2 models."""

from __future__ import annotations

import pytest
import torch
from transformers import LlamaConfig, LlamaForCausalLM

from interp_agent.core.errors import ValidationError
from interp_agent.core.models import (
    StopForward,
    capture,
    default_hookpoints,
    edit,
    list_hookpoints,
    resolve_hookpoint,
    stop_after,
    tiny_model,
    wrap_model,
)
from interp_agent.core.models.hookpoints import model_layout
from interp_agent.core.models.loading import tiny_tokenizer

FAMILIES = ["llama", "gpt2"]
N_LAYERS = 3


@pytest.fixture(params=FAMILIES)
def lm(request):
    return tiny_model(request.param, n_layers=N_LAYERS, d_model=32, vocab_size=100, seed=0)


def _ids(seed: int = 0, shape: tuple[int, int] = (2, 7)) -> torch.Tensor:
    g = torch.Generator().manual_seed(seed)
    return torch.randint(2, 97, shape, generator=g)


def _expected_width(lm, site: str) -> int:
    if site != "mlp.hook_post":
        return 32
    return lm.model.config.intermediate_size if lm.family == "llama" else 4 * 32


def test_every_hookpoint_name_resolves_with_the_right_width(lm):
    names = list_hookpoints(lm.model)
    assert len(names) == 5 * N_LAYERS
    for name in names:
        point = resolve_hookpoint(lm.model, name)
        site = name.split(".", 2)[2]
        assert point.name == name
        assert point.layer == int(name.split(".")[1])
        assert point.width == _expected_width(lm, site)
        assert point.mode == ("input" if site in ("hook_resid_pre", "mlp.hook_post") else "output")


def test_hookpoints_resolve_on_a_loaded_model_and_on_its_torch_module_alike(lm):
    a = resolve_hookpoint(lm, "blocks.1.hook_mlp_out")
    b = resolve_hookpoint(lm.model, "blocks.1.hook_mlp_out")
    assert a.module is b.module


def test_an_unknown_hookpoint_name_lists_the_valid_forms_and_layer_range(lm):
    with pytest.raises(ValidationError) as err:
        resolve_hookpoint(lm.model, "blocks.1.resid")
    text = str(err.value)
    assert "blocks.{L}.hook_resid_post" in text and "blocks.{L}.mlp.hook_post" in text
    assert f"0..{N_LAYERS - 1}" in text


def test_an_out_of_range_layer_names_the_models_layer_range(lm):
    with pytest.raises(ValidationError, match=rf"layer {N_LAYERS} is out of range.*0\.\.{N_LAYERS - 1}"):
        resolve_hookpoint(lm.model, f"blocks.{N_LAYERS}.hook_resid_post")


def test_default_hookpoints_are_residual_streams_at_a_third_half_and_two_thirds_depth():
    lm = tiny_model("llama", n_layers=4)
    assert default_hookpoints(lm.model) == ["blocks.1.hook_resid_post", "blocks.2.hook_resid_post"]
    assert all(h in list_hookpoints(lm.model) for h in default_hookpoints(lm.model))


def test_an_unsupported_architecture_is_a_validation_error():
    with pytest.raises(ValidationError, match="unsupported architecture"):
        model_layout(torch.nn.Linear(3, 3))


def test_wrap_model_sets_eval_mode_frozen_weights_and_right_padding():
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=100, hidden_size=32, intermediate_size=64, num_hidden_layers=2,
                         num_attention_heads=4, num_key_value_heads=2)
    tokenizer = tiny_tokenizer()
    tokenizer.padding_side = "left"
    loaded = wrap_model(LlamaForCausalLM(config), tokenizer, name="hand-built")
    assert not loaded.model.training
    assert not any(p.requires_grad for p in loaded.model.parameters())
    assert loaded.tokenizer.padding_side == "right"
    assert loaded.tokenizer.pad_token == loaded.tokenizer.eos_token
    assert (loaded.family, loaded.n_layers, loaded.d_model, loaded.dtype) == ("llama", 2, 32, "float32")


def test_captured_residual_streams_equal_output_hidden_states(lm):
    ids = _ids()
    names = [f"blocks.{layer}.hook_resid_{s}" for layer in range(N_LAYERS) for s in ("pre", "post")]
    with torch.no_grad(), capture(lm.model, names) as acts:
        out = lm.model(input_ids=ids, output_hidden_states=True)
    hidden = out.hidden_states
    for layer in range(N_LAYERS):
        torch.testing.assert_close(acts[f"blocks.{layer}.hook_resid_pre"][0], hidden[layer])
    for layer in range(N_LAYERS - 1):
        torch.testing.assert_close(acts[f"blocks.{layer}.hook_resid_post"][0], hidden[layer + 1])
    # HF's last hidden state is after the final norm; ours is the block's own output
    final_norm = lm.model.model.norm if lm.family == "llama" else lm.model.transformer.ln_f
    torch.testing.assert_close(final_norm(acts[f"blocks.{N_LAYERS - 1}.hook_resid_post"][0]), hidden[-1])


def test_resid_pre_plus_attention_and_mlp_outputs_is_resid_post(lm):
    layer = 1
    names = [f"blocks.{layer}.{s}" for s in ("hook_resid_pre", "hook_attn_out", "hook_mlp_out", "hook_resid_post")]
    with torch.no_grad(), capture(lm.model, names) as acts:
        lm.model(input_ids=_ids())
    pre, attn, mlp, post = (acts[n][0] for n in names)
    torch.testing.assert_close(pre + attn + mlp, post)


def test_mlp_hook_post_is_the_input_of_the_mlp_output_projection(lm):
    names = ["blocks.0.mlp.hook_post", "blocks.0.hook_mlp_out"]
    with torch.no_grad(), capture(lm.model, names) as acts:
        lm.model(input_ids=_ids())
    post = acts["blocks.0.mlp.hook_post"][0]
    proj = resolve_hookpoint(lm.model, "blocks.0.mlp.hook_post").module
    assert post.shape[-1] == _expected_width(lm, "mlp.hook_post")
    torch.testing.assert_close(proj(post), acts["blocks.0.hook_mlp_out"][0])


def test_capture_appends_one_activation_per_forward_and_removes_its_hooks(lm):
    block = model_layout(lm.model).blocks[0]
    with torch.no_grad(), capture(lm.model, ["blocks.0.hook_resid_post", "blocks.0.hook_resid_post"]) as acts:
        lm.model(input_ids=_ids(0))
        lm.model(input_ids=_ids(1, (3, 5)))
    assert list(acts) == ["blocks.0.hook_resid_post"]
    assert [tuple(a.shape) for a in acts["blocks.0.hook_resid_post"]] == [(2, 7, 32), (3, 5, 32)]
    assert not block._forward_hooks and not block._forward_pre_hooks


def test_stop_forward_skips_every_later_block_and_the_lm_head(lm):
    layout = model_layout(lm.model)
    calls = {"last": 0, "head": 0}
    h1 = layout.blocks[-1].register_forward_hook(lambda *_: calls.__setitem__("last", calls["last"] + 1))
    h2 = lm.model.lm_head.register_forward_hook(lambda *_: calls.__setitem__("head", calls["head"] + 1))
    try:
        with torch.no_grad(), capture(lm.model, ["blocks.1.hook_resid_post"]) as acts, \
                stop_after(lm.model, ["blocks.1.hook_resid_post"]):
            with pytest.raises(StopForward):
                lm.model(input_ids=_ids())
        assert calls == {"last": 0, "head": 0}
        assert acts["blocks.1.hook_resid_post"][0].shape == (2, 7, 32)
        with torch.no_grad():
            lm.model(input_ids=_ids())  # the stop hook is gone
        assert calls == {"last": 1, "head": 1}
    finally:
        h1.remove()
        h2.remove()


def test_stop_after_a_resid_pre_hookpoint_stops_before_its_block_runs(lm):
    layout = model_layout(lm.model)
    ran = []
    handle = layout.blocks[2].register_forward_hook(lambda *_: ran.append(1))
    try:
        with torch.no_grad(), capture(lm.model, ["blocks.2.hook_resid_pre"]) as acts, \
                stop_after(lm.model, ["blocks.2.hook_resid_pre"]):
            with pytest.raises(StopForward):
                lm.model(input_ids=_ids())
    finally:
        handle.remove()
    assert ran == [] and len(acts["blocks.2.hook_resid_pre"]) == 1


@pytest.mark.parametrize(
    "hookpoint", ["blocks.1.hook_resid_post", "blocks.1.hook_resid_pre", "blocks.1.hook_attn_out",
                  "blocks.1.hook_mlp_out", "blocks.1.mlp.hook_post"],
)
def test_identity_edit_leaves_logits_unchanged_and_zeroing_changes_them(lm, hookpoint):
    ids = _ids()
    with torch.no_grad():
        base = lm.model(input_ids=ids).logits
        with edit(lm.model, hookpoint, lambda a: a):
            same = lm.model(input_ids=ids).logits
        with edit(lm.model, hookpoint, torch.zeros_like):
            zeroed = lm.model(input_ids=ids).logits
        after = lm.model(input_ids=ids).logits
    torch.testing.assert_close(same, base)
    assert (zeroed - base).abs().max() > 1e-3
    torch.testing.assert_close(after, base)  # the edit's hook is gone


def test_a_capture_inside_an_edit_sees_the_edited_activation(lm):
    with torch.no_grad(), edit(lm.model, "blocks.0.hook_resid_post", lambda a: a * 0 + 2.0), \
            capture(lm.model, ["blocks.0.hook_resid_post"]) as acts:
        lm.model(input_ids=_ids())
    assert torch.all(acts["blocks.0.hook_resid_post"][0] == 2.0)


def test_an_edit_returning_the_wrong_shape_is_a_validation_error(lm):
    with torch.no_grad(), edit(lm.model, "blocks.0.hook_resid_post", lambda a: a[..., :3]):
        with pytest.raises(ValidationError, match="expected a tensor of shape"):
            lm.model(input_ids=_ids())
    assert not model_layout(lm.model).blocks[0]._forward_hooks


def test_an_edit_in_another_dtype_is_cast_back_to_the_activation_dtype(lm):
    model = lm.model.to(torch.bfloat16)
    seen = []
    with torch.no_grad(), edit(model, "blocks.0.hook_resid_post", lambda a: a.float()), \
            capture(model, ["blocks.0.hook_resid_post"]) as acts:
        model(input_ids=_ids())
        seen.append(acts["blocks.0.hook_resid_post"][0].dtype)
    assert seen == [torch.bfloat16]
