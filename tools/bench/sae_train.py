"""Benchmark: TopK SAE training, ours vs SAE Lens's trainer, on the same activations.

Both trainers see the same shuffled training rows in the same batches (the order
``fit_tensor`` uses: a permutation per epoch from ``(seed, epoch)``), with the same d_sae,
k, batch size, steps, learning rate, warm-up and linear decay, and the same dead-latent
window. Each keeps its own defaults otherwise, which the output lists:

- ours: ``fit_tensor`` (Adam, AuxK 1/32 normalised by the residual's variance, b_dec at the
  geometric median, inputs scaled to mean squared norm d_in, bf16 encoder matmul with
  ``--dtype bf16``);
- SAE Lens: ``TopKTrainingSAE`` trained by ``SAETrainer.fit`` (Adam, its AuxK with
  coefficient 1, ``rescale_acts_by_decoder_norm``, decoder init norm 0.1, b_dec at zero,
  ``expected_average_only_in`` scaling, grad-norm clipping at 1, autocast with ``--dtype bf16``),
  fed by an iterator over the same batches; no wandb, no checkpoints, no evaluator.

Timed: the training loop only, batch gathering included, model construction and the
input-scale estimate excluded (ours: ``fit_tensor``'s own loop timer; SAE Lens: ``fit()``
with its scaling factor set beforehand, so it skips the estimate). Both are scored by one
function on held-out rows never trained on: FVU = Σ‖x − x̂‖² / Σ‖x − mean(x)‖², L0, and
the fraction of latents that never fire on them. Runs go ours first, then SAE Lens, then
``--repeat`` more of ours, each after an untimed 3-step warm-up of every trainer.

On CUDA each trainer also runs on batches gathered on the device (ours through
``Trainer.train_step``, since ``fit_tensor`` takes host rows; SAE Lens's provider indexing a
device copy of the rows), so a host-bound loop cannot hide the trainers' own speed; ratios
compare runs fed the same way. ``--gpu-large`` trains d_in 2304, d_sae 65536, k 64 in bf16
on SYNTHETIC rows (there is no 2304-wide model here) and reports the encoder matmul's
achieved TFLOP/s, 2·batch·d_in·d_sae·steps / seconds, as a fraction of 800 TFLOP/s.

Goal: ours >= 2x SAE Lens's tokens/s at equal or better held-out FVU.

    python tools/bench/sae_train.py                         # 200k x 576 rows of smollm2-135m layer 15, CPU
    python tools/bench/sae_train.py --rows 40000 --steps 30 # quick check
    python tools/bench/sae_train.py --device cuda --dtype bf16
    python tools/bench/sae_train.py --gpu-large --json out.json   # synthetic 2304 -> 65536, k 64, bf16, CUDA
"""

from __future__ import annotations

import argparse
import dataclasses
import functools
import hashlib
import json
import math
import os
import sys
import sysconfig
import time
import traceback
from collections.abc import Callable, Iterator
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch
import torch.nn.functional as F

from interp_agent.core.sae.model import SaeShape
from interp_agent.core.sae.trainer import Optimisation, Trainer, default_lr, fit_tensor, geometric_median

HOOKPOINT = "blocks.15.hook_resid_post"
CORPUS_ROOTS = (sysconfig.get_paths()["purelib"], "/usr/share/doc")
CORPUS_SUFFIXES = {".md", ".rst", ".txt"}
CORPUS_SKIP = ("license", "copying", "authors", "entry_points", "top_level", "record", "requirements", "sources")
BF16_PEAK_TFLOPS = 800.0  # H100 SXM dense bf16, the round figure
DEFAULTS = (
    "ours: fit_tensor, Adam, AuxK coefficient 1/32 normalised by the residual's variance, b_dec at the geometric "
    "median, inputs scaled to mean squared norm d_in, unit-norm decoder rows",
    "sae-lens: SAETrainer.fit on TopKTrainingSAE, Adam, AuxK coefficient 1 (not normalised), "
    "rescale_acts_by_decoder_norm, decoder init norm 0.1, b_dec at zero unless 'b_dec median', "
    "expected_average_only_in scaling (mean norm sqrt(d_in)), grad-norm clipping at 1",
)
TIMED = ("the training loop only, batch gathering included; SAE construction, the input-scale estimate and "
         "b_dec initialisation excluded (ours: fit_tensor's loop timer; SAE Lens: SAETrainer.fit() with the scale "
         "preset)")


