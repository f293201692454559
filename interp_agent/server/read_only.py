"""Read-only mode (``serve --read-only``): the one rule for which tools are hidden, and why.

A tool is hidden when its annotations say it is destructive (``destructive_hint``:
``publish`` may overwrite a Hub repo, ``job_cancel`` stops work), or when it is listed in
:data:`LEAVES_THE_WORKSPACE`: tools whose purpose is to write or send results outside
the workspace (``publish`` uploads to the Hugging Face Hub). Hidden tools are not
registered at all: a client never sees them, and a call by name fails as an unknown tool;
the served tools' ``next_actions`` never suggest them.

Everything else stays, because every path argument of every tool is checked to lie in
the workspace or a read root, and the tools write only into the workspace (``runs/``,
``dossiers/``, ``inputs/``). What read-only mode does not stop, by design: the machine's
caches (``$INTERP_AGENT_CACHE``, default ``~/.cache/interp-agent``: the embedded model's
safetensors copy, sentence embeddings, Neuronpedia cards, pretrained SAEs; and the
Hugging Face cache for models named by hub id) still fill as models and SAEs are read,
and open-world tools still read the network (a hub id, a Neuronpedia ref, explain's chat
endpoint when the server's environment configures one). Caches hold copies of what was
read, never results; to keep them inside the workspace too, start the server with
``INTERP_AGENT_CACHE`` and ``HF_HOME`` pointing into it (and ``HF_HUB_OFFLINE=1`` to refuse
hub downloads).
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import replace
from typing import Any

from mcp.server.mcpserver import Context
from pydantic import BaseModel

from interp_agent.server.registry import ToolSpec

LEAVES_THE_WORKSPACE: dict[str, str] = {
    "publish": "uploads a run folder to the Hugging Face Hub (results leave the machine)",
}
"""Tools that write or send results outside the workspace by purpose, whatever their annotations say."""


def hidden_reason(spec: ToolSpec) -> str | None:
    """Why read-only mode hides ``spec``, or None when it stays."""
    if spec.name in LEAVES_THE_WORKSPACE:
        return LEAVES_THE_WORKSPACE[spec.name]
    if spec.annotations.destructive_hint:
        return "destructive (its annotations say destructive_hint=true)"
    return None


def split_read_only(specs: Iterable[ToolSpec]) -> tuple[list[ToolSpec], dict[str, str]]:
    """The specs read-only mode serves (their next_actions never naming a hidden tool), and the hidden ones'
    names with the reason."""
    kept, hidden = [], {}
    for spec in specs:
        reason = hidden_reason(spec)
        if reason is None:
            kept.append(spec)
        else:
            hidden[spec.name] = reason
    return [_without_suggesting(spec, set(hidden)) for spec in kept], hidden


def _without_suggesting(spec: ToolSpec, hidden: set[str]) -> ToolSpec:
    """``spec`` whose results drop the suggested calls (``next_actions``) of hidden tools."""
    handler = spec.handler

    async def handle(inp: Any, ctx: Context) -> BaseModel:
        out = await handler(inp, ctx)
        actions = getattr(out, "next_actions", None)
        if isinstance(actions, list):
            return out.model_copy(update={"next_actions": [a for a in actions
                                                           if getattr(a, "tool", None) not in hidden]})
        return out

    return replace(spec, handler=handle)


def read_only_instructions(hidden: dict[str, str]) -> str:
    """The paragraph read-only mode adds to the server's instructions: what was hidden and what still happens."""
    listed = "; ".join(f"{name} ({why})" for name, why in sorted(hidden.items())) or "none"
    return (
        "\n\nREAD-ONLY MODE: this server hides the tools that publish, write outside the workspace or destroy "
        f"work: {listed}. Every other tool reads inputs from the workspace (or a read root) and writes only "
        "inside the workspace; model and SAE caches on this machine still fill as they are read."
    )
