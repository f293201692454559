"""MCP prompts: the templates in prompts/*.md, served by name."""

from __future__ import annotations

import sys
from pathlib import Path

from mcp.server.mcpserver import MCPServer

PROMPT_DIRS = (
    Path(__file__).resolve().parents[2] / "prompts",  # a source checkout or editable install
    Path(sys.prefix) / "share" / "interp-agent" / "prompts",  # a wheel install (data-files)
)


def prompt_dir() -> Path:
    """The folder the prompt templates are read from."""
    for folder in PROMPT_DIRS:
        if (folder / "investigation_loop.md").is_file():
            return folder
    raise FileNotFoundError(f"prompt templates not found in {[str(p) for p in PROMPT_DIRS]}")


def register_prompts(server: MCPServer) -> None:
    """Serve the investigation loop prompt."""
    template = (prompt_dir() / "investigation_loop.md").read_text(encoding="utf-8")

    @server.prompt(
        name="investigation_loop",
        title="Criterion-driven investigation loop",
        description="Step-by-step plan for an agent: profile the environment, compile the criterion into "
        "examples, inspect, intervene on the top features with controls, train an SAE if none fits, match "
        "across models, publish.",
    )
    def investigation_loop(criterion: str, model: str = "smollm2-135m") -> str:
        return template.replace("{criterion}", criterion).replace("{model}", model)
