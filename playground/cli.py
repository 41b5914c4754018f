"""Headless runs: `python -m playground run <template.md | comparison.json>`, logged exactly as the app logs them."""

from __future__ import annotations

import argparse
import json
import sqlite3
import sys
import time
from pathlib import Path

from .registry import InvalidInput
from .requests import ComparisonRequest, RequestError, check
from .spec import spec_from_runs
from .scoring import CheckError, parse_check_args
from .services import Services
from .settings import Settings, SettingsError
from .store import ImportLimits, StoreInputError
from .store.archive import import_problem
from .stakeholders.commands import add_parser as add_stakeholder_commands
from .templates import TemplateError, Template, parse_template


class UsageError(Exception):
    pass


def load_comparison(path: Path, services: Services) -> tuple[Template, ComparisonRequest]:
    """A template file (.md), a comparison JSON, or the name of a library template -> (template, the request it
    makes), checked by the request layer like the API's /compare."""
    if not path.exists() and path.suffix.lower() not in (".md", ".json") and len(path.parts) == 1:
        try:
            ask = check(ComparisonRequest, {"template": str(path)}, services.settings, root="comparison")
            return ask.resolve_template(services.library), ask
        except (TemplateError, RequestError) as error:
            raise UsageError(f"{path} is neither a file nor a library template ({error}); "
                             "`python -m playground templates` lists the names") from None
    try:
        text = path.read_text(encoding="utf-8")
    except (OSError, UnicodeDecodeError) as error:
        raise UsageError(f"cannot read {path}: {getattr(error, 'strerror', None) or error}") from None
    if path.suffix.lower() == ".md":
        template = parse_template(text, path=path, source="user")
        return template, ComparisonRequest(modality=template.modality, variants=dict(template.variants))
    try:
        data = json.loads(text)
    except json.JSONDecodeError as error:
        raise UsageError(f"{path}: not valid JSON (line {error.lineno}, column {error.colno}): {error.msg}") from None
    try:
        ask = check(ComparisonRequest, data, services.settings, root="comparison")
    except RequestError as error:
        raise UsageError(f"{path}: {error}") from None
    return ask.resolve_template(services.library), ask


def _table(rows: list[list[str]], headers: list[str]) -> str:
    widths = [max(len(str(x)) for x in column) for column in zip(headers, *rows)]
    line = lambda r: "  ".join(str(x).ljust(w) for x, w in zip(r, widths))  # noqa: E731
    return "\n".join([line(headers), line(["-" * w for w in widths])] + [line(r) for r in rows])


def _clip(text: str | None, n: int = 60) -> str:
    text = " ".join(str(text or "").split())
    return text if len(text) <= n else text[: n - 1] + "…"


def cmd_run(args, services: Services) -> int:
    template, ask = load_comparison(Path(args.file), services)
    ask = _with_flags(ask, args, services, template.modality)
    spec = ask.spec(template, services.settings, services.catalog.default_model(template.modality))
    return _execute(spec, services, args)


def _with_flags(ask: ComparisonRequest, args, services: Services, modality: str) -> ComparisonRequest:
    """The file's request with the command line's --set, --param, --models, --seeds, --rerun and --check on top."""
    data = ask.model_dump(exclude_defaults=True)
    typed: dict[str, list[str]] = {}
    for assignment in args.set or []:
        name, _, value = assignment.partition("=")
        typed.setdefault(name.strip(), []).append(value)
    if typed:
        data["values"] = {**data.get("values", {}), **typed}
    for assignment in args.param or []:
        name, _, value = assignment.partition("=")
        data.setdefault("params", {})[name.strip()] = _json_or_text(value)
    data.update({k: v for k, v in (("models", args.models), ("seeds", args.seeds)) if v})
    data["rerun"] = bool(args.rerun or ask.rerun)
    data["checks"] = list(ask.checks or []) + parse_check_args(args.check, modality)
    return check(ComparisonRequest, data, services.settings, root="run")


