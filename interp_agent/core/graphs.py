"""Attribution graphs of a report: the criterion, its ranked features, and the measured edges between them.

    build_graph(report, top_k=50)      the native graph (``interp-agent.graph.v1``) of a loaded report.json
    add_feature_edges(graph, edges)    the same graph with feature → feature edges (``core.graph_edges``)
    to_neuronpedia(graph)              the same graph as Neuronpedia / circuit-tracer graph JSON
    export_graph(report, out, format)  read a report.json, write either form atomically

A graph has one criterion node, one node per ranked feature (best first, ``top_k`` of
them) and edges of three kinds (each edge's ``kind``), never merged:

``feature_criterion`` edges, feature → criterion, of two kinds of evidence:

- ``correlational``: the feature's association with the criterion score (Pearson r on the
  held-out split when the report has one, else on the training split; the edge says which);
- ``interventional``: the mean effect of intervening on the feature on the behaviour score,
  with its 95% interval, control effect and side effect, when the report has causal evidence.

``coactivation`` edges, feature — feature (undirected, source < target by id): Pearson r of
the two features' activations over the report's held-out prompts, kept under a
Benjamini-Hochberg threshold; correlational.

``feature_effect`` edges, feature A → feature B at a later layer: the change of B's
activation when A is ablated on held-out prompts, against random-direction controls
(``interp-agent feature-effects``); interventional.

In a report built from synthetic data every edge's ``provenance`` is ``synthetic`` and
the graph says ``synthetic: true``. The native form's JSON Schema ships as
``interp_agent/data/schemas/graph.v1.json``.

Neuronpedia form (``neuronpedia_graph-schema.json``, Draft 7): a feature node's id is
``{layer}_{featureIdx}_{ctxIdx}`` with ``ctxIdx`` 0 (interp-agent pools each prompt to one
row, so there are no token positions; the prompt is the criterion text as one token). A
feature without an index (a learned ``direction:…``), or whose index collides with another
node at its layer, gets a negative index from -2 down (-1 is circuit-tracer's error node).
The criterion is not a vocabulary token: it becomes one logit-type node per evidence kind,
``{nLayers+1}_0_0`` (correlational; link weights are Pearson r) and ``{nLayers+1}_1_0``
(interventional; link weights are mean effects), so the two kinds stay apart in the
viewer and no two links share both ends. Feature → feature edges become links between
feature nodes (the schema allows a link between any two nodes): a co-activation link
(weight r) keeps the native source → target; where a pair also has a feature-effect link
(weight: effect in units of B's held-out spread), the co-activation rides on that link's
``interp_agent.coactivation`` instead, so no pair is linked twice. Each node and link also
carries an ``interp_agent`` object (the schema allows extra properties) with the edge kind,
evidence and statistics; ``metadata.interp_agent`` says what the weights are.
"""

from __future__ import annotations

import json
import math
import re
import time
from pathlib import Path
from typing import Any, Literal

from interp_agent._version import __version__
from interp_agent.core.artifacts import clean_json, run_provenance, schema_version, write_json
from interp_agent.core.errors import InputFileError, ValidationError
from interp_agent.core.ids import match_feature_id

GraphFormat = Literal["native", "neuronpedia"]
GRAPH_FORMATS: tuple[str, ...] = ("native", "neuronpedia")
CRITERION_ID = "criterion"
"""Node id of the criterion in the native graph."""

EDGE_KINDS: dict[str, str] = {
    "correlational": "weight = Pearson r between the feature's activation and the criterion score, on the split "
                     "named by the edge (held_out when the report has one, else train); measured association, not "
                     "causation",
    "interventional": "weight = mean effect on the behaviour score of intervening on the feature (signed so that > 0 "
                      "means the feature promotes the criterion), with its 95% interval, the control effect and the "
                      "side effect; measured causation",
}
"""What the weight of a feature → criterion edge is, per kind of evidence."""

