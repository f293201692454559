"""Benchmark: the explain harvest against a bare forward, and seconds per latent for evidence + explanation + score.

Measured in one process on the same contexts (the built-in corpus, cut into 64-token windows):

- bare: the model run to the hookpoint and stopped there (``StopForward``), same batches, no feature work;
- harvest: ``harvest_evidence`` with an SAE of 4,096 latents (``--sae``, else a random TopK SAE of that width,
  said in the output): encoding, per-context maxima, firing counts, running top and quantile samples;
- per latent: the harvest's share plus the local explanation and the embedding score (held-out contexts,
  bootstrap intervals, both nulls) of ``--n-explain`` live latents, the contexts embedded once.

The two passes alternate after a warm-up batch; each figure is the median of ``--repeats``.
Goals: harvest within 10% of the bare forward; under 0.2 s per latent on the CPU.

    python tools/bench/explain.py --sae runs/sae4096 --contexts 512
"""

from __future__ import annotations

import argparse
import statistics
import time

import numpy as np
import torch

from interp_agent.core.explain.corpus import load_corpus, tokenize_corpus
from interp_agent.core.explain.harvest import harvest_evidence, split_batches
from interp_agent.core.explain.sources import sae_source
from interp_agent.core.models.harvest import hook_reader
from interp_agent.core.models.hookpoints import resolve_hookpoint
from interp_agent.core.models.loading import load_model
from interp_agent.core.sae.lens import SaeWeights, load_sae


def random_sae(d_in: int, d_sae: int, hookpoint: str, k: int = 32) -> SaeWeights:
    """A random TopK SAE (for timing only)."""
    rng = np.random.default_rng(0)
    W = (rng.normal(size=(d_in, d_sae)) / np.sqrt(d_in)).astype(np.float32)
    return SaeWeights(hookpoint, W, np.zeros(d_sae, np.float32), W.T.copy(), np.zeros(d_in, np.float32), None,
                      "topk", k)


def bare_pass(loaded, contexts, point, batch_size: int) -> float:
    """Seconds for the forward to the hookpoint over every batch, nothing else."""
    read = hook_reader(loaded.model, [point])
    start = time.perf_counter()
    for rows, _ in split_batches(contexts, batch_size):
        ids = torch.as_tensor(contexts.token_ids[rows], dtype=torch.long)
        with torch.no_grad():
            read(ids, torch.ones_like(ids))
    return time.perf_counter() - start


def per_latent(evidence, contexts, n_explain: int) -> tuple[float, int]:
    """Seconds per latent for the local explanation and the embedding score of ``n_explain`` live latents."""
    from interp_agent.core.explain.evidence import EvidenceManifest, EvidenceSet
    from interp_agent.core.explain.explainers import TokenExplainer
    from interp_agent.core.explain.scorers import ExplainScorer, MemoEncoder
    from interp_agent.core.matching.text import load_text_encoder
    from interp_agent.core.workflows.explain import live_features

    manifest = EvidenceManifest("bench", "bench", {}, {}, contexts.length, len(contexts), 0.5, 0, 0)
    ev = EvidenceSet(manifest, contexts, evidence)
    live = live_features(ev)[:n_explain]
    encoder = MemoEncoder(load_text_encoder())
    start = time.perf_counter()
    explanations = [TokenExplainer().explain(ev.features[f], contexts) for f in live]
    scorer = ExplainScorer(ev, ["embedding"], encoder=encoder, pool={e.feature_id: e.text for e in explanations})
    scorer.warm(set(live))
    for e in explanations:
        scorer.score(e)
    return (time.perf_counter() - start) / max(len(live), 1), len(live)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--model", default="smollm2-135m")
    parser.add_argument("--sae", help="SAE folder (default: a random TopK SAE of --latents latents)")
    parser.add_argument("--hookpoint", default="blocks.15.hook_resid_post")
    parser.add_argument("--latents", type=int, default=4096)
    parser.add_argument("--contexts", type=int, default=384)
    parser.add_argument("--batch-size", type=int, default=32)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--n-explain", type=int, default=200)
    args = parser.parse_args()

    loaded = load_model(args.model)
    weights = load_sae(args.sae) if args.sae else None
    hook = weights.hookpoint if weights is not None else args.hookpoint
    point = resolve_hookpoint(loaded.model, hook)
    sae = weights or random_sae(point.width, args.latents, hook)
    contexts = tokenize_corpus(loaded.tokenizer, load_corpus("builtin"), context_length=64,
                               max_contexts=args.contexts)
    source = sae_source(sae, point)
    n_tokens = len(contexts) * contexts.length
    bare_pass(loaded, contexts, point, args.batch_size)  # warm-up
    bare, passes, full = [], [], []
    evidence = None
    for _ in range(args.repeats):
        bare.append(bare_pass(loaded, contexts, point, args.batch_size))
        t0 = time.perf_counter()
        evidence, timings = harvest_evidence(loaded, contexts, point, source, batch_size=args.batch_size)
        full.append(time.perf_counter() - t0)
        passes.append(timings["harvest_s"])
    b, pass_s, h = statistics.median(bare), statistics.median(passes), statistics.median(full)
    assert evidence is not None
    seconds, n = per_latent(evidence, contexts, args.n_explain)
    d_sae = sae.W_enc.shape[1]
    print(f"SAE: {'from ' + args.sae if args.sae else 'random TopK (timing only)'}, {d_sae} latents at {hook}")
    print(f"contexts: {len(contexts)} x {contexts.length} tokens ({n_tokens} tokens), batch {args.batch_size}, "
          f"torch threads {torch.get_num_threads()}")
    print(f"bare forward to the hookpoint: {n_tokens / b:,.0f} tokens/s ({b:.2f} s)")
    print(f"explain harvest pass: {n_tokens / pass_s:,.0f} tokens/s ({pass_s:.2f} s); ratio to bare {pass_s / b:.3f} "
          "(goal <= 1.10)")
    print(f"with assembling {d_sae} features' examples and histograms: {h:.2f} s; ratio to bare {h / b:.3f}")
    harvest_per_latent = h / d_sae
    print(f"per latent: harvest {harvest_per_latent:.4f} s + explanation and embedding score {seconds:.4f} s "
          f"(over {n} live latents) = {harvest_per_latent + seconds:.4f} s (goal < 0.2 s)")


if __name__ == "__main__":
    main()
