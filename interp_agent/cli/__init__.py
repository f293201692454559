"""The ``interp-agent`` command line: the same verbs as the Python API, ``--json`` for machines."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Sequence
from typing import NoReturn

from interp_agent._version import __version__
from interp_agent.cli.analysis import add_analysis_parsers
from interp_agent.cli.bridges import add_bridge_parsers
from interp_agent.cli.matching import add_matching_parsers
from interp_agent.cli.ops import add_ops_parsers
from interp_agent.cli.service import add_service_parsers
from interp_agent.cli.training import add_training_parsers
from interp_agent.core.errors import InterpAgentError

__all__ = ["EXIT_BAD_INPUT", "build_parser", "main"]

EXIT_BAD_INPUT = 2
"""Exit code of bad input; one line on stderr says what is wrong and what to do."""


class _Parser(argparse.ArgumentParser):
    def error(self, message: str) -> NoReturn:  # one line, exit 2
        self.exit(EXIT_BAD_INPUT, f"{self.prog}: error: {message} (see {self.prog} --help)\n")


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of ``interp-agent``."""
    parser = _Parser(prog="interp-agent", description="Criterion-driven mechanistic interpretability.")
    parser.add_argument("--version", action="version", version=f"interp-agent {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, parser_class=_Parser)
    # the order of these calls is the order of the subcommands in --help
    add_service_parsers(sub)
    add_analysis_parsers(sub)
    add_training_parsers(sub)
    add_matching_parsers(sub)
    add_bridge_parsers(sub)
    add_ops_parsers(sub)
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except InterpAgentError as exc:
        print(f"interp-agent: error: {exc}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("interp-agent: interrupted", file=sys.stderr)
        return 130