FEATURE_EDGE_KINDS: dict[str, str] = {
    "coactivation": "undirected feature - feature edge; weight = Pearson r of the two features' activations over the "
                    "report's held-out prompts (never the split they were ranked on), with its Fisher 95% interval, "
                    "p-value and Benjamini-Hochberg q-value; kept when q <= alpha; measured association, not "
                    "causation",
    "feature_effect": "directed feature A -> feature B (B at a later layer); weight = mean change of B's activation "
                      "when A is ablated on held-out prompts, in units of B's held-out standard deviation (raw mean "
                      "and bootstrap 95% interval beside it), with the random-direction control distribution; "
                      "measured causation",
}
"""What the weight of a feature → feature edge is, per edge kind."""

_KINDS: dict[str, str] = {
    "sae": "sae latent", "dim": "residual dimension", "neuron": "mlp neuron", "dictionary": "dictionary feature",
    "direction": "direction",
}
"""The graph's name for each feature-id kind of ``interp_agent.core.ids``."""


def parse_feature_id(feature_id: str) -> tuple[int | None, int | None, str]:
    """(layer, index, kind) of a feature id.

    Known forms: ``L{l}:D{i}``, ``L{l}:N{i}``, ``L{l}:F{i}``, ``SAE:L{l}:F{i}``, ``direction:…@blocks.{l}.…``.

    Unknown forms give ``(None, None, "feature")``.
    """
    fid = match_feature_id(feature_id)
    if fid is None or (fid.kind == "dim" and fid.site != "hook_resid_post"):
        # dims of other sites (L{l}:attn_out:D{i}, …) keep the generic kind the graph has always given them
        return None, None, "feature"
    return fid.layer, fid.index, _KINDS[fid.kind]


def load_report_file(path: str | Path) -> tuple[dict[str, Any], Path]:
    """Read a report.json (or the report.json in a folder); returns it and its path.

    Raises:
        InputFileError: missing, not JSON, or not an inspection report (names the file).
    """
    from interp_agent.core.matching.match import load_report

    p = Path(path).expanduser()
    if p.is_dir():
        p = p / "report.json"
    report = load_report(p)
    if not isinstance(report.get("features"), list):
        raise InputFileError(
            p, "has no 'features' list", field="features", hint="pass the report.json that interp-agent inspect wrote"
        )
    return report, p


def _finite(value: Any) -> bool:
    return isinstance(value, (int, float)) and not isinstance(value, bool) and math.isfinite(value)


def _correlational(feature: dict[str, Any], provenance: str) -> dict[str, Any] | None:
    assoc = feature.get("association") or {}
    for split in ("held_out", "train"):
        stats = assoc.get(split) or {}
        if _finite(stats.get("pearson_r")):
            return {
                "kind": "feature_criterion", "source": feature["feature_id"], "target": CRITERION_ID,
                "evidence": "correlational",
                "provenance": provenance, "statistic": "pearson_r", "weight": stats["pearson_r"], "split": split,
                "n": stats.get("n"), "p_value": stats.get("p_value"), "q_value": stats.get("q_value"),
                "auroc": stats.get("auroc"), "held_out_supported": assoc.get("held_out_supported"),
            }
    return None


def _interventional(feature: dict[str, Any], provenance: str) -> dict[str, Any] | None:
    causal = feature.get("causal") or {}
    if not _finite(causal.get("mean_effect")):
        return None
    return {
        "kind": "feature_criterion", "source": feature["feature_id"], "target": CRITERION_ID,
        "evidence": "interventional", "provenance": provenance,
        "statistic": "mean_effect", "weight": causal["mean_effect"], "ci95": causal.get("ci95"), "n": causal.get("n"),
        "control_effect": causal.get("control_effect"), "n_controls": causal.get("n_controls"),
        "side_effect": causal.get("side_effect"), "interventions": causal.get("interventions"),
        "strong_causal_score": causal.get("strong_causal_score"),
        "agrees_with_association": causal.get("agrees_with_association"),
    }


