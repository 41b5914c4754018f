"""`python -m playground improve <template> --variant NAME ...`: search for a better variant from the command line.

It prints the projected calls (proposer and generator) and asks before spending them; `--yes` answers. Without a
terminal and without `--yes` it stops after the projection with exit code 3, so a script that forgot `--yes` never
reads as a search that ran. The same command run again finds its search by the spec's hash and continues it from
the log (no question: its calls were agreed). `improve list`, `improve status ID`, `improve pause|resume|cancel ID`
and `improve save ID [--name N] [--variant-name V]` follow and manage searches.

Exit codes: 0 the search ended (whatever the held-out test says), 1 it failed or stopped, 2 bad input, 3 not
started (the projection was not confirmed), 130 paused by Ctrl-C.
"""

from __future__ import annotations

import json
import sys
import threading
from pathlib import Path

from ..experiments.args import UsageError, _dataset, _json_or_text, _pairs, load_template
from ..experiments.cli_more import guarded
from ..jobs import JobWorker
from ..scoring import parse_check_args
from . import api
from .loop import KIND
from .project import project

VERBS = ("list", "status", "pause", "resume", "cancel", "save")
NOT_CONFIRMED = 3
POLL_S = 0.5


def add_parser(commands) -> None:
    run = commands.add_parser("improve", help="let a model propose better versions of a variant, scored on your "
                              "data, and test the winner on held-out rows",
                              description=__doc__.split("\n\n")[0])
    run.add_argument("source", help="a template file (.md) or a library template's name; or list, status, pause, "
                     "resume, cancel, save followed by a search's id")
    run.add_argument("search", nargs="?", type=int, help="the search's id (with status, pause, resume, cancel, save)")
    run.add_argument("--variant", help="the variant to start from")
    run.add_argument("--dataset", help="text: the rows to score on (a file, a folder, a Hugging Face id, or a "
                     "dataset already added)")
    run.add_argument("--config", help="the Hugging Face dataset's config")
    run.add_argument("--hf-split", help="the Hugging Face dataset's split to load")
    run.add_argument("--format", choices=["csv", "tsv", "jsonl", "json", "parquet"])
    run.add_argument("--split", default="dev", help="the split candidates are scored on (default dev)")
    run.add_argument("--test-split", default="test", help="the held-out split the winner is tested on (default "
                     "test); without a split column the rows are split by a hash of their content")
    run.add_argument("--split-column", default="split")
    run.add_argument("--split-shares", metavar="NAME=SHARE,...", help="hash split shares, e.g. dev=0.3,test=0.7")
    run.add_argument("--map", action="append", metavar="VARIABLE=COLUMN")
    run.add_argument("--expected", metavar="COLUMN", help="the column checks read as the reference answer")
    run.add_argument("--values", action="append", metavar="VARIABLE=VALUE", help="images and music: a value to "
                     "score on (repeat; default: the template's default and examples)")
    run.add_argument("--check", action="append", metavar="CHECK", help="a check to score with (repeat)")
    run.add_argument("--objective", help="what to maximise: CHECK, or 'CHECK*WEIGHT + CHECK*WEIGHT' (votes too)")
    run.add_argument("--proposer", help="the model that writes candidates: any text model id")
    run.add_argument("--proposer-param", action="append", metavar="NAME=VALUE",
                     help="the proposer's options (default temperature=1.0, max_new_tokens=400)")
    run.add_argument("--models", nargs="+", help="the models the prompts are for (default: the modality's default)")
    run.add_argument("--param", action="append", metavar="NAME=VALUE", help="a generation parameter")
    run.add_argument("--rounds", type=int, default=3)
    run.add_argument("--candidates", type=int, default=4, help="candidates per round")
    run.add_argument("--rows", type=int, default=20, help="rows each candidate is scored on")
    run.add_argument("--test-rows", type=int, default=100, help="held-out rows the winner is tested on")
    run.add_argument("--seeds", nargs="+", type=int, help="seeds of the search (images, music: default 1 2)")
    run.add_argument("--test-seeds", nargs="+", type=int, help="held-out seeds (images, music: default 4 new ones)")
    run.add_argument("--patience", type=int, default=1, help="rounds without a gain before it stops (default 1)")
    run.add_argument("--max-calls", type=int, help="the most calls (proposer + generator) the search may spend")
    run.add_argument("--seed", type=int, default=0, help="the search's seed (rows chosen, proposer seeds)")
    run.add_argument("--title")
    run.add_argument("--yes", action="store_true", help="start without asking about the projected calls")
    run.add_argument("--new", action="store_true", help="start a new search even if this one ran before")
    run.add_argument("--name", help="save: the new template's name (default <template>-improved)")
    run.add_argument("--variant-name", help="save: the new variant's name (default <variant>-improved)")
    run.add_argument("--overwrite", action="store_true", help="save: replace your template of the same name")
    run.add_argument("--json", action="store_true", help="list, status: as JSON")
    run.add_argument("--quiet", action="store_true", help="no progress lines")
    run.set_defaults(handler=guarded(cmd_improve))


