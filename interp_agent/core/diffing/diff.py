"""Model diffing: which features appear, vanish or change between a model and its fine-tune, on held-out probes.

One harvest pass per model reads every hookpoint on the same probe prompts (the built-in
general English corpus, plus the criterion's prompts when one is given), one row per token.
The two models must share a tokenizer, so their token rows align one to one, and each
hookpoint must have the same width in both. ``select.py`` chooses features on the selection
half of the probes and measures them on the held-out half. With a criterion, each feature's
AUROC for it (mean over a prompt's tokens) is measured in both models: movers are chosen on
the criterion's calibration split and shown on its held-out split, beside the behaviour
change itself (``behaviour.py``). Every prompt's split is the salted hash of its id, so the
criterion's held-out prompts (30%) are inside the diff's held-out half (50%).
"""

from __future__ import annotations

from dataclasses import asdict, fields
from pathlib import Path
from typing import Any, Literal

import numpy as np
import torch

from interp_agent.core.artifacts import run_provenance, schema_version
from interp_agent.core.criteria.packs import binary_labels
from interp_agent.core.criteria.sets import CriterionSet, from_file, from_pack
from interp_agent.core.diffing.behaviour import behaviour_change, paired_change, text_logliks
from interp_agent.core.diffing.select import (
    KINDS,
    DiffConfig,
    choose,
    criterion_movers,
    fire_thresholds,
    held_out_evidence,
    moments,
)
from interp_agent.core.errors import ValidationError
from interp_agent.core.formats.prompts import ScoredPrompt
from interp_agent.core.ids import format_sae_latent
from interp_agent.core.models.harvest import Harvested, SaeParams, encode_sae, feature_ids, harvest
from interp_agent.core.models.hookpoints import HookPoint, resolve_hookpoint
from interp_agent.core.models.loading import Device, LoadedModel
from interp_agent.core.progress import Progress
from interp_agent.core.ranking.config import HELD_OUT_FRACTION, SPLIT_SALT
from interp_agent.core.ranking.splits import HELD_OUT, assign_splits, prompt_hashes

Features = Literal["neurons", "dims", "sae"]
DIFF_SCHEMA = schema_version("model_diff")
DEFAULT_PROBES = 160
"""Probe passages drawn from the built-in corpus by default."""


def load_side(model: str | LoadedModel, side: str, device: Device) -> LoadedModel:
    """A model by name or folder (loaded) or as given; ``side`` names it in errors."""
    from interp_agent.core.models import load_model
    from interp_agent.core.models.loading import ModelUnavailableError

    if not isinstance(model, str):
        return model
    try:
        return load_model(model, device=device)
    except ModelUnavailableError as exc:
        raise ModelUnavailableError(f"{side} model: {exc.message}", hint=exc.hint) from exc


def check_tokenizers(base: LoadedModel, tuned: LoadedModel) -> None:
    """The two models must tokenize alike (same vocabulary), or their token rows would not align."""
    vb, vt = base.tokenizer.get_vocab(), tuned.tokenizer.get_vocab()
    if vb != vt:
        differ = sorted(set(vb.items()) ^ set(vt.items()))[:3]
        raise ValidationError(
            f"the tuned model's tokenizer ({tuned.name}, {len(vt)} tokens) differs from the base model's "
            f"({base.name}, {len(vb)} tokens), e.g. {differ}; token rows would not align",
            hint="diff a model against a fine-tune of it that kept its tokenizer",
        )


