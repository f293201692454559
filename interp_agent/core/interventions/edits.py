"""What an intervention does to the activation at a hookpoint, as a function of ``acts_BTD``.

Every target is a unit direction ``u`` at a hookpoint: a residual dimension or MLP neuron
is a basis vector, a learned direction is normalised, an SAE latent is its decoder row.
The first position is never edited: it carries the model's massive activations, and
editing it swamps everything else.
"""

from __future__ import annotations

from collections.abc import Callable
from typing import TYPE_CHECKING, Literal

import torch

if TYPE_CHECKING:
    from interp_agent.core.interventions.targets import SaeLatent

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


def sae_edit_fn(mode: str, latent: SaeLatent, value: float) -> Callable[[torch.Tensor], torch.Tensor]:
    """The edit of one SAE latent: read it with the encoder, write the change through the decoder row.

    - ablate: subtract the latent's contribution (activation * decoder row).
    - mean_ablate / clamp / patch: set the latent to ``value``.
    - steer: add ``value`` * decoder row.
    The reconstruction error and every other latent are left as they are.
    """
    if mode not in MODES:
        raise ValueError(f"unknown mode {mode!r}; use one of {MODES}")

    def fn(acts_BTD: torch.Tensor) -> torch.Tensor:
        dt, dev = acts_BTD.dtype, acts_BTD.device
        w = torch.as_tensor(latent.w_enc, dtype=dt, device=dev)
        b_dec = torch.as_tensor(latent.b_dec, dtype=dt, device=dev)
        d = torch.as_tensor(latent.decoder, dtype=dt, device=dev)
        pre_BT1 = ((acts_BTD - b_dec) @ w + latent.b_enc).unsqueeze(-1)
        a_BT1 = torch.where(pre_BT1 > (latent.threshold or 0.0), pre_BT1, torch.zeros_like(pre_BT1))
        if mode == "steer":
            new = acts_BTD + value * d
        elif mode == "ablate":
            new = acts_BTD - a_BT1 * d
        else:
            new = acts_BTD + (value - a_BT1) * d
        if acts_BTD.shape[1] > 1:
            new[:, :1] = acts_BTD[:, :1]
        return new

    return fn