def cmd_improve(args, services) -> int:
    if args.source in VERBS:
        return _manage(args, services)
    spec = spec_from_args(args, services)
    job = services.jobs.find(KIND, spec.key)
    if job is not None and job.status != "cancelled" and not args.new:
        search = api.submit(services, spec)
        print(f"improve #{search.id} (continuing, {search.job.status})", file=sys.stderr)
    else:
        projection = project(services, spec)
        print(projection.text())
        if not _confirmed(args, projection.calls.total):
            return NOT_CONFIRMED
        search = api.submit(services, spec, new=args.new)
        print(f"improve #{search.id}: {spec.template_name}/{spec.variant}", file=sys.stderr)
    return _follow(services, search.id, args.quiet)


def _confirmed(args, calls: int) -> bool:
    if args.yes:
        return True
    if not sys.stdin.isatty():
        print("not started: confirm the projected calls with --yes", file=sys.stderr)
        return False
    answer = input(f"Spend up to {calls:,} calls? [y/N] ").strip().lower()
    return answer in ("y", "yes")


def spec_from_args(args, services):
    if not args.variant:
        raise UsageError("give the variant to start from: --variant NAME")
    if not args.proposer:
        raise UsageError("give the proposer, the model that writes candidates: --proposer MODEL (any text model "
                         "id: tiny-text, openai:gpt-4o-mini, hf:..., lab:...)")
    template = load_template(args.source, services, Path.cwd())
    dataset = _dataset(services, args.dataset, Path.cwd(), args, {}) if args.dataset else None
    values: dict[str, list[str]] = {}
    for assignment in args.values or []:
        name, _, value = assignment.partition("=")
        values.setdefault(name.strip(), []).append(value)
    checks = parse_check_args(args.check, template.modality, has_reference=bool(args.expected))
    shares = None
    if args.split_shares:
        try:
            shares = {k: float(v) for k, v in _pairs(args.split_shares.split(","), "--split-shares").items()}
        except ValueError:
            raise UsageError("--split-shares: shares are numbers, e.g. dev=0.3,test=0.7") from None
    return api.build_spec(
        services, template=template, variant=args.variant, models=args.models or
        [services.catalog.default_model(template.modality)], proposer=args.proposer, dataset=dataset,
        values=values or None, objective=args.objective, checks=checks, mapping=_pairs(args.map, "--map"),
        expected=args.expected, search_split=args.split, test_split=args.test_split, split_column=args.split_column,
        split_shares=shares, rows=args.rows, test_rows=args.test_rows, seeds=args.seeds, test_seeds=args.test_seeds,
        rounds=args.rounds, candidates=args.candidates, patience=args.patience, max_calls=args.max_calls,
        seed=args.seed, params={k: _json_or_text(v) for k, v in _pairs(args.param, "--param").items()},
        proposer_params={k: _json_or_text(v) for k, v in _pairs(args.proposer_param, "--proposer-param").items()},
        title=args.title or "")


