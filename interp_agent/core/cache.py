"""Where interp-agent keeps its caches on this machine.

One root for every cache (the embedded model's safetensors copy, SAE Lens downloads,
sentence embeddings, …): ``$INTERP_AGENT_CACHE`` when set, else
``~/.cache/interp-agent``. This module imports nothing heavy, so light code (matching,
formats) can find the cache without importing torch.
"""

from __future__ import annotations

import os
from pathlib import Path

CACHE_ENV = "INTERP_AGENT_CACHE"
"""Environment variable that moves the cache root."""


def cache_root() -> Path:
    """``$INTERP_AGENT_CACHE``, or ``~/.cache/interp-agent``."""
    env = os.environ.get(CACHE_ENV)
    return Path(env).expanduser() if env else Path.home() / ".cache" / "interp-agent"
