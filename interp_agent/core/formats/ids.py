"""A stable, vectorised 64-bit hash of prompt ids (the basis of every hash split)."""

from __future__ import annotations

from collections.abc import Sequence

import numpy as np

_FNV_OFFSET = np.uint64(0xCBF29CE484222325)
_FNV_PRIME = np.uint64(0x100000001B3)


def fnv1a64(prompt_ids: Sequence[str]) -> np.ndarray:
    """Unsalted 64-bit FNV-1a hash of each id's UTF-8 bytes, vectorised across ids (uint64).

    NUL bytes are skipped (they pad the fixed-width byte array), so an id hashes the
    same in every batch. Records datasets store this per row as ``prompt_fnv``.
    """
    if len(prompt_ids) == 0:
        return np.zeros(0, dtype=np.uint64)
    raw = np.array([pid.encode() for pid in prompt_ids])
    width = raw.dtype.itemsize
    byte_cols = raw.view(np.uint8).reshape(len(prompt_ids), width)
    h = np.full(len(prompt_ids), _FNV_OFFSET, dtype=np.uint64)
    with np.errstate(over="ignore"):
        for k in range(width):
            col = byte_cols[:, k]
            h = np.where(col != 0, (h ^ col.astype(np.uint64)) * _FNV_PRIME, h)
    return h
