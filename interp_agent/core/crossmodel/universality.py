"""Universality as a measured number: how many SAE latents find a partner above a shuffled-probe null.

For each pair of SAEs the latents are matched on their activations over held-out probe
tokens (``activations.match_activations``: correlation, Hungarian assignment on one half
of the probe prompts, held-out correlation on the other half, best-match null from
shuffled prompts), and a row reports the fraction of the left SAE's live latents whose
assigned partner's held-out correlation is above the null's 99th percentile. The median
decoder cosine of the assigned pairs, and the fraction of pairs with decoder cosine above
0.7, are a second, weight-space view.

Three kinds of pair (:func:`default_pairs`):

- ``seeds``: two TopK SAEs trained on the same cached activations of one layer, with
  different seeds (initialisation and batch order);
- ``layers``: SAEs on two layers of one model (same seed);
- ``finetune``: an SAE on the base model and one on a fine-tuned copy, same layer.

Each model is harvested once on training passages (every layer it needs, one pass) and
once on probe passages, disjoint from the training ones, so matches are measured on tokens
no SAE was trained on. SAEs are trained with ``core.sae.trainer.fit_tensor`` and cached per
(model, layer, seed), so ``seeds`` and ``layers`` share their seed-0 SAE.

Reference: Paulo & Belrose (2025), "Sparse Autoencoders Trained on the Same Data Learn
Different Features": across seeds, about 30–53% of latents are shared (decoder and encoder
cosine above 0.7 after a Hungarian assignment), for far larger SAEs trained far longer than
the CPU-sized ones here.
"""

from __future__ import annotations

import math
import time
from collections.abc import Mapping, Sequence
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any, Literal

import numpy as np

from interp_agent.core.artifacts import run_provenance, schema_version, write_json, write_text
from interp_agent.core.crossmodel.activations import match_activations
from interp_agent.core.crossmodel.sides import FeatureActivations, massive_rows, sae_features, take_rows
from interp_agent.core.errors import ValidationError
from interp_agent.core.ids import format_hookpoint
from interp_agent.core.progress import Progress

UNIVERSALITY_SCHEMA = schema_version("universality")
LITERATURE = {"shared_fraction_range": [0.30, 0.53], "criterion": "decoder and encoder cosine > 0.7 after a "
              "Hungarian assignment, SAEs trained on the same data with different seeds",
              "source": "Paulo & Belrose (2025), Sparse Autoencoders Trained on the Same Data Learn Different "
              "Features"}
DECODER_SHARED = 0.7
PairKind = Literal["seeds", "layers", "finetune"]


@dataclass(frozen=True, slots=True)
class SaeKey:
    """One SAE of a universality run: which model and layer it reads, and its training seed."""

    model: str
    """Model name or folder."""
    layer: int
    """Block whose ``hook_resid_post`` it encodes."""
    seed: int
    """Training seed (initialisation and batch order)."""

    @property
    def label(self) -> str:
        """``model@L{layer}/seed{seed}``."""
        return f"{self.model}@L{self.layer}/seed{self.seed}"


@dataclass(frozen=True, slots=True)
class PairSpec:
    """Two SAEs to compare."""

    name: str
    """Row name in the table."""
    kind: PairKind
    """``seeds``, ``layers`` or ``finetune``."""
    left: SaeKey
    right: SaeKey


@dataclass(frozen=True, slots=True)
class UniversalitySettings:
    """Sizes of a universality run; the defaults run in a few minutes on a 2-core CPU."""

    train_tokens: int = 16_000
    """Token rows per model and layer the SAEs train on."""
    probe_prompts: int = 64
    """Held-out probe passages the latents are matched on (disjoint from the training passages)."""
    max_length: int = 64
    """Tokens per passage."""
    expansion: int = 2
    """d_sae = expansion * d_model."""
    k: int = 16
    """TopK: active latents per token."""
    steps: int = 1000
    """Optimiser steps per SAE."""
    batch_size: int = 256
    """Token rows per step."""
    null_permutations: int = 3
    """Shuffled pairings of the held-out probe prompts for the null."""
    seed: int = 0
    """Seeds the passage split and the match's prompt split and null."""

    def __post_init__(self) -> None:
        for name in ("train_tokens", "probe_prompts", "max_length", "expansion", "k", "steps", "batch_size",
                     "null_permutations"):
            value = getattr(self, name)
            if isinstance(value, bool) or not isinstance(value, int) or value < 1:
                raise ValidationError(f"UniversalitySettings.{name} = {value!r}; use a positive integer")
        if self.probe_prompts < 8:
            raise ValidationError(f"UniversalitySettings.probe_prompts = {self.probe_prompts}; use at least 8")
        if self.max_length < 3:
            raise ValidationError(f"UniversalitySettings.max_length = {self.max_length}; use at least 3")


