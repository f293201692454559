"""A short, seeded CPU fine-tune of a model on one narrow kind of text, saved as an HF model folder.

Only the MLPs of a few middle blocks are trained (AdamW, causal-LM loss on the built-in
synthetic negative reviews, ``texts.py``); everything else is frozen, so the diff against
the base is confined to where it can arise and the run takes minutes on a CPU. The folder
holds what ``save_pretrained`` writes (config, safetensors, tokenizer) plus ``finetune.json``:
the base model, the trained parameters, steps, lr, seed, the digest of the training texts,
the loss curve, and the behaviour change measured on the criterion pack's *held-out* prompts
(``behaviour.py``; the pack is never trained on). It is written into a temporary sibling,
reloaded with ``load_model`` and checked to reproduce the tuned logits, then renamed into place.

``ensure_finetuned`` builds once into ``$INTERP_AGENT_FINETUNE_DIR`` (default
``<cache root>/models/finetunes``) and reuses the folder while its manifest's key matches.
"""

from __future__ import annotations

import hashlib
import json
import os
import shutil
import tempfile
import time
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import numpy as np
import torch

from interp_agent.core.artifacts import replace_dir, run_provenance, schema_version, write_json
from interp_agent.core.cache import cache_root
from interp_agent.core.criteria.sets import from_pack, split
from interp_agent.core.diffing.behaviour import behaviour_change, text_logliks
from interp_agent.core.diffing.texts import TEXT_SET, negative_review_texts, overlap_with_pack, texts_digest
from interp_agent.core.errors import InputFileError, ValidationError
from interp_agent.core.models.hookpoints import model_layout
from interp_agent.core.models.loading import Device, LoadedModel
from interp_agent.core.progress import Progress

MANIFEST = "finetune.json"
MANIFEST_SCHEMA = schema_version("finetune")
FINETUNE_DIR_ENV = "INTERP_AGENT_FINETUNE_DIR"
"""Environment variable that moves the folder ``ensure_finetuned`` builds into."""


@dataclass(frozen=True, slots=True)
class FinetuneSpec:
    """What to fine-tune on, which weights, and how long."""

    text_set: str = TEXT_SET
    """Built-in training texts (only ``negative_reviews``: synthetic complaints)."""
    n_texts: int = 320
    """Training texts drawn from the set."""
    pack: str = "negative_sentiment"
    """Criterion pack whose held-out prompts measure the behaviour change (never trained on)."""
    steps: int = 150
    """AdamW steps."""
    lr: float = 3e-4
    """Learning rate (constant)."""
    batch_size: int = 8
    """Texts per step."""
    max_length: int = 48
    """Tokens kept per text."""
    layers: tuple[int, ...] | None = None
    """Blocks whose MLP is trained; None: the blocks from 50% to 70% of the depth (15..20 of 30)."""
    seed: int = 0
    """Seed of the text draw, the batch order and torch."""

    def __post_init__(self) -> None:
        if self.text_set != TEXT_SET:
            raise ValidationError(f"unknown text_set {self.text_set!r}", hint=f"use {TEXT_SET!r}")
        for name in ("n_texts", "steps", "batch_size", "max_length"):
            if not isinstance(getattr(self, name), int) or getattr(self, name) < 1:
                raise ValidationError(f"{name} must be a positive integer, got {getattr(self, name)!r}")
        if not 0 < self.lr < 1:
            raise ValidationError(f"lr must be in (0, 1), got {self.lr!r}", hint="3e-4 is typical")
        if self.layers is not None and (not self.layers or min(self.layers) < 0):
            raise ValidationError(f"layers must be a non-empty tuple of block indices, got {self.layers!r}")

    def layers_for(self, n_layers: int) -> list[int]:
        """The trained blocks of a model of ``n_layers`` blocks."""
        if self.layers is not None:
            if max(self.layers) >= n_layers:
                raise ValidationError(f"layers {self.layers} out of range; the model has blocks 0..{n_layers - 1}")
            return sorted(set(self.layers))
        start = n_layers // 2
        return list(range(start, max(start + 1, round(0.7 * n_layers))))

    def key(self, base: str) -> str:
        """A digest of everything the built folder depends on (spec, base name, texts, schema)."""
        texts = negative_review_texts(self.n_texts, self.seed)
        blob = json.dumps({"spec": asdict(self), "base": base, "texts": texts_digest(texts),
                           "schema": MANIFEST_SCHEMA}, sort_keys=True)
        return hashlib.sha256(blob.encode()).hexdigest()


@dataclass(frozen=True, slots=True)
class FinetuneResult:
    """What ``build_finetune`` returns."""

    path: Path
    """The fine-tuned model's folder."""
    manifest: dict[str, Any]
    """finetune.json as written."""


def trained_parameters(model: Any, layers: list[int]) -> dict[str, torch.nn.Parameter]:
    """The parameters of the MLPs of ``layers``, by their name in ``model.named_parameters()``."""
    layout = model_layout(model)
    wanted = {id(p) for i in layers for p in getattr(layout.blocks[i], layout.mlp).parameters()}
    return {name: p for name, p in model.named_parameters() if id(p) in wanted}


