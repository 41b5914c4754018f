"""`python -m playground experiment ...`: run an experiment from the command line or CI, follow it, pause, resume or
cancel it, export its results, and hand its cells to a batch engine and take the answers back.

`experiment run` runs the job in this process with a progress bar (plain lines when not on a terminal). Run again
with the same arguments, it finds its job by the spec's hash and continues it: only the cells not yet logged run.
Ctrl-C pauses it. Exit codes: 0 every cell OK (and every --fail-under met), 1 cells failed or a threshold was
missed, 2 bad input, 130 paused by Ctrl-C.
"""

from __future__ import annotations

import json
import sys
import threading
import time

from ..datasets import did_you_mean
from ..jobs import JobWorker
from . import api
from .args import UsageError, add_spec_arguments, spec_from_args
from .cli_more import add_dataset_commands, add_more, guarded
from .results import fail_under, template_checks, variant_means

POLL_S = 0.5
PLAIN_EVERY_S = 10.0


def add_parser(commands, common=None) -> None:
    """`experiment ...` and `dataset ...`; `common`: the parser of the global flags (--data-dir, --offline), so
    they work after a subcommand too."""
    experiment = commands.add_parser("experiment", help="run a template over a dataset as a resumable job")
    sub = experiment.add_subparsers(dest="experiment_command", required=True)
    if common is not None:
        plain = sub.add_parser
        sub.add_parser = lambda name, **kwargs: plain(name, parents=[common], **kwargs)
    run = sub.add_parser("run", help="run (or continue) an experiment in this process")
    add_spec_arguments(run)
    run.add_argument("--retry-errors", action="store_true", help="run the failed cells again")
    run.add_argument("--dry-run", action="store_true", help="say how many cells and calls, and estimate tokens, "
                     "time and cost; run nothing")
    run.add_argument("--pilot", type=int, default=0, metavar="N", help="with --dry-run: run N cells per model "
                     "first, for real figures")
    run.add_argument("--new", action="store_true", help="start a new experiment even if this one ran before")
    run.add_argument("--quiet", action="store_true", help="no progress output")
    run.set_defaults(handler=guarded(cmd_run))
    create = sub.add_parser("create", help="create an experiment without running it (for export-batch)")
    add_spec_arguments(create)
    create.set_defaults(handler=guarded(cmd_create))
    for name, handler, text in (("status", cmd_status, "where an experiment stands"),
                                ("resume", cmd_resume, "continue a paused or stopped experiment here"),
                                ("pause", cmd_pause, "pause an experiment (it keeps what it logged)"),
                                ("cancel", cmd_cancel, "cancel an experiment for good")):
        command = sub.add_parser(name, help=text)
        command.add_argument("experiment", type=int, help="the experiment's id")
        command.add_argument("--json", action="store_true")
        command.set_defaults(handler=guarded(handler))
        if name == "resume":
            command.add_argument("--retry-errors", action="store_true", help="run the failed cells again")
            command.add_argument("--fail-under", action="append", metavar="CHECK=VALUE")
            command.add_argument("--quiet", action="store_true")
    listing = sub.add_parser("list", help="the experiments in the log")
    listing.add_argument("--json", action="store_true")
    listing.set_defaults(handler=guarded(cmd_list))
    add_more(sub)
    add_dataset_commands(commands)


def _thresholds(values) -> dict[str, float]:
    found = {}
    for value in values or []:
        name, _, number = value.partition("=")
        try:
            found[name.strip()] = float(number)
        except ValueError:
            raise UsageError(f"--fail-under {value!r}: write CHECK=NUMBER") from None
    return found


def cmd_run(args, services) -> int:
    spec, thresholds = spec_from_args(args, services)
    _check_thresholds(spec, thresholds)
    if args.dry_run:
        from .estimate import estimate

        print(estimate(services, spec, pilot=args.pilot).text())
        return 0
    experiment = api.submit(services, spec, new=args.new)
    if experiment.job.status in ("done", "cancelled") and args.retry_errors:
        api.resume(services, experiment.id, retry_errors=True)
    elif experiment.job.status == "cancelled":
        raise UsageError(f"experiment #{experiment.id} was cancelled; pass --new to start it again")
    print(f"experiment #{experiment.id}" + ("" if experiment.created else " (continuing)") + f": {spec.template_name}"
          f" × {spec.dataset_name}", file=sys.stderr)
    return _follow(services, experiment.id, thresholds, args.quiet)


def cmd_create(args, services) -> int:
    spec, _ = spec_from_args(args, services)
    experiment = api.submit(services, spec, start=False)
    status = api.status(services, experiment.id)
    print(f"experiment #{experiment.id} created ({status.total:,} cells, {status.status}): start it with "
          f"`experiment resume {experiment.id}`, or hand its cells to a batch engine with "
          f"`experiment export-batch {experiment.id} -o requests.jsonl`")
    return 0


def cmd_resume(args, services) -> int:
    api.resume(services, args.experiment, retry_errors=args.retry_errors)
    return _follow(services, args.experiment, _thresholds(args.fail_under), args.quiet)


