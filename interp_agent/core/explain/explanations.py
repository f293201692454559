"""Explanations, who wrote them, and their scores.

An :class:`Explanation` is a short text that says what a feature is, with its author
(:class:`Author`: the agent through the tools, a local explainer, a chat endpoint, an import)
and the contexts its author was shown, so a scorer can check it never scores on them.

A :class:`Score` is one scoring protocol's result on held-out contexts: AUROC, balanced
accuracy and F1, each a :class:`Metric` with a bootstrap 95% interval, the two nulls (a
random explanation of another feature on the same contexts, and the same explanation with
the labels shuffled), the judge (for detection and fuzzing), and the provenance of the
number: ``held_out_text`` for the text protocols, ``interventional`` for the output side.

Explanations are stored one per line in ``explanations.jsonl`` (:func:`write_explanations`,
atomic) with schema ``interp-agent.explanation.v1``.
"""

from __future__ import annotations

from collections.abc import Iterable, Iterator
from dataclasses import asdict, dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Literal

from interp_agent.core.artifacts import clean_json, schema_version
from interp_agent.core.errors import InputFileError, ValidationError, arg
from interp_agent.core.formats.jsonl import iter_json_objects, write_jsonl

EXPLANATION_SCHEMA = schema_version("explanation")
MAX_EXPLANATION_CHARS = 400
"""Longest explanation accepted: a label is a phrase or a sentence or two, not an essay."""

AuthorKind = Literal["agent", "local_tokens", "local_model", "chat", "imported", "human"]
Method = Literal["embedding", "detection", "fuzzing", "output"]
Provenance = Literal["held_out_text", "interventional"]
AUTHOR_KINDS: tuple[str, ...] = ("agent", "local_tokens", "local_model", "chat", "imported", "human")


@dataclass(frozen=True, slots=True)
class Author:
    """Who or what wrote an explanation."""

    kind: AuthorKind
    """agent (through the MCP tools), local_tokens (frequent active tokens, no model), local_model (the
    embedded instruct model prompted with the evidence), chat (an OpenAI-compatible endpoint), imported
    (Neuronpedia, Goodfire, a feature JSONL), human."""
    name: str
    """Which one: ``mcp agent``, ``token-frequency v2``, ``smollm2-135m``, the endpoint's model id, ``neuronpedia``."""
    note: str = ""
    """Anything a reader should know (``a 135M model: a weak explainer``)."""


@dataclass(frozen=True, slots=True)
class Explanation:
    """What a feature is, in words."""

    feature_id: str
    text: str
    author: Author
    shown_contexts: tuple[int, ...] = ()
    """Contexts of the evidence set the author was shown (empty for imports: unknown, and scored on held-out
    contexts all the same)."""
    created: str = field(default_factory=lambda: datetime.now(timezone.utc).isoformat(timespec="seconds"))


@dataclass(frozen=True, slots=True)
class Metric:
    """A number with its bootstrap 95% interval (None when it could not be computed)."""

    value: float | None
    ci95: tuple[float, float] | None = None


@dataclass(frozen=True, slots=True)
class Score:
    """One protocol's score of one explanation on held-out contexts."""

    method: Method
    auroc: Metric
    balanced_accuracy: Metric
    f1: Metric
    n_positive: int
    """Held-out items where the feature fires (or correctly marked items, for fuzzing)."""
    n_negative: int
    null_random_explanation: Metric
    """AUROC of another feature's explanation on the same items."""
    null_shuffled_labels: Metric
    """AUROC of this explanation with the labels permuted (mean and 95% range over permutations)."""
    margin_over_random: Metric
    """AUROC minus the random-explanation null's, paired bootstrap interval."""
    judge: str | None = None
    """Who judged (detection and fuzzing): ``agent``, ``smollm2-135m (weak local judge)``, ``chat:<model>``;
    None for the embedding and output scores, which have no judge."""
    provenance: Provenance = "held_out_text"
    contexts: tuple[int, ...] = ()
    """Contexts scored on (all held out)."""
    null_feature: str | None = None
    """Whose explanation the random-explanation null used."""
    note: str = ""

    @property
    def beats_random(self) -> bool:
        """True when the margin over the random-explanation null has an interval above 0."""
        ci = self.margin_over_random.ci95
        return ci is not None and ci[0] > 0


