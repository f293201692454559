"""The interp-agent MCP server: tools, resources and prompts over one workspace."""

from __future__ import annotations

import logging
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager
from pathlib import Path
from typing import Any, Literal

import anyio
import pydantic
from mcp.server.mcpserver import Context, MCPServer
from mcp.server.mcpserver.exceptions import ToolError

from interp_agent._version import __version__
from interp_agent.core.secrets import redact
from interp_agent.jobs import JobRunner
from interp_agent.server.errors import error_result, from_exception, validation_result
from interp_agent.server.prompts import register_prompts
from interp_agent.server.read_only import read_only_instructions, split_read_only
from interp_agent.server.registry import ToolSpec, add_tool
from interp_agent.server.state import ServerState
from interp_agent.server.tools import (
    analysis,
    artifacts,
    cards,
    criteria,
    crossmodel,
    dossiers,
    env,
    explain,
    hub,
    imports,
    jobs,
    sae,
    steering,
)

log = logging.getLogger("interp_agent.server")

INSTRUCTIONS = """\
interp-agent ranks a model's internal features against a natural-language criterion, with held-out
and causal evidence, trains sparse autoencoders when none fits, and matches features across models.
Start with capabilities or profile_env (and plan_scale for big runs); compile_criterion turns a
criterion into a gated prompt set (called with the criterion alone it says what a good set needs),
and score_prompts scores other prompts against it; investigate runs a whole investigation in one
call (inspect, explain, intervene with controls, rank again) into a dossier, or run inspect, explain
and intervene by hand with dossier=NAME; plan_evidence says what each claim still lacks and which
calls supply it. train_sae when no SAE fits; harvest shards a large prompt set or corpus (on Ray
workers with engine='ray') for train_sae, inspect and explain to read as one dataset. Across models:
match (fingerprints of two reports, or method='activations' on two model/hookpoint sides), then
validate_matches tests the pairs with the same intervention on both sides; diff_models compares a
model with its fine-tune; train_crosscoder learns one dictionary over both. export_steering saves
the edit intervene chose as a file (safetensors or a llama.cpp control vector) and apply_steering
generates with it side by side. import_interp_lab and convert_hidden_dump bring results and hidden
states made elsewhere.
Long work runs as background jobs: a call returns a job handle at once (or the result, if it
finishes within wait_seconds); poll job_status, then job_result. Every result's next_actions are
tool calls with their arguments filled in: follow them (inspect -> feature_card, intervene ->
inspect again with the interventions). feature_card shows one feature's evidence; whole reports
are resources interp-agent://runs/{run_id}/{file}; list them with list_artifacts. Paths are
relative to the workspace. The prompt 'investigation_loop' walks through the whole method."""

_TICK_SECONDS = 0.5


class InterpAgentServer(MCPServer):
    """MCPServer whose every failed call comes back as a structured tool error.

    The SDK raises ToolError for arguments that fail the input schema and for an unknown
    tool name, before our handler runs; both become ``{code, message, hint}`` results here,
    like every error the handlers map themselves (see :mod:`interp_agent.server.errors`).
    """

    async def call_tool(self, name: str, arguments: dict[str, Any], context: Context | None = None) -> Any:
        try:
            return await super().call_tool(name, arguments, context)
        except ToolError as exc:
            if isinstance(exc.__cause__, pydantic.ValidationError):
                return validation_result(name, exc.__cause__)
            known = sorted(tool.name for tool in await self.list_tools())
            if name not in known:
                return error_result("unknown_tool", f"no tool named {name!r}", f"use one of: {', '.join(known)}")
            return from_exception(name, exc)


def tool_specs(state: ServerState) -> list[ToolSpec]:
    """Every tool the server serves; adding a tool means adding its module's specs here."""
    return [*env.specs(state), *analysis.specs(state), *sae.specs(state), *hub.specs(state), *jobs.specs(state),
            *artifacts.specs(state), *cards.specs(state), *explain.specs(state), *dossiers.specs(state),
            *crossmodel.specs(state), *imports.specs(state), *steering.specs(state),
            *criteria.specs(state)]