def cmd_rerun(args, services: Services) -> int:
    comparison = services.log.get_comparison(args.comparison)
    seeds = args.seeds if args.seeds else None
    spec = spec_from_runs(comparison.runs, title=f"re-run of #{comparison.id}", new_seeds=seeds,
                          checks=comparison.spec.get("checks") if isinstance(comparison.spec, dict) else None)
    return _execute(spec, services, args)


def _execute(spec, services: Services, args) -> int:
    started = time.perf_counter()
    comparison_id, failures, rows = None, 0, []
    for progress in services.runner.run(spec):
        comparison_id = progress.comparison_id
        result = progress.result
        if result is None:
            continue
        record = result.record
        failures += record.status != "ok"
        output = record.output_text if record.output_text is not None else (record.artifact or record.error)
        rows.append([str(record.id), record.variant or "", _clip(", ".join(f"{k}={v}" for k, v in
                                                                        record.variables.items()), 30),
                     str(record.seed), record.model_id, record.status + (" (cached)" if result.cached else ""),
                     f"{record.wall_s:.2f}" if record.wall_s is not None else "", _clip(output)])
        if not args.quiet:
            print(f"[{progress.done}/{progress.total}] {record.variant} seed {record.seed}: {record.status}",
                  file=sys.stderr)
    print(_table(rows, ["run", "variant", "values", "seed", "model", "status", "wall s", "output"]))
    print(f"\ncomparison #{comparison_id}: {len(rows)} cells, {failures} failed, "
          f"{time.perf_counter() - started:.1f} s; log: {services.settings.db_path}")
    if args.export:
        dest = Path(args.export)
        fmt = dest.suffix.lstrip(".").lower()
        if fmt not in ("jsonl", "csv", "zip"):
            raise UsageError(f"--export {dest}: the file must end in .jsonl, .csv or .zip")
        services.log.export(dest, fmt, runs=services.log.get_comparison(comparison_id, live_only=False).runs)
        print(f"exported to {dest}")
    return 1 if failures else 0


def cmd_import(args, services: Services) -> int:
    report = services.log.import_jsonl(Path(args.file), ImportLimits.from_settings(services.settings))
    for line, message in report.errors:
        print(f"{args.file}:{line}: {message}", file=sys.stderr)
    print(f"imported {report.imported} runs, {len(report.errors)} bad rows skipped")
    return 1 if report.errors else 0


def cmd_export(args, services: Services) -> int:
    dest = Path(args.output)
    fmt = dest.suffix.lstrip(".").lower()
    if fmt not in ("jsonl", "csv", "zip"):
        raise UsageError(f"{dest}: the file must end in .jsonl, .csv or .zip")
    runs = (services.log.get_comparison(args.comparison, live_only=False).runs if args.comparison is not None
            else services.log.list_runs(limit=10**9))
    services.log.export(dest, fmt, runs=runs)
    print(f"exported {len(runs)} runs to {dest}")
    if fmt != "csv":
        _warn_if_unimportable(dest, services)
    return 0


def _warn_if_unimportable(dest: Path, services: Services) -> None:
    problem = import_problem(dest, ImportLimits.from_settings(services.settings))
    if problem:
        print(f"warning: importing {dest.name} here would stop short: {problem}. Export one comparison at a "
              "time (--comparison), or raise that setting where it is imported", file=sys.stderr)


def cmd_templates(args, services: Services) -> int:
    library = services.library
    rows = [[t.name, t.modality, ", ".join(t.techniques), str(len(t.variants)), t.source]
            for t in library.templates.values() if not args.modality or t.modality == args.modality]
    print(_table(rows, ["name", "modality", "technique", "variants", "source"]))
    for error in library.errors:
        print(f"error: {error.path}: {error.message}", file=sys.stderr)
    return 0


def _json_or_text(value: str):
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        return value


