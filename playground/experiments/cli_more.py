"""More `experiment` commands (results, export and import, the batch hand-off, comparing two experiments) and the
`dataset` commands (add, list, show)."""

from __future__ import annotations

import functools
import json
import sys
from pathlib import Path

from . import api
from .args import UsageError
from .transfer import export_results, import_results

def guarded(handler):
    """Bad input from these commands ends in one line saying what to change (exit 2), not a traceback."""
    @functools.wraps(handler)
    def run(args, services):
        try:
            return handler(args, services)
        except (UsageError, ValueError) as error:         # every refusal of bad input is a ValueError
            print(f"error: {error}", file=sys.stderr)
            return 2
    return run


def add_more(sub) -> None:
    results = sub.add_parser("results", help="an experiment's summary by variant (and --fail-under)")
    results.add_argument("experiment", type=int)
    results.add_argument("--fail-under", action="append", metavar="CHECK=VALUE")
    results.set_defaults(handler=guarded(cmd_results))
    export = sub.add_parser("export", help="an experiment's runs with their scores as .jsonl, .csv or .parquet")
    export.add_argument("experiment", type=int)
    export.add_argument("-o", "--output", required=True)
    export.set_defaults(handler=guarded(cmd_export))
    importer = sub.add_parser("import", help="add an exported experiment (.jsonl, .zip or .parquet) to the log")
    importer.add_argument("file")
    importer.set_defaults(handler=guarded(cmd_import))
    batch = sub.add_parser("export-batch", help="the cells not yet logged as OpenAI batch JSONL")
    batch.add_argument("experiment", type=int)
    batch.add_argument("-o", "--output", required=True)
    batch.set_defaults(handler=guarded(cmd_export_batch))
    answers = sub.add_parser("import-batch", help="log a batch engine's answers (OpenAI batch output JSONL)")
    answers.add_argument("experiment", type=int)
    answers.add_argument("file")
    answers.set_defaults(handler=guarded(cmd_import_batch))
    compare = sub.add_parser("compare", help="rows that got better or worse from a baseline to a candidate")
    compare.add_argument("baseline", type=int)
    compare.add_argument("candidate", type=int)
    compare.add_argument("--check", required=True, help="the check to compare on")
    compare.add_argument("--baseline-variant")
    compare.add_argument("--candidate-variant")
    compare.add_argument("--rows", type=int, default=10, help="rows of each list to show")
    compare.set_defaults(handler=guarded(cmd_compare))


def cmd_results(args, services) -> int:
    from .cli import _thresholds, _verdict

    return _verdict(services, args.experiment, _thresholds(args.fail_under))


def cmd_export(args, services) -> int:
    count = export_results(services, args.experiment, Path(args.output))
    print(f"exported {count:,} runs of experiment #{args.experiment} to {args.output}")
    return 0


def cmd_import(args, services) -> int:
    report = import_results(services, Path(args.file))
    for line, message in report.errors:
        print(f"{args.file}:{line}: {message}", file=sys.stderr)
    print(f"imported {report.imported:,} runs, skipped {report.skipped:,} already in the log, "
          f"{len(report.errors)} bad rows")
    return 1 if report.errors else 0


def cmd_export_batch(args, services) -> int:
    from .batch import export_batch

    count = export_batch(services, args.experiment, Path(args.output))
    print(f"wrote {count:,} requests (the cells not yet logged) to {args.output}; import the answers with "
          f"`experiment import-batch {args.experiment} <results.jsonl>`")
    return 0


def cmd_import_batch(args, services) -> int:
    from .batch import import_batch

    report = import_batch(services, args.experiment, Path(args.file))
    for line, message in report.errors:
        print(f"{args.file}:{line}: {message}", file=sys.stderr)
    print(f"logged {report.imported:,} answers and {report.failed:,} failed requests; {report.skipped:,} cells "
          f"were already logged; {len(report.errors)} lines refused")
    status = api.status(services, args.experiment)
    print(status.line())
    return 1 if report.errors or report.failed else 0


def cmd_compare(args, services) -> int:
    from .compare import compare_experiments

    result = compare_experiments(services.log, args.baseline, args.candidate, args.check,
                                 baseline_variant=args.baseline_variant, candidate_variant=args.candidate_variant)
    print(result.sentence)
    for title, rows in (("better", result.improved), ("worse", result.worsened)):
        print(f"\n{len(rows)} rows {title}:")
        for change in rows[:args.rows]:
            values = ", ".join(f"{k}={str(v)[:40]}" for k, v in change.values.items())
            print(f"  row {change.dataset_row}: {change.baseline:.3g} -> {change.candidate:.3g} "
                  f"({change.change:+.3g})  {values}")
    return 0


# ---- datasets -------------------------------------------------------------------------------------------------------

def add_dataset_commands(commands) -> None:
    dataset = commands.add_parser("dataset", help="add, list and preview datasets")
    sub = dataset.add_subparsers(dest="dataset_command", required=True)
    add = sub.add_parser("add", help="add a file, a folder or a Hugging Face dataset id")
    add.add_argument("source")
    add.add_argument("--name")
    add.add_argument("--config", help="the Hugging Face dataset's config")
    add.add_argument("--hf-split", help="the Hugging Face dataset's split")
    add.add_argument("--format", choices=["csv", "tsv", "jsonl", "json", "parquet"])
    add.set_defaults(handler=guarded(cmd_dataset_add))
    listing = sub.add_parser("list", help="the datasets added so far")
    listing.set_defaults(handler=guarded(cmd_dataset_list))
    show = sub.add_parser("show", help="a dataset's columns, types, row count and first rows")
    show.add_argument("dataset", help="its name, id or version")
    show.add_argument("--rows", type=int, default=5)
    show.add_argument("--json", action="store_true")
    show.set_defaults(handler=guarded(cmd_dataset_show))


def cmd_dataset_add(args, services) -> int:
    info = services.datasets.add(args.source, name=args.name, config=args.config, split=args.hf_split,
                                 fmt=args.format)
    print(f"dataset #{info.id} {info.name}: {info.rows:,} rows, version {info.version[:12]}")
    return cmd_dataset_show(type("Args", (), {"dataset": info.version, "rows": 3, "json": False}), services)


def cmd_dataset_list(args, services) -> int:
    for info in services.datasets.list():
        print(f"#{info.id:<4} {info.name:<30} {info.rows:>9,} rows  {info.version[:12]}  "
              f"{', '.join(info.column_names)[:60]}")
    return 0


def cmd_dataset_show(args, services) -> int:
    preview = services.datasets.preview(args.dataset, n=args.rows)
    info = preview.dataset
    if args.json:
        print(json.dumps({**info.to_dict(), "first_rows": preview.rows}, indent=2, default=str))
        return 0
    print(f"{info.name}: {info.rows:,} rows, version {info.version}")
    print("columns: " + ", ".join(f"{c.name} ({c.type})" for c in info.columns))
    for number, row in enumerate(preview.rows):
        print(f"  {number}: " + "  ".join(f"{k}={v[:60]!r}" for k, v in row.items()))
    return 0

