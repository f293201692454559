"""Crosscoder tests run torch on one thread (the shared ``one_torch_thread``): their small matmuls run far faster
so on a shared CPU."""

from __future__ import annotations

import pytest


@pytest.fixture(autouse=True, scope="module")
def _one_thread(one_torch_thread) -> None:
    """Every crosscoder test module on one torch thread."""
