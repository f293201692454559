"""Reading and editing activations at hookpoints during a forward pass.

- ``capture(model, hookpoints)`` collects each forward's activation per hookpoint.
- ``edit(model, hookpoint, fn)`` replaces the activation by ``fn(acts_BTD)``.
- ``edit_groups(model, hookpoint, fns)`` edits a batch laid out as ``len(fns)`` equal groups
  of rows, group ``g`` by ``fns[g]``: several edits share one forward pass (or one generate).
- ``logits_at(model, ids_BT, mask_BT, positions_B)`` runs the model but applies the LM head
  at one position per row only.
- ``stop_after(model, hookpoints)`` raises ``StopForward`` once the last of them is
  computed, so later blocks (and the LM head) never run; the caller catches it.

Hooks fire in the order they were registered: a ``capture`` entered inside an ``edit``
on the same hookpoint sees the edited activation, one entered before it the original.
Every context removes its hooks on exit, also when the forward pass raised.
A block's output may be a Tensor (transformers 5) or a tuple whose first element is
the hidden state (older versions, attention modules); both are handled.
"""

from __future__ import annotations

from collections.abc import Callable, Iterator
from contextlib import contextmanager
from contextvars import ContextVar
from typing import Any

import torch
from torch import nn
from torch.utils.hooks import RemovableHandle

from interp_agent.core.errors import ValidationError
from interp_agent.core.models.hookpoints import HookPoint, model_layout, resolve_hookpoint, unwrap

__all__ = ["StopForward", "capture", "edit", "edit_groups", "logits_at", "register", "stop_after"]


class StopForward(Exception):
    """Raised by a hook after the last needed activation, to skip the rest of the forward pass."""


def _first(value: Any) -> torch.Tensor:
    return value[0] if isinstance(value, (tuple, list)) else value


def _with_first(value: Any, new: torch.Tensor) -> Any:
    if isinstance(value, tuple):
        return (new, *value[1:])
    if isinstance(value, list):
        return [new, *value[1:]]
    return new


