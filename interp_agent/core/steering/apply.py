"""Generate with a saved steering vector, side by side with the unsteered text, and measure the shift.

Per prompt: greedy continuations without and with ``scale * strength * direction`` added at
the vector's hookpoint(s), and KL(unsteered || steered) of next-token distributions, in nats:
at the last prompt position, and averaged over the positions of the unsteered continuation
(teacher-forced, so both distributions see the same tokens). These are single edits without
controls; the controlled, held-out effect of the same edit is in the ``intervene`` summary
the vector came from.
"""

from __future__ import annotations

import math
from collections.abc import Callable, Iterator, Sequence
from contextlib import ExitStack, contextmanager
from pathlib import Path
from typing import Any

import numpy as np
import torch

from interp_agent.core.artifacts import schema_version
from interp_agent.core.errors import ValidationError, arg
from interp_agent.core.steering.files import load_steering
from interp_agent.core.steering.vectors import POSITIONS, SteeringVector

KL_NOTE = ("KL(unsteered || steered) of next-token distributions, nats: at the last prompt position, and the mean "
           "over the positions of the unsteered continuation (teacher-forced)")
CAVEAT = ("single greedy generations without controls, labelled interventional; the strength was chosen by intervene "
          "on its calibration prompts, so prompts from that split are not evidence for it (its summary.json holds "
          "the held-out effect with controls)")


EMBEDDED_HUB_ID = "HuggingFaceTB/SmolLM2-135M-Instruct"
"""The hub checkpoint the embedded model's GGUF file quantises."""


def same_model(a: str, b: str) -> bool:
    """Whether two model names denote the same model (the embedded model's aliases and the hub id of the
    checkpoint it quantises, whose residual basis it shares; folders by resolved path)."""
    from interp_agent.core.models.loading import EMBEDDED_ALIASES

    def norm(name: str) -> str:
        if name.strip().lower() in EMBEDDED_ALIASES | {EMBEDDED_HUB_ID.lower()}:
            return "smollm2-135m"
        path = Path(name).expanduser()
        return str(path.resolve()) if path.is_dir() else name.strip()

    return norm(a) == norm(b)


def check_compatible(vec: SteeringVector, loaded: Any) -> None:
    """Refuse a vector made for another model or width, naming both shapes.

    Raises:
        ValidationError: the widths differ, the models differ, or a hookpoint is missing or of another width.
    """
    from interp_agent.core.models import resolve_hookpoint

    made_for = vec.model or "an unnamed model"
    if vec.d_model != loaded.d_model:
        raise ValidationError(
            f"steering vector d_model {vec.d_model} for {made_for}, model d_model {loaded.d_model} ({loaded.name})",
            hint="apply it to the model it was exported from, or export one from an intervene run of this model")
    if vec.model and not same_model(vec.model, loaded.name):
        raise ValidationError(
            f"steering vector for {vec.model} (d_model {vec.d_model}), model {loaded.name} (d_model {loaded.d_model}):"
            " a direction means nothing in another model's residual basis",
            hint=f"load {vec.model}, or export a vector from an intervene run of {loaded.name}")
    for hook in vec.hookpoints:
        try:
            width = resolve_hookpoint(loaded.model, hook).width
        except ValidationError as exc:
            raise ValidationError(f"steering vector hookpoint {hook} does not exist in {loaded.name} "
                                  f"({loaded.n_layers} layers): {exc.message}") from None
        if width != vec.d_model:
            raise ValidationError(f"steering vector d_model {vec.d_model} at {hook}, but {hook} of {loaded.name} "
                                  f"has width {width}")


def _add_fn(added_D: torch.Tensor, positions: str) -> Callable[[torch.Tensor], torch.Tensor]:
    """Adds ``added_D`` at every position, or at every one but a full sequence's first (as intervene edits)."""

    def fn(acts_BTD: torch.Tensor) -> torch.Tensor:
        new = acts_BTD + added_D.to(dtype=acts_BTD.dtype, device=acts_BTD.device)
        if positions == "after_first" and acts_BTD.shape[1] > 1:
            new[:, :1] = acts_BTD[:, :1]
        return new

    return fn