def default_pairs(model: str = "smollm2-135m", layer: int = 15, other_layer: int | None = 20,
                  tuned_model: str | None = None, *, seed: int = 0) -> list[PairSpec]:
    """Rows (a) seeds, (b) layers (when ``other_layer`` is given), (c) finetune (when ``tuned_model`` is given).

    Every row pairs SAEs of different seeds (``seed`` on the left, ``seed + 1`` on the right), so the seeds row
    is the baseline the others are read against: a pair of the same seed shares its initialisation, which on
    near-identical activations (a light fine-tune) keeps the two decoders alike for that reason alone.
    """
    if other_layer is not None and other_layer == layer:
        raise ValidationError(f"other_layer = layer = {layer}", hint="give a different layer for the layers row")
    base = SaeKey(model, layer, seed)
    pairs = [PairSpec(f"seeds: L{layer} seed {seed} vs seed {seed + 1}", "seeds", base, SaeKey(model, layer, seed + 1))]
    if other_layer is not None:
        pairs.append(PairSpec(f"layers: L{layer} vs L{other_layer} (seed {seed + 1})", "layers", base,
                              SaeKey(model, other_layer, seed + 1)))
    if tuned_model is not None:
        pairs.append(PairSpec(f"finetune: base vs tuned, L{layer} (seed {seed + 1})", "finetune", base,
                              SaeKey(tuned_model, layer, seed + 1)))
    return pairs


def _passages(settings: UniversalitySettings) -> tuple[list[str], list[str], dict[str, Any]]:
    """(probe passages, training passages, corpus description): disjoint draws from the built-in corpus."""
    from interp_agent.core.explain.corpus import load_corpus

    corpus = load_corpus("builtin")
    order = np.random.default_rng([settings.seed, 11]).permutation(len(corpus.passages))
    n_train = math.ceil(1.3 * settings.train_tokens / (settings.max_length - 1))
    if settings.probe_prompts + n_train > len(order):
        raise ValidationError(f"train_tokens = {settings.train_tokens} needs ~{n_train} passages besides the "
                              f"{settings.probe_prompts} probes; the corpus has {len(order)}",
                              hint="lower train_tokens or raise max_length")
    probes = [corpus.passages[i] for i in order[:settings.probe_prompts]]
    train = [corpus.passages[i] for i in order[settings.probe_prompts:settings.probe_prompts + n_train]]
    return probes, train, corpus.describe()


def _harvest_models(pairs: Sequence[PairSpec], settings: UniversalitySettings, models: Mapping[str, Any],
                    probes: list[str], train: list[str], progress: Progress | None) -> tuple[dict, dict]:
    """Per (model, layer): training token activations [N, d] and the probe ``Harvested``."""
    from interp_agent.core.models import harvest

    layers: dict[str, list[int]] = {}
    for p in pairs:
        for key in (p.left, p.right):
            if key.layer not in layers.setdefault(key.model, []):
                layers[key.model].append(key.layer)
    train_acts: dict[tuple[str, int], np.ndarray] = {}
    probe_acts: dict[tuple[str, int], Any] = {}
    for model, model_layers in layers.items():
        hooks = [format_hookpoint(layer) for layer in model_layers]
        got = harvest(models[model], train, hooks, pooling="token", max_length=settings.max_length, progress=progress)
        probe = harvest(models[model], probes, hooks, pooling="token", max_length=settings.max_length)
        for layer, hook in zip(model_layers, hooks, strict=True):
            acts = got[hook].acts[~massive_rows(got[hook].acts)]
            if len(acts) < settings.train_tokens:
                raise ValidationError(f"{model}: only {len(acts)} training token rows at {hook}, "
                                      f"{settings.train_tokens} asked", hint="lower train_tokens")
            train_acts[(model, layer)] = acts[:settings.train_tokens]
            probe_acts[(model, layer)] = probe[hook]
    return train_acts, _drop_massive(probe_acts)