def resolve_points(base: LoadedModel, tuned: LoadedModel, hookpoints: list[str], features: Features
                   ) -> list[tuple[HookPoint, HookPoint]]:
    """Each hookpoint resolved on both models; widths must match and fit ``features``."""
    if isinstance(hookpoints, str) or not hookpoints:
        raise ValidationError(f"hookpoints must be a non-empty list, got {hookpoints!r}",
                              hint="e.g. ['blocks.20.mlp.hook_post']")
    pairs = []
    for name in dict.fromkeys(hookpoints):
        points = []
        for side, loaded in (("base", base), ("tuned", tuned)):
            try:
                points.append(resolve_hookpoint(loaded.model, name))
            except ValidationError as exc:
                raise ValidationError(f"{side} model ({loaded.name}): {exc.message}", hint=exc.hint) from exc
        pb, pt = points
        if pb.width != pt.width:
            raise ValidationError(f"{name} has width {pt.width} in the tuned model ({tuned.name}) but {pb.width} in "
                                  f"the base model ({base.name})", hint="diff models of the same architecture")
        is_neuron = pb.site == "mlp.hook_post"
        if features == "neurons" and not is_neuron or features == "dims" and is_neuron:
            raise ValidationError(f"features={features!r} does not fit hookpoint {name}",
                                  hint="neurons live at blocks.L.mlp.hook_post; dims at the d_model sites "
                                       "(hook_resid_post, hook_mlp_out, ...)")
        pairs.append((pb, pt))
    return pairs


def criterion_set(criterion: CriterionSet | str | None, pack: str | None, dataset: str | Path | None
                  ) -> CriterionSet | None:
    """The criterion set: given, a built-in pack, or a scored-prompts file (with ``criterion`` as its text)."""
    if isinstance(criterion, CriterionSet):
        return criterion
    if pack is not None and dataset is not None:
        raise ValidationError("give pack or dataset, not both")
    if pack is not None:
        return from_pack(pack)
    if dataset is not None:
        return from_file(dataset, criterion or f"the criterion of {dataset}")
    if criterion is not None:
        raise ValidationError(f"criterion {criterion!r} needs its prompts", hint="give pack= or dataset= too")
    return None