def build_graph(report: dict[str, Any], *, top_k: int = 50, source: str | Path | None = None) -> dict[str, Any]:
    """The native graph (``interp-agent.graph.v1``) of a loaded report: criterion, top features, both edge kinds.

    Args:
        report: a loaded ``report.json`` (``interp-agent.inspection_report.v1``).
        top_k: how many ranked features become nodes (best first).
        source: the report's path, hashed into the provenance.

    Raises:
        ValidationError: ``top_k`` below 1 or a report without feature ids.
    """
    if isinstance(top_k, bool) or not isinstance(top_k, int) or top_k < 1:
        raise ValidationError(f"top_k must be a positive integer, got {top_k!r}")
    synthetic = bool(report.get("synthetic"))
    corr_prov = "synthetic" if synthetic else "correlational"
    int_prov = "synthetic" if synthetic else "interventional"
    info = ((report.get("live") or {}).get("model_info") or {})
    nodes: list[dict[str, Any]] = [
        {"id": CRITERION_ID, "kind": "criterion", "label": report.get("criterion"), "layer": None}
    ]
    edges: list[dict[str, Any]] = []
    for position, feature in enumerate((report.get("features") or [])[:top_k]):
        fid = feature.get("feature_id") if isinstance(feature, dict) else None
        if not isinstance(fid, str) or not fid:
            raise ValidationError(
                f"report feature #{position + 1} has no feature_id", hint="pass a report.json interp-agent wrote"
            )
        layer, index, kind = parse_feature_id(fid)
        if isinstance(feature.get("layer"), int) and not isinstance(feature.get("layer"), bool):
            layer = feature["layer"]
        nodes.append({
            "id": fid, "kind": "feature", "feature_kind": kind, "layer": layer, "index": index,
            "hookpoint": fid.split("@", 1)[1] if kind == "direction" and "@" in fid else None,
            "rank": feature.get("rank"), "importance": feature.get("importance"), "direction": feature.get("direction"),
            "label": feature.get("label"),
        })
        edges += [e for e in (_correlational(feature, corr_prov), _interventional(feature, int_prov)) if e is not None]
    layers = [n["layer"] for n in nodes if n.get("layer") is not None]
    n_layers = info.get("n_layers") if isinstance(info.get("n_layers"), int) else (max(layers) + 1 if layers else None)
    provenance = run_provenance({"report": source}) if source is not None else run_provenance({})
    provenance |= {"report_schema_version": report.get("schema_version"), "report_provenance": report.get("provenance"),
                   "synthetic": synthetic}
    return {
        "schema_version": schema_version("graph"),
        "synthetic": synthetic,
        "criterion": report.get("criterion"),
        "model": report.get("model"),
        "backend": report.get("backend"),
        "n_layers": n_layers,
        "top_k": top_k,
        "edge_kinds": EDGE_KINDS, "feature_edge_kinds": FEATURE_EDGE_KINDS,
        "nodes": nodes,
        "edges": edges,
        "summary": {"n_features": len(nodes) - 1,
                    "n_correlational_edges": sum(e["evidence"] == "correlational" for e in edges),
                    "n_interventional_edges": sum(e["evidence"] == "interventional" for e in edges),
                    "n_coactivation_edges": 0, "n_feature_effect_edges": 0},
        "feature_edges": None, "provenance": provenance,
    }


def add_feature_edges(
    graph: dict[str, Any], edges: list[dict[str, Any]], info: dict[str, Any] | None = None
) -> dict[str, Any]:
    """The graph with feature → feature edges (``coactivation``, ``feature_effect``) added after its criterion edges.

    Args:
        graph: a native graph from :func:`build_graph`.
        edges: edges from ``interp_agent.core.graph_edges`` (each with ``kind``); both ends must be feature nodes.
        info: what was measured (records, split, pairs tested, notes), stored as ``feature_edges``.

    Raises:
        ValidationError: an edge of another kind, or whose ends are not feature nodes of the graph.
    """
    features = {n["id"] for n in graph["nodes"] if n["kind"] == "feature"}
    for e in edges:
        if e.get("kind") not in FEATURE_EDGE_KINDS or not {e.get("source"), e.get("target")} <= features:
            raise ValidationError(f"not a feature -> feature edge of this graph: {e.get('kind')!r} "
                                  f"{e.get('source')!r} -> {e.get('target')!r}")
    merged = [*graph["edges"], *edges]
    summary = graph["summary"] | {
        "n_coactivation_edges": sum(e.get("kind") == "coactivation" for e in merged),
        "n_feature_effect_edges": sum(e.get("kind") == "feature_effect" for e in merged),
    }
    return graph | {"edges": merged, "summary": summary, "feature_edges": info}