ExecutorName = Literal["local", "ray"]


def build_server(
    workspace: str | Path,
    *,
    read_roots: tuple[str | Path, ...] = (),
    max_concurrent_jobs: int = 2,
    executor: ExecutorName = "local",
    ray_address: str | None = None,
    read_only: bool = False,
) -> MCPServer:
    """An MCP server over ``workspace`` (created if missing).

    Args:
        workspace: folder for runs, job state and outputs.
        read_roots: extra folders whose files tools may read.
        max_concurrent_jobs: background jobs running at once.
        executor: where background jobs run: 'local' (a process each) or 'ray' (a Ray actor each).
        ray_address: HOST:PORT of the Ray cluster, with ``executor='ray'``.
        read_only: hide the tools that publish, write outside the workspace or are destructive
            (the rule: :mod:`interp_agent.server.read_only`); the instructions list them.

    Raises:
        ValidationError: (Ray) the cluster is unreachable; MissingDependencyError: ray is not installed.
    """
    root = Path(workspace).expanduser().resolve()
    (root / "runs").mkdir(parents=True, exist_ok=True)
    state = ServerState(
        workspace=root,
        read_roots=tuple(Path(r).expanduser().resolve() for r in read_roots),
        runner=JobRunner(root, max_concurrent=max_concurrent_jobs, executor=executor, ray_address=ray_address),
    )

    @asynccontextmanager
    async def lifespan(server: MCPServer) -> AsyncIterator[ServerState]:
        # start queued jobs as running ones finish, and notice workers that died
        async with anyio.create_task_group() as tg:
            async def ticker() -> None:
                while True:
                    try:
                        state.runner.tick()
                    except Exception:  # noqa: BLE001 - the ticker must never stop serving
                        log.exception("job runner tick failed")
                    await anyio.sleep(_TICK_SECONDS)

            tg.start_soon(ticker)
            try:
                yield state
            finally:
                tg.cancel_scope.cancel()

    specs, hidden = split_read_only(tool_specs(state)) if read_only else (tool_specs(state), {})
    state.hidden_tools = hidden
    server = InterpAgentServer(
        "interp-agent", title="interp-agent", version=__version__, lifespan=lifespan, log_level="WARNING",
        instructions=INSTRUCTIONS + (read_only_instructions(hidden) if read_only else ""))
    for spec in specs:
        add_tool(server, spec)
    artifacts.register_resources(server, state)
    dossiers.register_resources(server, state)
    register_prompts(server)
    return server


class RedactingFormatter(logging.Formatter):
    """Formats log records, tracebacks included, with credential values replaced."""

    def format(self, record: logging.LogRecord) -> str:
        return redact(super().format(record))


def serve(
    workspace: str | Path,
    *,
    read_roots: tuple[str | Path, ...] = (),
    max_concurrent_jobs: int = 2,
    executor: ExecutorName = "local",
    ray_address: str | None = None,
    read_only: bool = False,
) -> None:
    """Serve MCP over stdio until the client disconnects. Logs go to stderr; stdout carries JSON-RPC only.

    ``executor``, ``ray_address`` and ``read_only`` are those of :func:`build_server`.
    """
    handler = logging.StreamHandler()  # stderr
    handler.setFormatter(RedactingFormatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
    root = logging.getLogger()
    for old in list(root.handlers):
        root.removeHandler(old)
    root.addHandler(handler)
    root.setLevel(logging.INFO)
    # after the logging setup: the Ray executor logs which cluster it connected to
    server = build_server(workspace, read_roots=read_roots, max_concurrent_jobs=max_concurrent_jobs,
                          executor=executor, ray_address=ray_address, read_only=read_only)
    server.run("stdio")


__all__ = ["INSTRUCTIONS", "build_server", "serve", "tool_specs"]
