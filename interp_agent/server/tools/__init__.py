"""Tool modules; each exposes ``specs(state) -> list[ToolSpec]``."""
