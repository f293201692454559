"""The one progress callback every long-running core step takes.

A step calls ``progress(phase, done, total)`` as it goes: ``phase`` names the stage
(``harvest``, ``rank``, ``encode``, …), ``done`` counts units finished in that stage and
``total`` is how many there are (None when unknown, e.g. a streamed file). The units
(rows, batches, steps) are the step's own; adapters turn them into a job's fraction and
message (``interp_agent.jobs.kinds``) or a terminal bar or line (``interp_agent.cli``). A
fraction of the whole run comes from a table of the share each phase covers:
``inspect_progress_fraction`` for inspect, ``TRAIN_PHASES`` of the trained-latents workflow
for SAE training (its job and ``train-sae``'s stderr line).

The protocol carries counts only. A step with more to say per unit gives it as data through
a callback of its own type, next to ``progress``, rather than as text through this one: SAE
training (``core.sae.train.fit_sae``) passes each training point (step, loss, FVU, L0, …)
to ``on_point`` just before reporting ``("train", step, steps)``, and its adapter
(``TrainProgress``) keeps the latest point to write ``step 120/300 loss … fvu … l0 …``.
So every implementer stays a plain ``(phase, done, total)`` function, and the point stays
numbers a caller can plot or test.
"""

from __future__ import annotations

from typing import Protocol


class Progress(Protocol):
    """``(phase, done, total)``: ``done`` of ``total`` units (None: unknown) finished in ``phase``."""

    def __call__(self, phase: str, done: int, total: int | None, /) -> None:
        """Report that ``done`` units of ``total`` are finished in ``phase``."""
        ...


__all__ = ["Progress"]
