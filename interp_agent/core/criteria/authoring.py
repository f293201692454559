"""Criterion authoring: a criterion in words becomes a scored, balanced, gated prompt set; and prompts get scored.

- :func:`criterion_brief`: what a good set needs, as JSON an agent reads before writing prompts.
- :func:`compile_criterion`: prompts from the agent (lists or a file), from the embedded instruct
  model (``source="model"``) or from a template spec (``source="template"``), through every gate of
  :mod:`.gates`; writes ``prompts.jsonl`` (scored prompts, readable by ``inspect --dataset``) and
  ``criterion_set.json`` (how the set was made and every gate's result).
- :func:`score_prompts`: scores any prompt file with a MiniLM classifier fitted on a labelled set
  (a pack, a compiled set or a scored-prompts file) and reports its held-out accuracy.
"""

from __future__ import annotations

import json
import os
from collections.abc import Callable, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import TYPE_CHECKING, Any, Literal

from interp_agent.core.artifacts import replace_dir, run_provenance, schema_version, write_json
from interp_agent.core.criteria import gates as G
from interp_agent.core.criteria.packs import normalise_text
from interp_agent.core.criteria.templates import TemplateSpec
from interp_agent.core.errors import InputFileError, ValidationError, arg
from interp_agent.core.formats.jsonl import Fields, iter_json_objects, write_jsonl
from interp_agent.core.formats.prompts import ScoredPrompt
from interp_agent.core.ranking.heldout import PROMPT_COUNT_ADVICE, RECOMMENDED_PROMPTS_PER_CLASS
from interp_agent.core.ranking.splits import HELD_OUT_FRACTION

if TYPE_CHECKING:
    from interp_agent.core.matching.text import Encoder

Origin = Literal["agent", "generated", "template"]
AuthorSource = Literal["agent", "model", "template"]
CRITERION_SET_SCHEMA = schema_version("criterion_set")
PROMPT_SCORES_SCHEMA = schema_version("prompt_scores")
DEFAULT_PER_CLASS = 40
"""Prompts of each class generated or expanded when ``n_per_class`` is not given."""


def criterion_brief(criterion: str) -> dict[str, Any]:
    """What a good prompt set for ``criterion`` needs: counts, and every gate with its threshold and why."""
    if not criterion.strip():
        raise ValidationError(f"{arg('criterion')} must say in words what should hold", hint="e.g. 'the text is "
                              "written in French'")
    return {
        "criterion": criterion,
        "per_class": {"recommended": RECOMMENDED_PROMPTS_PER_CLASS, "minimum": G.MIN_PER_CLASS,
                      "advice": PROMPT_COUNT_ADVICE},
        "write": [
            "positives: texts where the criterion holds; negatives: texts where it does not",
            "pair them: each negative like a positive in topic, shape and length, differing in the criterion only",
            "vary wording, topics and sentence openings and endings; no word or phrase should mark one class "
            "unless the criterion is about it",
        ],
        "gates": {
            "exact_duplicates": "no text twice (case and whitespace folded), not even across classes",
            "near_duplicates": f"no two prompts of the same class at all-MiniLM-L6-v2 cosine >= "
                               f"{G.NEAR_DUPLICATE_COSINE} (minimal pairs across classes are fine)",
            "class_balance": f"each class >= {G.MIN_CLASS_SHARE:.0%} of the set and >= {G.MIN_PER_CLASS} prompts",
            "length_confound": f"length alone (words, model tokens) must not predict the label: AUROC <= 0.5 + "
                               f"max({G.LENGTH_AUROC_MARGIN}, 2.58 null SE)",
            "lexical_confound": f"no token unrelated to the criterion may alone reach balanced accuracy "
                                f"{G.CARRIER_BALANCED_ACCURACY} (unrelated: not a criterion word, not in "
                                f"expected_words, not a function word, MiniLM cosine with the criterion < "
                                f"{G.RELATED_COSINE}); a bag-of-words classifier's held-out accuracy is reported",
            "held_out_agreement": f"a MiniLM classifier fitted on the calibration split must reach held-out "
                                  f"accuracy >= {G.MIN_AGREEMENT} ({HELD_OUT_FRACTION:.0%} held out by prompt-id hash)",
        },
        "sources": {"agent": "give positives and negatives (or a prompts file)",
                    "model": "the embedded SmolLM2-135M-Instruct writes candidates, filtered by the same gates; "
                             "seed examples make the filter much better",
                    "template": "a JSON/YAML spec of per-class patterns with {slot} fillers"},
    }


