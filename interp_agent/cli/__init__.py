"""The ``interp-agent`` command line: the same verbs as the Python API, ``--json`` for machines."""

from __future__ import annotations

import argparse
import sys
from collections.abc import Callable, Sequence
from typing import NoReturn

from interp_agent._version import __version__
from interp_agent.cli.analysis import add_analysis_parsers
from interp_agent.cli.bridges import add_bridge_parsers
from interp_agent.cli.calibrate import add_calibrate_parsers
from interp_agent.cli.criteria import add_criteria_parsers
from interp_agent.cli.crosscoder import add_crosscoder_parsers
from interp_agent.cli.diffing import add_diffing_parsers
from interp_agent.cli.explain import add_explain_parsers
from interp_agent.cli.harvest import add_harvest_parser
from interp_agent.cli.imports import add_import_parsers
from interp_agent.cli.investigate import add_investigation_parsers
from interp_agent.cli.matching import add_matching_parsers
from interp_agent.cli.ops import add_ops_parsers
from interp_agent.cli.organism import add_organism_parsers
from interp_agent.cli.service import add_service_parsers
from interp_agent.cli.steering import add_steering_parsers
from interp_agent.cli.training import add_training_parsers
from interp_agent.cli.validate import add_validate_parsers
from interp_agent.core.errors import InterpAgentError, render_args

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
    add_explain_parsers(sub)
    add_steering_parsers(sub)
    add_investigation_parsers(sub)
    add_calibrate_parsers(sub)
    add_criteria_parsers(sub)
    add_organism_parsers(sub)
    add_training_parsers(sub)
    add_harvest_parser(sub)
    add_matching_parsers(sub)
    add_validate_parsers(sub)
    add_diffing_parsers(sub)
    add_crosscoder_parsers(sub)
    add_bridge_parsers(sub)
    add_import_parsers(sub)
    add_ops_parsers(sub)
    for command in sub.choices.values():
        command.set_defaults(command_parser=command)
    return parser


def flag_namer(command: argparse.ArgumentParser | None) -> Callable[[str], str]:
    """Maps an argument's API name (``records``, ``features``) to its flag on ``command`` (``--records``,
    ``--feature``)."""
    flags: dict[str, str] = {}
    for action in command._actions if command is not None else ():  # argparse keeps no public list of them
        if action.option_strings:
            flags.setdefault(action.dest, action.option_strings[-1])

    def flag_of(name: str) -> str:
        return flags.get(name) or flags.get(name.removesuffix("s")) or "--" + name.replace("_", "-")

    return flag_of


def main(argv: Sequence[str] | None = None) -> int:
    """Run the command line; returns the exit code."""
    args = build_parser().parse_args(argv)
    try:
        return args.func(args)
    except InterpAgentError as exc:
        message = render_args(str(exc), flag_namer(getattr(args, "command_parser", None)))
        print(f"interp-agent: error: {message}", file=sys.stderr)
        return EXIT_BAD_INPUT
    except KeyboardInterrupt:
        print("interp-agent: interrupted", file=sys.stderr)
        return 130
