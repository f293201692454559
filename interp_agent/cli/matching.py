"""The ``match`` subcommand: features of two reports matched one to one."""

from __future__ import annotations

import argparse

from interp_agent.cli.investigate import add_dossier_option, file_into, open_dossier
from interp_agent.cli.options import Subparsers, add_json_flag
from interp_agent.cli.output import emit


def cmd_match(args: argparse.Namespace) -> int:
    """``match``: match the features of two reports one to one."""
    from interp_agent.api import match
    from interp_agent.core.matching import matches_paths

    json_path, md_path = matches_paths(args.out)  # checks --out before the work starts
    store = open_dossier(args)
    result = match(args.left, args.right, out=json_path, min_similarity=args.min_similarity, use_text=not args.no_text)
    lines = [
        f"{m['left_feature_id']} ↔ {m['right_feature_id']}  similarity {m['similarity']:.3f}" for m in result["matches"]
    ]
    lines += [f"note: {n}" for n in result.get("notes", [])]
    lines.append(f"wrote {json_path} and {md_path}")
    filed = file_into(store, "match", json_path)
    emit(
        args,
        {
            "summary": result["summary"],
            "notes": result.get("notes", []),
            "matches": result["matches"][:20],
            "paths": {"json": str(json_path), "md": str(md_path)},
        } | ({"dossier": filed} if filed else {}),
        "\n".join(lines),
    )
    return 0


def add_matching_parsers(sub: Subparsers) -> None:
    """Register ``match`` on the subparsers action ``sub``."""
    p = sub.add_parser(
        "match",
        help="match features of two reports one to one; writes the --out JSON and a markdown file named after it",
    )
    p.add_argument("--left", required=True, help="report.json (or its folder)")
    p.add_argument("--right", required=True, help="report.json (or its folder)")
    p.add_argument(
        "--out",
        required=True,
        help="JSON path, e.g. x/left_vs_right.json; the markdown goes beside it "
        "under the same name (x/left_vs_right.md); an existing folder means "
        "folder/matches.json and folder/matches.md",
    )
    p.add_argument("--min-similarity", type=float, default=0.3, help="smallest combined similarity kept (default 0.3)")
    p.add_argument("--no-text", action="store_true", help="skip label embeddings (no sentence encoder)")
    add_dossier_option(p)
    add_json_flag(p)
    p.set_defaults(func=cmd_match)