def _slug(text: str) -> str:
    return re.sub(r"[^a-z0-9]+", "-", text.lower()).strip("-")[:80] or "graph"


def _criterion_targets(edges: list[dict[str, Any]], logit_layer: str) -> dict[str, str]:
    """Node id of the criterion for each evidence kind among ``edges`` (correlational alone when there are none)."""
    kinds = [k for k in ("correlational", "interventional")
             if any(e.get("kind", "feature_criterion") == "feature_criterion" and e["evidence"] == k for e in edges)]
    kinds = kinds or ["correlational"]
    return {
        kind: f"{logit_layer}_{i}_0" for i, kind in enumerate(("correlational", "interventional")) if kind in kinds
    }


def _feature_nodes(graph: dict[str, Any], tag: str) -> tuple[list[dict[str, Any]], dict[str, str]]:
    """Neuronpedia nodes of the graph's features, and the Neuronpedia node id of each native feature id.

    A feature without an index, or whose index repeats at its layer, gets a spare index from -2 down.
    """
    nodes: list[dict[str, Any]] = []
    ids: dict[str, str] = {}
    taken: set[tuple[str, int]] = set()
    spare = -2
    for node in graph["nodes"]:
        if node["kind"] != "feature":
            continue
        layer = str(node["layer"]) if node.get("layer") is not None else "0"
        index = node.get("index")
        if index is None or (layer, index) in taken:
            index, spare = spare, spare - 1
        taken.add((layer, index))
        node_id = f"{layer}_{index}_0"
        ids[node["id"]] = node_id
        nodes.append({
            "node_id": node_id, "feature": node.get("index"), "layer": layer, "ctx_idx": 0,
            "feature_type": node["feature_kind"], "jsNodeId": f"{layer}_{index}-0",
            "clerp": f"{tag}{node.get('label') or node['id']} [{node['id']}]", "influence": None, "activation": None,
            "interp_agent": {"feature_id": node["id"], "rank": node.get("rank"), "importance": node.get("importance"),
                             "direction": node.get("direction"), "layer_known": node.get("layer") is not None},
        })
    return nodes, ids


def _criterion_nodes(targets: dict[str, str], logit_layer: str, tag: str, criterion: str) -> list[dict[str, Any]]:
    """One logit-type Neuronpedia node of the criterion per evidence kind in ``targets``."""
    nodes: list[dict[str, Any]] = []
    for kind, node_id in targets.items():
        statistic = "Pearson r" if kind == "correlational" else "mean intervention effect"
        nodes.append({
            "node_id": node_id, "feature": int(node_id.split("_")[1]), "layer": logit_layer, "ctx_idx": 0,
            "feature_type": "logit", "jsNodeId": f"L_{node_id.split('_')[1]}-0",
            "clerp": f'{tag}criterion ({kind} evidence; link weight = {statistic}): "{criterion}"',
            "influence": None, "activation": None, "interp_agent": {"criterion": criterion, "evidence": kind},
        })
    return nodes


def _metadata(
    graph: dict[str, Any], criterion: str, targets: dict[str, str], n_features: int, feature_kinds: list[str]
) -> dict[str, Any]:
    """The Neuronpedia ``metadata`` block: slug, scan, prompt, description and what the link weights are."""
    synthetic = bool(graph.get("synthetic"))
    model = str(graph.get("model") or "unknown-model")
    description = (("SYNTHETIC: built from generated data, not a measurement of any model. " if synthetic else "")
                   + f"interp-agent graph of the top {n_features} features of {model} for the criterion "
                   f'"{criterion}". Links point from a feature to the criterion: '
                   f'{"; ".join(f"{k}: {v}" for k, v in EDGE_KINDS.items() if k in targets)}.'
                   + "".join(f" Links between features, {k}: {FEATURE_EDGE_KINDS[k]}." for k in feature_kinds))
    return {
        "slug": ("synthetic-" if synthetic else "") + _slug(f"{model}-{criterion}"),
        "scan": model,
        "prompt_tokens": [criterion],
        "prompt": criterion,
        "info": {"description": description,
                 "generator": {"name": "interp-agent", "version": __version__},
                 "create_time_ms": int(time.time() * 1000)},
        "generation_settings": {"max_feature_nodes": graph.get("top_k")},
        "interp_agent": {"schema_version": graph["schema_version"], "synthetic": synthetic,
                         "criterion_nodes": targets,
                         "link_weights": {k: EDGE_KINDS[k] for k in targets}
                         | {k: FEATURE_EDGE_KINDS[k] for k in feature_kinds},
                         "node_ids": "{layer}_{featureIdx}_0; ctx_idx is 0 because prompts are pooled; -2 and "
                                     "below index features without one (directions) or whose index repeats at a "
                                     "layer",
                         "provenance": graph.get("provenance")},
    }


