"""What an intervention does to the activation at a hookpoint, as a function of ``acts_BTD``.

Every target is a unit direction ``u`` at a hookpoint: a residual dimension or MLP neuron
is a basis vector, a learned direction is normalised, an SAE latent is its decoder row.
The first position is never edited: it carries the model's massive activations, and
editing it swamps everything else.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import Literal

import torch

Mode = Literal["ablate", "mean_ablate", "clamp", "steer", "patch"]
MODES: tuple[str, ...] = ("ablate", "mean_ablate", "clamp", "steer", "patch")

# the record's intervention name for each mode (see formats.interventions for the sign convention)
RECORD_NAME: dict[str, str] = {
    "ablate": "ablate", "mean_ablate": "ablate", "clamp": "clamp", "steer": "steer", "patch": "patch",
}


def edit_fn(mode: str, u_D: torch.Tensor, value: float) -> Callable[[torch.Tensor], torch.Tensor]:
    """The edit for ``mode`` along unit direction ``u_D``.

    - ablate: remove the component along u (value ignored).
    - mean_ablate / clamp / patch: set the component along u to ``value`` (the calibration
      mean, a chosen level, or the source prompt's value).
    - steer: add ``value`` * u.
    """
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; use one of {MODES}")

    def fn(acts_BTD: torch.Tensor) -> torch.Tensor:
        u = u_D.to(dtype=acts_BTD.dtype, device=acts_BTD.device)
        if mode == "steer":
            new = acts_BTD + value * u
        else:
            proj_BT1 = (acts_BTD @ u).unsqueeze(-1)
            level = 0.0 if mode == "ablate" else value
            new = acts_BTD - proj_BT1 * u + level * u
        if acts_BTD.shape[1] > 1:  # a full sequence: leave its first position alone (a cached step has none)
            new[:, :1] = acts_BTD[:, :1]
        return new

    return fn