@dataclass(frozen=True, slots=True)
class Settings:
    """What both trainers share."""

    d_in: int
    d_sae: int
    k: int
    batch_size: int
    steps: int
    lr: float
    warmup_steps: int
    decay_steps: int
    dead_window_steps: int
    """A latent is dead after this many steps without firing (both trainers)."""
    seed: int
    device: str
    bf16: bool
    """Ours: bf16 encoder matmul; SAE Lens: autocast to bfloat16."""


@dataclass(frozen=True, slots=True)
class Run:
    """One timed training run."""

    name: str
    family: str
    """``ours`` or ``sae-lens``."""
    batches: str
    """``host``: gathered from the numpy rows each step; ``device``: gathered on the device."""
    train: Callable[[Settings, np.ndarray], tuple[Any, float]]
    score: Callable[[Any, np.ndarray, Settings], dict[str, float]]


# --- data -------------------------------------------------------------------------------


def corpus_texts(chunk_chars: int = 400) -> list[str]:
    """~400-character chunks of the English documentation on this machine, in a fixed order.

    Markdown, reST and text files and package METADATA under the venv's site-packages and
    /usr/share/doc; licences and manifests skipped, duplicate files dropped, whitespace
    collapsed; chunks under 75% letters and spaces dropped. Ordered by a hash of their text,
    which shuffles the sources and keeps the order of the rest when files come or go.
    """
    seen: set[bytes] = set()
    chunks: list[str] = []
    for root in CORPUS_ROOTS:
        for dirpath, dirnames, filenames in os.walk(root):
            dirnames.sort()
            for name in sorted(filenames):
                low = name.lower()
                if not (Path(low).suffix in CORPUS_SUFFIXES or name == "METADATA" or low.startswith("readme")):
                    continue
                if any(s in low for s in CORPUS_SKIP):
                    continue
                path = Path(dirpath) / name
                try:
                    if not 500 <= path.stat().st_size <= 2_000_000:
                        continue
                    raw = path.read_bytes()
                except OSError:
                    continue
                digest = hashlib.blake2b(raw, digest_size=16).digest()
                if b"\0" in raw[:4096] or digest in seen:
                    continue
                seen.add(digest)
                try:
                    words = raw.decode("utf-8").split()
                except UnicodeDecodeError:
                    continue
                chunk: list[str] = []
                size = 0
                for w in words:
                    chunk.append(w)
                    size += len(w) + 1
                    if size >= chunk_chars:
                        text = " ".join(chunk)
                        if sum(c.isalpha() or c == " " for c in text) >= 0.75 * len(text):
                            chunks.append(text)
                        chunk, size = [], 0
    return sorted(set(chunks), key=lambda c: hashlib.blake2b(c.encode(), digest_size=8).digest())


def bench_cache_dir() -> Path:
    """``$INTERP_AGENT_CACHE/bench`` or ``~/.cache/interp-agent/bench``."""
    from interp_agent.core.models.loading import cache_root

    return cache_root() / "bench"