@contextmanager
def steering(loaded: Any, vec: SteeringVector, *, scale: float = 1.0, positions: str | None = None) -> Iterator[None]:
    """While inside, every forward pass of ``loaded`` adds ``scale * strength * direction`` at each hookpoint."""
    from interp_agent.core.models.hooks import edit

    where = positions or vec.positions
    with ExitStack() as stack:
        for i, hook in enumerate(vec.hookpoints):
            added = torch.from_numpy(vec.added(i)) * float(scale)
            stack.enter_context(edit(loaded.model, hook, _add_fn(added, where)))
        yield


def _generate(loaded: Any, prompts: Sequence[str], max_new_tokens: int, batch_size: int, first_kept: bool
              ) -> list[list[int]]:
    """Greedy new token ids per prompt (cut at the first end-of-sequence token), left-padded batches."""
    from interp_agent.core.models.hooks import left_padded

    tok, model = loaded.tokenizer, loaded.model
    stop = {t for t in (tok.eos_token_id, tok.pad_token_id) if t is not None}
    out: list[list[int]] = []
    side = tok.padding_side
    tok.padding_side = "left"  # generation appends on the right
    try:
        with torch.no_grad():
            for start in range(0, len(prompts), batch_size):
                enc = tok(list(prompts[start:start + batch_size]), return_tensors="pt", padding=True)
                enc = {k: v.to(model.device) for k, v in enc.items()}
                with left_padded(enc["attention_mask"]) if first_kept else ExitStack():
                    ids = model.generate(**enc, max_new_tokens=max_new_tokens, do_sample=False,
                                         pad_token_id=tok.pad_token_id)
                for row in ids[:, enc["input_ids"].shape[1]:].tolist():
                    cut = next((j for j, t in enumerate(row) if t in stop), len(row))
                    out.append(row[:cut])
    finally:
        tok.padding_side = side
    return out


def _logprobs(loaded: Any, ids: list[int]) -> torch.Tensor:
    """Next-token log-probabilities at every position of one unpadded sequence, [T, vocab]."""
    model = loaded.model
    with torch.no_grad():
        logits = model(input_ids=torch.tensor([ids], device=model.device)).logits[0]
    return torch.log_softmax(logits.float(), -1).cpu()


def _kl(base_TV: torch.Tensor, edited_TV: torch.Tensor) -> np.ndarray:
    return (base_TV.exp() * (base_TV - edited_TV)).sum(-1).clamp_min(0).numpy()


def _prompt_row(loaded: Any, vec: SteeringVector, text: str, plain: list[int], steered: list[int], *,
                scale: float, positions: str) -> dict[str, Any]:
    """One prompt's texts, next tokens and KLs (at its last position, and along the unsteered continuation)."""
    tok = loaded.tokenizer
    prompt_ids = tok(text)["input_ids"]
    ids = prompt_ids + plain
    base = _logprobs(loaded, ids)
    with steering(loaded, vec, scale=scale, positions=positions):
        edited = _logprobs(loaded, ids)
    span = slice(len(prompt_ids) - 1, len(ids) - 1 if plain else len(prompt_ids))
    kls = _kl(base[span], edited[span])
    last = len(prompt_ids) - 1
    return {"prompt": text, "unsteered": tok.decode(plain, skip_special_tokens=True),
            "steered": tok.decode(steered, skip_special_tokens=True), "changed": plain != steered,
            "next_token_unsteered": tok.decode([int(base[last].argmax())]),
            "next_token_steered": tok.decode([int(edited[last].argmax())]),
            "kl_next_token": float(kls[0]), "kl_mean_generated": float(kls.mean()), "n_generated": len(plain)}