def _criterion_links(edges: list[dict[str, Any]], ids: dict[str, str], targets: dict[str, str]) -> list[dict[str, Any]]:
    """Links feature → criterion node of its evidence kind."""
    return [{"source": ids[e["source"]], "target": targets[e["evidence"]], "weight": e["weight"],
             "interp_agent": {k: v for k, v in e.items() if k not in ("source", "target", "weight")}}
            for e in edges if e.get("kind", "feature_criterion") == "feature_criterion" and e["source"] in ids
            and _finite(e.get("weight"))]


def _feature_links(edges: list[dict[str, Any]], ids: dict[str, str]) -> list[dict[str, Any]]:
    """Links between feature nodes: each feature effect, and each co-activation of a pair without one.

    A co-activation of a pair that also has a feature-effect link rides on that link's
    ``interp_agent.coactivation``, so no pair of nodes is linked twice.
    """
    usable = [e for e in edges if e.get("kind") in FEATURE_EDGE_KINDS and e["source"] in ids and e["target"] in ids
              and _finite(e.get("weight"))]
    links: list[dict[str, Any]] = []
    by_pair: dict[frozenset[str], dict[str, Any]] = {}
    for e in sorted(usable, key=lambda e: e["kind"] != "feature_effect"):
        pair = frozenset((e["source"], e["target"]))
        extra = {k: v for k, v in e.items() if k not in ("source", "target", "weight")}
        if e["kind"] == "coactivation" and pair in by_pair:
            by_pair[pair]["interp_agent"]["coactivation"] = extra | {"source": e["source"], "target": e["target"],
                                                                     "weight": e["weight"]}
            continue
        link = {"source": ids[e["source"]], "target": ids[e["target"]], "weight": e["weight"], "interp_agent": extra}
        by_pair.setdefault(pair, link)
        links.append(link)
    return links


def to_neuronpedia(graph: dict[str, Any]) -> dict[str, Any]:
    """The native graph as Neuronpedia graph JSON (``metadata``, ``qParams``, ``nodes``, ``links``).

    See the module docstring.
    """
    criterion = " ".join(str(graph.get("criterion") or "").split()) or "criterion"
    logit_layer = str((graph.get("n_layers") or 0) + 1)
    tag = "[SYNTHETIC] " if graph.get("synthetic") else ""
    edges = graph["edges"]
    targets = _criterion_targets(edges, logit_layer)
    features, ids = _feature_nodes(graph, tag)
    feature_links = _feature_links(edges, ids)
    return {
        "metadata": _metadata(graph, criterion, targets, len(features),
                              sorted({link["interp_agent"]["kind"] for link in feature_links})),
        "qParams": {"pinnedIds": list(targets.values()), "supernodes": [], "linkType": "both", "clickedId": "",
                    "sg_pos": ""},
        "nodes": [*features, *_criterion_nodes(targets, logit_layer, tag, criterion)],
        "links": [*_criterion_links(edges, ids, targets), *feature_links],
    }


def _coactivation(
    report: dict[str, Any], path: Path, graph: dict[str, Any], records: str | Path | None, alpha: float
) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """Co-activation edges of the graph's features on the report's held-out prompts, and what was tested.

    Without ``records``, the report's own records are used; when they cannot be (none named, moved or
    changed), the block says why and there are no co-activation edges. Given ``records`` must be readable.
    """
    from interp_agent.core.artifacts import sha256_of
    from interp_agent.core.graph_edges import coactivation_edges, report_records, split_activations

    if records is None:
        try:
            records = report_records(report, path)
        except InputFileError as exc:
            return [], {"skipped": str(exc)}
    settings = report.get("settings") or {}
    ids = [n["id"] for n in graph["nodes"] if n["kind"] == "feature"]
    held = split_activations(records, ids, held_out_fraction=settings.get("held_out_fraction", 0.3),
                             split_salt=settings.get("split_salt", "interp-agent"))
    edges, info = coactivation_edges(held, synthetic=bool(graph.get("synthetic")), alpha=alpha)
    return edges, info | {"records": str(records), "records_sha256": sha256_of(records)}


