"""Synthetic activations with a planted sparse dictionary (labelled synthetic wherever used)."""

from __future__ import annotations

import numpy as np


def planted(
    n: int = 20_000, d: int = 32, n_atoms: int = 128, active: int = 4, seed: int = 0
) -> tuple[np.ndarray, np.ndarray]:
    """Synthetic rows: sparse non-negative mixes of a random unit dictionary, an offset and noise."""
    rng = np.random.default_rng(seed)
    atoms = rng.standard_normal((n_atoms, d))
    atoms /= np.linalg.norm(atoms, axis=1, keepdims=True)
    codes = (rng.random((n, n_atoms)) < active / n_atoms) * rng.exponential(1.0, (n, n_atoms))
    x = codes @ atoms + 0.01 * rng.standard_normal((n, d)) + 2.0
    return x.astype(np.float32), atoms