def _drop_massive(probe_acts: dict[tuple[str, int], Any]) -> dict[tuple[str, int], Any]:
    """Probe rows without massive activations; one mask for all when every harvest has the same token rows."""
    masks: dict[tuple[str, int], np.ndarray] = {key: ~massive_rows(h.acts) for key, h in probe_acts.items()}
    first = next(iter(probe_acts.values()))
    if all(np.array_equal(h.row_prompt, first.row_prompt) and h.tokens == first.tokens for h in probe_acts.values()):
        keep = np.all(np.stack(list(masks.values())), axis=0)
        masks = {k: keep for k in masks}
    return {key: take_rows(h, masks[key]) for key, h in probe_acts.items()}


def _train(acts_ND: np.ndarray, key: SaeKey, settings: UniversalitySettings) -> tuple[Any, dict[str, Any]]:
    """A TopK SAE on ``acts``; its SAE Lens weights and training facts."""
    from interp_agent.core.sae.model import SaeShape
    from interp_agent.core.sae.trainer import Optimisation, default_lr, fit_tensor

    d_in = acts_ND.shape[1]
    d_sae = settings.expansion * d_in
    shape = SaeShape("topk", d_in, d_sae, k=min(settings.k, d_sae))
    steps, batch = settings.steps, min(settings.batch_size, len(acts_ND))
    opt = Optimisation(batch_size=batch, steps=steps, lr=default_lr(d_sae), warmup_steps=max(1, steps // 20),
                       decay_steps=steps // 5, sparsity_coefficient=0.0, aux_coefficient=1 / 32,
                       dead_after_tokens=max(batch, steps * batch // 5), b_dec_init="median", seed=key.seed,
                       checkpoint_every=0)
    import torch

    threads = torch.get_num_threads()
    # small matmuls: one thread is about as fast, and several spin-wait badly on a shared CPU (20 ms vs 0.7 s a
    # step measured on 2 busy cores)
    torch.set_num_threads(1)
    try:
        sae, stats = fit_tensor(acts_ND, shape, opt)
    finally:
        torch.set_num_threads(threads)
    last = stats["history"][-1] if stats["history"] else {}
    return sae.to_weights(format_hookpoint(key.layer)), {
        "sae": key.label, "d_sae": d_sae, "k": shape.k, "steps": steps, "batch_size": batch,
        "train_tokens": len(acts_ND), "seconds": round(stats["seconds"], 2), "train_fvu": last.get("fvu"),
        "dead_fraction": last.get("dead_fraction")}


def _probe_features(key: SaeKey, weights: Any, harvested: Any, synthetic: bool) -> tuple[FeatureActivations, float]:
    """The SAE's latents on the probe tokens, and its fraction of variance unexplained there."""
    ids, values = sae_features(harvested.acts, weights, layer=key.layer)
    recon = values @ weights.W_dec.astype(np.float32) + weights.b_dec.astype(np.float32)
    x = harvested.acts
    fvu = float(((recon - x) ** 2).sum() / ((x - x.mean(0)) ** 2).sum())
    fa = FeatureActivations(tuple(ids), values, harvested.row_prompt, harvested.token_index, tuple(harvested.tokens),
                            "token", {"label": key.label, "model": key.model, "hookpoint": format_hookpoint(key.layer),
                                      "features": "sae", "sae": "trained in this run", "seed": key.seed},
                            synthetic, np.asarray(weights.W_dec, dtype=np.float32))
    return fa, fvu


def _decoder_cosines(left: FeatureActivations, right: FeatureActivations, matches: list[dict]) -> np.ndarray | None:
    """Decoder cosine of each assigned pair (None when the SAEs read different widths)."""
    if left.decoder_FD is None or right.decoder_FD is None or left.decoder_FD.shape[1] != right.decoder_FD.shape[1]:
        return None
    li = {f: i for i, f in enumerate(left.feature_ids)}
    ri = {f: i for i, f in enumerate(right.feature_ids)}
    a = left.decoder_FD[[li[m["left_feature_id"]] for m in matches]]
    b = right.decoder_FD[[ri[m["right_feature_id"]] for m in matches]]
    denom = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    return (a * b).sum(1) / np.maximum(denom, 1e-12)


def _row(pair: PairSpec, result: dict[str, Any], left: FeatureActivations, right: FeatureActivations,
         fvu: dict[str, float]) -> dict[str, Any]:
    """One table row from a match result."""
    s = result["summary"]
    cos = _decoder_cosines(left, right, result["matches"]) if result["matches"] else None
    return {
        "pair": pair.name, "kind": pair.kind, "left": pair.left.label, "right": pair.right.label,
        "n_latents_left": s["n_left"], "n_latents_right": s["n_right"], "n_matches": s["n_matches"],
        "n_above_null": s["n_above_null"], "fraction_above_null": s["fraction_above_null"],
        "mean_held_out_correlation": s["mean_held_out_similarity"], "null_threshold": s["null_threshold"],
        "n_mutual_nearest": s["n_mutual_nearest"],
        "median_decoder_cosine": None if cos is None else float(np.median(cos)),
        "fraction_decoder_cosine_above_0_7": None if cos is None else float((cos > DECODER_SHARED).sum() / s["n_left"]),
        "probe_fvu_left": fvu[pair.left.label], "probe_fvu_right": fvu[pair.right.label],
        "literature_shared_fraction": LITERATURE["shared_fraction_range"] if pair.kind == "seeds" else None,
        "provenance": "synthetic" if result["provenance"]["synthetic"] else "correlational",
    }


def _train_all(pairs: Sequence[PairSpec], settings: UniversalitySettings, loaded: Mapping[str, Any],
               train_acts: Mapping[tuple[str, int], np.ndarray], probe_acts: Mapping[tuple[str, int], Any],
               ) -> dict[SaeKey, tuple[FeatureActivations, dict[str, Any]]]:
    """Each distinct SAE of the pairs, trained once: its latents on the probe tokens and its training facts."""
    saes: dict[SaeKey, tuple[FeatureActivations, dict[str, Any]]] = {}
    for key in dict.fromkeys(k for p in pairs for k in (p.left, p.right)):
        weights, facts = _train(train_acts[(key.model, key.layer)], key, settings)
        synthetic = getattr(loaded[key.model], "source", "") == "in_memory"
        fa, fvu = _probe_features(key, weights, probe_acts[(key.model, key.layer)], synthetic)
        saes[key] = (fa, facts | {"probe_fvu": fvu})
    return saes


def universality(
    pairs: Sequence[PairSpec],
    settings: UniversalitySettings | None = None,
    *,
    models: Mapping[str, Any] | None = None,
    progress: Progress | None = None,
) -> dict[str, Any]:
    """Train the SAEs the pairs name, match each pair on held-out probe tokens, and tabulate.

    Args:
        pairs: the rows (:func:`default_pairs`).
        settings: sizes; None means the defaults.
        models: already loaded models by name; others are loaded with ``load_model``.

    Returns:
        The ``interp-agent.universality.v1`` dict; write it with :func:`write_universality`.

    Raises:
        ValidationError: no pair, a bad setting, a layer out of range, or too little text.
    """
    from interp_agent.core.models import load_model

    settings = settings or UniversalitySettings()
    if not pairs:
        raise ValidationError("universality needs at least one pair", hint="use default_pairs()")
    t0 = time.perf_counter()
    loaded = dict(models or {})
    for p in pairs:
        for key in (p.left, p.right):
            if key.model not in loaded:
                loaded[key.model] = load_model(key.model)
    probes, train, corpus = _passages(settings)
    train_acts, probe_acts = _harvest_models(pairs, settings, loaded, probes, train, progress)
    t_harvest = time.perf_counter() - t0
    saes = _train_all(pairs, settings, loaded, train_acts, probe_acts)
    fvus = {k.label: v[1]["probe_fvu"] for k, v in saes.items()}
    rows = []
    for p in pairs:
        (fl, _), (fr, _) = saes[p.left], saes[p.right]
        result = match_activations(fl, fr, null_permutations=settings.null_permutations, seed=settings.seed,
                                   probes={"name": corpus["name"], "held_out_from_sae_training": True})
        rows.append(_row(p, result, fl, fr, fvus))
    synthetic = any(r["provenance"] == "synthetic" for r in rows)
    return {
        "schema_version": UNIVERSALITY_SCHEMA,
        "provenance": run_provenance({}) | {"models": sorted(loaded), "corpus": corpus, "synthetic": synthetic},
        "settings": asdict(settings), "literature": LITERATURE,
        "saes": [facts for _, facts in saes.values()],
        "rows": rows,
        "timing_s": {"harvest": round(t_harvest, 1), "total": round(time.perf_counter() - t0, 1)},
        "notes": [f"probes: {settings.probe_prompts} passages of the built-in corpus (generated text) disjoint from "
                  f"the {len(train)} training passages; each match assigns on half the probe prompts and reports "
                  "the other half; token rows with a massive activation (norm > 10x the median; see "
                  "crossmodel.sides.massive_rows) are left out of training and probes",
                  "fraction_above_null: assigned pairs whose held-out correlation beats the 99% quantile of the "
                  "best-match null, over the left SAE's live latents",
                  "fraction_decoder_cosine_above_0_7 is the literature-style view; the literature range is for much "
                  "larger SAEs trained on far more tokens"],
    }


def _pct(value: float | None) -> str:
    return "–" if value is None else f"{100 * value:.1f}%"


def _num(value: float | None) -> str:
    return "–" if value is None else f"{value:.3f}"


def render_table(result: dict[str, Any]) -> str:
    """The markdown table of a universality result."""
    head = ["Pair", "Live latents (L/R)", "Matched above null", "Mean held-out corr.", "Null q99",
            "Median decoder cos", "Decoder cos > 0.7", "Literature (seeds)"]
    lines = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in result["rows"]:
        lit = r["literature_shared_fraction"]
        lines.append("| " + " | ".join([
            r["pair"], f"{r['n_latents_left']}/{r['n_latents_right']}", _pct(r["fraction_above_null"]),
            _num(r["mean_held_out_correlation"]), _num(r["null_threshold"]), _num(r["median_decoder_cosine"]),
            _pct(r["fraction_decoder_cosine_above_0_7"]),
            "–" if lit is None else f"{100 * lit[0]:.0f}–{100 * lit[1]:.0f}%"]) + " |")
    return "\n".join(lines) + "\n"


def render_markdown(result: dict[str, Any]) -> str:
    """``universality.md``: settings line, the table, the SAEs' quality and the notes."""
    s = result["settings"]
    lines = ["# Universality of SAE latents", "",
             f"Models: {', '.join(result['provenance']['models'])}; TopK SAEs, expansion {s['expansion']}, "
             f"k={s['k']}, {s['steps']} steps of {s['batch_size']} on {s['train_tokens']} tokens; "
             f"{s['probe_prompts']} held-out probe passages of {s['max_length']} tokens.", ""]
    if result["provenance"]["synthetic"]:
        lines += ["**Synthetic:** at least one model is a random in-memory model, not a real one.", ""]
    lines += [render_table(result), "SAEs (fraction of variance unexplained on the probe tokens):", ""]
    lines += [f"- {f['sae']}: d_sae {f['d_sae']}, probe FVU {f['probe_fvu']:.3f}, trained in {f['seconds']} s"
              for f in result["saes"]]
    lines += ["", f"Literature: {result['literature']['source']}: {result['literature']['criterion']}.", "",
              "## Notes", "", *(f"- {n}" for n in result["notes"]),
              f"- time: {result['timing_s']['total']} s (harvest {result['timing_s']['harvest']} s)"]
    return "\n".join(lines) + "\n"


def write_universality(result: dict[str, Any], out: str | Path) -> tuple[Path, Path]:
    """Write ``out/universality.json`` and ``out/universality.md``, each atomically.

    Raises:
        ValidationError: ``result`` is not a universality result, or ``out`` is a file.
    """
    if not isinstance(result, dict) or result.get("schema_version") != UNIVERSALITY_SCHEMA:
        raise ValidationError(f"result is not a '{UNIVERSALITY_SCHEMA}' dict", hint="pass what universality returned")
    folder = Path(out)
    if folder.exists() and not folder.is_dir():
        raise ValidationError(f"out = {str(out)!r} is a file", hint="give a folder")
    md = render_markdown(result)
    json_path = write_json(folder / "universality.json", result)
    md_path = write_text(folder / "universality.md", md)
    return json_path, md_path
