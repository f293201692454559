"""Feature → feature edges of a graph: co-activation on held-out prompts, and measured feature-on-feature effects.

    split_activations(records, ids, …)      the features' activations on one split of a report's prompts
    coactivation_edges(report, ids, …)      Pearson r of each pair on those prompts, kept under a BH threshold
    feature_effect_edges(path, ids)         edges from a ``feature_effects.jsonl`` (``interp-agent feature-effects``)
    validate_graph(doc, schema)             JSON Schema validation of a graph (native schema shipped as package data)

Co-activation is measured on the report's **held-out** split only (the same hash split,
salt and fraction the ranking used, an explicit ``split`` column winning), never on the
training split the features were ranked on. Token-level records are pooled to one row per
prompt (the mean over its token rows) first, so the sample size is the number of prompts.
For each pair: Pearson r, its Fisher-z 95% interval, the two-sided t-test p-value, and a
Benjamini-Hochberg q-value over every pair tested; a pair becomes an edge when q <= alpha.
The edge is undirected (emitted once, source < target by id): correlation says nothing of
which feature drives which.

Feature-effect edges are directed A → B: the change of B's activation when A is ablated,
measured against random-direction controls (see
:mod:`interp_agent.core.feature_effects`).
"""

from __future__ import annotations

import json
import math
from dataclasses import dataclass
from importlib import resources
from pathlib import Path
from typing import Any, Literal

import numpy as np

from interp_agent.core.artifacts import schema_version, sha256_of
from interp_agent.core.errors import InputFileError, MissingDependencyError, ValidationError, arg

COACTIVATION_ALPHA = 0.05
"""Default false discovery rate of the co-activation edges (BH q-value threshold)."""
MIN_PROMPTS = 4
"""Fewest held-out prompts a co-activation needs (the Fisher interval is undefined at n <= 3)."""
FEATURE_EFFECTS_SCHEMA = schema_version("feature_effects")
"""``schema_version`` of each row of ``feature_effects.jsonl``."""

COACTIVATION_METHOD = (
    "Pearson r between two features' activations over the report's held-out prompts (hash split of the report's "
    "settings; token rows pooled to one row per prompt by their mean; an absent activation counts as 0); 95% "
    "interval by the Fisher z transform; p-value: two-sided t test of r = 0 with n - 2 degrees of freedom; "
    "Benjamini-Hochberg q-values over every pair tested; an edge is kept when q <= alpha. Undirected, measured "
    "association, not causation"
)


@dataclass(frozen=True, slots=True)
class SplitActivations:
    """The activations of some features on one split of a report's prompts, one row per prompt."""

    split: str
    """``held_out`` or ``train``."""
    prompt_ids: list[str]
    """The split's prompt ids, in order of first sight in the records."""
    texts: list[str]
    """Each prompt's text (for token records, the longest text of its rows: the whole prompt)."""
    acts: np.ndarray
    """float64 [prompts, features]: activations (token rows averaged; absent = 0)."""
    feature_ids: list[str]
    """The features, parallel to the columns of ``acts``."""
    present: list[bool]
    """Whether the records name each feature at all."""
    synthetic: bool
    """Whether any record row says it is synthetic."""


def report_records(report: dict[str, Any], report_path: Path) -> Path:
    """The activation records a report was ranked on, checked against the SHA-256 in its provenance.

    Raises:
        InputFileError: the report names no records, they are gone, or they changed since (names the file).
    """
    inputs = (report.get("provenance") or {}).get("inputs") or []
    entry = next((i for i in inputs if isinstance(i, dict) and i.get("role") == "records"), None)
    if entry is None or not entry.get("path"):
        raise InputFileError(report_path, "names no activation records in its provenance", field="provenance",
                             hint=f"pass the records it was ranked on with {arg('records')}")
    path = Path(entry["path"]).expanduser()
    if not path.exists() and not path.is_absolute() and (report_path.parent / path).exists():
        path = report_path.parent / path
    if not path.exists():
        raise InputFileError(path, "the report's activation records are missing",
                             hint=f"pass where they are now with {arg('records')}")
    if entry.get("sha256") and sha256_of(path) != entry["sha256"]:
        raise InputFileError(path, f"changed since {report_path} was made (SHA-256 differs from its provenance)",
                             hint=f"re-run inspect, or pass the records it was made from with {arg('records')}")
    return path