def _follow(services, search_id: int, quiet: bool) -> int:
    """Run the search here (its job, in this process) until it ends or pauses, with a line per change."""
    job = api.get(services, search_id).job
    worker = services.worker = JobWorker(services, services.jobs)       # Ctrl-C's pause reaches it at once
    outcome: dict = {}
    thread = threading.Thread(target=lambda: outcome.setdefault("job", worker.run_one(job.id)), daemon=True)
    thread.start()
    shown = ""
    try:
        while True:
            thread.join(POLL_S)
            found = api.status(services, search_id)
            if found.line() != shown and not quiet:
                print(found.line(), file=sys.stderr)
                shown = found.line()
            # Another live process may hold the search: then this one watches it to its end.
            if not thread.is_alive() and (outcome.get("job") is not None or found.status not in
                                          ("running", "queued", "interrupted")):
                break
    except KeyboardInterrupt:
        api.pause(services, search_id)
        thread.join(30)
        print(f"paused; continue with the same command or `improve resume {search_id}`", file=sys.stderr)
        return 130
    found = api.status(services, search_id)
    print(report_text(found))
    return 0 if found.status == "done" else 1


def report_text(found: api.SearchStatus) -> str:
    """The end of a search on one screen: every candidate, why it stopped, and the held-out verdict."""
    record = found.record
    lines = [f"improve #{found.id}: {found.title} ({found.status})"]
    if found.error:
        lines.append(f"error: {found.error}")
    lines.append(f"{'round':<6}{'candidate':<14}{'status':<10}{'score':>8}  note")
    for c in sorted(record.candidates, key=lambda c: (c.round, c.name)):
        score = "-" if c.score is None else f"{c.score:.3f}"
        mark = " (kept)" if c.kept and c.name == record.best else ""
        lines.append(f"{c.round:<6}{c.name:<14}{c.status:<10}{score:>8}  {(c.reason or '')[:90]}{mark}")
    if record.stopped:
        lines.append(record.stopped)
    lines += [f"note: {note}" for note in record.notes]
    calls = record.calls or {}
    lines.append(f"calls spent: proposer {calls.get('proposer', 0):,}, generator {calls.get('generator', 0):,} "
                 f"(planned at most {record.planned_calls:,})")
    if record.test:
        lines += [f"held-out test (comparison #{record.test['experiment']}): {record.test['sentence']}",
                  f"paired statistics: python -m playground stats {record.test['experiment']}",
                  f"save it: python -m playground improve save {found.id} --name NAME"]
    lines.append(f"every call is in History: comparison #{found.id} (the proposer), and each round's experiment")
    return "\n".join(lines)


def _manage(args, services) -> int:
    verb = args.source
    if verb == "list":
        found = api.list_searches(services)
        if args.json:
            print(json.dumps([s.to_dict() for s in found], indent=2, default=str))
        for s in [] if args.json else found:
            print(f"#{s.id:<5} {s.line()}  {s.title}")
        return 0
    if args.search is None:
        raise UsageError(f"improve {verb} needs the search's id: improve {verb} ID")
    if verb == "save":
        saved = api.save_winner(services, args.search, name=args.name, variant_name=args.variant_name,
                                overwrite=args.overwrite)
        print(f"saved {saved.name} with variant {args.variant_name or list(saved.variants)[-1]} to {saved.path}")
        return 0
    action = {"status": api.status, "pause": api.pause, "cancel": api.cancel}.get(verb)
    if verb == "resume":
        api.resume(services, args.search)
        return _follow(services, args.search, args.quiet)
    found = action(services, args.search)
    print(json.dumps(found.to_dict(), indent=2, default=str) if args.json else report_text(found))
    return 0