def harvested_rows(rows: int, *, max_length: int, device: str) -> np.ndarray:
    """``rows`` token rows of smollm2-135m at HOOKPOINT over the local corpus, cached as .npy.

    The first rows of a larger cached harvest are reused as they are (the corpus is not
    re-checked: any rows of this model on local text will do for a benchmark).
    """
    folder = bench_cache_dir()
    stem = f"smollm2-135m_{HOOKPOINT}_L{max_length}"
    for path in sorted(folder.glob(f"{stem}_*.npy")):
        cached = int(path.stem.rsplit("_", 1)[1])
        if cached >= rows:
            print(f"activations: {rows:,} rows from the cache {path}")
            return np.ascontiguousarray(np.load(path, mmap_mode="r")[:rows], dtype=np.float32)
    from interp_agent.core.models import harvest, load_model

    texts = corpus_texts()
    print(f"harvesting {rows:,} token rows at {HOOKPOINT} from {len(texts):,} local text chunks "
          f"({', '.join(CORPUS_ROOTS)}) ...", flush=True)
    loaded = load_model("smollm2-135m", device=device)
    parts: list[np.ndarray] = []
    have = 0
    t0 = time.perf_counter()
    for start in range(0, len(texts), 256):
        got = harvest(loaded, texts[start:start + 256], [HOOKPOINT], pooling="token", max_length=max_length,
                      batch_size=16)[HOOKPOINT].acts
        parts.append(got)
        have += len(got)
        print(
            f"  {have:,} rows after {start + 256:,} texts ({time.perf_counter() - t0:.0f} s)",
            file=sys.stderr, flush=True
        )
        if have >= rows:
            break
    acts = np.concatenate(parts)[:rows]
    if len(acts) < rows:
        print(f"  the local corpus gave only {len(acts):,} rows; using them all")
    folder.mkdir(parents=True, exist_ok=True)
    path = folder / f"{stem}_{len(acts)}.npy"
    tmp = path.with_suffix(".npy.tmp")
    with open(tmp, "wb") as fh:
        np.save(fh, acts)
    os.replace(tmp, path)  # a killed run leaves no truncated cache behind
    print(f"harvested {len(acts):,} rows in {time.perf_counter() - t0:.0f} s; cached at {path}")
    return acts


def synthetic_rows(rows: int, d_in: int, *, device: str, active: int = 32, seed: int = 0,
                   chunk: int = 16_384) -> np.ndarray:
    """Synthetic activations: ``active`` atoms per row of a random unit dictionary of 8·d_in atoms.

    Atom frequencies fall as a power law, coefficients are Exp(1), plus a shared offset (its
    squared norm about half the variance) and Gaussian noise at 1% of the signal's variance.
    Generated on ``device`` in chunks.
    """
    dev = torch.device(device)
    g = torch.Generator(device=dev).manual_seed(seed)
    n_atoms = 8 * d_in
    atoms = torch.randn(n_atoms, d_in, generator=g, device=dev)
    atoms /= atoms.norm(dim=1, keepdim=True)
    freq = (torch.arange(n_atoms, device=dev, dtype=torch.float32) + 10).pow(-0.8)
    freq /= freq.sum()
    offset = torch.randn(d_in, generator=g, device=dev)
    offset *= math.sqrt(active) / offset.norm()  # ‖mean‖² about half the variance, as in SmolLM2's layer 15
    noise_std = 0.1 * math.sqrt(2 * active / d_in)  # E[c²] = 2 for Exp(1)
    out = np.empty((rows, d_in), dtype=np.float32)
    for start in range(0, rows, chunk):
        m = min(chunk, rows - start)
        idx = torch.multinomial(freq, m * active, replacement=True, generator=g)
        coef = torch.empty(m * active, device=dev).exponential_(1.0, generator=g)
        bags = torch.arange(0, m * active, active, device=dev)
        x = F.embedding_bag(idx, atoms, bags, mode="sum", per_sample_weights=coef)
        x += offset + noise_std * torch.randn(m, d_in, generator=g, device=dev)
        out[start:start + m] = x.cpu().numpy()
    return out


def batch_order(n: int, batch_size: int, seed: int) -> Iterator[np.ndarray]:
    """Row indices of each batch, in ``fit_tensor``'s order."""
    epoch = 0
    while True:
        order = np.random.default_rng([seed, epoch]).permutation(n)
        for i in range(0, n - batch_size + 1, batch_size):
            yield order[i:i + batch_size]
        epoch += 1


# --- trainers -------------------------------------------------------------------------------


def _sync(device: str) -> None:
    if torch.device(device).type == "cuda":
        torch.cuda.synchronize()