def graph_with_feature_edges(
    report: str | Path, *, top_k: int = 50, coactivation: bool = True, records: str | Path | None = None,
    alpha: float | None = None, feature_effects: str | Path | None = None,
) -> dict[str, Any]:
    """The native graph of a report with its feature → feature edges (see :func:`export_graph`)."""
    from interp_agent.core.artifacts import sha256_of
    from interp_agent.core.graph_edges import COACTIVATION_ALPHA, feature_effect_edges, read_feature_effects

    doc, path = load_report_file(report)
    graph = build_graph(doc, top_k=top_k, source=path)
    edges: list[dict[str, Any]] = []
    info: dict[str, Any] = {"coactivation": None, "feature_effects": None}
    if coactivation:
        found, info["coactivation"] = _coactivation(doc, path, graph, records, COACTIVATION_ALPHA if alpha is None
                                                    else alpha)
        edges += found
    if feature_effects is not None:
        rows = read_feature_effects(feature_effects)
        found, left_out = feature_effect_edges(rows, {n["id"] for n in graph["nodes"] if n["kind"] == "feature"})
        info["feature_effects"] = {"file": str(feature_effects), "sha256": sha256_of(feature_effects),
                                   "n_rows": len(rows), "n_edges": len(found),
                                   "n_left_out": left_out, "left_out_because": "an end is not among the graph's "
                                   "top_k features" if left_out else None}
        edges += found
    return add_feature_edges(graph, edges, info)


def export_graph(
    report: str | Path, out: str | Path, *, format: GraphFormat = "native", top_k: int = 50,
    coactivation: bool = True, records: str | Path | None = None, alpha: float | None = None,
    feature_effects: str | Path | None = None, validate: bool = False,
) -> dict[str, Any]:
    """Read ``report`` (a report.json or its folder), build its graph and write it to ``out`` atomically.

    Args:
        report: the report.json or its folder.
        out: the graph JSON file to write.
        format: ``native`` (``interp-agent.graph.v1``) or ``neuronpedia``.
        top_k: ranked features kept as nodes.
        coactivation: add co-activation edges among those features, from the held-out prompts of
            ``records`` (default: the report's own records, when they are there unchanged).
        records: activation records to measure co-activation on instead of the report's.
        alpha: false discovery rate of the co-activation edges (default 0.05).
        feature_effects: a ``feature_effects.jsonl`` whose pairs become directed feature-effect edges.
        validate: check the native graph against ``graph.v1.json`` before writing (needs jsonschema).

    Returns:
        The document written.

    Raises:
        InputFileError: the report, the records given or the feature-effects file is missing or
            malformed (names the file).
        ValidationError: unknown ``format``, bad ``top_k`` or ``alpha``, or (``validate``) a graph
            that does not match its schema.
    """
    if format not in GRAPH_FORMATS:
        raise ValidationError(f"format must be one of {', '.join(GRAPH_FORMATS)}, got {format!r}")
    graph = graph_with_feature_edges(report, top_k=top_k, coactivation=coactivation, records=records, alpha=alpha,
                                     feature_effects=feature_effects)
    if validate:
        from interp_agent.core.graph_edges import validate_graph

        validate_graph(json.loads(json.dumps(clean_json(graph))))
    payload = graph if format == "native" else to_neuronpedia(graph)
    write_json(out, payload)
    return payload


__all__ = ["CRITERION_ID", "EDGE_KINDS", "FEATURE_EDGE_KINDS", "GRAPH_FORMATS", "GraphFormat", "add_feature_edges",
           "build_graph", "export_graph", "graph_with_feature_edges", "load_report_file", "parse_feature_id",
           "to_neuronpedia"]