def register(point: HookPoint, fn: Callable[[torch.Tensor], torch.Tensor | None]) -> RemovableHandle:
    """Hook ``fn`` onto a resolved hookpoint; a tensor it returns replaces the activation.

    ``fn`` receives the activation ``[batch, seq, width]``; returning None leaves it as is.
    Output mode is a forward hook on ``point.module``; input mode a forward pre-hook that
    sees the module's first positional argument (or its ``hidden_states`` keyword).
    """
    if point.mode == "output":

        def out_hook(module: nn.Module, args: Any, output: Any) -> Any:
            new = fn(_first(output))
            return None if new is None else _with_first(output, new)

        return point.module.register_forward_hook(out_hook)

    def pre_hook(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        if args:
            new = fn(args[0])
            return None if new is None else ((new, *args[1:]), kwargs)
        if "hidden_states" in kwargs:
            new = fn(kwargs["hidden_states"])
            return None if new is None else (args, {**kwargs, "hidden_states": new})
        raise RuntimeError(f"{point.name}: {type(module).__name__} was called without a positional input")

    return point.module.register_forward_pre_hook(pre_hook, with_kwargs=True)


@contextmanager
def capture(model: Any, hookpoints: list[str]) -> Iterator[dict[str, list[torch.Tensor]]]:
    """Collect activations: every forward appends ``[batch, seq, width]`` (detached) per hookpoint.

    The tensors stay on the model's device and dtype; clear the lists between batches
    to bound memory.

    Raises:
        ValidationError: a hookpoint name does not resolve (before any hook is added).
    """
    points = {p.name: p for p in (resolve_hookpoint(model, h) for h in hookpoints)}
    store: dict[str, list[torch.Tensor]] = {name: [] for name in points}
    handles: list[RemovableHandle] = []
    try:
        for name, point in points.items():
            handles.append(register(point, lambda acts_BTD, sink=store[name]: sink.append(acts_BTD.detach())))
        yield store
    finally:
        for handle in handles:
            handle.remove()


_FIRST_REAL: ContextVar[torch.Tensor | None] = ContextVar("first_real_column", default=None)
"""Per batch row, the column of its first real token, while a left-padded batch runs (see :func:`left_padded`)."""


@contextmanager
def left_padded(attention_mask_BT: torch.Tensor) -> Iterator[None]:
    """While a left-padded batch runs (a batched ``generate``), edits leave each row's pads and first real token alone.

    Edits never touch a sequence's first position (it carries the model's massive
    activations); in a left-padded batch that position is a pad for all but the longest
    prompt, so without this the first real token of every shorter prompt would be edited.
    """
    token = _FIRST_REAL.set(attention_mask_BT.to(torch.long).argmax(dim=1))
    try:
        yield
    finally:
        _FIRST_REAL.reset(token)


def _keep_leading(acts_BTD: torch.Tensor, new_BTD: torch.Tensor) -> torch.Tensor:
    """``new_BTD`` with each row's columns up to its first real token restored, inside :func:`left_padded`."""
    first_B = _FIRST_REAL.get()
    if first_B is None or acts_BTD.shape[1] == 1 or first_B.shape[0] != acts_BTD.shape[0]:
        return new_BTD  # not left-padded, or a cached one-token step (no leading column in it)
    cols_T = torch.arange(acts_BTD.shape[1], device=acts_BTD.device)
    keep_BT1 = (cols_T[None, :] <= first_B.to(acts_BTD.device)[:, None]).unsqueeze(-1)
    return torch.where(keep_BT1, acts_BTD, new_BTD)


@contextmanager
def edit(model: Any, hookpoint: str, fn: Callable[[torch.Tensor], torch.Tensor]) -> Iterator[None]:
    """Replace the activation at ``hookpoint`` by ``fn(acts_BTD)`` on every forward pass.

    ``fn`` must return a tensor of the same shape; it is cast back to the activation's
    dtype. Works for output and input (pre-hook) hookpoints, Tensor or tuple outputs.
    Inside :func:`left_padded`, each row's pads and first real token are left as they were.

    Raises:
        ValidationError: the hookpoint does not resolve, or ``fn`` returns the wrong shape.
    """
    point = resolve_hookpoint(model, hookpoint)

    def apply(acts_BTD: torch.Tensor) -> torch.Tensor:
        new = fn(acts_BTD)
        if not isinstance(new, torch.Tensor) or new.shape != acts_BTD.shape:
            got = tuple(new.shape) if isinstance(new, torch.Tensor) else type(new).__name__
            raise ValidationError(
                f"edit at {point.name}: fn returned {got}, expected a tensor of shape {tuple(acts_BTD.shape)}"
            )
        new = _keep_leading(acts_BTD, new)
        return new if new.dtype == acts_BTD.dtype else new.to(acts_BTD.dtype)

    handle = register(point, apply)
    try:
        yield
    finally:
        handle.remove()


GroupEdit = Callable[[torch.Tensor], torch.Tensor] | None
"""The edit of one group of rows; None leaves the group as it is (an unedited reference in the same pass)."""


def _group_fn(fns: list[GroupEdit]) -> Callable[[torch.Tensor], torch.Tensor]:
    """One edit of a batch of ``len(fns)`` equal groups of rows (group-major): group ``g`` gets ``fns[g]``.

    Each group sees only its own rows, with the batch's sequence length, so an edit that
    treats full sequences and cached generation steps differently does so per group too.
    """
    if not fns:
        raise ValidationError("edit_groups needs at least one edit")

    def fn(acts_BTD: torch.Tensor) -> torch.Tensor:
        rows, rem = divmod(acts_BTD.shape[0], len(fns))
        if rem:
            raise ValidationError(f"a batch of {acts_BTD.shape[0]} rows cannot hold {len(fns)} equal groups",
                                  hint="repeat the prompt chunk once per edit")
        parts = [acts_BTD[g * rows:(g + 1) * rows] for g in range(len(fns))]
        return torch.cat([part if f is None else f(part) for part, f in zip(parts, fns, strict=True)])

    return fn


@contextmanager
def edit_groups(model: Any, hookpoint: str, fns: list[GroupEdit], *, share_upstream: bool = True) -> Iterator[None]:
    """Edit a batch of ``len(fns)`` equal groups of rows at ``hookpoint``, group ``g`` by ``fns[g]`` (None: unedited).

    Lay the batch out as one prompt chunk repeated once per edit (group-major), so every
    group is padded as the chunk alone would be. Every forward pass is edited, including
    generation steps of one token with the KV cache (the batch keeps its rows).

    ``share_upstream``: the blocks before the edited one see the same rows in every group
    of a pass over whole prompts (a forward, a generate's prefill), so there each runs on
    the first group only and its output (and KV-cache entry) is copied to the others: the
    same numbers, without computing them once per edit. Hooks of their own on those blocks
    see one group in such passes. One-token generation steps run every row (the groups'
    generated tokens differ).

    Raises:
        ValidationError: the hookpoint does not resolve, ``fns`` is empty, or a batch's rows
            do not split into ``len(fns)`` equal groups.
    """
    point = resolve_hookpoint(model, hookpoint)
    handles: list[RemovableHandle] = []
    try:
        if share_upstream and len(fns) > 1:
            for i, block in enumerate(model_layout(unwrap(model)).blocks[: point.layer]):
                handles.extend(_share_block(block, i, len(fns)))
        with edit(model, hookpoint, _group_fn(fns)):
            yield
    finally:
        for handle in handles:
            handle.remove()


class _KVRecorder:
    """Stands in for the KV cache while a shared block runs on the first group; keeps what it was given."""

    def __init__(self, real: Any) -> None:
        self.real = real
        self.calls: list[tuple[torch.Tensor, torch.Tensor, Any, tuple[Any, ...], dict[str, Any]]] = []

    def update(self, key_states: torch.Tensor, value_states: torch.Tensor, layer_idx: Any, *args: Any,
               **kwargs: Any) -> tuple[torch.Tensor, torch.Tensor]:
        self.calls.append((key_states, value_states, layer_idx, args, kwargs))
        return key_states, value_states

    def replay(self, n_groups: int) -> None:
        """Store every update in the real cache, its rows copied to each group."""
        for k, v, layer_idx, args, kwargs in self.calls:
            tile = (n_groups,) + (1,) * (k.dim() - 1)
            self.real.update(k.repeat(tile), v.repeat(tile), layer_idx, *args, **kwargs)


def _is_cache(value: Any) -> bool:
    return not isinstance(value, torch.Tensor) and callable(getattr(value, "update", None)) and hasattr(
        value, "get_seq_length")


def _share_block(block: nn.Module, index: int, n_groups: int) -> list[RemovableHandle]:
    """Hooks that run ``block`` (the ``index``-th) on the first of ``n_groups`` identical groups, copied to all.

    Only in a pass over whole prompts: more than one position, every group's input the
    same, and no cached positions yet (a generate's prefill, a forward).
    """
    state: dict[str, Any] = {}

    def rows(value: Any, batch: int, n: int) -> Any:
        if isinstance(value, torch.Tensor):
            return value[:n] if value.dim() >= 2 and value.shape[0] == batch else value
        if type(value) in (tuple, list):  # e.g. the rotary (cos, sin)
            return type(value)(rows(v, batch, n) for v in value)
        if _is_cache(value):
            state["recorder"] = _KVRecorder(value)
            return state["recorder"]
        return value

    def whole_prompts(hidden: Any, values: list[Any]) -> bool:
        if not isinstance(hidden, torch.Tensor) or hidden.dim() != 3 or hidden.shape[1] < 2:
            return False
        n, rem = divmod(hidden.shape[0], n_groups)
        if rem or not n or any(_is_cache(v) and v.get_seq_length(index) > 0 for v in values):
            return False
        groups = hidden.reshape(n_groups, n, *hidden.shape[1:])
        return all(torch.equal(groups[0], g) for g in groups[1:])

    def pre(module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> Any:
        state.clear()
        hidden = args[0] if args else kwargs.get("hidden_states")
        if not whole_prompts(hidden, [*args, *kwargs.values()]):
            return None
        assert isinstance(hidden, torch.Tensor)
        batch, n = hidden.shape[0], hidden.shape[0] // n_groups
        state["n"] = n
        return rows(args, batch, n), {k: rows(v, batch, n) for k, v in kwargs.items()}

    def post(module: nn.Module, args: tuple[Any, ...], output: Any) -> Any:
        if "n" not in state:
            return None
        recorder = state.get("recorder")
        if recorder is not None:
            recorder.replay(n_groups)
        first = _first(output)
        tiled = first.repeat((n_groups,) + (1,) * (first.dim() - 1))
        if isinstance(output, (tuple, list)):  # a block that hands its cache back gets the real one
            rest = [recorder.real if recorder is not None and o is recorder else o for o in output[1:]]
            return type(output)([tiled, *rest])
        return tiled

    return [block.register_forward_pre_hook(pre, with_kwargs=True), block.register_forward_hook(post)]


def logits_at(model: Any, ids_BT: torch.Tensor, mask_BT: torch.Tensor, positions_B: torch.Tensor) -> torch.Tensor:
    """Logits ``[B, vocab]`` at one position per row, the LM head applied at those positions only.

    The same numbers as reading ``model(...).logits`` there, without the head's matmul over
    every position (a fifth of a small model's forward). A pre-hook on the output
    embeddings gathers the rows' hidden states before the head.
    """
    head = model.get_output_embeddings()

    def gather(module: nn.Module, args: tuple[Any, ...]) -> tuple[Any, ...]:
        hidden_BTD = args[0]
        rows = torch.arange(hidden_BTD.shape[0], device=hidden_BTD.device)
        return (hidden_BTD[rows, positions_B.to(hidden_BTD.device)].unsqueeze(1), *args[1:])

    handle = head.register_forward_pre_hook(gather)
    try:
        logits_B1V = model(input_ids=ids_BT, attention_mask=mask_BT).logits
    finally:
        handle.remove()
    return logits_B1V[:, 0]


def _raise_stop(*_: Any, **__: Any) -> None:
    raise StopForward


@contextmanager
def stop_after(model: Any, hookpoints: list[str]) -> Iterator[None]:
    """Raise ``StopForward`` as soon as every one of ``hookpoints`` has been computed.

    Only ``hook_resid_pre`` hookpoints at the deepest layer: stops on entering that block.
    Otherwise: stops when that block returns. Enter it after ``capture`` so the capture
    hooks on the same block run first.
    """
    points = [resolve_hookpoint(model, h) for h in hookpoints]
    if not points:
        yield
        return
    deepest = max(p.layer for p in points)
    only_pre = all(p.site == "hook_resid_pre" for p in points if p.layer == deepest)
    block = model_layout(unwrap(model)).blocks[deepest]
    if only_pre:
        handle = block.register_forward_pre_hook(_raise_stop)
    else:
        handle = block.register_forward_hook(_raise_stop)
    try:
        yield
    finally:
        handle.remove()