def cmd_pause(args, services) -> int:
    return _show(api.pause(services, args.experiment), args.json)


def cmd_cancel(args, services) -> int:
    return _show(api.cancel(services, args.experiment), args.json)


def cmd_status(args, services) -> int:
    return _show(api.status(services, args.experiment), args.json)


def cmd_list(args, services) -> int:
    found = api.list_experiments(services)
    if args.json:
        print(json.dumps([s.to_dict() for s in found], indent=2, default=str))
        return 0
    for status in found:
        print(f"#{status.id:<5} {status.status:<11} {status.line()}  {status.title}")
    if not found:
        print("no experiments yet: python -m playground experiment run <template> --dataset <file>")
    return 0


def _show(status: api.ExperimentStatus, as_json: bool) -> int:
    if as_json:
        print(json.dumps(status.to_dict(), indent=2, default=str))
    else:
        print(f"experiment #{status.id}: {status.title}\n{status.status}: {status.line()}")
        if status.error:
            print(f"error: {status.error}")
        for note in status.notes:
            print(f"note: {note}")
    return 0


def _check_thresholds(spec, thresholds: dict[str, float]) -> None:
    if not thresholds:
        return
    names = template_checks(spec)
    unknown = [name for name in thresholds if name not in names]
    if unknown:
        raise UsageError(f"--fail-under {unknown[0]}=...: this experiment scores " +
                         (did_you_mean(unknown[0], names, "check") if names else "no checks (add --check)"))


def _follow(services, experiment_id: int, thresholds: dict[str, float], quiet: bool) -> int:
    """Run the job here (or watch the process that runs it) until it ends or pauses, showing progress."""
    job = api.get(services, experiment_id).job
    worker = services.worker = JobWorker(services, services.jobs)      # Ctrl-C's pause reaches it at once
    outcome: dict = {}
    thread = threading.Thread(target=lambda: outcome.setdefault("job", worker.run_one(job.id)), daemon=True)
    thread.start()
    display = Display(quiet)
    try:
        while True:
            thread.join(POLL_S)
            status = api.status(services, experiment_id)
            display.show(status)
            if not thread.is_alive() and (outcome.get("job") is not None or status.status not in
                                          ("running", "queued", "interrupted")):
                break
    except KeyboardInterrupt:
        api.pause(services, experiment_id)
        thread.join(30)
        display.end()
        print(f"paused; continue with the same command or `experiment resume {experiment_id}`", file=sys.stderr)
        return 130
    display.end()
    return _verdict(services, experiment_id, thresholds)


def _verdict(services, experiment_id: int, thresholds: dict[str, float]) -> int:
    """The one-screen summary, and the exit code."""
    status = api.status(services, experiment_id)
    means = variant_means(services.log, experiment_id)
    print(summary_text(status, means))
    failures = fail_under(means, thresholds)
    for failure in failures:
        print(f"FAIL --fail-under {failure}")
    if thresholds and not failures:
        print("every --fail-under threshold met")
    if status.status not in ("done",):
        print(f"the experiment is {status.status}" + (f": {status.error}" if status.error else ""))
        return 1
    return 1 if failures or status.failed else 0


def summary_text(status: api.ExperimentStatus, means: dict[str, dict]) -> str:
    checks = sorted({name for entry in means.values() for name in entry["checks"]})
    head = [f"experiment #{status.id}: {status.title} ({status.status})", status.line(), ""]
    rows = [["variant", "cells", "failed", *checks]]
    for variant, entry in means.items():
        rows.append([variant, str(entry["cells"]), str(entry["failed"]),
                     *[_number(entry["checks"].get(name)) for name in checks]])
    widths = [max(len(r[i]) for r in rows) for i in range(len(rows[0]))]
    table = ["  ".join(cell.ljust(w) for cell, w in zip(row, widths)).rstrip() for row in rows]
    tail = [f"\npaired statistics: python -m playground stats {status.id}"]
    return "\n".join(head + table + tail)


def _number(value) -> str:
    return "-" if value is None else f"{value:.4g}"


class Display:
    """A progress bar on a terminal, a plain line every few seconds otherwise; nothing with --quiet."""

    def __init__(self, quiet: bool):
        self.quiet = quiet
        self.tty = sys.stderr.isatty()
        self.last = 0.0
        self.shown = ""

    def show(self, status: api.ExperimentStatus) -> None:
        if self.quiet:
            return
        line = status.line()
        if self.tty:
            share = (status.done + status.failed) / status.total if status.total else 0
            bar = "#" * int(share * 24)
            sys.stderr.write(f"\r[{bar:<24}] {line}".ljust(110)[:160])
            sys.stderr.flush()
        elif line != self.shown and time.monotonic() - self.last >= PLAIN_EVERY_S:
            print(f"{status.status}: {line}", file=sys.stderr)
            self.last, self.shown = time.monotonic(), line

    def end(self) -> None:
        if not self.quiet and self.tty:
            sys.stderr.write("\n")

