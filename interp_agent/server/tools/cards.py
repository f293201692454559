"""feature_card: one feature of a finished inspect run, with its evidence, small enough to read in a tool result."""

from __future__ import annotations

import json
from typing import Any

from mcp.server.mcpserver import Context
from mcp.types import ToolAnnotations

from interp_agent.core.errors import InputFileError, ValidationError, arg
from interp_agent.server.models import FeatureCardInput, FeatureCardOutput
from interp_agent.server.next_steps import call, prompt_arguments, workspace_path
from interp_agent.server.registry import ToolSpec
from interp_agent.server.state import ServerState

CARD_EXAMPLES = 5
"""Top-activating examples a card shows."""
CARD_TOKENS = 8
"""Most active tokens of an example a card shows (the report keeps every token)."""
LISTED_IDS = 12
"""Feature ids named in the error for an id the report does not have."""


def card_of(feature: dict[str, Any]) -> dict[str, Any]:
    """A report feature reduced to a card: the compact row, its evidence blocks, a few examples, no histograms."""
    from interp_agent.core.reports.compact import compact_feature

    examples = []
    for example in (feature.get("examples") or [])[:CARD_EXAMPLES]:
        shown = {k: v for k, v in example.items() if k != "tokens"}
        tokens = example.get("tokens") or []
        if tokens:
            shown["top_tokens"] = sorted(tokens, key=lambda t: -abs(t[1]))[:CARD_TOKENS]
        examples.append(shown)
    keep = ("explanation", "layer", "source", "association", "specificity", "stability", "causal", "provenance",
            "importance_components", "imported")
    return compact_feature(feature) | {k: feature[k] for k in keep if feature.get(k) is not None} | {
        "examples": examples}


def _report(state: ServerState, run_id: str) -> dict[str, Any]:
    path = state.run_dir(run_id) / "report.json"
    if not path.is_file():
        raise ValidationError(f"{arg('run_id', run_id)} has no report.json",
                              hint="give the run_id of a completed inspect job (job_list shows them)")
    try:
        return json.loads(path.read_text(encoding="utf-8"))
    except ValueError as exc:
        raise InputFileError(path, f"not JSON ({exc})") from None


def specs(state: ServerState) -> list[ToolSpec]:
    """The feature card tool."""

    async def feature_card(inp: FeatureCardInput, ctx: Context) -> FeatureCardOutput:
        report = _report(state, inp.run_id)
        features = report.get("features") or []
        if not features:
            raise ValidationError(f"the report of run {inp.run_id!r} ranks no features",
                                  hint="read its warnings with job_result; give more prompts or records")
        fid = inp.feature_id or features[0]["feature_id"]
        feature = next((f for f in features if f["feature_id"] == fid), None)
        if feature is None:
            ids = ", ".join(f["feature_id"] for f in features[:LISTED_IDS])
            raise ValidationError(f"{arg('feature_id', fid)} is not in the report of run {inp.run_id!r}; it has {ids}"
                                  + (f" and {len(features) - LISTED_IDS} more" if len(features) > LISTED_IDS else ""),
                                  hint="use a feature_id from the report's top rows")
        next_actions = []
        try:
            params = state.runner.get(inp.run_id).params
        except ValidationError:
            params = {}
        if params.get("backend") in ("hf", "saelens") and feature.get("causal") is None:
            next_actions.append(call(
                "intervene", "test this feature causally, with controls, on held-out prompts", model=params["model"],
                report=inp.run_id, features=[fid], sae=workspace_path(state, params.get("sae")),
                **prompt_arguments(state, params)))
        return FeatureCardOutput(card=card_of(feature), criterion=report.get("criterion"),
                                 synthetic=bool(report.get("synthetic")), n_features=len(features),
                                 report=state.uri(inp.run_id, "report.json"), next_actions=next_actions)

    return [ToolSpec(
        "feature_card",
        "One feature of a finished inspect run as a compact card: its held-out statistics with intervals, "
        "specificity, stability, causal evidence (verdicts, effects, controls) when tested, provenance, and its top "
        f"{CARD_EXAMPLES} examples with their most active tokens. feature_id defaults to the top-ranked feature. "
        "Instant, read-only; the whole report stays a resource (report.json). Next: intervene on the feature.",
        FeatureCardInput, FeatureCardOutput, feature_card,
        ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False),
        "Feature card",
    )]
