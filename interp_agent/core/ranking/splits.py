"""Deterministic, hash-based assignment of prompts to splits and bootstrap weights.

A prompt's split depends only on its id and a salt, so every tool, run and machine
puts the same prompt in the same split, and all tokens of one prompt stay together.
"""

from __future__ import annotations

import hashlib
from collections.abc import Sequence

import numpy as np

from interp_agent.core.formats.ids import fnv1a64
from interp_agent.core.ranking.config import HELD_OUT_FRACTION, SPLIT_SALT

TRAIN = 0
HELD_OUT = 1
SPLIT_NAMES = ("train", "held_out")

_MASK64 = np.uint64(0xFFFFFFFFFFFFFFFF)
# Poisson(1) cumulative probabilities for k = 0..9: inverse-CDF sampling of bootstrap weights.
_POISSON1_CDF = np.cumsum([np.exp(-1.0) / np.prod(np.arange(1, k + 1, dtype=float)) for k in range(10)])


def salted(fnv: np.ndarray, salt: str) -> np.ndarray:
    """Mix unsalted id hashes with ``salt`` (BLAKE2b of the salt, then a SplitMix64 finaliser)."""
    key = np.uint64(int.from_bytes(hashlib.blake2b(salt.encode(), digest_size=8).digest(), "little"))
    return splitmix64(fnv ^ key)


def prompt_hashes(prompt_ids: Sequence[str], salt: str) -> np.ndarray:
    """A stable 64-bit hash of each prompt id under ``salt``, as uint64."""
    return salted(fnv1a64(prompt_ids), salt)


def unit_interval(hashes: np.ndarray) -> np.ndarray:
    """Map uint64 hashes to floats in [0, 1)."""
    return (hashes >> np.uint64(11)).astype(np.float64) / float(1 << 53)


def assign_splits(
    hashes: np.ndarray, held_out_fraction: float, explicit: Sequence[str | None] | None = None
) -> np.ndarray:
    """Split index per row (TRAIN or HELD_OUT); an explicit ``split`` on a row wins over the hash."""
    groups = (unit_interval(hashes) < held_out_fraction).astype(np.int8)
    if explicit is not None:
        for i, name in enumerate(explicit):
            if name is not None:
                groups[i] = HELD_OUT if name == "held_out" else TRAIN
    return groups


def splitmix64(x: np.ndarray) -> np.ndarray:
    """SplitMix64's finaliser of each uint64 (a bijection that spreads every input bit over the output)."""
    with np.errstate(over="ignore"):
        x = (x + np.uint64(0x9E3779B97F4A7C15)) & _MASK64
        x = ((x ^ (x >> np.uint64(30))) * np.uint64(0xBF58476D1CE4E5B9)) & _MASK64
        x = ((x ^ (x >> np.uint64(27))) * np.uint64(0x94D049BB133111EB)) & _MASK64
        return x ^ (x >> np.uint64(31))


def _poisson1_table(bits: int = 16) -> np.ndarray:
    """Poisson(1) quantile of each of the 2**bits equal slices of [0, 1) (inverse-CDF table)."""
    u = (np.arange(1 << bits) + 0.5) / (1 << bits)
    return np.searchsorted(_POISSON1_CDF, u, side="right").astype(np.float32)


_POISSON1_TABLE = _poisson1_table()


def poisson_bootstrap_weights(hashes: np.ndarray, resamples: int, seed: int) -> np.ndarray:
    """Poisson(1) bootstrap weight of each row in each resample, float32 [rows, resamples].

    Weights depend only on (prompt hash, resample, seed), so streaming passes and
    repeated runs agree, and all rows of one prompt share a weight (a cluster bootstrap).
    """
    with np.errstate(over="ignore"):
        keys = splitmix64(np.arange(resamples, dtype=np.uint64) + np.uint64(seed) * np.uint64(1_000_003))
        mixed = splitmix64(hashes[:, None] ^ keys[None, :])
    return _POISSON1_TABLE[(mixed >> np.uint64(48)).astype(np.int64)]


__all__ = ["HELD_OUT", "HELD_OUT_FRACTION", "SPLIT_NAMES", "SPLIT_SALT", "TRAIN", "assign_splits",
           "poisson_bootstrap_weights", "prompt_hashes", "salted", "splitmix64", "unit_interval"]
