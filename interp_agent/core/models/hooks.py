"""Reading and editing activations at hookpoints during a forward pass.

- ``capture(model, hookpoints)`` collects each forward's activation per hookpoint.
- ``edit(model, hookpoint, fn)`` replaces the activation by ``fn(acts_BTD)``.
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
from typing import Any

import torch
from torch import nn
from torch.utils.hooks import RemovableHandle

from interp_agent.core.errors import ValidationError
from interp_agent.core.models.hookpoints import HookPoint, model_layout, resolve_hookpoint, unwrap

__all__ = ["StopForward", "capture", "edit", "register", "stop_after"]


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


@contextmanager
def edit(model: Any, hookpoint: str, fn: Callable[[torch.Tensor], torch.Tensor]) -> Iterator[None]:
    """Replace the activation at ``hookpoint`` by ``fn(acts_BTD)`` on every forward pass.

    ``fn`` must return a tensor of the same shape; it is cast back to the activation's
    dtype. Works for output and input (pre-hook) hookpoints, Tensor or tuple outputs.

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
        return new if new.dtype == acts_BTD.dtype else new.to(acts_BTD.dtype)

    handle = register(point, apply)
    try:
        yield
    finally:
        handle.remove()


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