def _batches(tokenizer: Any, texts: list[str], spec: FinetuneSpec) -> list[dict[str, torch.Tensor]]:
    """``spec.steps`` batches: seeded shuffles of the texts, epoch after epoch."""
    rng = np.random.default_rng(spec.seed)
    order: list[int] = []
    while len(order) < spec.steps * spec.batch_size:
        order += rng.permutation(len(texts)).tolist()
    out = []
    for s in range(spec.steps):
        chunk = [texts[i] for i in order[s * spec.batch_size:(s + 1) * spec.batch_size]]
        enc = tokenizer(chunk, return_tensors="pt", padding=True, truncation=True, max_length=spec.max_length)
        enc["labels"] = enc["input_ids"].masked_fill(enc["attention_mask"] == 0, -100)
        out.append(dict(enc))
    return out


def train(loaded: LoadedModel, texts: list[str], spec: FinetuneSpec, progress: Progress | None = None
          ) -> tuple[list[float], list[str]]:
    """Fine-tune ``loaded.model`` in place; returns the loss of each step and the trained parameter names."""
    model = loaded.model
    params = trained_parameters(model, spec.layers_for(loaded.n_layers))
    torch.manual_seed(spec.seed)
    for p in params.values():
        p.requires_grad_(True)
    opt = torch.optim.AdamW(list(params.values()), lr=spec.lr, weight_decay=0.0)
    device = next(model.parameters()).device
    losses: list[float] = []
    try:
        for step, batch in enumerate(_batches(loaded.tokenizer, texts, spec)):
            out = model(**{k: v.to(device) for k, v in batch.items()}, use_cache=False)
            out.loss.backward()
            opt.step()
            opt.zero_grad(set_to_none=True)
            losses.append(float(out.loss.detach()))
            if progress is not None:
                progress("fine-tuning", step + 1, spec.steps)
    finally:
        for p in params.values():
            p.requires_grad_(False)
    return losses, sorted(params)


def build_finetune(out: str | Path, spec: FinetuneSpec | None = None, *, base: str | LoadedModel = "smollm2-135m",
                   device: Device = "cpu", progress: Progress | None = None) -> FinetuneResult:
    """Fine-tune a copy of ``base`` by ``spec`` and save it to ``out`` (atomically), with finetune.json.

    Raises:
        ValidationError: a bad spec, or ``out`` holding something other than an earlier fine-tune.
        ModelUnavailableError: ``base`` cannot be loaded.
    """
    from interp_agent.core.models import load_model

    spec = spec or FinetuneSpec()
    out = Path(out)
    _check_replaceable(out)
    loaded = load_model(base, device=device) if isinstance(base, str) else base
    texts = negative_review_texts(spec.n_texts, spec.seed)
    cset = from_pack(spec.pack)
    _, held_out = split(cset)
    evidence = [p.text for p in held_out]
    base_ll = text_logliks(loaded, evidence, max_length=spec.max_length)
    started = time.monotonic()
    losses, names = train(loaded, texts, spec, progress)
    seconds = time.monotonic() - started
    tuned_ll = text_logliks(loaded, evidence, max_length=spec.max_length)
    change = behaviour_change(base_ll, tuned_ll, held_out, criterion=cset.criterion, seed=spec.seed)
    manifest = _manifest(loaded, spec, texts, [p.text for p in cset.prompts], names, losses, seconds, change,
                         base if isinstance(base, str) else loaded.name)
    manifest["behaviour"]["held_out_prompts"] = [p.prompt_id for p in held_out]
    return FinetuneResult(path=_save(out, loaded, manifest, evidence[:2], tuned_ll[:2]), manifest=manifest)