def split_activations(
    records: str | Path, feature_ids: list[str], *, held_out_fraction: float, split_salt: str,
    split: Literal["held_out", "train"] = "held_out",
) -> SplitActivations:
    """The features' activations on one split of ``records``: the split a report with these settings used.

    Raises:
        InputFileError: the records cannot be read (names the file and line).
    """
    from interp_agent.core.ranking.sources import RecordsSource
    from interp_agent.core.ranking.splits import HELD_OUT, TRAIN, assign_splits, salted

    source = RecordsSource(records)
    wanted = {fid: j for j, fid in enumerate(feature_ids)}
    restrict = None
    if source.parquet:  # the features are known up front: read only theirs
        restrict = np.array([i for i, fid in enumerate(source.feature_ids) if fid in wanted], dtype=np.int64)
    row_of: dict[str, int] = {}
    texts: list[str] = []
    counts: list[int] = []
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    synthetic = False
    try:
        for chunk in source.chunks(with_text=True, features=restrict):
            groups = assign_splits(salted(chunk.id_hashes, split_salt), held_out_fraction, chunk.splits)
            local = np.full(len(chunk.prompt_ids), -1, dtype=np.int64)
            for r in np.flatnonzero(groups == (HELD_OUT if split == "held_out" else TRAIN)):
                pid, text = chunk.prompt_ids[int(r)], (chunk.texts[int(r)] if chunk.texts else None) or ""
                if pid not in row_of:
                    row_of[pid] = len(texts)
                    texts.append(text)
                    counts.append(0)
                elif len(text) > len(texts[row_of[pid]]):
                    texts[row_of[pid]] = text
                local[r] = row_of[pid]
                counts[row_of[pid]] += 1
            synthetic |= chunk.synthetic
            column = np.array([wanted.get(fid, -1) for fid in source.feature_ids] or [-1], dtype=np.int64)
            rows, cols = local[chunk.act_row], column[chunk.act_feature]
            keep = (rows >= 0) & (cols >= 0)
            parts.append((rows[keep], cols[keep], chunk.act_value[keep]))
    finally:
        source.close()
    acts = np.zeros((len(texts), len(feature_ids)))
    for rows, cols, values in parts:
        np.add.at(acts, (rows, cols), values)
    acts /= np.maximum(np.array(counts, dtype=np.float64), 1.0)[:, None]
    seen = set(source.feature_ids)
    return SplitActivations(split, list(row_of), texts, acts, list(feature_ids), [f in seen for f in feature_ids],
                              synthetic)