@dataclass(frozen=True, slots=True)
class ScoredExplanation:
    """An explanation and every score it has."""

    explanation: Explanation
    scores: tuple[Score, ...] = ()

    def score(self, method: Method) -> Score | None:
        """The latest score by ``method``, or None."""
        found = [s for s in self.scores if s.method == method]
        return found[-1] if found else None


def check_explanation_text(text: Any, *, name: str = "explanation") -> str:
    """``text`` stripped; ValidationError when it is not a string, is empty, or is over the size limit."""
    if not isinstance(text, str):
        raise ValidationError(f"{arg(name)} must be a string, got {type(text).__name__}")
    text = " ".join(text.split())
    if not text:
        raise ValidationError(f"{arg(name)} is empty", hint="say in a phrase what the feature fires on")
    if len(text) > MAX_EXPLANATION_CHARS:
        raise ValidationError(
            f"{arg(name)} has {len(text)} characters; the limit is {MAX_EXPLANATION_CHARS}",
            hint="say what the feature fires on in a phrase or a sentence; long explanations are not scored")
    return text


# --- disk -----------------------------------------------------------------------------------


def to_json(item: ScoredExplanation) -> dict[str, Any]:
    """One ``explanations.jsonl`` line."""
    raw = asdict(item)
    out = {"schema_version": EXPLANATION_SCHEMA, **raw["explanation"], "scores": raw["scores"]}
    return clean_json(out)


def from_json(raw: dict[str, Any], *, path: str | Path = "<memory>", line: int | None = None) -> ScoredExplanation:
    """Parse one ``explanations.jsonl`` line; InputFileError names the file, line and field."""
    try:
        author = Author(**raw["author"])
        explanation = Explanation(raw["feature_id"], check_explanation_text(raw["text"], name="text"), author,
                                  tuple(raw.get("shown_contexts") or ()), raw.get("created") or "")
        scores = tuple(_score_from_json(s) for s in raw.get("scores") or ())
    except KeyError as exc:
        raise InputFileError(path, "missing field", line=line, field=str(exc.args[0])) from exc
    except (TypeError, ValidationError) as exc:
        raise InputFileError(path, f"malformed explanation: {exc}", line=line) from exc
    return ScoredExplanation(explanation, scores)


def _metric(raw: Any) -> Metric:
    if raw is None:
        return Metric(None)
    ci = raw.get("ci95")
    return Metric(raw.get("value"), None if ci is None else (float(ci[0]), float(ci[1])))


def _score_from_json(raw: dict[str, Any]) -> Score:
    metrics = {k: _metric(raw.get(k)) for k in ("auroc", "balanced_accuracy", "f1", "null_random_explanation",
                                                  "null_shuffled_labels", "margin_over_random")}
    return Score(raw["method"], metrics["auroc"], metrics["balanced_accuracy"], metrics["f1"],
                 int(raw["n_positive"]), int(raw["n_negative"]), metrics["null_random_explanation"],
                 metrics["null_shuffled_labels"], metrics["margin_over_random"], raw.get("judge"),
                 raw.get("provenance", "held_out_text"), tuple(raw.get("contexts") or ()), raw.get("null_feature"),
                 raw.get("note", ""))


def write_explanations(path: str | Path, items: Iterable[ScoredExplanation]) -> Path:
    """Write ``explanations.jsonl`` atomically."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    return write_jsonl(path, (to_json(item) for item in items))


def iter_explanations(path: str | Path) -> Iterator[ScoredExplanation]:
    """Read ``explanations.jsonl``; InputFileError names the file and line of a bad one."""
    for number, raw in iter_json_objects(path):
        yield from_json(raw, path=path, line=number)
