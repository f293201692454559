"""Reading Neuronpedia's live feature JSON and SAEDashboard exports into feature cards.

Two payload shapes carry the same dashboard data: Neuronpedia's live API answer
(camelCase: ``modelId``, ``layer`` = SAE id, ``maxActApprox``, ``hookName``,
``explanations[].description``, ``activations[]`` with ``tokens``/``values``/``maxValue``/
``maxValueTokenIndex``) and SAEDashboard's export (snake_case: one feature with
``feature_index``, or a batch ``{model_id, layer, sae_set, features}``). Both share
``pos_str``/``pos_values``, ``neg_str``/``neg_values`` and ``frac_nonzero``. Tokens spelled
in GPT-2's byte-level alphabet (``âĢľ``, ``Ġ``) are decoded for display.
"""

from __future__ import annotations

import codecs
import datetime as _dt
import json
import math
import re
from collections.abc import Sequence
from pathlib import Path
from typing import Any

from interp_agent.core.bridges.cards import CardExample, FeatureCard, feature_id_for
from interp_agent.core.errors import InputFileError
from interp_agent.core.ids import hook_layer

MAX_EXAMPLES = 10
"""Top examples kept per card (highest activation first, duplicates dropped)."""

_SAE_LAYER = re.compile(r"^(\d+)-")


def layer_of_sae(sae_id: str | None) -> int | None:
    """The layer a Neuronpedia SAE id starts with (``6-res_scefr-ajt`` -> 6), or None."""
    m = _SAE_LAYER.match(sae_id or "")
    return int(m.group(1)) if m else None


class PayloadShapeError(Exception):
    """A payload lacks or mistypes a field (turned into a file or service error by the caller)."""

    def __init__(self, field: str, message: str) -> None:
        super().__init__(f"field '{field}': {message}")
        self.field = field
        self.message = message


def _byte_decoder() -> dict[str, int]:
    """GPT-2's byte-level BPE alphabet, character -> byte (printable bytes map to themselves)."""
    keep = [*range(ord("!"), ord("~") + 1), *range(ord("¡"), ord("¬") + 1), *range(ord("®"), ord("ÿ") + 1)]
    shifted = [b for b in range(256) if b not in keep]
    table = {chr(b): b for b in keep}
    table.update({chr(256 + i): b for i, b in enumerate(shifted)})
    return table


_BYTES = _byte_decoder()
_CONTROL = re.compile(r"[\x00-\x08\x0b\x0c\x0e-\x1f\x7f]")


def decode_token_text(text: str) -> str:
    """Undo GPT-2 byte-level BPE spelling (``âĢľ`` -> ``“``, ``Ġ`` -> space) where the text uses it.

    Dashboards store tokens as the tokenizer spells them. Text with none of the
    alphabet's shifted characters (U+0100..U+0143), or that does not decode to clean
    UTF-8, is returned unchanged.
    """
    if not any("\u0100" <= c <= "\u0143" for c in text):
        return text
    try:
        decoded = _to_bytes(text).decode("utf-8")
    except UnicodeDecodeError:
        return text
    return text if _CONTROL.search(decoded) else decoded


def _to_bytes(text: str) -> bytes:
    return b"".join(bytes([_BYTES[c]]) if c in _BYTES else c.encode("utf-8") for c in text)


def decode_tokens(tokens: Sequence[str]) -> tuple[str, ...]:
    """Decode a token sequence like :func:`decode_token_text`, keeping one string per token.

    A character split over several tokens (``âĢ`` + ``ľ``) goes to the token that
    completes it, so the decoded tokens join to the decoded text. Tokens are returned
    unchanged when the whole sequence does not decode cleanly.
    """
    text = "".join(tokens)
    if decode_token_text(text) == text:
        return tuple(tokens)
    decoder = codecs.getincrementaldecoder("utf-8")()
    return tuple(decoder.decode(_to_bytes(t)) for t in tokens)


def _number(value: Any, field: str) -> float | None:
    if value is None:
        return None
    if isinstance(value, bool) or not isinstance(value, (int, float, str)):
        raise PayloadShapeError(field, f"expected a number, got {type(value).__name__}")
    try:
        number = float(value)
    except ValueError:
        raise PayloadShapeError(field, f"expected a number, got {value!r}") from None
    if not math.isfinite(number):
        raise PayloadShapeError(field, f"expected a finite number, got {value!r}")
    return number


