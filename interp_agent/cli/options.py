"""Shared parser pieces: the type the subcommand registrars take, and options several subcommands share."""

from __future__ import annotations

import argparse
from collections.abc import Mapping
from typing import Protocol


class Subparsers(Protocol):
    """The subparsers action of ``build_parser``: what each module's ``add_*_parsers`` adds its subcommands to."""

    @property
    def choices(self) -> Mapping[str, argparse.ArgumentParser]:
        """Every subcommand's parser by name (a live mapping: subcommands added later are in it too)."""
        ...

    def add_parser(self, name: str, *, help: str = ...) -> argparse.ArgumentParser:
        """Add the subcommand ``name`` and return its parser."""
        ...


JSON_HELP = "print the result object as JSON"
"""The usual help of ``--json``."""


def add_json_flag(parser: argparse.ArgumentParser, help_text: str = JSON_HELP) -> None:
    """``--json``: print the payload as JSON instead of the text (see ``output.emit``)."""
    parser.add_argument("--json", action="store_true", help=help_text)


def add_out_folder(parser: argparse.ArgumentParser) -> None:
    """``--out`` (required): the output folder of a command that writes several files."""
    parser.add_argument("--out", required=True, help="output folder")


def add_live_model(parser: argparse.ArgumentParser) -> None:
    """``--model`` (required): the live model a command loads."""
    parser.add_argument("--model", required=True, help="smollm2-135m (embedded), a local folder or a hub id")


def add_prompt_source(parser: argparse.ArgumentParser, pack_help: str) -> None:
    """``--dataset`` (scored prompts JSONL) and ``--pack`` (a built-in criterion pack): the prompts a live run reads."""
    parser.add_argument("--dataset", help="scored prompts JSONL")
    parser.add_argument("--pack", help=pack_help)


def add_csv_out(parser: argparse.ArgumentParser, what: str) -> None:
    """``--csv-out PATH``: also write the ranked features of ``what`` as a CSV table."""
    parser.add_argument("--csv-out", metavar="PATH",
                        help=f"also write the ranked features of {what} as CSV: rank, feature_id, label, importance, "
                        "train and held-out r / AUROC / p / q with 95%% intervals, causal effect and interval, "
                        "verdict, provenance (one row per feature; empty cells where the report has null)")
