"""``python -m interp_agent.cli``: the interp-agent command line (what ``run`` starts for each step)."""

import sys

from interp_agent.cli import main

if __name__ == "__main__":
    sys.exit(main())
