"""Benchmark: harvesting 3 hookpoints vs plain forward passes on the same batches.

Measured in one process, on the same batches, in alternating order after a warm-up
(median of repeats), as tokens per second:

- full: ``model(input_ids, attention_mask)``, the whole model with its LM head, no hooks;
- truncated: a plain forward through the same blocks harvesting needs (up to the deepest
  hookpoint, then the final norm), no hooks: the fair baseline, so the hook overhead is visible;
- harvest: ``harvest(loaded, texts, hookpoints, pooling="mean")``: tokenization, padding,
  three capture hooks, StopForward after the deepest block, pooling and the copy to numpy.

Goal: harvest's overhead over the truncated baseline <= 10%. Harvesting resid_post at
layers 10, 15, 20 of 30 stops after block 20, so it is also cheaper than the full pass.

    python tools/bench/harvest.py                       # smollm2-135m, CPU, float32, 8 x 16 x 64 tokens
    python tools/bench/harvest.py --random-init --batch 64 --seq 256 --device cuda --dtype bfloat16
"""

from __future__ import annotations

import argparse
import statistics
import sys
import time
from collections.abc import Callable

import numpy as np
import torch

from interp_agent.core.models import harvest, load_model, wrap_model
from interp_agent.core.models.hookpoints import model_layout
from interp_agent.core.models.loading import LoadedModel, tiny_tokenizer

# SmolLM2-135M's shape (config of the embedded GGUF file), for --random-init without weights
SMOLLM2_SHAPE = dict(
    vocab_size=49152, hidden_size=576, intermediate_size=1536, num_hidden_layers=30, num_attention_heads=9,
    num_key_value_heads=3, head_dim=64, hidden_act="silu", max_position_embeddings=8192, rms_norm_eps=1e-5,
    rope_theta=100000.0, tie_word_embeddings=True, bos_token_id=1, eos_token_id=2, pad_token_id=2,
)
WORDS = (
    "the of and to in is was for on that with as by at from it an be this which or are have not had "
    "model water metre second gram river city north light sound energy paper music table garden "
    "quickly slowly under over between after before during because although while measure length"
).split()


def random_init_model(device: str, dtype: str) -> LoadedModel:
    """A randomly initialised Llama of SmolLM2-135M's shape, with a character tokenizer (no weights needed)."""
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    model = LlamaForCausalLM(LlamaConfig(**SMOLLM2_SHAPE))
    model = model.to(device=device, dtype=getattr(torch, dtype))
    return wrap_model(model, tiny_tokenizer(), name="smollm2-135m-random-init", source="in_memory")


def make_texts(n: int, seq: int, seed: int = 0) -> list[str]:
    """Texts long enough that each truncates to exactly ``seq`` tokens."""
    rng = np.random.default_rng(seed)
    return [" ".join(rng.choice(WORDS, size=2 * seq)) for _ in range(n)]


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--model", default="smollm2-135m")
    ap.add_argument("--random-init", action="store_true", help="random weights of SmolLM2-135M's shape")
    ap.add_argument("--device", default="cpu", choices=["auto", "cpu", "cuda"])
    ap.add_argument("--dtype", default="float32", choices=["float32", "bfloat16", "float16"])
    ap.add_argument("--batch", type=int, default=16)
    ap.add_argument("--seq", type=int, default=64)
    ap.add_argument("--batches", type=int, default=8)
    ap.add_argument("--repeats", type=int, default=5)
    ap.add_argument("--layers", default="10,15,20", help="resid_post layers to harvest")
    args = ap.parse_args()

    if args.random_init:
        device = args.device if args.device != "auto" else ("cuda" if torch.cuda.is_available() else "cpu")
        loaded = random_init_model(device, args.dtype)
    else:
        loaded = load_model(args.model, device=args.device, dtype=args.dtype)
    model, tok = loaded.model, loaded.tokenizer
    dev = next(model.parameters()).device
    hooks = [f"blocks.{int(layer)}.hook_resid_post" for layer in args.layers.split(",")]
    deepest = max(int(layer) for layer in args.layers.split(","))
    texts = make_texts(args.batch * args.batches, args.seq)
    enc = tok(texts, truncation=True, max_length=args.seq, padding=True, return_tensors="pt")
    assert enc["input_ids"].shape == (len(texts), args.seq), enc["input_ids"].shape
    ids = enc["input_ids"].to(dev).split(args.batch)
    mask = enc["attention_mask"].to(dev).split(args.batch)
    n_tokens = len(texts) * args.seq
    layout = model_layout(model)
    base = model.model  # LlamaModel: blocks, then the final norm

    def full() -> None:
        with torch.inference_mode():
            for i, m in zip(ids, mask, strict=True):
                model(input_ids=i, attention_mask=m, use_cache=False)
        _sync(dev)

    def truncated() -> None:
        all_layers = base.layers
        base.layers = torch.nn.ModuleList(list(all_layers)[: deepest + 1])
        try:
            with torch.inference_mode():
                for i, m in zip(ids, mask, strict=True):
                    base(input_ids=i, attention_mask=m, use_cache=False)
            _sync(dev)
        finally:
            base.layers = all_layers

    def harvested() -> None:
        harvest(loaded, texts, hooks, batch_size=args.batch, max_length=args.seq, pooling="mean")
        _sync(dev)

    runs: dict[str, Callable[[], None]] = {"full": full, "truncated": truncated, "harvest": harvested}
    times: dict[str, list[float]] = {k: [] for k in runs}
    for fn in runs.values():  # warm-up
        fn()
    order = list(runs)
    for r in range(args.repeats):
        for name in order[r % 3:] + order[: r % 3]:  # rotate which runs first
            t0 = time.perf_counter()
            runs[name]()
            times[name].append(time.perf_counter() - t0)
        print(f"  repeat {r + 1}/{args.repeats}: " + ", ".join(f"{k} {v[-1]:.2f} s" for k, v in times.items()),
              file=sys.stderr, flush=True)
    assert len(layout.blocks) == loaded.n_layers  # truncated() restored the blocks

    med = {k: statistics.median(v) for k, v in times.items()}
    device_name = torch.cuda.get_device_name(dev) if dev.type == "cuda" else f"CPU ({torch.get_num_threads()} threads)"
    print(f"model {loaded.name} ({'random init' if args.random_init else loaded.source}), {device_name}, {args.dtype}; "
          f"{args.batches} batches of {args.batch} x {args.seq} tokens; hookpoints {', '.join(hooks)}; "
          f"median of {args.repeats}")
    for name in runs:
        print(f"  {name:<10} {n_tokens / med[name]:>12,.0f} tokens/s   ({med[name]:.3f} s)")
    print(f"  harvest vs full forward:      {med['full'] / med['harvest']:.2f}x the speed "
          f"(stops after block {deepest} of {loaded.n_layers})")
    overhead = med["harvest"] / med["truncated"] - 1
    print(f"  harvest overhead vs truncated: {overhead:+.1%} (goal <= +10%)")


if __name__ == "__main__":
    main()