@dataclass(frozen=True, slots=True)
class CompiledCriterion:
    """A gated criterion set and how it was made."""

    criterion: str
    """The criterion in words."""
    prompts: tuple[ScoredPrompt, ...]
    """The prompts, criterion_score 1 (holds) or 0."""
    origins: tuple[Origin, ...]
    """Where each prompt came from: the agent, the model (generated) or a template."""
    gates: tuple[G.GateResult, ...]
    """Every gate's result."""
    made: dict[str, Any]
    """How the set was made: source, model and sampling, seed, template hash, filter record, counts."""
    folder: Path | None = None
    """Where prompts.jsonl and criterion_set.json were written (None: not written)."""
    notes: tuple[str, ...] = field(default_factory=tuple)
    """Caveats (e.g. the agreement gate is optimistic on generated sets)."""

    @property
    def passed(self) -> bool:
        """Whether every gate passed."""
        return all(g.passed for g in self.gates)

    @property
    def failed_gates(self) -> list[str]:
        """Names of the gates that failed."""
        return [g.gate for g in self.gates if not g.passed]

    def to_json(self) -> dict[str, Any]:
        """The ``criterion_set.json`` payload (without provenance)."""
        n_pos = sum(p.criterion_score >= 0.5 for p in self.prompts)
        counts = {"total": len(self.prompts), "positive": n_pos, "negative": len(self.prompts) - n_pos,
                  "by_origin": {o: self.origins.count(o) for o in sorted(set(self.origins))}}
        return {"schema_version": CRITERION_SET_SCHEMA, "criterion": self.criterion, "passed": self.passed,
                "failed_gates": self.failed_gates, "made": self.made, "counts": counts,
                "gates": [g.to_json() for g in self.gates], "notes": list(self.notes),
                "files": {"prompts": "prompts.jsonl"}, "provenance_of_numbers": "correlational"}


def gate_failure_message(gates: Sequence[G.GateResult]) -> str:
    """One message naming each failed gate, its number and threshold, and up to 5 offending prompts."""
    parts = []
    for g in gates:
        if g.passed:
            continue
        shown = "; ".join(o.describe() for o in g.offenders[:G.MAX_QUOTED])
        more = f" (+{len(g.offenders) - G.MAX_QUOTED} more)" if len(g.offenders) > G.MAX_QUOTED else ""
        parts.append(f"gate {g.gate} failed: {g.detail}" + (f" — prompts: {shown}{more}" if shown else ""))
    return " | ".join(parts)


def _read_labelled(path: Path) -> tuple[list[ScoredPrompt], list[int | None]]:
    """Scored prompts of a JSONL file and the line of each (lines are what gate messages quote)."""
    prompts: list[ScoredPrompt] = []
    lines: list[int | None] = []
    for line, obj in iter_json_objects(path):
        f = Fields(obj, path, line)
        score = f.number("criterion_score")
        if score not in (0, 1):
            raise f.error("criterion_score", f"must be 0 or 1 in a criterion set, got {score}",
                          hint="label each prompt 1 (the criterion holds) or 0")
        prompts.append(ScoredPrompt(f.string("prompt_id", required=False) or f"line-{line}", f.string("text"),
                                    float(score)))
        lines.append(line)
    if not prompts:
        raise InputFileError(path, "no prompts in file", hint="one JSON object a line: {prompt_id, text, "
                             "criterion_score}")
    return prompts, lines