def _optimisation(s: Settings) -> Optimisation:
    return Optimisation(
        batch_size=s.batch_size, steps=s.steps, lr=s.lr, warmup_steps=s.warmup_steps, decay_steps=s.decay_steps,
        sparsity_coefficient=0.0, aux_coefficient=1 / 32, dead_after_tokens=s.dead_window_steps * s.batch_size,
        b_dec_init="median", seed=s.seed, checkpoint_every=0, bf16_matmul=s.bf16,
    )


def train_ours(s: Settings, train_ND: np.ndarray) -> tuple[Any, float]:
    """``fit_tensor`` on host rows; its loop seconds."""
    sae, stats = fit_tensor(train_ND, SaeShape("topk", s.d_in, s.d_sae, k=s.k), _optimisation(s), device=s.device)
    return sae, stats["seconds"]


def train_ours_resident(s: Settings, train_ND: np.ndarray) -> tuple[Any, float]:
    """Our ``Trainer.train_step`` on batches gathered on the device (no host copies); loop seconds."""
    opt = _optimisation(s)
    trainer = Trainer(SaeShape("topk", s.d_in, s.d_sae, k=s.k), opt, device=s.device)
    trainer.initialise(train_ND[np.random.default_rng(s.seed).permutation(len(train_ND))[:16_384]])
    data = torch.from_numpy(train_ND).to(s.device)
    orders = batch_order(len(train_ND), s.batch_size, s.seed)
    _sync(s.device)
    t0 = time.perf_counter()
    for _ in range(s.steps):
        trainer.train_step(data[torch.from_numpy(next(orders)).to(s.device)])
    _sync(s.device)
    return trainer.sae, time.perf_counter() - t0


def train_saelens(s: Settings, train_ND: np.ndarray, *, b_dec_median: bool = False,
                  resident: bool = False) -> tuple[Any, float]:
    """SAE Lens's ``SAETrainer.fit`` on ``TopKTrainingSAE``; seconds of ``fit()`` (scale preset).

    ``b_dec_median``: start b_dec at the geometric median of the scaled sample, as ours does
    (SAE Lens 6 starts it at zero and has no option for it). ``resident``: the provider
    gathers batches from a copy of the rows on the device, as SAE Lens's activation store
    hands them over, instead of from the host rows.
    """
    import sae_lens.training.sae_trainer as sl_trainer
    from sae_lens.config import LoggingConfig, SAETrainerConfig
    from sae_lens.saes.topk_sae import TopKTrainingSAE, TopKTrainingSAEConfig

    if not getattr(sl_trainer.tqdm, "_bench_silenced", False):  # no progress bar
        sl_trainer.tqdm = functools.partial(sl_trainer.tqdm, disable=True)
        sl_trainer.tqdm._bench_silenced = True  # type: ignore[attr-defined]
    torch.manual_seed(s.seed)
    sae = TopKTrainingSAE(TopKTrainingSAEConfig(
        d_in=s.d_in, d_sae=s.d_sae, k=s.k, dtype="float32", device=s.device,
        normalize_activations="expected_average_only_in",
    ))
    cfg = SAETrainerConfig(
        total_training_samples=s.steps * s.batch_size, train_batch_size_samples=s.batch_size, lr=s.lr, lr_end=s.lr,
        lr_scheduler_name="constant", lr_warm_up_steps=s.warmup_steps if s.warmup_steps > 1 else 0,
        lr_decay_steps=s.decay_steps, device=s.device, autocast=s.bf16, dead_feature_window=s.dead_window_steps,
        n_checkpoints=0, checkpoint_path=None, save_final_checkpoint=False, logger=LoggingConfig(log_to_wandb=False),
    )
    pin = torch.device(s.device).type == "cuda"
    data = torch.from_numpy(train_ND).to(s.device) if resident else None

    def provider() -> Iterator[torch.Tensor]:
        for idx in batch_order(len(train_ND), s.batch_size, s.seed):
            if data is not None:
                yield data[torch.from_numpy(idx).to(s.device)]
                continue
            batch = torch.from_numpy(train_ND[idx])
            yield batch.pin_memory() if pin else batch

    trainer = sl_trainer.SAETrainer(cfg=cfg, sae=sae, data_provider=provider())
    sample = train_ND[np.random.default_rng(s.seed).permutation(len(train_ND))[:16_384]]
    scale = math.sqrt(s.d_in) / float(np.linalg.norm(sample, axis=1).mean())
    trainer.activation_scaler.scaling_factor = scale
    if b_dec_median:
        with torch.no_grad():
            sae.b_dec.copy_(geometric_median(torch.from_numpy(sample).to(s.device) * scale))
    _sync(s.device)
    t0 = time.perf_counter()
    trainer.fit()
    _sync(s.device)
    return sae, time.perf_counter() - t0


