"""investigate (one call for a whole investigation), dossier and plan_evidence, and the dossier resources."""

from __future__ import annotations

import time
from pathlib import Path
from typing import Any

from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ResourceError
from mcp.types import ToolAnnotations

from interp_agent.core.errors import InterpAgentError, ValidationError
from interp_agent.jobs import JobRecord
from interp_agent.server.dossier_models import (
    DossierInput,
    DossierOutput,
    InvestigateInput,
    InvestigateOutput,
    InvestigateResult,
    PlanEvidenceInput,
    PlanEvidenceOutput,
)
from interp_agent.server.models import NextAction
from interp_agent.server.next_steps import call, for_job, relative_arguments
from interp_agent.server.registry import ToolSpec
from interp_agent.server.state import DOSSIER_URI, DOSSIERS_DIR, ServerState, job_view
from interp_agent.server.tools.analysis import dataset_of, optional_path, report_path, wait_for

_READ_ONLY = ToolAnnotations(read_only_hint=True, destructive_hint=False, idempotent_hint=True, open_world_hint=False)
_RENDERINGS = (".json", ".md", ".html")


def dossier_uris(name: str) -> list[str]:
    """URIs of a dossier as JSON, Markdown and HTML."""
    return [DOSSIER_URI.format(name=name + suffix) for suffix in _RENDERINGS]


def _store(state: ServerState, name: str) -> Any:
    from interp_agent.core.dossier import DossierStore

    path = Path(str(state.dossier_file(name)))
    if not path.is_file():
        known = sorted(p.stem for p in (state.workspace / DOSSIERS_DIR).glob("*.json"))
        raise ValidationError(f"no dossier {name!r} in this workspace",
                              hint=f"known dossiers: {', '.join(known) or 'none yet'}; a job given "
                                   "dossier=NAME (inspect, intervene, explain, match, investigate) creates one")
    return DossierStore(path)


def _run_link(state: ServerState) -> Any:
    """Evidence links of a rendering: the run's file as an ``interp-agent://runs`` resource when it is a job's."""

    def link(ref: Any) -> str:
        parts = Path(ref.folder).parts
        if len(parts) >= 2 and parts[0] == "runs":
            return state.uri(parts[1], "/".join((*parts[2:], ref.file)))
        return ref.path

    return link


def register_resources(server: MCPServer, state: ServerState) -> None:
    """Serve every dossier as ``interp-agent://dossiers/NAME.json`` (and ``.md``, ``.html``)."""

    @server.resource(DOSSIER_URI, name="dossier", title="Dossier",
                     description="An investigation's claims and their evidence ladder: NAME.json, NAME.md, NAME.html")
    def read_dossier(name: str) -> str:
        from interp_agent.core.dossier import render_html, render_markdown

        stem, dot, suffix = name.rpartition(".")
        if not dot or "." + suffix not in _RENDERINGS:
            raise ResourceError(f"dossier resources end in {', '.join(_RENDERINGS)}: got {name!r}")
        try:
            store = _store(state, stem)
            if suffix == "json":
                return store.path.read_text(encoding="utf-8")
            dossier = store.read()
            gone = store.missing_runs(dossier)
        except InterpAgentError as exc:
            raise ResourceError(str(exc)) from None
        render = render_markdown if suffix == "md" else render_html
        return render(dossier, missing_runs=gone, run_link=_run_link(state))


def _investigate_params(state: ServerState, inp: InvestigateInput) -> dict[str, Any]:
    name = inp.dossier or f"investigation-{time.strftime('%Y%m%d-%H%M%S')}"
    return {
        "model": inp.model,  # like intervene's: a name, a hub id, or a folder relative to the workspace
        "criterion": inp.criterion or None, "pack": inp.pack, "dataset": dataset_of(state, inp),
        "hookpoints": inp.hookpoints, "top_k": inp.top_k, "n_explain": inp.n_explain,
        "n_intervene": inp.n_intervene, "mode": inp.mode, "strengths": inp.strengths, "scorer": inp.scorer,
        "targets": inp.targets, "corpus": inp.corpus if inp.corpus in ("builtin", "general_en")
        or inp.corpus.startswith("hf:") else optional_path(state, inp.corpus, "corpus"),
        "max_contexts": inp.max_contexts, "max_forward_passes": inp.max_forward_passes,
        "max_seconds": inp.max_seconds, "dossier": state.dossier_file(name),
    }


def investigate_result(state: ServerState, record: JobRecord, raw: dict[str, Any]) -> InvestigateResult:
    """The result of a finished investigate job, paths as URIs and workspace paths."""
    final = raw.get("final_report")
    return InvestigateResult(
        steps=raw["steps"], spent=raw["spent"], verdicts=raw["verdicts"], claims=raw["claims"][:50],
        plan=raw["plan"], dossier=Path(raw["dossier"]).stem,
        report=state.uri(record.run_id, str(Path(final).relative_to(state.run_dir(record.run_id))))
        if final else None)


