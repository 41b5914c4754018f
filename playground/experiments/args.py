"""From the command line (or a spec YAML file) to an ExperimentSpec: the template, the dataset (added to the data
dir on the way), the sample, the mapping, models, seeds, params, checks and the `--fail-under` thresholds."""

from __future__ import annotations

import argparse
import json
from pathlib import Path

from ..scoring import parse_check_args
from ..templates import Template, parse_template
from .api import build_spec
from .spec import ExperimentSpec

YAML_KEYS = {"template", "dataset", "config", "hf_split", "format", "dataset_name", "map", "expected", "sample",
             "variants", "models", "seeds", "params", "checks", "fail_under", "title", "rerun"}
SAMPLE_KEYS = {"first", "random", "seed", "start", "stop"}


class UsageError(Exception):
    pass


def add_spec_arguments(parser: argparse.ArgumentParser) -> None:
    parser.add_argument("source", help="a spec .yaml, a template file (.md) or a library template's name")
    parser.add_argument("--dataset", help="a .csv/.tsv/.jsonl/.json/.parquet file, a folder, a Hugging Face "
                        "dataset id, or a dataset already added (its name, id or version)")
    parser.add_argument("--config", help="the Hugging Face dataset's config")
    parser.add_argument("--hf-split", help="the Hugging Face dataset's split to load (train, test, ...)")
    parser.add_argument("--format", choices=["csv", "tsv", "jsonl", "json", "parquet"],
                        help="the file's format when its extension does not say")
    parser.add_argument("--split", help="run on a named split: the rows whose split column holds it, or a hash "
                        "split (dev, test) when there is no such column")
    parser.add_argument("--split-column", help="the column holding split names (default: split)")
    parser.add_argument("--split-shares", metavar="NAME=SHARE,...", help="hash split shares, e.g. dev=0.2,test=0.8")
    parser.add_argument("--sample", action="append", metavar="KEY=N",
                        help="first=N, random=N, seed=S, start=A, stop=B (comma-separated or repeated)")
    parser.add_argument("--where", action="append", metavar="COLUMN=VALUE", help="only rows holding this value")
    parser.add_argument("--rows", nargs="+", type=int, help="exactly these dataset rows (from 0)")
    parser.add_argument("--map", action="append", metavar="VARIABLE=COLUMN", help="fill a variable from a column")
    parser.add_argument("--expected", metavar="COLUMN", help="the column checks read as the reference answer")
    parser.add_argument("--variants", nargs="+", help="only these variants of the template")
    parser.add_argument("--models", nargs="+", help="model ids (default: the modality's default model)")
    parser.add_argument("--seeds", nargs="+", type=int, help="seeds, each a repeat of every cell (default 1)")
    parser.add_argument("--param", action="append", metavar="NAME=VALUE", help="a generation parameter")
    parser.add_argument("--check", action="append", metavar="CHECK", help="score every cell: contains=x, "
                        "equals, similarity, json_schema, llm_judge=rubric, length, ... (repeat for more)")
    parser.add_argument("--fail-under", action="append", metavar="CHECK=VALUE",
                        help="exit non-zero unless every variant's mean of CHECK reaches VALUE")
    parser.add_argument("--title")
    parser.add_argument("--rerun", action="store_true", help="ignore cached outputs")


def _pairs(values, what: str) -> dict[str, str]:
    found = {}
    for value in values or []:
        name, sep, rest = str(value).partition("=")
        if not sep or not name.strip():
            raise UsageError(f"{what} {value!r}: write NAME=VALUE")
        found[name.strip()] = rest
    return found


def _json_or_text(value: str):
    try:
        return json.loads(value)
    except json.JSONDecodeError:
        return value


def _read_yaml(path: Path) -> dict:
    import yaml

    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as error:
        raise UsageError(f"cannot read {path}: {error}") from None
    if not isinstance(data, dict):
        raise UsageError(f"{path}: an experiment spec is a mapping with keys like {', '.join(sorted(YAML_KEYS))}")
    unknown = sorted(set(data) - YAML_KEYS)
    if unknown:
        raise UsageError(f"{path}: unknown keys {unknown}; allowed: {', '.join(sorted(YAML_KEYS))}")
    return data