def _check_texts(name: str, texts: Sequence[str] | None) -> list[str]:
    if texts is None:
        return []
    if isinstance(texts, str):
        raise ValidationError(f"{arg(name)} must be a list of texts, got one string", hint=f"wrap it: [{texts[:30]!r}]")
    for i, t in enumerate(texts):
        if not isinstance(t, str) or not t.strip():
            raise ValidationError(f"{arg(name)}[{i}] is empty or not text: {t!r}", hint="remove it or write it")
    return list(texts)


def _labelled(positives: Sequence[str], negatives: Sequence[str], origin: Origin,
              start: int = 0) -> tuple[list[ScoredPrompt], list[Origin]]:
    tag = {"agent": "", "generated": "gen-", "template": "tpl-"}[origin]
    prompts = [ScoredPrompt(f"{tag}pos-{start + i}", t, 1.0) for i, t in enumerate(positives)]
    prompts += [ScoredPrompt(f"{tag}neg-{start + i}", t, 0.0) for i, t in enumerate(negatives)]
    return prompts, [origin] * len(prompts)


def token_counter(model: str | None) -> Callable[[str], int] | None:
    """Counts a text's tokens with ``model``'s tokenizer (the embedded one, or a local folder); None: no model."""
    if model is None:
        return None
    from transformers import AutoTokenizer

    from interp_agent.core.models.loading import EMBEDDED_ALIASES, ensure_embedded_cache

    folder = ensure_embedded_cache() if model.strip().lower() in EMBEDDED_ALIASES else Path(model)
    if not Path(folder).is_dir():
        raise ValidationError(f"{arg('tokenizer_model', model)} is neither the embedded model nor a local folder",
                              hint="use smollm2-135m, a folder saved with save_pretrained, or None for word counts")
    tok = AutoTokenizer.from_pretrained(str(folder))
    return lambda text: len(tok(text, add_special_tokens=False)["input_ids"])


def _from_model(criterion: str, seeds: list[ScoredPrompt], n_per_class: int, seed: int, model: str,
                encoder: Encoder) -> tuple[list[ScoredPrompt], list[Origin], dict[str, Any], Any]:
    from interp_agent.core.criteria.generate import Sampling, filter_candidates, generate_candidates, sampling_record
    from interp_agent.core.models.loading import load_model

    loaded = load_model(model)
    sampling = Sampling(seed=seed)
    candidates = generate_candidates(loaded, criterion, n_per_class, sampling, seeds)
    kept, record = filter_candidates(candidates, criterion, encoder, n_per_class, seeds)
    prompts, origins = _labelled(kept[True], kept[False], "generated")
    made = {"generation": sampling_record(sampling, loaded.name) | {"filter": record}}
    return prompts, origins, made, loaded.tokenizer