def coactivation_edges(
    held: SplitActivations, *, alpha: float = COACTIVATION_ALPHA, synthetic: bool = False
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Co-activation edges among ``held``'s features (q <= ``alpha``), and what was tested.

    Returns:
        The edges (undirected, source < target by id) and a block saying how many prompts and
        pairs were tested, which features could not be (constant or absent) and the method.

    Raises:
        ValidationError: ``alpha`` outside (0, 1], or ``held`` is not the held-out split.
    """
    from interp_agent.core.ranking.stats import benjamini_hochberg, fisher_z_interval, pearson_p_value

    if isinstance(alpha, bool) or not isinstance(alpha, (int, float)) or not 0.0 < alpha <= 1.0:
        raise ValidationError(f"the co-activation alpha must be in (0, 1], got {alpha!r}; e.g. 0.05")
    if held.split != "held_out":
        raise ValidationError("co-activation edges are measured on held-out prompts only, never the split the "
                              f"features were ranked on; got the {held.split} split")
    n = len(held.prompt_ids)
    sd = held.acts.std(0) if n else np.zeros(len(held.feature_ids))
    testable = [j for j, fid in enumerate(held.feature_ids) if held.present[j] and sd[j] > 1e-12 * (1 + abs(
        held.acts[:, j]).max(initial=0.0))]
    info: dict[str, Any] = {
        "split": "held_out", "n_prompts": n, "alpha": alpha, "method": COACTIVATION_METHOD,
        "untestable": {fid: ("absent from the records" if not held.present[j] else "constant on held-out prompts")
                       for j, fid in enumerate(held.feature_ids) if j not in testable},
    }
    if n < MIN_PROMPTS or len(testable) < 2:
        return [], info | {"n_pairs_tested": 0, "n_edges": 0,
                           "note": f"{n} held-out prompts (at least {MIN_PROMPTS} needed) and {len(testable)} "
                                   "testable features (at least 2 needed): nothing tested"}
    pairs = [(a, b) if held.feature_ids[a] < held.feature_ids[b] else (b, a)
             for i, a in enumerate(testable) for b in testable[i + 1:]]
    r = np.array([np.corrcoef(held.acts[:, a], held.acts[:, b])[0, 1] for a, b in pairs])
    p = pearson_p_value(r, n)
    q = benjamini_hochberg(p)
    provenance = "synthetic" if synthetic or held.synthetic else "correlational"
    edges = [{
        "kind": "coactivation", "source": held.feature_ids[a], "target": held.feature_ids[b], "directed": False,
        "evidence": "correlational", "provenance": provenance, "statistic": "pearson_r", "weight": float(r[k]),
        "ci95": list(fisher_z_interval(float(r[k]), n) or ()) or None, "split": "held_out", "n": n,
        "p_value": float(p[k]), "q_value": float(q[k]),
    } for k, (a, b) in enumerate(pairs) if q[k] <= alpha]
    edges.sort(key=lambda e: (-abs(e["weight"]), e["source"], e["target"]))
    return edges, info | {"n_pairs_tested": len(pairs), "n_edges": len(edges)}


_EFFECT_FIELDS = ("source", "target", "mean_effect", "ci95", "n", "control")


def read_feature_effects(path: str | Path) -> list[dict[str, Any]]:
    """The rows of a ``feature_effects.jsonl``.

    Raises:
        InputFileError: missing, not JSON lines, another schema_version, or a row without a
            required field (names the file and line).
    """
    p = Path(path).expanduser()
    if not p.is_file():
        raise InputFileError(p, "no such feature-effects file", hint="write one with interp-agent feature-effects")
    rows: list[dict[str, Any]] = []
    for line_no, line in enumerate(p.read_text(encoding="utf-8").splitlines(), start=1):
        if not line.strip():
            continue
        try:
            row = json.loads(line)
        except json.JSONDecodeError as exc:
            raise InputFileError(p, f"not JSON ({exc.msg})", line=line_no) from None
        if not isinstance(row, dict) or row.get("schema_version") != FEATURE_EFFECTS_SCHEMA:
            got = row.get("schema_version") if isinstance(row, dict) else type(row).__name__
            raise InputFileError(p, f"expected schema_version {FEATURE_EFFECTS_SCHEMA!r}, got {got!r}",
                                 line=line_no, field="schema_version",
                                 hint="pass the feature_effects.jsonl that interp-agent feature-effects wrote")
        missing = [f for f in _EFFECT_FIELDS if f not in row]
        if missing:
            raise InputFileError(p, f"row lacks {', '.join(missing)}", line=line_no, field=missing[0])
        rows.append(row)
    return rows


def feature_effect_edges(rows: list[dict[str, Any]], node_ids: set[str]) -> tuple[list[dict[str, Any]], int]:
    """Directed feature-effect edges A → B of the rows whose both ends are graph nodes; and how many were left out."""
    edges: list[dict[str, Any]] = []
    for row in rows:
        if row["source"] not in node_ids or row["target"] not in node_ids:
            continue
        weight = row.get("effect_sd")
        edges.append({
            "kind": "feature_effect", "source": row["source"], "target": row["target"], "directed": True,
            "evidence": "interventional", "provenance": "synthetic" if row.get("synthetic") else "interventional",
            "statistic": "effect_sd", "weight": weight if _finite(weight) else row["mean_effect"],
            "mean_effect": row["mean_effect"], "ci95": row["ci95"], "excess_effect": row.get("excess_effect"),
            "excess_ci95": row.get("excess_ci95"), "n": row["n"], "split": row.get("split", "held_out"),
            "mode": row.get("mode"), "control": row["control"], "beats_controls": row.get("beats_controls"),
        })
    return edges, len(rows) - len(edges)


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def native_schema() -> dict[str, Any]:
    """The JSON Schema of ``interp-agent.graph.v1`` (``interp_agent/data/schemas/graph.v1.json``)."""
    text = resources.files("interp_agent").joinpath("data/schemas/graph.v1.json").read_text(encoding="utf-8")
    return json.loads(text)


def validate_graph(doc: dict[str, Any], schema: dict[str, Any] | None = None) -> None:
    """Validate a graph against ``schema`` (default: the native ``graph.v1`` schema) with ``jsonschema``.

    Raises:
        MissingDependencyError: jsonschema is not installed.
        ValidationError: the graph does not match (names the first failing path and why).
    """
    try:
        from jsonschema.validators import validator_for
    except ImportError:  # pragma: no cover - a dev dependency
        raise MissingDependencyError("jsonschema", "dev", "validating a graph") from None
    schema = native_schema() if schema is None else schema
    validator_cls = validator_for(schema)
    errors = sorted(validator_cls(schema).iter_errors(doc), key=lambda e: list(e.absolute_path))
    if errors:
        first = errors[0]
        where = "/".join(str(x) for x in first.absolute_path) or "(root)"
        raise ValidationError(f"the graph does not match its schema at {where}: {first.message}",
                              hint=f"{len(errors)} problem(s); this is a bug in interp-agent if it wrote the graph")


__all__ = ["COACTIVATION_ALPHA", "COACTIVATION_METHOD", "FEATURE_EFFECTS_SCHEMA", "SplitActivations",
           "coactivation_edges", "feature_effect_edges", "split_activations", "native_schema",
           "read_feature_effects", "report_records", "validate_graph"]