def build_parser() -> argparse.ArgumentParser:
    # The global flags work before or after the subcommand: `--data-dir X run f.md` and `run f.md --data-dir X`.
    # SUPPRESS keeps a flag given in one place from being reset by the other's default.
    common = argparse.ArgumentParser(add_help=False)
    common.add_argument("--offline", action="store_true", default=argparse.SUPPRESS, help="tiny local models only")
    common.add_argument("--data-dir", default=argparse.SUPPRESS, help="where the run log and media live")
    common.add_argument("--device", default=argparse.SUPPRESS, help="cuda, mps or cpu")
    parser = argparse.ArgumentParser(prog="python -m playground", description=__doc__, parents=[common])
    commands = parser.add_subparsers(dest="command", required=True)
    add_parser = commands.add_parser

    def with_common(name, **kwargs):
        return add_parser(name, parents=[common], **kwargs)

    commands.add_parser = with_common

    run = commands.add_parser("run", help="run a template file or a comparison JSON")
    run.add_argument("file", help="a library template's name (see `templates`), a template file "
                     "(prompts/text/<name>.md), or a comparison .json")
    run.add_argument("--models", nargs="+", help="model ids (default: the modality's default model)")
    run.add_argument("--seeds", nargs="+", type=int, help="one or more seeds (default 1)")
    run.add_argument("--set", action="append", metavar="VAR=VALUE", help="a variable value (repeat for a list)")
    run.add_argument("--param", action="append", metavar="NAME=VALUE", help="a generation parameter")
    run.add_argument("--rerun", action="store_true", help="ignore cached results")
    run.add_argument("--check", action="append", metavar="CHECK",
                     help="score every cell: clip, contains=lantern, length=words, llm_judge=... (repeat for more)")
    run.add_argument("--export", metavar="FILE", help="write the comparison to FILE (.jsonl, .csv or .zip)")
    run.add_argument("--quiet", action="store_true", help="no progress lines")
    run.set_defaults(handler=cmd_run)

    rerun = commands.add_parser("rerun", help="run a logged comparison again")
    rerun.add_argument("comparison", type=int)
    rerun.add_argument("--seeds", nargs="+", type=int, help="new seeds (default: the same ones)")
    rerun.add_argument("--export", metavar="FILE")
    rerun.add_argument("--quiet", action="store_true")
    rerun.set_defaults(handler=cmd_rerun)

    importer = commands.add_parser("import", help="add the runs of an export (.jsonl or .zip) to the log")
    importer.add_argument("file")
    importer.set_defaults(handler=cmd_import)

    exporter = commands.add_parser("export", help="write the log, or one comparison, to .jsonl, .csv or .zip")
    exporter.add_argument("output")
    exporter.add_argument("--comparison", type=int, help="only this comparison")
    exporter.set_defaults(handler=cmd_export)

    templates = commands.add_parser("templates", help="list the template library")
    templates.add_argument("--modality", choices=["text", "image", "music"])
    templates.set_defaults(handler=cmd_templates)

    from .scoring.cli import add_parser as add_stats_parser
    add_stats_parser(commands)
    from .experiments.cli import add_parser as add_experiment_commands
    add_experiment_commands(commands, common)
    from .improve.cli import add_parser as add_improve_command
    add_improve_command(commands)
    add_stakeholder_commands(commands)
    return parser


def main(argv: list[str] | None = None) -> int:
    args = build_parser().parse_args(argv)
    try:
        settings = Settings.from_env(offline=getattr(args, "offline", None), data_dir=getattr(args, "data_dir", None),
                                     device=getattr(args, "device", None))
    except SettingsError as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    try:
        services = Services.create(settings)
    except (OSError, sqlite3.Error) as error:
        reason = error.strerror if isinstance(error, OSError) else error
        print(f"error: cannot use the data dir {settings.data_dir}: {reason}; pass --data-dir with a writable "
              "folder", file=sys.stderr)
        return 2
    try:
        return args.handler(args, services)
    except (UsageError, InvalidInput, TemplateError, CheckError, StoreInputError, KeyError, LookupError) as error:
        print(f"error: {error}", file=sys.stderr)
        return 2
    finally:
        services.log.close()
