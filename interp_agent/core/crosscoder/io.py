"""Saving and loading a crosscoder in dictionary_learning's crosscoder layout.

A saved crosscoder is a folder::

    ae.pt        torch.save of the state dict, as dictionary_learning's BatchTopKCrossCoder names it:
                   encoder.weight  [n_sources, d, m]   encoder.bias  [m]
                   decoder.weight  [n_sources, m, d]   decoder.bias  [n_sources, d]
                   k  int scalar   threshold  float scalar (on f · Σ_s ‖W_dec[s, j]‖)
                   code_normalization_id  1 (CROSSCODER)
                   target_rms  1.0   activation_mean / activation_std  [n_sources, d]
                   activation_global_scale  [n_sources]
    config.json  {"trainer": {...}} with the keys dictionary_learning's BatchTopKCrossCoderTrainer
                 writes (dict_class, activation_dim, dict_size, k, lr, steps, ...), plus an
                 "interp_agent" block: sources (model, hookpoint), training settings, schema version

``BatchTopKCrossCoder.from_pretrained(folder + "/ae.pt")`` of dictionary_learning (the
science-of-finetuning fork, which has the crosscoder classes) reads ``ae.pt`` as it is; its
trainer names the file ``model_final.pt``, which ``load_crosscoder`` also accepts. The weights
are in the crosscoder's normalised units and the normaliser travels in the buffers, so both
libraries encode raw activations the same way.
"""

from __future__ import annotations

import os
import shutil
import tempfile
from pathlib import Path
from typing import Any

import torch

from interp_agent.core.artifacts import atomic_open, replace_dir, schema_version, write_json
from interp_agent.core.crosscoder.model import CROSSCODER_CODE_NORMALIZATION_ID, BatchTopKCrossCoder, CrosscoderShape
from interp_agent.core.errors import InputFileError

WEIGHTS = "ae.pt"
CONFIG = "config.json"
_ALT_WEIGHTS = ("model_final.pt",)
STATE_KEYS = (
    "encoder.weight", "encoder.bias", "decoder.weight", "decoder.bias", "k", "threshold", "code_normalization_id",
    "target_rms", "activation_mean", "activation_std", "activation_global_scale",
)
"""The keys of dictionary_learning's BatchTopKCrossCoder state dict (NormalizableMixin buffers included)."""


def trainer_config(model: BatchTopKCrossCoder, training: dict[str, Any], *, lm_name: str, layer: int | None,
                   submodule_name: str) -> dict[str, Any]:
    """The ``trainer`` block of config.json, with the keys dictionary_learning's BatchTopK crosscoder trainer writes."""
    shape = model.shape
    return {
        "trainer_class": "BatchTopKCrossCoderTrainer", "dict_class": "BatchTopKCrossCoder",
        "lr": training.get("lr"), "steps": training.get("steps"), "auxk_alpha": training.get("aux_coefficient"),
        "warmup_steps": training.get("warmup_steps"), "decay_start": training.get("decay_start"),
        "threshold_beta": None, "threshold_start_step": training.get("threshold_start_step"),
        "top_k_aux": shape.d // 2, "seed": training.get("seed"), "activation_dim": shape.d,
        "dict_size": shape.latent_dim, "k": shape.k, "k_target": shape.k, "k_initial": shape.k,
        "k_annealing_steps": 0, "code_normalization": "CROSSCODER", "code_normalization_alpha_sae": 1.0,
        "code_normalization_alpha_cc": 0.1, "device": "cpu", "layer": layer, "lm_name": lm_name,
        "wandb_name": "interp-agent", "submodule_name": submodule_name, "dict_class_kwargs": {},
        "target_rms": float(model.target_rms), "num_layers": shape.n_sources,
    }


def write_crosscoder_files(folder: Path, model: BatchTopKCrossCoder, config: dict[str, Any]) -> dict[str, Path]:
    """Write ae.pt and config.json into an existing ``folder`` (each file atomically)."""
    state = {key: value.detach().cpu().contiguous() for key, value in model.state_dict().items()}
    with atomic_open(folder / WEIGHTS, "wb") as fh:
        torch.save(state, fh)
    body = {**config, "interp_agent": {"schema_version": schema_version("crosscoder"),
                                       **config.get("interp_agent", {})}}
    return {"weights": folder / WEIGHTS, "config": write_json(folder / CONFIG, body)}


def save_crosscoder(folder: str | Path, model: BatchTopKCrossCoder, config: dict[str, Any]) -> dict[str, Path]:
    """Save into ``folder`` atomically: written in a temporary folder beside it, then swapped in whole."""
    target = Path(folder)
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = Path(tempfile.mkdtemp(prefix=f".{target.name}.", suffix=f".tmp{os.getpid()}", dir=target.parent))
    try:
        write_crosscoder_files(tmp, model, config)
        replace_dir(tmp, target)
    except BaseException:
        shutil.rmtree(tmp, ignore_errors=True)
        raise
    return {"weights": target / WEIGHTS, "config": target / CONFIG}


def load_crosscoder(folder: str | Path) -> tuple[BatchTopKCrossCoder, dict[str, Any]]:
    """A saved crosscoder and its config.json (``{}`` when the folder has none).

    Raises:
        InputFileError: no ae.pt / model_final.pt, or a state dict that is not a CROSSCODER-normalised
            BatchTopK crosscoder (the missing keys or the wrong shape named).
    """
    import json

    path = Path(folder)
    weights = next((path / n for n in (WEIGHTS, *_ALT_WEIGHTS) if (path / n).is_file()), None)
    if weights is None:
        raise InputFileError(path, f"no {WEIGHTS} (or model_final.pt) in the folder",
                             hint="point at a folder written by train-crosscoder or dictionary_learning")
    state = torch.load(weights, map_location="cpu", weights_only=True)
    state = {k.split("_orig_mod.")[-1]: v for k, v in state.items()}  # saved under torch.compile
    missing = [k for k in STATE_KEYS if k not in state]
    if missing:
        raise InputFileError(weights, f"not a BatchTopK crosscoder state dict: missing {missing}")
    if int(state["code_normalization_id"]) != CROSSCODER_CODE_NORMALIZATION_ID or state["threshold"].ndim != 0:
        raise InputFileError(weights, "only the CROSSCODER code normalisation (a single threshold) is supported",
                             hint="retrain with code_normalization=CROSSCODER")
    S, d, m = state["encoder.weight"].shape
    model = BatchTopKCrossCoder(CrosscoderShape(int(S), int(d), int(m), int(state["k"])))
    model.load_state_dict({k: state[k] for k in STATE_KEYS})
    config = json.loads((path / CONFIG).read_text(encoding="utf-8")) if (path / CONFIG).is_file() else {}
    return model.eval(), config
