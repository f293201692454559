"""A small synthetic evidence set (labelled synthetic) for explain tests that need no model.

Contexts are whitespace-tokenized sentences on four topics; feature ``toy:weather`` fires on
weather words, ``toy:food`` on food words, ``toy:numbers`` on digits, ``toy:dead`` never.
Activations are made up; the structure (splits, roles, per-token acts) is what a real
harvest writes.
"""

from __future__ import annotations

import numpy as np
import pytest

from interp_agent.core.explain.evidence import Contexts, EvidenceManifest, EvidenceSet
from interp_agent.core.explain.select import Selection, evidence_from_dense

TOPICS = {
    "weather": ["rain", "snow", "storm", "clouds", "wind", "thunder", "sunny", "fog"],
    "food": ["bread", "cheese", "soup", "apples", "pasta", "rice", "butter", "cake"],
    "numbers": ["3", "17", "42", "250", "9", "1000", "64", "12"],
    "other": ["the", "city", "library", "friend", "letter", "music", "train", "garden"],
}
TEMPLATES = [
    "we talked about the {0} and the {1} all evening",
    "yesterday there was {0} near the old {1} by the river",
    "my friend said that {0} is better than {1} in winter",
    "the report counted {0} people and {1} cars in town",
    "she wrote a letter about {0} and {1} to her family",
]
LENGTH = 14


def _contexts(n: int, seed: int) -> tuple[Contexts, list[str]]:
    rng = np.random.default_rng(seed)
    names = list(TOPICS)
    rows, topics = [], []
    for i in range(n):
        topic = names[i % len(names)]
        words = TOPICS[topic]
        text = TEMPLATES[rng.integers(len(TEMPLATES))].format(words[rng.integers(8)], words[rng.integers(8)])
        toks = (["<s>"] + [" " + w for w in text.split()] + [" ."] * LENGTH)[:LENGTH]
        rows.append(toks)
        topics.append(topic)
    vocab = {t: i for i, t in enumerate(sorted({t for r in rows for t in r}))}
    ids = np.array([[vocab[t] for t in r] for r in rows], dtype=np.int32)
    held_out = rng.random(n) < 0.5
    return Contexts(ids, rows, held_out, np.arange(n, dtype=np.int32)), topics


def toy_evidence(n: int = 240, seed: int = 0) -> EvidenceSet:
    """The synthetic evidence set described in this module's docstring."""
    contexts, _ = _contexts(n, seed)
    rng = np.random.default_rng(seed + 1)
    names = ["weather", "food", "numbers"]
    acts = np.zeros((4, n, LENGTH), dtype=np.float32)
    for c, toks in enumerate(contexts.tokens):
        for t, tok in enumerate(toks):
            for f, topic in enumerate(names):
                if tok.strip() in TOPICS[topic]:
                    acts[f, c, t] = 1.0 + 4.0 * rng.random()
    ids = [f"toy:{name}" for name in names] + ["toy:dead"]
    features = evidence_from_dense(contexts, acts, ids, ["sae_latent"] * 4, selection=Selection(), seed=seed)
    manifest = EvidenceManifest(model="toy/synthetic", hookpoint="blocks.0.hook_resid_post",
                                feature_source={"kind": "synthetic"},
                                corpus={"name": "toy", "synthetic": True, "note": "made-up sentences and activations"},
                                context_length=LENGTH, n_contexts=n, held_out_fraction=0.5, seed=seed,
                                n_tokens=n * (LENGTH - 1), settings={"synthetic": True})
    return EvidenceSet(manifest, contexts, features)


@pytest.fixture
def evidence() -> EvidenceSet:
    return toy_evidence()