def _index(obj: dict[str, Any]) -> int:
    for key in ("index", "feature_index"):
        value = obj.get(key)
        if value is None:
            continue
        if isinstance(value, bool) or not re.fullmatch(r"\d+", str(value).strip()):
            raise PayloadShapeError(key, f"expected a non-negative integer, got {value!r}")
        return int(str(value).strip())
    raise PayloadShapeError("index", "no feature index (index or feature_index); the answer holds no feature")


def _list(obj: dict[str, Any], key: str) -> list[Any]:
    value = obj.get(key)
    if value is None:
        return []
    if not isinstance(value, list):
        raise PayloadShapeError(key, f"expected a list, got {type(value).__name__}")
    return value


def _logits(obj: dict[str, Any], sign: str) -> tuple[tuple[str, float], ...]:
    tokens, values = _list(obj, f"{sign}_str"), _list(obj, f"{sign}_values")
    if len(tokens) != len(values):
        raise PayloadShapeError(f"{sign}_values", f"{len(values)} values for {len(tokens)} tokens in {sign}_str")
    return tuple(
        (decode_token_text(str(t)), _number(v, f"{sign}_values") or 0.0) for t, v in zip(tokens, values, strict=True)
    )


def _example(act: Any, where: str) -> CardExample | None:
    if not isinstance(act, dict):
        raise PayloadShapeError(where, f"expected an object, got {type(act).__name__}")
    tokens, values = _list(act, "tokens"), _list(act, "values")
    if not tokens:
        return None
    if len(tokens) != len(values):
        raise PayloadShapeError(f"{where}.values", f"{len(values)} values for {len(tokens)} tokens")
    vals = tuple(_number(v, f"{where}.values") or 0.0 for v in values)
    toks = decode_tokens([str(t) for t in tokens])
    peak = act.get("maxValueTokenIndex")
    if not (isinstance(peak, int) and not isinstance(peak, bool) and 0 <= peak < len(vals)):
        peak = max(range(len(vals)), key=vals.__getitem__)
    top = _number(act.get("maxValue"), f"{where}.maxValue")
    return CardExample(
        text="".join(toks), tokens=toks, values=vals,
        max_value=max(vals) if top is None else top, max_token_index=peak,
    )


def _explanations(obj: dict[str, Any]) -> tuple[tuple[str, ...], list[dict[str, Any]]]:
    texts, detail = [], []
    for i, e in enumerate(_list(obj, "explanations")):
        if not isinstance(e, dict):
            raise PayloadShapeError(f"explanations[{i}]", f"expected an object, got {type(e).__name__}")
        text = e.get("description")
        if isinstance(text, str) and text.strip():
            texts.append(" ".join(text.split()))
            detail.append({"description": texts[-1], "model": e.get("explanationModelName"), "type": e.get("typeName")})
    return tuple(texts), detail


def card_from_feature(
    obj: Any, source: dict[str, Any], *, model_id: str | None = None, sae_id: str | None = None,
    layer: int | None = None,
) -> FeatureCard:
    """One feature of either payload shape (live API or SAEDashboard) as a card.

    Args:
        obj: the feature object.
        source: provenance (``kind``, ``url`` or ``file``, ``retrieved_at``, ``format``).
        model_id, sae_id, layer: context a batch gives its features (a feature's own fields win).

    Raises:
        PayloadShapeError: a field is missing or mistyped (callers turn it into an error naming file or URL).
    """
    if not isinstance(obj, dict):
        raise PayloadShapeError("(feature)", f"expected a JSON object, got {type(obj).__name__}")
    index = _index(obj)
    model = obj.get("modelId") if isinstance(obj.get("modelId"), str) else model_id
    sae = obj.get("layer") if isinstance(obj.get("layer"), str) else sae_id
    hook = obj.get("hookName") if isinstance(obj.get("hookName"), str) else None
    layer = layer_of_sae(sae) if layer_of_sae(sae) is not None else (
        layer if layer is not None else hook_layer(hook or ""))
    examples: list[CardExample] = []
    seen: set[str] = set()
    parsed = [_example(a, f"activations[{i}]") for i, a in enumerate(_list(obj, "activations"))]
    for ex in sorted((e for e in parsed if e is not None), key=lambda e: -(e.max_value or 0.0)):
        if ex.text not in seen:
            seen.add(ex.text)
            examples.append(ex)
    density = _number(obj.get("frac_nonzero"), "frac_nonzero")
    if density is not None and not 0.0 <= density <= 1.0:
        raise PayloadShapeError("frac_nonzero", f"{density!r} is not a fraction in [0, 1]")
    top = _number(obj.get("maxActApprox"), "maxActApprox")
    if top is None and examples:
        top = max(e.max_value or 0.0 for e in examples)
    explanations, detail = _explanations(obj)
    extra = {k: obj[k] for k in ("dataset", "n_prompts_total", "n_tokens_in_prompt") if obj.get(k) is not None}
    if detail:
        extra["explanations"] = detail
    return FeatureCard(
        feature_id=feature_id_for(layer, index, sae), index=index, source=dict(source), model=model, sae_id=sae,
        layer=layer, explanations=explanations, examples=tuple(examples[:MAX_EXAMPLES]),
        positive_logits=_logits(obj, "pos"), negative_logits=_logits(obj, "neg"), density=density,
        max_activation=top, hookpoint=hook, extra=extra,
    )


