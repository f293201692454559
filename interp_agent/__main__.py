"""``python -m interp_agent``: the interp-agent command line (what run configs' steps run by default)."""

import sys

from interp_agent.cli import main

if __name__ == "__main__":
    sys.exit(main())