def _gather(criterion: str, source: AuthorSource, positives: list[str], negatives: list[str],
            prompts_file: Path | None, template: str | Path | dict | TemplateSpec | None, n_per_class: int,
            seed: int,
            model: str, encoder: Encoder) -> tuple[list[ScoredPrompt], list[Origin], list[int | None] | None,
                                                   dict[str, Any], Any]:
    """The set's prompts, their origins, file lines (when from a file), the 'made' record, a generation tokenizer."""
    made: dict[str, Any] = {"source": source, "seed": seed}
    given, origins = _labelled(positives, negatives, "agent")
    lines: list[int | None] | None = None
    if prompts_file is not None:
        from_file, lines = _read_labelled(prompts_file)
        if given:
            raise ValidationError(f"give {arg('prompts')} or {arg('positives')}/{arg('negatives')}, not both")
        agent: list[Origin] = ["agent"] * len(from_file)
        given, origins = from_file, agent
        made["prompts_file"] = str(prompts_file)
    if source == "agent":
        if not given:
            raise ValidationError(f"{arg('source', 'agent')} needs prompts: give {arg('positives')} and "
                                  f"{arg('negatives')} or a prompts file", hint="read the brief first (no prompts)")
        return given, origins, lines, made, None
    if source == "template":
        from interp_agent.core.criteria.templates import expand_template, load_template, parse_template

        if template is None:
            raise ValidationError(f"{arg('source', 'template')} needs {arg('template')}: a JSON/YAML spec file")
        spec = (template if isinstance(template, TemplateSpec) else parse_template(template)
                if isinstance(template, dict) else load_template(template))
        pos, neg = expand_template(spec, n_per_class, seed)
        made["template"] = {"path": spec.path, "sha256": spec.sha256, "n_patterns": {
            "positive": len(spec.positive), "negative": len(spec.negative)}, "slots": sorted(spec.slots)}
        extra, extra_origins = _labelled(pos, neg, "template")
        return given + extra, origins + extra_origins, _pad(lines, len(extra)), made, None
    if source != "model":
        raise ValidationError(f"{arg('source', source)} must be 'agent', 'model' or 'template'")
    extra, extra_origins, gen, tokenizer = _from_model(criterion, given, n_per_class, seed, model, encoder)
    return given + extra, origins + extra_origins, _pad(lines, len(extra)), made | gen, tokenizer


def _pad(lines: list[int | None] | None, n: int) -> list[int | None] | None:
    return None if lines is None else lines + [None] * n


def compile_criterion(
    criterion: str, *, positives: Sequence[str] | None = None, negatives: Sequence[str] | None = None,
    prompts: str | Path | None = None, source: AuthorSource = "agent",
    template: str | Path | dict | TemplateSpec | None = None,
    n_per_class: int = DEFAULT_PER_CLASS, seed: int = 0, out: str | Path | None = None, allow_failures: bool = False,
    expected_words: Sequence[str] = (), model: str = "smollm2-135m", tokenizer_model: str | None = "smollm2-135m",
    encoder: Encoder | None = None,
) -> CompiledCriterion:
    """Build a criterion set and put it through every gate of :mod:`.gates`.

    Args:
        criterion: the criterion in words.
        positives, negatives: the agent's texts where the criterion holds / does not (``source='agent'``), or
            seed examples that filter the model's candidates (``source='model'``).
        prompts: a scored-prompts JSONL file (0/1 labels) instead of ``positives``/``negatives``.
        source: ``agent`` (the texts given), ``model`` (the embedded instruct model writes candidates) or
            ``template`` (``template`` is expanded).
        template: a JSON/YAML template spec file, or its parsed object (see :mod:`.templates`).
        n_per_class: prompts of each class to generate or expand.
        seed: seeds sampling and template expansion.
        out: folder to write ``prompts.jsonl`` and ``criterion_set.json`` to (replaced whole); None writes nothing.
        allow_failures: record failed gates instead of raising.
        expected_words: words the criterion is about (they may separate the classes; see the lexical gate).
        model: the generating model (``source='model'``).
        tokenizer_model: whose tokens the length gate counts; None counts words only.
        encoder: sentence encoder; default all-MiniLM-L6-v2 (behind the embedding cache).

    Raises:
        ValidationError: bad arguments, or a gate failed (the message names the gates and up to 5 prompts each)
            and ``allow_failures`` is False.
        InputFileError: the prompts file or template is malformed.
        EvidenceError: generated candidates cannot be filtered (see :mod:`.generate`).
    """
    criterion = (criterion or "").strip()
    criterion_brief(criterion)  # checks the criterion
    if n_per_class < 1:
        raise ValidationError(f"{arg('n_per_class', n_per_class)} must be at least 1")
    if encoder is None:
        from interp_agent.core.matching.text import default_text_encoder

        encoder = default_text_encoder()
    items, origins, lines, made, gen_tokenizer = _gather(
        criterion, source, _check_texts("positives", positives), _check_texts("negatives", negatives),
        Path(prompts) if prompts is not None else None, template, n_per_class, seed, model, encoder)
    if gen_tokenizer is not None and tokenizer_model is not None:
        counter: Callable[[str], int] | None = lambda t: len(gen_tokenizer(t, add_special_tokens=False)["input_ids"])  # noqa: E731
    else:
        counter = token_counter(tokenizer_model)
    results = G.run_gates(items, criterion, encoder, lines=lines, count_tokens=counter, expected_words=expected_words)
    made |= {"tokenizer_model": tokenizer_model, "expected_words": list(expected_words),
             "allow_failures": allow_failures, "encoder": getattr(encoder, "name", type(encoder).__name__)}
    notes = _notes(results, origins)
    compiled = CompiledCriterion(criterion, tuple(items), tuple(origins), tuple(results), made, None, tuple(notes))
    if not compiled.passed and not allow_failures:
        raise ValidationError(f"the criterion set for {criterion!r} fails: {gate_failure_message(results)}",
                              hint=f"fix the prompts named, or pass {arg('allow_failures', True)} to keep the set "
                                   "with its failures recorded")
    if out is not None:
        compiled = _write_compiled(compiled, Path(out))
    return compiled