def _check_args(prompts: Sequence[str], max_new_tokens: int, scale: float, positions: str | None) -> list[str]:
    texts = [prompts] if isinstance(prompts, str) else list(prompts)
    if not texts or any(not isinstance(t, str) or not t.strip() for t in texts):
        raise ValidationError(f"{arg('prompts')} must be one or more non-empty texts", hint="e.g. 'The rope is 12'")
    if not isinstance(max_new_tokens, int) or not 1 <= max_new_tokens <= 512:
        raise ValidationError(f"{arg('max_new_tokens', max_new_tokens)} must be a whole number in 1..512")
    if not math.isfinite(scale):
        raise ValidationError(f"{arg('scale', scale)} must be a finite number (1: the exported strength)")
    if positions is not None and positions not in POSITIONS:
        raise ValidationError(f"{arg('positions', positions)} must be one of {list(POSITIONS)}")
    return texts


def apply_steering(
    model: Any,
    vector_path: str | Path | SteeringVector,
    prompts: Sequence[str],
    *,
    max_new_tokens: int = 20,
    scale: float = 1.0,
    seed: int = 0,
    positions: str | None = None,
    batch_size: int = 8,
) -> dict[str, Any]:
    """Greedy continuations of ``prompts`` without and with a saved steering vector, and the KL between them.

    Args:
        model: a loaded model (``load_model``) or a name to load (``smollm2-135m``, a folder, a hub id).
        vector_path: a steering vector file (safetensors or control-vector GGUF), or a ``SteeringVector``.
        prompts: the texts to continue.
        max_new_tokens: tokens generated per prompt (greedy).
        scale: multiplies the exported strength (1: as exported, 0: no edit, -1: the opposite direction).
        seed: seeds torch (greedy decoding is deterministic; the seed is recorded).
        positions: ``after_first`` (as intervene edits) or ``all`` (as llama.cpp adds); default the vector's.

    Returns:
        ``{schema_version, provenance: 'interventional', model, vector, settings, prompts: [{prompt, unsteered,
        steered, changed, next_token_unsteered, next_token_steered, kl_next_token, kl_mean_generated,
        n_generated}], mean_kl_next_token, mean_kl_generated, n_changed, kl, note, synthetic}``.

    Raises:
        ValidationError: bad arguments, or a vector made for another model or width (both shapes named).
        InputFileError: the vector file is missing or malformed.
    """
    texts = _check_args(prompts, max_new_tokens, scale, positions)
    vec = vector_path if isinstance(vector_path, SteeringVector) else load_steering(vector_path)
    if isinstance(model, str):
        from interp_agent.core.models import load_model

        model = load_model(model)
    check_compatible(vec, model)
    where = positions or vec.positions
    torch.manual_seed(seed)
    plain = _generate(model, texts, max_new_tokens, batch_size, first_kept=where == "after_first")
    with steering(model, vec, scale=scale, positions=where):
        steered = _generate(model, texts, max_new_tokens, batch_size, first_kept=where == "after_first")
    rows = [_prompt_row(model, vec, t, p, s, scale=scale, positions=where)
            for t, p, s in zip(texts, plain, steered, strict=True)]
    return {
        "schema_version": schema_version("steering_run"), "provenance": "interventional", "model": model.name,
        "vector": {"path": None if isinstance(vector_path, SteeringVector) else str(vector_path),
                   "feature_id": vec.feature_id, "model": vec.model, "d_model": vec.d_model,
                   "hookpoints": list(vec.hookpoints), "strength": vec.strength, "scale": scale,
                   "added_norm": [abs(scale) * float(np.linalg.norm(vec.added(i))) for i in range(len(vec.hookpoints))],
                   "strength_source": vec.provenance.get("strength_source"), "synthetic": vec.synthetic},
        "settings": {"max_new_tokens": max_new_tokens, "decoding": "greedy", "seed": seed, "positions": where},
        "prompts": rows, "mean_kl_next_token": float(np.mean([r["kl_next_token"] for r in rows])),
        "mean_kl_generated": float(np.mean([r["kl_mean_generated"] for r in rows])),
        "n_changed": sum(r["changed"] for r in rows), "kl": KL_NOTE, "note": CAVEAT, "synthetic": vec.synthetic,
    }