def _investigate_spec(state: ServerState) -> ToolSpec:
    async def investigate_tool(inp: InvestigateInput, ctx: Context) -> InvestigateOutput:
        record = await wait_for(state, state.runner.submit("investigate", _investigate_params(state, inp)).job_id,
                                inp.wait_seconds, ctx)
        raw = state.runner.result(record.job_id) if record.state == "completed" else None
        return InvestigateOutput(job=job_view(record),
                                 result=investigate_result(state, record, raw) if raw is not None else None,
                                 resources=state.run_uris(record.run_id), next_actions=for_job(state, record))

    return ToolSpec(
        "investigate",
        "A whole investigation in one background job, the strong default: inspect the live model against the "
        "criterion (a pack, a dataset, or your positives and negatives), explain the top features on a corpus "
        "(scored on held-out contexts), test them causally with controls (held-out prompts), rank again with the "
        "causal evidence, and file every step into a dossier (claims graded on the evidence ladder). Give a budget "
        "(max_forward_passes and/or max_seconds): a step that finds it spent is skipped, one that spends it stops "
        "at its next batch, and the result says which. A few minutes on a CPU with the defaults. The result lists "
        "the verdicts, the claims with their grades and plan_evidence's next calls. Each step can still be run by "
        "hand (inspect, explain, intervene with dossier=NAME).",
        InvestigateInput, InvestigateOutput, investigate_tool,
        ToolAnnotations(read_only_hint=False, destructive_hint=False, idempotent_hint=False, open_world_hint=True),
        "Investigate a criterion end to end",
    )


def _listing(state: ServerState) -> list[dict[str, Any]]:
    from interp_agent.core.dossier import DossierStore

    out: list[dict[str, Any]] = []
    folder = state.workspace / DOSSIERS_DIR
    for path in sorted(folder.glob("*.json"), key=lambda p: p.stat().st_mtime, reverse=True) if folder.is_dir() else ():
        try:
            d = DossierStore(path).read()
            out.append({"name": path.stem, "criterion": d.criterion, "models": list(d.models),
                        "claims": len(d.claims), "updated": path.stat().st_mtime})
        except InterpAgentError as exc:  # a hand-edited file that no longer reads: listed with why
            out.append({"name": path.stem, "error": str(exc)})
    return out


def _dossier_spec(state: ServerState) -> ToolSpec:
    async def dossier_tool(inp: DossierInput, ctx: Context) -> DossierOutput:
        if inp.name is None:
            listing = _listing(state)
            return DossierOutput(dossiers=listing, dossier=None, resources=[], next_actions=[
                call("dossier", "read the newest dossier", name=listing[0]["name"])] if listing else [])
        from interp_agent.core.dossier import summary_dict

        store = _store(state, inp.name)
        dossier = store.read()
        body = summary_dict(dossier, missing_runs=store.missing_runs(dossier), limit=inp.claims)
        return DossierOutput(dossiers=[], dossier=body, resources=dossier_uris(inp.name), next_actions=[
            call("plan_evidence", "what each claim still lacks, and the calls that would supply it", dossier=inp.name)])

    return ToolSpec(
        "dossier",
        "Read an investigation's dossier: its claims ('F tracks C', 'F causes C', 'F means ...', 'F corresponds to "
        "G'), each graded on one evidence ladder (imported < correlational < held_out < causal < explained < "
        "transferred) with the reason, and every piece of evidence with its numbers and the run behind it "
        "(contradicting evidence is kept and lowers the grade). Without a name, lists the workspace's dossiers. "
        "Instant, read-only; also resources interp-agent://dossiers/NAME.json|.md|.html.",
        DossierInput, DossierOutput, dossier_tool, _READ_ONLY, "Read a dossier",
    )


def _plan_spec(state: ServerState) -> ToolSpec:
    async def plan_tool(inp: PlanEvidenceInput, ctx: Context) -> PlanEvidenceOutput:
        from interp_agent.core.dossier import plan_evidence, plan_from_report

        if (inp.dossier is None) == (inp.report is None):
            raise ValidationError("give dossier (a dossier name) or report (an inspect run_id or report.json), "
                                  "one of them")
        if inp.dossier is not None:
            plan = plan_evidence(_store(state, inp.dossier).read()).to_dict()
        else:
            plan = plan_from_report(report_path(state, str(inp.report), "report"), workspace=state.workspace).to_dict()
        steps = [_relative(state, s) for s in plan["steps"][: inp.limit]]
        return PlanEvidenceOutput(steps=steps, missing=plan["missing"], next_actions=[
            NextAction(tool=s["tool"], arguments=s["arguments"], why=s.get("why") or f"supplies {s.get('supplies')}")
            for s in steps[:3]])

    return ToolSpec(
        "plan_evidence",
        "What evidence each claim of a dossier (or each top feature of a report) still lacks, and the exact calls "
        "that would supply it: tool name and arguments ready to send, the CLI equivalent, the rung each raises, "
        "the claims it covers, and its estimated cost on this machine, cheapest first. Instant, read-only. Follow "
        "the steps in order; they file into the dossier, so plan_evidence again shows the grades raised.",
        PlanEvidenceInput, PlanEvidenceOutput, plan_tool, _READ_ONLY, "Plan the missing evidence",
    )


def _relative(state: ServerState, step: dict[str, Any]) -> dict[str, Any]:
    """A plan step whose path arguments are workspace paths (what the tools take)."""
    return step | {"arguments": relative_arguments(state, step["arguments"])}


def specs(state: ServerState) -> list[ToolSpec]:
    """The investigation tools."""
    return [_investigate_spec(state), _dossier_spec(state), _plan_spec(state)]
