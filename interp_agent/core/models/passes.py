"""Counting forward passes of every loaded model, so a long investigation can stop at a budget.

``wrap_model`` hooks every model it wraps, so harvests, scorers, generation and edited
passes are all counted without each step reporting its own. A forward pass is one
sequence through the model once: a batch of 8 counts 8, and each step of a generation
counts its batch again (a 12-token greedy continuation of 8 prompts counts 96).

A :func:`budget` block sets a limit (passes, seconds or both); the next forward pass
after it is spent raises :class:`BudgetExhausted`, so a step stops at its next batch
instead of running on. Outside a block nothing is ever refused.
"""

from __future__ import annotations

import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass
from typing import Any

from torch import nn

from interp_agent.core.errors import InterpAgentError


class BudgetExhausted(InterpAgentError):
    """The forward-pass or time budget of the enclosing :func:`budget` block is spent."""

    code = "budget_exhausted"


@dataclass(slots=True)
class _Limit:
    max_passes: int | None
    deadline: float | None
    """``time.monotonic()`` value after which no pass may start."""
    start_passes: int


class _Ledger:
    """The process-wide pass count and the innermost active limit."""

    def __init__(self) -> None:
        self.passes = 0
        self.limits: list[_Limit] = []

    def count(self, rows: int) -> None:
        for limit in self.limits:
            if limit.max_passes is not None and self.passes - limit.start_passes >= limit.max_passes:
                raise BudgetExhausted(f"the budget of {limit.max_passes:,} forward passes is spent")
            if limit.deadline is not None and time.monotonic() >= limit.deadline:
                raise BudgetExhausted("the time budget is spent")
        self.passes += rows


_LEDGER = _Ledger()


def forward_passes() -> int:
    """Forward passes (sequences) run by every wrapped model of this process so far."""
    return _LEDGER.passes


def _rows(args: tuple[Any, ...], kwargs: dict[str, Any]) -> int:
    for value in (*args, kwargs.get("input_ids"), kwargs.get("inputs_embeds")):
        shape = getattr(value, "shape", None)
        if shape is not None and len(shape) >= 1:
            return int(shape[0])
    return 1


def count_passes(model: nn.Module) -> None:
    """Count ``model``'s forward passes in the ledger (once per model, however often it is wrapped)."""
    if getattr(model, "_interp_agent_counted", False):
        return

    def before(_module: nn.Module, args: tuple[Any, ...], kwargs: dict[str, Any]) -> None:
        _LEDGER.count(_rows(args, kwargs))

    model.register_forward_pre_hook(before, with_kwargs=True)
    model._interp_agent_counted = True  # type: ignore[attr-defined]  # a marker attribute, not a module


@contextmanager
def budget(max_passes: int | None = None, max_seconds: float | None = None) -> Iterator[None]:
    """Refuse forward passes beyond ``max_passes`` or after ``max_seconds`` within the block (None: no limit)."""
    deadline = None if max_seconds is None else time.monotonic() + max_seconds
    _LEDGER.limits.append(_Limit(max_passes, deadline, _LEDGER.passes))
    try:
        yield
    finally:
        _LEDGER.limits.pop()


__all__ = ["BudgetExhausted", "budget", "count_passes", "forward_passes"]
