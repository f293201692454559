"""interp-agent: criterion-driven mechanistic interpretability."""
from interp_agent._version import __version__