def _notes(results: Sequence[G.GateResult], origins: Sequence[Origin]) -> list[str]:
    notes = []
    per_class = next(g for g in results if g.gate == "class_balance").extra
    if min(per_class["n_positive"], per_class["n_negative"]) < RECOMMENDED_PROMPTS_PER_CLASS:
        notes.append(f"fewer than the recommended {RECOMMENDED_PROMPTS_PER_CLASS} prompts of a class: "
                     f"{PROMPT_COUNT_ADVICE}")
    if "generated" in origins:
        notes.append("generated prompts were filtered with the same sentence encoder the held_out_agreement gate "
                     "uses, so that gate is optimistic for them; read a sample before trusting the labels")
    return notes


def _write_compiled(compiled: CompiledCriterion, target: Path) -> CompiledCriterion:
    """Write prompts.jsonl and criterion_set.json into a fresh folder, then move it onto ``target``."""
    target.parent.mkdir(parents=True, exist_ok=True)
    tmp = target.with_name(f".{target.name}.tmp.{os.getpid()}")
    if tmp.exists():
        import shutil

        shutil.rmtree(tmp)
    tmp.mkdir()
    gen = compiled.made.get("generation", {})
    generator = {"model": gen.get("model"), **gen.get("sampling", {})}
    write_jsonl(tmp / "prompts.jsonl", (
        {"prompt_id": p.prompt_id, "text": p.text, "criterion_score": p.criterion_score, "origin": o}
        | ({"generator": generator} if o == "generated" else {})
        for p, o in zip(compiled.prompts, compiled.origins, strict=True)))
    payload = compiled.to_json() | {"provenance": run_provenance({"prompts": tmp / "prompts.jsonl"})}
    payload["provenance"]["inputs"][0]["path"] = str(target / "prompts.jsonl")
    write_json(tmp / "criterion_set.json", payload)
    replace_dir(tmp, target)
    return CompiledCriterion(compiled.criterion, compiled.prompts, compiled.origins, compiled.gates, compiled.made,
                             target, compiled.notes)


@dataclass(frozen=True, slots=True)
class PromptRow:
    """One prompt of a file to score."""

    prompt_id: str
    """Its id (``line-N`` when the file gives none)."""
    text: str
    """Its text."""
    label: float | None
    """Its criterion_score in the file, when it has one."""
    line: int
    """Its line in the file."""


