"""The MCP layer: typed tools, resources and prompts over the core library and the job runner. Thin."""

from interp_agent.server.app import build_server, serve

__all__ = ["build_server", "serve"]
