"""`python -m playground report <comparison> -o file.html` and `python -m playground votes <comparison> -o f.jsonl`."""

from __future__ import annotations

import sys
from pathlib import Path

from .preferences import export_preferences
from ..store.votes import list_votes
from ..scoring.panel import comparison_panel
from .report import MAX_MEDIA_BYTES, write_report


def cmd_report(args, services) -> int:
    dest = Path(args.output or f"comparison-{args.comparison}.html")
    write_report(services.log, args.comparison, dest, summary_html=comparison_panel(services.log, args.comparison),
                 max_media_bytes=int(args.max_media_mb * 2**20))
    print(f"report of comparison #{args.comparison} written to {dest} ({dest.stat().st_size / 1024:.0f} KB)")
    return 0


def cmd_votes(args, services) -> int:
    dest = Path(args.output)
    fmt = dest.suffix.lstrip(".").lower()
    if fmt not in ("jsonl", "csv"):
        print(f"error: {dest}: the file must end in .jsonl (DPO pairs) or .csv (every vote)", file=sys.stderr)
        return 2
    where = "the log"
    if args.comparison is not None:
        services.log.get_comparison_header(args.comparison)     # a missing one is an error, not an empty file
        where = f"comparison #{args.comparison}"
    votes = list_votes(services.log, args.comparison)
    decisive = sum(vote.winner_run_id is not None for vote in votes)
    if not votes:
        print(f"error: {where} has no votes yet, so nothing was written: votes are cast in the Vote tab "
              "(or through its share link)", file=sys.stderr)
        return 1
    if fmt == "jsonl" and not decisive:
        print(f"error: the {len(votes)} votes of {where} are all ties or 'both bad', which make no preference "
              f"pair, so nothing was written; {dest.with_suffix('.csv').name} would list every vote", file=sys.stderr)
        return 1
    export_preferences(services.log, dest, fmt, comparison_id=args.comparison)
    what = f"{decisive} preference pairs" if fmt == "jsonl" else f"{len(votes)} votes"
    print(f"{what} of {where} exported to {dest}")
    return 0


def add_parser(subparsers) -> None:
    report = subparsers.add_parser("report", help="write one comparison as a self-contained HTML file")
    report.add_argument("comparison", type=int)
    report.add_argument("-o", "--output", metavar="FILE.html", help="default: comparison-<id>.html")
    report.add_argument("--max-media-mb", type=float, default=MAX_MEDIA_BYTES / 2**20,
                        help="embed media up to this many MB; the rest is listed as left out")
    report.set_defaults(handler=cmd_report)

    votes = subparsers.add_parser("votes", help="export blind A/B votes as DPO pairs (.jsonl) or every vote (.csv)")
    votes.add_argument("comparison", type=int, nargs="?", help="only this comparison (default: all)")
    votes.add_argument("-o", "--output", required=True, metavar="FILE")
    votes.set_defaults(handler=cmd_votes)