def read_prompt_file(path: str | Path) -> list[PromptRow]:
    """Prompts of a JSONL file (objects with ``text``, optional ``prompt_id``/``criterion_score``) or of a plain
    text file (one prompt a line; blank lines skipped).

    Raises:
        InputFileError: missing, empty, or a JSONL row without text (file and line named).
    """
    p = Path(path)
    if not p.is_file():
        raise InputFileError(p, "file not found", hint="give a JSONL or plain-text prompt file")
    try:
        head = next((ln for ln in p.read_text(encoding="utf-8").splitlines() if ln.strip()), "")
    except (OSError, UnicodeDecodeError) as exc:
        raise InputFileError(p, f"cannot be read as UTF-8 text: {exc}") from exc
    rows: list[PromptRow] = []
    if p.suffix.lower() in (".jsonl", ".json") or head.lstrip().startswith("{"):
        for line, obj in iter_json_objects(p):
            f = Fields(obj, p, line)
            label = obj.get("criterion_score")
            rows.append(PromptRow(f.string("prompt_id", required=False) or f"line-{line}", f.string("text"),
                                  f.number("criterion_score") if label is not None else None, line))
    else:
        for line, raw in enumerate(p.read_text(encoding="utf-8").splitlines(), start=1):
            if raw.strip():
                rows.append(PromptRow(f"line-{line}", raw.strip(), None, line))
    if not rows:
        raise InputFileError(p, "no prompts in file", hint="one prompt a line, or one JSON object a line")
    return rows


def _training_set(criterion: str | None, scorer: str, train: str | Path | None) -> tuple[str, list[ScoredPrompt],
                                                                                       dict[str, Any]]:
    """The criterion, the labelled prompts the classifier learns from, and where they came from."""
    from interp_agent.core.criteria.packs import list_packs, load_pack
    from interp_agent.core.formats.prompts import read_scored_prompts

    if scorer != "classifier":
        if train is not None:
            raise ValidationError(f"give {arg('scorer')} (a pack) or {arg('train')}, not both")
        pack = load_pack(scorer)
        return criterion or pack.criterion, list(pack.prompts), {"pack": scorer, "pack_criterion": pack.criterion}
    if train is None:
        match = [n for n in list_packs() if criterion and normalise_text(load_pack(n).criterion)
                 == normalise_text(criterion)]
        if not match:
            raise ValidationError(f"{arg('scorer', 'classifier')} needs labelled prompts to learn from: give "
                                  f"{arg('train')} (a scored-prompts file or a compiled set folder) or a pack as "
                                  f"{arg('scorer')}", hint=f"packs: {', '.join(list_packs())}")
        return _training_set(criterion, match[0], None)
    path = Path(train)
    if path.is_dir():
        meta = path / "criterion_set.json"
        if not meta.is_file():
            raise InputFileError(path, "is a folder without criterion_set.json", hint="give a compile_criterion "
                                 "output folder or a scored-prompts JSONL file")
        saved = json.loads(meta.read_text(encoding="utf-8"))
        return (criterion or saved.get("criterion", ""), read_scored_prompts(path / "prompts.jsonl"),
                {"compiled_set": str(path), "passed": saved.get("passed")})
    if not criterion:
        raise ValidationError(f"{arg('criterion')} is needed with a {arg('train')} file")
    return criterion, read_scored_prompts(path), {"train_file": str(path)}


@dataclass(frozen=True, slots=True)
class PromptScores:
    """Scores of a prompt file and the held-out evidence of the scorer that made them."""

    rows: tuple[dict[str, Any], ...]
    """One per prompt: prompt_id, text, criterion_score (probability, or 0/1 with ``binarize``), probability,
    in_training (the text was a prompt the classifier learnt from)."""
    summary: dict[str, Any]
    """Criterion, scorer and its held-out report, counts, threshold, agreement with the file's own labels."""
    folder: Path | None = None
    """Where ``scored_prompts.jsonl`` and ``score_summary.json`` were written (None: not written)."""


