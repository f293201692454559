"""The one progress callback every long-running core step takes.

A step calls ``progress(phase, done, total)`` as it goes: ``phase`` names the stage
(``harvest``, ``rank``, ``encode``, …), ``done`` counts units finished in that stage and
``total`` is how many there are (None when unknown, e.g. a streamed file). The units
(rows, batches, steps) are the step's own; adapters turn them into a job's fraction and
message (``interp_agent.jobs.kinds``) or a terminal bar (``interp_agent.cli``).
"""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    """``(phase, done, total)``: ``done`` of ``total`` units (None: unknown) finished in ``phase``."""

    def __call__(self, phase: str, done: int, total: int | None, /) -> None:
        """Report that ``done`` units of ``total`` are finished in ``phase``."""
        ...


__all__ = ["Progress"]