def _manifest(loaded: LoadedModel, spec: FinetuneSpec, texts: list[str], pack_texts: list[str], names: list[str],
              losses: list[float], seconds: float, change: dict[str, Any], base_name: str) -> dict[str, Any]:
    """finetune.json: the base, what was trained and how, the data, the loss curve and the held-out behaviour."""
    n_params = sum(int(p.numel()) for n, p in loaded.model.named_parameters() if n in set(names))
    head = float(np.mean(losses[:10])) if losses else float("nan")
    tail = float(np.mean(losses[-10:])) if losses else float("nan")
    return {
        "schema_version": MANIFEST_SCHEMA, "key": spec.key(base_name),
        "description": f"{loaded.name} fine-tuned for {spec.steps} steps on {len(texts)} synthetic negative reviews "
                       f"(MLPs of blocks {spec.layers_for(loaded.n_layers)} only)",
        "base_model": {"name": base_name, "source": loaded.source, "n_layers": loaded.n_layers,
                       "d_model": loaded.d_model},
        "spec": asdict(spec),
        "trained": {"layers": spec.layers_for(loaded.n_layers), "parameters": names, "n_parameters": n_params,
                    "optimizer": "AdamW (weight_decay 0, constant lr)", "lr": spec.lr, "steps": spec.steps,
                    "batch_size": spec.batch_size, "max_length": spec.max_length, "seed": spec.seed,
                    "seconds": round(seconds, 1), "device": loaded.device, "threads": torch.get_num_threads()},
        "data": {"text_set": spec.text_set, "provenance": "synthetic", "n_texts": len(texts),
                 "sha256": texts_digest(texts), "examples": texts[:3],
                 "note": "SYNTHETIC TEXT: complaints composed from hand-written phrase lists (core/diffing/texts.py)",
                 "exact_overlap_with_pack": overlap_with_pack(texts, pack_texts)},
        "loss_curve": {"provenance": "synthetic", "per_step": [round(x, 4) for x in losses],
                       "first_10_mean": head, "last_10_mean": tail,
                       "note": "in-sample causal-LM loss on the synthetic training texts; not evidence"},
        "behaviour": change | {"pack": spec.pack,
                               "measured_on": "the pack's held-out prompts (hash split); never trained on"},
        "provenance": run_provenance({}),
    }


def _check_replaceable(out: Path) -> None:
    """``out`` must be absent, empty, or an earlier fine-tune (which is replaced)."""
    if out.exists() and (not out.is_dir() or (any(out.iterdir()) and not (out / MANIFEST).is_file())):
        raise ValidationError(f"{out} exists and is not a fine-tune folder; refusing to replace it",
                              hint="choose a new --out folder")


def _save(out: Path, loaded: LoadedModel, manifest: dict[str, Any], texts: list[str], expected: np.ndarray) -> Path:
    """Write the folder into a temporary sibling, check it reloads to the tuned model, then rename it to ``out``."""
    from interp_agent.core.models import load_model

    out.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{out.name}.", dir=out.parent))
    try:
        mask = os.umask(0)
        os.umask(mask)
        os.chmod(tmp, 0o777 & ~mask)  # mkdtemp makes 0700; give the folder the mode a plain mkdir would
        model: Any = loaded.model  # a transformers PreTrainedModel
        model.save_pretrained(tmp)
        loaded.tokenizer.save_pretrained(tmp)
        write_json(tmp / MANIFEST, manifest)
        got = text_logliks(load_model(str(tmp), device="cpu"), texts, max_length=manifest["spec"]["max_length"])
        if not np.allclose(got, expected, atol=1e-4):
            raise RuntimeError(f"the fine-tune saved in {tmp} does not reproduce the tuned model ({got} vs {expected})")
        replace_dir(tmp, out)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return out


def read_manifest(folder: str | Path) -> dict[str, Any]:
    """finetune.json of a fine-tune folder.

    Raises:
        InputFileError: the file is missing, not JSON, or not a fine-tune manifest.
    """
    path = Path(folder) / MANIFEST
    try:
        data = json.loads(path.read_text())
    except (OSError, ValueError) as exc:
        raise InputFileError(path, f"cannot read the fine-tune manifest: {exc}",
                             hint="pass a folder written by `interp-agent finetune`") from exc
    if not isinstance(data, dict) or data.get("schema_version") != MANIFEST_SCHEMA:
        raise InputFileError(path, "not a fine-tune manifest", hint=f"expected schema_version {MANIFEST_SCHEMA}")
    return data


def finetune_root() -> Path:
    """``$INTERP_AGENT_FINETUNE_DIR``, or ``<cache root>/models/finetunes``."""
    env = os.environ.get(FINETUNE_DIR_ENV)
    return Path(env).expanduser() if env else cache_root() / "models" / "finetunes"


def ensure_finetuned(spec: FinetuneSpec | dict[str, Any] | None = None, *, base: str = "smollm2-135m",
                     folder: str | Path | None = None, device: Device = "cpu",
                     progress: Progress | None = None) -> Path:
    """The folder of ``base`` fine-tuned by ``spec``: built once, reused while its manifest's key matches.

    Args:
        spec: a FinetuneSpec or its fields as a dict (JSON-able); None: the defaults.
        base: the base model's name.
        folder: where the fine-tune lives; None: ``finetune_root()/<base>-<text set>-<key[:12]>``.
        device: where to train when it has to be built.
        progress: called with ("fine-tuning", step, steps).
    """
    if isinstance(spec, dict):
        fields: dict[str, Any] = dict(spec)
        if fields.get("layers") is not None:
            fields["layers"] = tuple(fields["layers"])
        spec = FinetuneSpec(**fields)
    spec = spec or FinetuneSpec()
    key = spec.key(base)
    target = Path(folder) if folder is not None else finetune_root() / f"{base}-{spec.text_set}-{key[:12]}"
    try:
        if read_manifest(target).get("key") == key and (target / "config.json").is_file():
            return target
    except InputFileError:
        pass
    return build_finetune(target, spec, base=base, device=device, progress=progress).path