# --- scoring --------------------------------------------------------------------------------


@torch.no_grad()
def held_out_scores(encode: Callable[[torch.Tensor], torch.Tensor], reconstruct: Callable[[torch.Tensor], torch.Tensor],
                    held_ND: np.ndarray, d_sae: int, device: str, chunk: int = 4096) -> dict[str, float]:
    """Scores over held-out rows (raw units): FVU = Σ‖x − x̂‖² / Σ‖x − mean(x)‖², mean L0, never-fired fraction.

    Also ``fvu_typical``: the same over the rows that are not outliers (see :func:`outlier_rows`),
    with their own mean, since a handful of massive-norm rows can hold most of the variance.
    """
    typical = ~outlier_rows(held_ND)
    held64 = held_ND.astype(np.float64)
    means = [torch.from_numpy(held64.mean(0)).to(device), torch.from_numpy(held64[typical].mean(0)).to(device)]
    err, total = [0.0, 0.0], [0.0, 0.0]
    l0 = 0.0
    fired = torch.zeros(d_sae, dtype=torch.bool, device=device)
    for start in range(0, len(held_ND), chunk):
        x = torch.from_numpy(held_ND[start:start + chunk]).to(device)
        keep = torch.from_numpy(typical[start:start + chunk]).to(device)
        x64 = x.double()
        err_N = (x64 - reconstruct(x).double()).pow(2).sum(1)
        for i, (m, rows) in enumerate(((means[0], None), (means[1], keep))):
            tot_N = (x64 - m).pow(2).sum(1)
            err[i] += float(err_N.sum() if rows is None else err_N[rows].sum())
            total[i] += float(tot_N.sum() if rows is None else tot_N[rows].sum())
        active = encode(x) > 0
        l0 += float(active.sum())
        fired |= active.any(0)
    return {"fvu": err[0] / total[0], "fvu_typical": err[1] / total[1], "l0": l0 / len(held_ND),
            "dead_fraction": 1 - float(fired.float().mean())}


def outlier_rows(acts_ND: np.ndarray, factor: float = 10.0) -> np.ndarray:
    """bool [rows]: norm above ``factor`` times the median norm (SmolLM2's massive activations)."""
    norms = np.linalg.norm(acts_ND, axis=1)
    return norms > factor * np.median(norms)


def score_ours(sae: Any, held_ND: np.ndarray, s: Settings) -> dict[str, float]:
    """Held-out scores of our SAE: ``reconstruct`` for x̂, ``encode`` of the scaled rows for L0."""
    sae.eval()
    return held_out_scores(lambda x: sae.encode(x * sae.input_scale), sae.reconstruct, held_ND, s.d_sae, s.device)


def score_saelens(sae: Any, held_ND: np.ndarray, s: Settings) -> dict[str, float]:
    """Held-out scores of an SAE Lens SAE after ``fit()`` (scale folded in): ``sae(x)`` in eval mode for x̂."""
    sae.eval()
    assert not sae.use_error_term  # sae(x) is then the plain reconstruction
    return held_out_scores(sae.encode, sae, held_ND, s.d_sae, s.device)