def score_prompts(
    prompts_file: str | Path, criterion: str | None = None, *, scorer: str = "classifier",
    train: str | Path | None = None, binarize: float | None = None, out: str | Path | None = None,
    encoder: Encoder | None = None,
) -> PromptScores:
    """Score every prompt of a file against a criterion with a MiniLM classifier and report its held-out accuracy.

    The classifier is fitted on the calibration split of the labelled set (``scorer`` a pack name, or ``train`` a
    scored-prompts file or a compiled set folder, or the pack whose criterion is ``criterion``) and evaluated on
    its held-out split: that accuracy, on prompts it was not fitted on, is the scorer's evidence.

    Raises:
        ValidationError: no labelled set can be found, or ``binarize`` is outside [0, 1].
        InputFileError: a file is missing or malformed.
        EvidenceError: the classifier is near chance held out (it refuses to score).
    """
    from interp_agent.core.criteria.sets import CriterionSet
    from interp_agent.core.criteria.text_scorer import fit_text_scorer

    if binarize is not None and not 0.0 <= binarize <= 1.0:
        raise ValidationError(f"{arg('binarize', binarize)} must be a probability in [0, 1]", hint="0.5 is usual")
    rows_in = read_prompt_file(prompts_file)
    crit, labelled, trained_on = _training_set(criterion.strip() if criterion else None, scorer, train)
    if encoder is None:
        from interp_agent.core.matching.text import default_text_encoder

        encoder = default_text_encoder()
    fitted = fit_text_scorer(CriterionSet(crit, tuple(labelled), "file"), encoder=encoder)
    proba = fitted.score([r.text for r in rows_in])  # refuses when near chance held out
    known = {normalise_text(p.text) for p in labelled}
    rows = tuple(_score_row(r, float(s), binarize, normalise_text(r.text) in known)
                 for r, s in zip(rows_in, proba, strict=True))
    assert fitted.report is not None
    summary = {"schema_version": PROMPT_SCORES_SCHEMA, "criterion": crit, "prompts_file": str(prompts_file),
               "scorer": {"kind": "text_classifier", "encoder": getattr(encoder, "name", None), **trained_on,
                          "held_out": fitted.report.to_json()},
               "held_out_accuracy": fitted.report.accuracy, "held_out_auroc": fitted.report.auroc,
               "binarize": binarize, "n_prompts": len(rows), "n_in_training": sum(r["in_training"] for r in rows),
               "file_label_agreement": _file_agreement(rows_in, proba, binarize, known, fitted.threshold),
               "provenance_of_numbers": "correlational"}
    if binarize is not None:
        summary["n_positive"] = sum(int(r["criterion_score"]) for r in rows)
    result = PromptScores(rows, summary)
    return result if out is None else _write_scores(result, Path(out))


def _score_row(r: PromptRow, p: float, binarize: float | None, in_training: bool) -> dict[str, Any]:
    score = p if binarize is None else float(p >= binarize)
    return {"prompt_id": r.prompt_id, "text": r.text, "criterion_score": score, "probability": p,
            "in_training": in_training} | ({"file_label": r.label} if r.label is not None else {})


def _file_agreement(rows: Sequence[PromptRow], proba: Any, binarize: float | None, known: set[str],
                    threshold: float | None) -> dict[str, Any] | None:
    """Accuracy against the file's own 0/1 labels, on prompts the classifier never learnt from."""
    cut = binarize if binarize is not None else threshold
    pairs = [(r.label >= 0.5, float(s) >= (cut or 0.5)) for r, s in zip(rows, proba, strict=True)
             if r.label is not None and normalise_text(r.text) not in known]
    if not pairs:
        return None
    return {"n": len(pairs), "accuracy": sum(a == b for a, b in pairs) / len(pairs), "threshold": cut}


def _write_scores(result: PromptScores, folder: Path) -> PromptScores:
    folder.mkdir(parents=True, exist_ok=True)
    write_jsonl(folder / "scored_prompts.jsonl", result.rows)
    write_json(folder / "score_summary.json", result.summary | {
        "provenance": run_provenance({"prompts_file": result.summary["prompts_file"]})})
    return PromptScores(result.rows, result.summary, folder)