def probe_prompts(probes: str, n_probes: int) -> tuple[list[ScoredPrompt], dict[str, Any]]:
    """``n_probes`` passages of a corpus (``builtin`` or a path), spread evenly over it, as unscored prompts."""
    from interp_agent.core.explain.corpus import load_corpus

    if n_probes < 4:
        raise ValidationError(f"n_probes must be at least 4, got {n_probes}")
    corpus = load_corpus(probes)
    step = max(1, len(corpus.passages) // n_probes)
    texts = [t for t in corpus.passages[::step] if t.strip()][:n_probes]
    prompts = [ScoredPrompt(f"probe-{i * step}", t, 0.0) for i, t in enumerate(texts)]
    return prompts, corpus.describe() | {"n_used": len(prompts), "every": step}


def _sae_transform(sae: dict[str, Any] | None, point: HookPoint) -> tuple[Any, list[str]]:
    """The SAE encoder of ``point`` and its latent ids."""
    if not sae or point.name not in sae:
        raise ValidationError(f"features='sae' needs an SAE for {point.name}",
                              hint="sae={hookpoint: (W_enc [d_in, d_sae], b_enc, b_dec, threshold|None, k|None)}")
    params = SaeParams(*sae[point.name])
    d_sae = int(np.asarray(params.W_enc).shape[1])
    if int(np.asarray(params.W_enc).shape[0]) != point.width:
        raise ValidationError(f"SAE for {point.name}: W_enc has {np.asarray(params.W_enc).shape[0]} rows, the "
                              f"hookpoint has width {point.width}", hint="SAE Lens layout: W_enc is [d_in, d_sae]")
    return (lambda x: encode_sae(torch.as_tensor(x), params).numpy()), [
        format_sae_latent(i, layer=point.layer) for i in range(d_sae)]


def harvest_both(base: LoadedModel, tuned: LoadedModel, texts: list[str], names: list[str], *,
                 max_length: int, batch_size: int, progress: Progress | None) -> tuple[dict[str, Harvested], ...]:
    """Token rows at every hookpoint in each model (one pass each), checked to align."""
    out = tuple(harvest(m, texts, names, batch_size=batch_size, max_length=max_length, pooling="token",
                        progress=progress) for m in (base, tuned))
    hb, ht = out[0][names[0]], out[1][names[0]]
    same_positions = hb.token_index is not None and ht.token_index is not None and np.array_equal(
        hb.token_index, ht.token_index)
    if not (np.array_equal(hb.row_prompt, ht.row_prompt) and same_positions):
        raise ValidationError("the tuned model's token rows do not align with the base model's",
                              hint="both models must tokenize the probes alike")
    return out


def _config(config: DiffConfig | dict[str, Any] | None) -> DiffConfig:
    if isinstance(config, DiffConfig):
        return config
    known = {f.name for f in fields(DiffConfig)}
    unknown = sorted(set(config or {}) - known)
    if unknown:
        raise ValidationError(f"unknown diff config fields {unknown}", hint=f"use some of {sorted(known)}")
    return DiffConfig(**(config or {}))


def diff_models(
    base: str | LoadedModel, tuned: str | LoadedModel, *, hookpoints: list[str], features: Features = "neurons",
    sae: dict[str, SaeParams | tuple[Any, ...]] | None = None, probes: str = "builtin", n_probes: int = DEFAULT_PROBES,
    criterion: CriterionSet | str | None = None, pack: str | None = None, dataset: str | Path | None = None,
    max_length: int = 48, batch_size: int = 16, config: DiffConfig | dict[str, Any] | None = None,
    out: str | Path | None = None, device: Device = "cpu", progress: Progress | None = None,
) -> dict[str, Any]:
    """Diff ``tuned`` against ``base`` at ``hookpoints``; returns the diff (and writes diff.json/.md to ``out``).

    Args:
        base, tuned: model names or folders (``smollm2-135m``, a fine-tune folder) or loaded models.
        hookpoints: TransformerLens names, e.g. ``blocks.20.mlp.hook_post``.
        features: ``neurons`` (at mlp.hook_post), ``dims`` (d_model sites) or ``sae`` (latents of ``sae``).
        sae: per hookpoint, ``(W_enc [d_in, d_sae], b_enc, b_dec, threshold|None, k|None)``; one SAE encodes both.
        probes: ``builtin`` (the general English corpus) or a corpus path; ``n_probes`` passages are used.
        criterion, pack, dataset: a criterion set, a built-in pack name, or a scored-prompts file.
        max_length, batch_size: harvesting options.
        config: thresholds (``DiffConfig`` or its fields as a dict).
        out: folder for diff.json and diff.md (None: nothing written).

    Raises:
        ValidationError: mismatched tokenizers or widths (naming the tuned side), an unknown hookpoint, bad options.
        ModelUnavailableError: a model cannot be loaded.
    """
    cfg = _config(config)
    if features not in ("neurons", "dims", "sae"):
        raise ValidationError(f"unknown features {features!r}", hint="use 'neurons', 'dims' or 'sae'")
    cset = criterion_set(criterion, pack, dataset)
    mb, mt = load_side(base, "base", device), load_side(tuned, "tuned", device)
    check_tokenizers(mb, mt)
    pairs = resolve_points(mb, mt, hookpoints, features)
    prompts, probe_info, hashes, held_P = all_prompts(probes, n_probes, cset, cfg)
    n_probe = probe_info["n_used"]
    hb, ht = harvest_both(mb, mt, [p.text for p in prompts], [pb.name for pb, _ in pairs], max_length=max_length,
                          batch_size=batch_size, progress=progress)
    crit_held = assign_splits(hashes[n_probe:], HELD_OUT_FRACTION) == HELD_OUT if cset else None
    points = [_diff_point(pb, hb[pb.name], ht[pb.name], features, sae, hashes, held_P, cfg, cset, n_probe,
                          crit_held) for pb, _ in pairs]
    result = {
        "schema_version": DIFF_SCHEMA, "provenance_of_numbers": "correlational",
        "base": _model_info(mb), "tuned": _model_info(mt), "features": features, "config": asdict(cfg),
        "probes": probe_info | {"n_prompts": len(prompts), "n_criterion_prompts": len(prompts) - n_probe,
                                "held_out_prompts": int(held_P.sum()), "split_salt": SPLIT_SALT,
                                "max_length": max_length},
        "hookpoints": points,
        "behaviour": _behaviour(mb, mt, cset, crit_held, max_length, cfg.seed) if cset else None,
        "provenance": run_provenance({}),
    }
    result["summary"] = summarise(result)
    if out is not None:
        from interp_agent.core.diffing.report import write_diff

        result["paths"] = {k: str(v) for k, v in write_diff(out, result).items()}
    return result


def all_prompts(probes: str, n_probes: int, cset: CriterionSet | None, cfg: DiffConfig
                ) -> tuple[list[ScoredPrompt], dict[str, Any], np.ndarray, np.ndarray]:
    """Probe prompts then the criterion's, their id hashes and the held-out mask of the diff's split."""
    probe, probe_info = probe_prompts(probes, n_probes)
    prompts = probe + (list(cset.prompts) if cset else [])
    ids = [p.prompt_id for p in prompts]
    if len(set(ids)) != len(ids):
        raise ValidationError("a criterion prompt id repeats a probe id (probe-N)", hint="rename the criterion's ids")
    hashes = prompt_hashes(ids, SPLIT_SALT)
    return prompts, probe_info, hashes, assign_splits(hashes, cfg.held_out_fraction) == HELD_OUT


def _model_info(loaded: LoadedModel) -> dict[str, Any]:
    info: dict[str, Any] = {"name": loaded.name, "source": loaded.source, "n_layers": loaded.n_layers,
                            "d_model": loaded.d_model}
    manifest = Path(loaded.name) / "finetune.json" if loaded.source == "local" else None
    if manifest is not None and manifest.is_file():
        from interp_agent.core.diffing.finetune import read_manifest

        m = read_manifest(manifest.parent)
        info["finetune"] = {"key": m.get("key"), "base_model": m.get("base_model", {}).get("name"),
                            "trained_layers": m.get("trained", {}).get("layers"),
                            "steps": m.get("spec", {}).get("steps")}
    return info


def _behaviour(mb: LoadedModel, mt: LoadedModel, cset: CriterionSet, held: np.ndarray | None, max_length: int,
               seed: int) -> dict[str, Any]:
    """The behaviour change on the criterion's held-out prompts, and over all its matched pairs.

    The pairs block uses every criterion prompt: nothing in the behaviour measure is chosen on them,
    and a fine-tune that never saw them (``finetune.py`` trains on other texts) leaves all of them out-of-sample.
    """
    texts = [p.text for p in cset.prompts]
    lb, lt = (text_logliks(m, texts, max_length=max_length) for m in (mb, mt))
    keep = np.asarray(held, dtype=bool)
    held_prompts = [p for p, h in zip(cset.prompts, keep, strict=True) if h]
    block = behaviour_change(lb[keep], lt[keep], held_prompts, criterion=cset.criterion, seed=seed)
    paired = paired_change(lb, lt, cset.prompts)
    if paired is not None:
        block["all_matched_pairs"] = paired | {
            "measured_on": "every matched (positive, negative) pair of the criterion's prompts; valid as evidence "
                           "only when the tuned model was not trained or chosen on them"}
    return block


def _diff_point(point: HookPoint, hb: Harvested, ht: Harvested, features: Features, sae: dict[str, Any] | None,
                hashes: np.ndarray, held_P: np.ndarray, cfg: DiffConfig, cset: CriterionSet | None, n_probe: int,
                crit_held: np.ndarray | None) -> dict[str, Any]:
    """Appear / vanish / change (and criterion movers) at one hookpoint."""
    base_TF, tuned_TF = hb.acts, ht.acts
    ids = feature_ids(point)
    if features == "sae":
        encode, ids = _sae_transform(sae, point)
        base_TF, tuned_TF = encode(base_TF), encode(tuned_TF)
    positive_only = features == "sae"
    held_T = held_P[hb.row_prompt]
    sel_b, sel_t = base_TF[~held_T], tuned_TF[~held_T]
    tau_F = fire_thresholds(sel_b, sel_t, cfg.fire_k, positive_only)
    selection = moments(sel_b, sel_t, tau_F, positive_only=positive_only)
    chosen = choose(selection, cfg)
    evidence = held_out_evidence(base_TF[held_T], tuned_TF[held_T], hb.row_prompt[held_T], hashes, chosen,
                                 selection, tau_F, cfg, positive_only)
    for kind in KINDS:
        for e in evidence[kind]:
            e["feature_id"] = ids[e["index"]]
            e["provenance"] = "correlational"
    block: dict[str, Any] = {
        "hookpoint": point.name, "width": len(ids), "n_tokens": {"selection": int((~held_T).sum()),
                                                                 "held_out": int(held_T.sum())},
        "median_corr_selection": float(np.median(selection.corr)),
        "counts": {k: {"selected": len(evidence[k]), "confirmed": sum(e["confirmed"] for e in evidence[k])}
                   for k in KINDS},
        **evidence,
    }
    if cset is not None and crit_held is not None:
        pooled_b, pooled_t = (_mean_rows(x, hb.row_prompt, n_probe, len(cset.prompts)) for x in (base_TF, tuned_TF))
        movers = criterion_movers(pooled_b, pooled_t, binary_labels(cset.prompts), crit_held, hashes[n_probe:], cfg,
                                  ids)
        block["criterion_movers"] = [m | {"provenance": "correlational"} for m in movers]
    return block


def _mean_rows(acts_TF: np.ndarray, row_prompt_T: np.ndarray, start: int, n: int) -> np.ndarray:
    """[n, F]: mean over each of prompts start..start+n-1 of its token rows."""
    keep = (row_prompt_T >= start) & (row_prompt_T < start + n)
    out = np.zeros((n, acts_TF.shape[1]), dtype=np.float64)
    np.add.at(out, row_prompt_T[keep] - start, acts_TF[keep])
    counts = np.bincount(row_prompt_T[keep] - start, minlength=n)
    return out / np.maximum(counts, 1)[:, None]


def summarise(result: dict[str, Any], top: int = 10) -> dict[str, Any]:
    """Counts per kind, the confirmed features of largest held-out shift, and the confirmed criterion movers."""
    counts = {k: {"selected": sum(p["counts"][k]["selected"] for p in result["hookpoints"]),
                  "confirmed": sum(p["counts"][k]["confirmed"] for p in result["hookpoints"])} for k in KINDS}
    confirmed = [e | {"hookpoint": p["hookpoint"]} for p in result["hookpoints"] for k in KINDS for e in p[k]
                 if e["confirmed"]]
    confirmed.sort(key=lambda e: -abs(e["held_out"]["shift"]["mean"]))
    movers = [m | {"hookpoint": p["hookpoint"]} for p in result["hookpoints"] for m in p.get("criterion_movers", [])
              if m["confirmed"]]
    movers.sort(key=lambda m: -abs(m["held_out"]["auroc_change"]["mean"]))
    brief = [{"feature_id": e["feature_id"], "hookpoint": e["hookpoint"], "kind": e["kind"],
              "shift": e["held_out"]["shift"], "rate_base": e["held_out"]["rate_base"],
              "rate_tuned": e["held_out"]["rate_tuned"]} for e in confirmed[:top]]
    crit = [{"feature_id": m["feature_id"], "hookpoint": m["hookpoint"], "auroc_base": m["held_out"]["auroc_base"],
             "auroc_tuned": m["held_out"]["auroc_tuned"], "auroc_change": m["held_out"]["auroc_change"]}
            for m in movers[:top]]
    behaviour = result.get("behaviour")
    return {"provenance": "correlational", "counts": counts, "top_movers": brief, "criterion_movers": crit,
            "behaviour_preference_shift": ({"provenance": "interventional"} | behaviour["preference_shift"]
                                           if behaviour else None),
            "behaviour_paired_shift": (behaviour["all_matched_pairs"]["preference_shift"]
                                       if behaviour and "all_matched_pairs" in behaviour else None),
            "note": "selected on the selection half of the probes, confirmed on the held-out half (bootstrap 95%)"}