def load_template(ref: str, services, base: Path) -> Template:
    path = (base / ref).expanduser() if not Path(ref).is_absolute() else Path(ref)
    if path.suffix.lower() == ".md" or path.is_file():
        try:
            return parse_template(path.read_text(encoding="utf-8"), path=path, source="user")
        except (OSError, UnicodeDecodeError) as error:
            raise UsageError(f"cannot read the template {path}: {error}") from None
    return services.library.get(ref)


def _sample(args, given: dict | None) -> dict:
    sample = dict(given or {})
    for text in args.sample or []:
        for name, value in _pairs(text.split(","), "--sample").items():
            if name not in SAMPLE_KEYS:
                raise UsageError(f"--sample {name}=...: use first, random, seed, start or stop")
            try:
                sample[name] = int(value)
            except ValueError:
                raise UsageError(f"--sample {name}={value}: a whole number") from None
    if args.split:
        sample["split"] = args.split
    if args.split_column:
        sample["split_column"] = args.split_column
    if args.split_shares:
        try:
            sample["split_shares"] = {k: float(v) for k, v in _pairs(args.split_shares.split(","),
                                                                      "--split-shares").items()}
        except ValueError:
            raise UsageError("--split-shares: shares are numbers, e.g. dev=0.2,test=0.8") from None
    if args.where:
        sample["where"] = {**sample.get("where", {}), **{k: _json_or_text(v) for k, v in
                                                           _pairs(args.where, "--where").items()}}
    if args.rows:
        sample["rows"] = args.rows
    return sample


def spec_from_args(args, services) -> tuple[ExperimentSpec, dict[str, float]]:
    """The spec and the --fail-under thresholds; the dataset is added to the data dir (by content) on the way."""
    source, base, data = args.source, Path.cwd(), {}
    if Path(source).suffix.lower() in (".yaml", ".yml"):
        data = _read_yaml(Path(source))
        base = Path(source).resolve().parent
        if not data.get("template"):
            raise UsageError(f"{source}: give the template (a library name or a .md file)")
    template = load_template(str(data.get("template") or source), services, base)
    dataset = args.dataset or data.get("dataset")
    if not dataset:
        raise UsageError("give the rows to run on: --dataset <file | folder | Hugging Face id>")
    info = _dataset(services, str(dataset), base, args, data)
    params = {**(data.get("params") or {}), **{k: _json_or_text(v) for k, v in _pairs(args.param, "--param").items()}}
    expected = args.expected or data.get("expected")
    checks = list(data.get("checks") or []) + parse_check_args(args.check, template.modality,
                                                                has_reference=bool(expected))
    models = args.models or data.get("models") or [services.catalog.default_model(template.modality)]
    seeds = args.seeds or data.get("seeds") or [1]
    spec = build_spec(services, template=template, dataset=info, models=models, seeds=seeds,
                      mapping={**(data.get("map") or {}), **_pairs(args.map, "--map")}, expected=expected,
                      sample=_sample(args, data.get("sample")), variants=args.variants or data.get("variants"),
                      params=params, checks=checks, title=args.title or data.get("title") or "",
                      rerun=bool(args.rerun or data.get("rerun")))
    thresholds = dict(data.get("fail_under") or {})
    for name, value in _pairs(args.fail_under, "--fail-under").items():
        try:
            thresholds[name] = float(value)
        except ValueError:
            raise UsageError(f"--fail-under {name}={value}: the threshold is a number") from None
    return spec, thresholds


def _dataset(services, ref: str, base: Path, args, data: dict):
    path = (base / ref).expanduser() if not Path(ref).is_absolute() else Path(ref)
    if path.exists():
        return services.datasets.add(path, name=data.get("dataset_name"), fmt=args.format or data.get("format"),
                                     config=args.config or data.get("config"),
                                     split=args.hf_split or data.get("hf_split"))
    try:
        return services.datasets.get(ref)          # one added before, by name, id or version
    except ValueError:
        pass
    return services.datasets.add(ref, config=args.config or data.get("config"),
                                 split=args.hf_split or data.get("hf_split"), name=data.get("dataset_name"))