def cards_from_payload(payload: Any, source: dict[str, Any]) -> list[FeatureCard]:
    """Every feature in a payload: one live-API feature, one SAEDashboard feature, a batch, or a list.

    Raises:
        PayloadShapeError: the payload holds no feature, or a field is missing or mistyped.
    """
    if isinstance(payload, dict) and isinstance(payload.get("features"), list):
        sae_set = payload.get("sae_set")
        batch_layer = payload.get("layer") if isinstance(payload.get("layer"), int) else None
        sae = f"{batch_layer}-{sae_set}" if batch_layer is not None and isinstance(sae_set, str) else None
        src = source | {"format": "saedashboard-batch"}
        model = payload.get("model_id") if isinstance(payload.get("model_id"), str) else None
        items = payload["features"]
        cards = []
        for i, f in enumerate(items):
            try:
                cards.append(card_from_feature(f, src, model_id=model, sae_id=sae, layer=batch_layer))
            except PayloadShapeError as exc:
                raise PayloadShapeError(f"features[{i}].{exc.field}", exc.message) from None
    elif isinstance(payload, list):
        cards = []
        for i, f in enumerate(payload):
            try:
                cards.append(card_from_feature(f, source | {"format": _format_of(f)}))
            except PayloadShapeError as exc:
                raise PayloadShapeError(f"[{i}].{exc.field}", exc.message) from None
    else:
        cards = [card_from_feature(payload, source | {"format": _format_of(payload)})]
    if not cards:
        raise PayloadShapeError("features", "the payload lists no features")
    return cards


def _format_of(obj: Any) -> str:
    live = isinstance(obj, dict) and any(k in obj for k in ("modelId", "maxActApprox", "explanations"))
    return "neuronpedia-api" if live else "saedashboard-feature"


def read_export(path: str | Path) -> list[FeatureCard]:
    """Cards from a JSON file: a SAEDashboard feature or batch export, or saved live-API answers.

    Raises:
        InputFileError: the file is missing, not JSON, or has no usable feature (names the field).
    """
    p = Path(path)
    if not p.is_file():
        raise InputFileError(p, "file not found", hint="give a SAEDashboard export (.json) or a Neuronpedia ref")
    try:
        payload = json.loads(p.read_text(encoding="utf-8"))
    except (json.JSONDecodeError, UnicodeDecodeError) as exc:
        raise InputFileError(p, f"not JSON: {exc}", hint="a SAEDashboard export is one JSON document") from None
    source = {"kind": "neuronpedia", "file": str(p), "retrieved_at": now_utc()}
    try:
        return cards_from_payload(payload, source)
    except (PayloadShapeError, ValueError) as exc:
        field = exc.field if isinstance(exc, PayloadShapeError) else None
        message = exc.message if isinstance(exc, PayloadShapeError) else str(exc)
        raise InputFileError(p, message, field=field,
                             hint="expected a SAEDashboard feature/batch export or a Neuronpedia API answer") from None


def now_utc() -> str:
    """The current UTC time, ISO 8601, to the second."""
    return _dt.datetime.now(_dt.timezone.utc).replace(microsecond=0).isoformat()