# --- main -------------------------------------------------------------------------------------


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--activations", type=Path, help=".npy [rows, d_in] to train on (default: harvest smollm2-135m)")
    ap.add_argument(
        "--rows", type=int, default=None, help="rows in all, 10%% held out (default 200,000; 262,144 synthetic)"
    )
    ap.add_argument("--max-length", type=int, default=128, help="tokens per text when harvesting")
    ap.add_argument("--synthetic", type=int, metavar="D_IN", help="synthetic activations of this width instead")
    ap.add_argument("--gpu-large", action="store_true",
                    help="preset: --synthetic 2304 --d-sae 65536 --k 64 --device cuda --dtype bf16")
    ap.add_argument("--d-sae", type=int, default=None, help="latents (default 4096)")
    ap.add_argument("--k", type=int, default=None, help="active latents per row (default 32)")
    ap.add_argument("--batch", type=int, default=4096)
    ap.add_argument("--steps", type=int, default=200)
    ap.add_argument("--lr", type=float, default=None, help="default: default_lr(d_sae), for both")
    ap.add_argument("--dead-window", type=int, default=None, help="steps without firing before a latent counts as dead "
                    "(default: a fifth of the steps, ours' rule)")
    ap.add_argument("--device", default=None, choices=["cpu", "cuda"])
    ap.add_argument("--dtype", default=None, choices=["float32", "bf16"])
    ap.add_argument("--repeat", type=int, default=0, help="train ours this many more times, to show run-to-run noise")
    ap.add_argument("--skip-saelens", action="store_true")
    ap.add_argument("--saelens-b-dec", default="zeros", choices=["zeros", "median", "both"],
                    help="SAE Lens's b_dec start: zeros (its default), the geometric median (ours'), or a run of each")
    ap.add_argument("--peak-tflops", type=float, default=BF16_PEAK_TFLOPS, help="matmul peak for the encoder fraction")
    ap.add_argument("--fvu-tolerance", type=float, default=0.0, help="FVU excess that still counts as equal")
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--json", type=Path, help="write the results here")
    args = ap.parse_args()
    if args.gpu_large:
        args.synthetic = args.synthetic or 2304
        args.d_sae, args.k = args.d_sae or 65536, args.k or 64
        args.device, args.dtype = args.device or "cuda", args.dtype or "bf16"
    device = args.device or "cpu"
    if device == "cuda" and not torch.cuda.is_available():
        raise SystemExit("--device cuda: no CUDA device visible to torch")
    d_sae, k = args.d_sae or 4096, args.k or 32
    torch.set_num_threads(os.cpu_count() or 1)
    load_start = os.getloadavg()
    print(f"load average at start: {load_start[0]:.2f} {load_start[1]:.2f} {load_start[2]:.2f} "
          f"({os.cpu_count()} CPUs, torch threads {torch.get_num_threads()})")

    # -- data ------------------------------------------------------------------------------
    if args.synthetic:
        rows = args.rows or 262_144
        t0 = time.perf_counter()
        acts = synthetic_rows(rows, args.synthetic, device=device, seed=args.seed)
        source = f"SYNTHETIC {rows:,} x {args.synthetic} (32 of {8 * args.synthetic:,} random atoms per row + noise)"
        print(f"generated {source} in {time.perf_counter() - t0:.1f} s")
    elif args.activations:
        acts = np.load(args.activations, mmap_mode="r")
        rows = min(args.rows or len(acts), len(acts))
        acts = np.ascontiguousarray(acts[:rows], dtype=np.float32)
        source = f"{args.activations} ({rows:,} x {acts.shape[1]})"
    else:
        acts = harvested_rows(args.rows or 200_000, max_length=args.max_length, device=device)
        source = f"smollm2-135m {HOOKPOINT}, {len(acts):,} x {acts.shape[1]} token rows of local docs"
    perm = np.random.default_rng(1234).permutation(len(acts))
    n_held = len(acts) // 10
    held_ND, train_ND = np.ascontiguousarray(acts[perm[:n_held]]), np.ascontiguousarray(acts[perm[n_held:]])
    del acts
    d_in = train_ND.shape[1]
    steps = args.steps
    s = Settings(
        d_in=d_in, d_sae=d_sae, k=k, batch_size=args.batch, steps=steps, lr=args.lr or default_lr(d_sae),
        warmup_steps=max(1, min(1000, round(0.05 * steps))), decay_steps=round(0.2 * steps),
        dead_window_steps=args.dead_window or max(1, steps // 5), seed=args.seed, device=device,
        bf16=(args.dtype == "bf16"),
    )
    device_name = torch.cuda.get_device_name() if device == "cuda" else f"CPU ({torch.get_num_threads()} threads)"
    import sae_lens

    print(f"data: {source}; train {len(train_ND):,} rows, held out {len(held_ND):,}")
    out_held = outlier_rows(held_ND)
    var_N = ((held_ND.astype(np.float64) - held_ND.mean(0, dtype=np.float64)) ** 2).sum(1)
    outliers = {"train": int(outlier_rows(train_ND).sum()), "held_out": int(out_held.sum()),
                "held_out_variance_share": float(var_N[out_held].sum() / var_N.sum())}
    print(f"outlier rows (norm > 10x the median): {outliers['train']:,} train, {outliers['held_out']:,} held out, "
          f"holding {outliers['held_out_variance_share']:.1%} of the held-out variance; 'FVU typical' leaves them out")
    print(f"SAE: d_in {d_in}, d_sae {d_sae:,}, k {k}; batch {s.batch_size}, {steps} steps "
          f"({steps * s.batch_size / len(train_ND):.2f} epochs), lr {s.lr:.3g}, warm-up {s.warmup_steps}, "
          f"linear decay over the last {s.decay_steps}, dead after {s.dead_window_steps} steps without firing")
    print(f"device: {device_name}, {'bf16 encoder matmul / autocast' if s.bf16 else 'float32'}; "
          f"torch {torch.__version__}, sae-lens {sae_lens.__version__}")
    for line in DEFAULTS:
        print(line)
    print(f"timed: {TIMED}")

    # -- runs ------------------------------------------------------------------------------
    cuda = device == "cuda"
    runs = [Run("ours (fit_tensor)", "ours", "host", train_ours, score_ours)]
    if cuda:
        runs.append(Run("ours (train_step)", "ours", "device", train_ours_resident, score_ours))
    if not args.skip_saelens:
        for b_dec in (["zeros", "median"] if args.saelens_b_dec == "both" else [args.saelens_b_dec]):
            for where in ["host", "device"] if cuda else ["host"]:
                label = "sae-lens (SAETrainer)" + (", b_dec median" if b_dec == "median" else "")
                runs.append(Run(label, "sae-lens", where, functools.partial(
                    train_saelens, b_dec_median=b_dec == "median", resident=where == "device"), score_saelens))
    runs += [
        Run(f"ours (fit_tensor), repeat {i + 1}", "ours", "host", train_ours, score_ours) for i in range(args.repeat)
    ]
    # untimed 3-step runs first: lazy initialisation (CUDA context, cuBLAS, kernels, thread pools) stays out of the
    # timings
    warm = dataclasses.replace(s, steps=3, warmup_steps=1, decay_steps=0)
    for run in {(r.name, r.batches): r for r in runs if "repeat" not in r.name}.values():
        try:
            run.train(warm, train_ND)
        except Exception as exc:  # noqa: BLE001 - reported again by the timed run
            print(f"warm-up of {run.name} failed: {exc!r}", file=sys.stderr)
        if cuda:
            torch.cuda.empty_cache()
    results: list[dict[str, Any]] = []
    enc_flop_per_step = 2 * s.batch_size * d_in * d_sae
    meta = {
        "data": source, "synthetic": bool(args.synthetic), "settings": dataclasses.asdict(s), "device": device_name,
        "torch": torch.__version__, "sae_lens": sae_lens.__version__, "load_average_start": load_start,
        "peak_tflops": args.peak_tflops, "timed": TIMED, "outliers": outliers,
    }
    for run in runs:
        print(f"training {run.name}, {run.batches} batches ...", file=sys.stderr, flush=True)
        row: dict[str, Any] = {"trainer": run.name, "family": run.family, "batches": run.batches}
        try:
            sae, seconds = run.train(s, train_ND)
            scores = run.score(sae, held_ND, s)
            del sae
            tflops = enc_flop_per_step * steps / seconds / 1e12
            row.update(seconds=seconds, tokens_per_s=steps * s.batch_size / seconds, **scores,
                       encoder_tflops=tflops, encoder_peak_fraction=tflops / args.peak_tflops)
        except Exception as exc:  # noqa: BLE001 - one failed trainer must not lose the others' numbers
            traceback.print_exc()
            row["error"] = repr(exc)
        results.append(row)
        if cuda:
            torch.cuda.empty_cache()
        if args.json:  # after every run, so a crash later keeps what was measured
            _write_json(args.json, {**meta, "results": results})
    load_end = os.getloadavg()

    # -- report ----------------------------------------------------------------------------
    print(f"{'trainer':<38}{'batches':>8}{'tokens/s':>12}{'held-out FVU':>14}{'FVU typical':>13}{'L0':>7}{'dead':>7}"
          f"{'seconds':>9}{'enc TFLOP/s':>13}{'of peak':>9}")
    for r in results:
        if "error" in r:
            print(f"{r['trainer']:<38}{r['batches']:>8}  FAILED: {r['error']}")
            continue
        print(f"{r['trainer']:<38}{r['batches']:>8}{r['tokens_per_s']:>12,.0f}{r['fvu']:>14.4f}{r['fvu_typical']:>13.4f}"
              f"{r['l0']:>7.1f}"
              f"{r['dead_fraction']:>7.1%}{r['seconds']:>9.1f}{r['encoder_tflops']:>13.3g}{r['encoder_peak_fraction']:>9.2%}")
    print(f"(batches: host = gathered from the numpy rows each step (then copied to the GPU on CUDA), device = "
          f"gathered from a copy on the GPU; "
          f"dead = latents that never fire on the held-out rows; enc TFLOP/s = 2·batch·d_in·d_sae·steps / seconds, "
          f"the encoder forward matmul only; 'of peak' against {args.peak_tflops:g} TFLOP/s)")
    comparisons = []
    tol = f", tolerance {args.fvu_tolerance:g}" if args.fvu_tolerance else ""
    ok = [r for r in results if "error" not in r]
    for theirs in (r for r in ok if r["family"] == "sae-lens"):
        ours = next((r for r in ok if r["family"] == "ours" and r["batches"] == theirs["batches"]), None)
        if ours is None:
            continue
        ratio = ours["tokens_per_s"] / theirs["tokens_per_s"]
        dfvu = ours["fvu"] - theirs["fvu"]
        met = ratio >= 2.0 and dfvu <= args.fvu_tolerance
        dtyp = ours["fvu_typical"] - theirs["fvu_typical"]
        comparisons.append({"ours": ours["trainer"], "baseline": theirs["trainer"], "batches": theirs["batches"],
                            "throughput_ratio": ratio, "fvu_difference": dfvu, "fvu_typical_difference": dtyp,
                            "goal_met": met})
        print(f"{ours['trainer']} / {theirs['trainer']}, {theirs['batches']} batches: tokens/s {ratio:.2f}x, "
              f"held-out FVU difference {dfvu:+.4f} (typical rows {dtyp:+.4f}); "
              f"goal (>= 2x at equal or better FVU{tol}): {'MET' if met else 'NOT MET'}")
    reps = [r["tokens_per_s"] for r in ok if r["trainer"].startswith("ours (fit_tensor)")]
    if len(reps) > 1:
        print(f"ours (fit_tensor) over {len(reps)} runs: tokens/s min {min(reps):,.0f}, max {max(reps):,.0f} "
              f"(spread {max(reps) / min(reps) - 1:.1%})")
    print(f"load average at end: {load_end[0]:.2f} {load_end[1]:.2f} {load_end[2]:.2f}")
    if args.json:
        _write_json(args.json, {**meta, "results": results, "load_average_end": load_end, "comparisons": comparisons,
                                "goal_met": comparisons[0]["goal_met"] if comparisons else None})
        print(f"wrote {args.json}")


def _write_json(path: Path, body: dict[str, Any]) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    tmp = path.with_suffix(path.suffix + ".tmp")
    tmp.write_text(json.dumps(body, indent=2))
    os.replace(tmp, path)

if __name__ == "__main__":
    main()
