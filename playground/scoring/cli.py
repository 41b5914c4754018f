"""`python -m playground stats <comparison id>`: per-variant means with intervals and the pairwise table.

With `--check`, the comparison is scored again first (from its logged text and files).
"""

from __future__ import annotations

import json
import sys

from .base import CheckError, ScorerContext, parse_check_args
from .stats import RESAMPLES, Summary, comparison_summary


def add_parser(subparsers) -> None:
    stats = subparsers.add_parser("stats", help="which variant of a logged comparison wins, and how sure that is")
    stats.add_argument("comparison", type=int, help="the comparison id (see History or `run` output)")
    stats.add_argument("--check", action="append", metavar="CHECK",
                       help="score the comparison again with this check first: clip, contains=lantern, "
                            "length:unit=words,max=50, or a JSON object (repeat for more)")
    stats.add_argument("--resamples", type=int, default=RESAMPLES, help="bootstrap resamples (default 2000)")
    stats.add_argument("--json", action="store_true", help="print the summary as JSON")
    stats.set_defaults(handler=cmd_stats)


def cmd_stats(args, services) -> int:
    log = services.log
    try:
        if not 100 <= args.resamples <= 100_000:
            raise CheckError("--resamples must be between 100 and 100,000")
        if args.check:
            from .cell import rescore_comparison

            header = log.get_comparison_header(args.comparison)
            specs = parse_check_args(args.check, header.modality)
            context = ScorerContext.from_settings(services.settings)
            rescore_comparison(log, args.comparison, specs, context,
                               on_cell=lambda done, total: print(f"scored {done}/{total}", file=sys.stderr))
        summary = comparison_summary(log, args.comparison, resamples=args.resamples)
    except CheckError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    print(json.dumps(summary.to_dict(), indent=2, default=str) if args.json else format_summary(summary))
    return 0


def _num(x: float | None, signed: bool = False) -> str:
    if x is None:
        return "-"
    sign = "+" if signed else ""
    return f"{x:{sign}.3f}" if abs(x) < 1000 else f"{x:{sign}.0f}"


def _table(rows: list[list[str]], headers: list[str]) -> str:
    widths = [max(len(str(x)) for x in column) for column in zip(headers, *rows)]
    lines = [headers, ["-" * w for w in widths], *rows]
    return "\n".join("  ".join(str(x).ljust(w) for x, w in zip(line, widths)).rstrip() for line in lines)


def format_summary(summary: Summary) -> str:
    """The summary as plain text: one block per score, a table of variants, then one line per pair."""
    head = f"comparison #{summary.comparison_id}: {summary.title}" if summary.comparison_id is not None else "summary"
    out = [f"{head}\n{summary.cells} cells, {summary.failed} failed (left out of every statistic); "
           f"95% intervals from {summary.resamples} bootstrap resamples"]
    if not summary.metrics:
        out.append("\nno scores or ratings yet: add checks (e.g. --check clip) or rate some cells.")
    for metric in summary.metrics:
        direction = {"higher": "higher is better", "lower": "lower is better"}.get(metric.better, "a measurement")
        rows = [[v.variant, str(v.n), _num(v.mean), f"{_num(v.low)} to {_num(v.high)}" if v.low is not None else "-",
                 str(v.failed), str(v.missing)] for v in metric.variants]
        out.append(f"\n{metric.name} ({metric.kind}, {direction}): {metric.verdict}")
        if metric.note:
            out.append(f"note: {metric.note}")
        out.append(_table(rows, ["variant", "cells", "mean", "95% CI", "failed", "missing"]))
        if metric.pairs:
            pair_rows = [[f"{p.a} - {p.b}", str(p.n), _num(p.mean_diff, signed=True),
                          f"{_num(p.low, True)} to {_num(p.high, True)}" if p.low is not None else "-",
                          f"{p.wins}/{p.losses}/{p.ties}", "-" if p.p_value is None else f"{p.p_value:.3g}",
                          "yes" if p.clear else "no"] for p in metric.pairs]
            out.append(_table(pair_rows, ["pair", "pairs", "mean diff", "95% CI", "win/loss/tie", "sign p",
                                          "clear"]))
            out.extend(f"  {p.sentence}" for p in metric.pairs)
    return "\n".join(out)
