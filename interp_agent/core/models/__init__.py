"""Models: loading (embedded default, local folder, hub id), hookpoints, hooks and activation harvesting."""
