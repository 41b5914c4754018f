"""Experiments for API clients and MCP tools: add a dataset (a file, rows, or a Hugging Face id), start an
experiment (or only its dry run), follow it, control its job, read its results a page at a time, compare two, re-run
chosen rows, export. Each checks its arguments through the request layer like the tab does, and takes the caller's
owner: on a public server a visitor sees and controls only their own experiments."""

from __future__ import annotations

import dataclasses
from typing import Literal

import gradio as gr

from ... import experiments
from ...requests import Id, Strict, whole
from ...requests import check as checked
from ...requests.experiments import (DatasetRows, DatasetSource, ExperimentAction, ExperimentPair, ExperimentRequest,
                                     RerunRows, ResultsQuery)
from ...services import Services
from .results import apply_action, export_file, page_of

EXPORT_FORMATS = ["jsonl", "csv", "parquet", "report"]


class ExperimentRef(Strict):
    experiment_id: Id


class ListQuery(Strict):
    limit: whole(1, 200) = 50


class ExportAsk(Strict):
    experiment_id: Id
    fmt: Literal["jsonl", "csv", "parquet", "report"] = "jsonl"


def dataset_json(services: Services, info) -> dict:
    preview = services.datasets.preview(info, n=5)
    return info.to_dict() | {"first_rows": preview.rows}


class ExperimentApi:
    def __init__(self, services: Services):
        self.services, self.settings = services, services.settings

    def _owner(self, request) -> str | None:
        return self.services.visitors.owner(request)

    def register(self, boundary) -> None:
        """The endpoints in the order the API page lists them: datasets, then an experiment's life."""
        add, export = self._file_triggers()
        add(boundary(self.dataset_add))
        for fn in (self.dataset_rows, self.experiment_start, self.experiment_status, self.experiment_list,
                   self.experiment_control, self.experiment_results, self.experiment_compare, self.experiment_rerun):
            gr.api(boundary(fn), api_name=fn.__name__)
        export(boundary(self.experiment_export))

    @staticmethod
    def _file_triggers():
        """A file in (a dataset) and a file out (an export) need File components, like the other file endpoints."""
        with gr.Column(visible=False):
            file_in = gr.File(type="filepath", label="file")
            texts = [gr.Textbox(label=name) for name in ("name", "fmt", "hub_id", "config", "split")]
            added = gr.JSON()
            experiment_in = gr.Number(precision=0, label="experiment_id")
            fmt_in = gr.Dropdown(EXPORT_FORMATS, value="jsonl", label="fmt")
            file_out = gr.File()
            triggers = [gr.Button() for _ in range(2)]
        return (lambda fn: triggers[0].click(fn, [file_in, *texts], added, api_name="dataset_add"),
                lambda fn: triggers[1].click(fn, [experiment_in, fmt_in], file_out, api_name="experiment_export",
                                             preprocess=False))

    # ---- datasets ---------------------------------------------------------------------------------------------

    def dataset_add(self, file: str | None = None, name: str = "", fmt: str = "", hub_id: str = "",
                    config: str = "", split: str = "", request: gr.Request = None) -> dict:
        """Add a dataset from a file (.csv, .tsv, .jsonl, .json or .parquet) or a Hugging Face dataset id with its
        config and split. Returns its name, version (the content hash experiments name), columns with their types,
        row count and first rows; the same content added again returns the same version.

        Args:
            file: the dataset file (leave empty when giving hub_id)
            name: a name for it (default: the file's name or the dataset id)
            fmt: csv, tsv, jsonl, json or parquet when the file's extension does not say
            hub_id: a Hugging Face dataset id, owner/name (instead of a file)
            config: the Hugging Face dataset's config
            split: the Hugging Face dataset's split, e.g. train
        """
        ask = checked(DatasetSource, {"file": file, "hub_id": hub_id or None, "config": config or None,
                                    "split": split or None, "name": name or None, "fmt": fmt or ""}, self.settings)
        return dataset_json(self.services, ask.add(self.services, self._owner(request)))

    def dataset_rows(self, rows: list[dict], name: str, request: gr.Request = None) -> dict:
        """Add a dataset from rows given as objects, e.g. [{"product": "a kettle", "expected": "kettle"}]. Returns
        what dataset_add returns.

        Args:
            rows: a list of objects, one per row (column name -> value)
            name: a name for the dataset
        """
        ask = checked(DatasetRows, {"rows": rows, "name": name}, self.settings)
        info = self.services.datasets.add_rows(list(ask.rows), name=ask.name, owner=self._owner(request))
        return dataset_json(self.services, info)

    # ---- experiments ------------------------------------------------------------------------------------------

    def experiment_start(self, template: str, dataset: str, models: list[str], seeds: list[int] | None = None,
                         variants: list[str] | None = None, mapping: dict | None = None, expected: str | None = None,
                         sample: dict | None = None, params: dict | None = None, checks: list[dict] | None = None,
                         title: str | None = None, dry_run: bool = False, request: gr.Request = None) -> dict:
        """Start an experiment: a library template's variants x a dataset's rows (or a sample) x seeds x models, as a
        job on the server (it keeps running when the caller goes away; follow it with experiment_status). With
        dry_run, only its estimate: cells and calls per model, tokens, time and cost. The same experiment started
        again returns the one it made before.

        Args:
            template: a library template's name (see list_templates)
            dataset: a dataset's name, id or version (see dataset_add)
            models: model ids, e.g. ["tiny-text"]
            seeds: seeds, each a repeat of every cell; default [1]
            variants: the template's variants to include; default all
            mapping: variable name -> dataset column; default by name
            expected: the column checks read as the reference answer
            sample: which rows, e.g. {"first": 100}, {"random": 50, "seed": 3}, {"start": 0, "stop": 10},
                {"where": {"kind": "big"}}, {"split": "dev"}, {"rows": [4, 17]}
            params: generation parameters, e.g. {"max_new_tokens": 40}
            checks: scores for every cell, e.g. [{"type": "contains"}] (reads the expected column when its value is
                left out)
            title: a title for it
            dry_run: true to get the estimate without starting anything
        """
        ask = checked(ExperimentRequest, {"template": template, "dataset": dataset, "models": models,
                                        "seeds": seeds if seeds is not None else [1], "variants": variants,
                                        "mapping": mapping, "expected": expected, "sample": sample,
                                        "params": params, "checks": checks, "title": title}, self.settings)
        owner = self._owner(request)
        spec = ask.spec(self.services, owner)
        if dry_run:
            shown = experiments.estimate(self.services, spec, owner=owner)
            return {"estimate": dataclasses.asdict(shown) | {"seconds": shown.seconds, "cost": shown.cost,
                                                             "text": shown.text()}}
        made = experiments.submit(self.services, spec, owner=owner)
        return {"experiment_id": made.id, "created": made.created,
                "status": experiments.status(self.services, made.id, owner).to_dict()}

    def experiment_status(self, experiment_id: int, request: gr.Request = None) -> dict:
        """Where an experiment stands: status (queued, running, paused, cancelled, done, failed, interrupted),
        done / total cells, failed, cells per second, tokens, elapsed and remaining seconds.

        Args:
            experiment_id: the experiment's number
        """
        ref = checked(ExperimentRef, {"experiment_id": experiment_id}, self.settings)
        return experiments.status(self.services, ref.experiment_id, self._owner(request)).to_dict()

    def experiment_list(self, limit: int = 50, request: gr.Request = None) -> list[dict]:
        """The experiments, newest first, each with its status and progress (as experiment_status gives them).

        Args:
            limit: how many, 1..200
        """
        ask = checked(ListQuery, {"limit": limit}, self.settings)
        return [s.to_dict() for s in experiments.list_experiments(self.services, owner=self._owner(request),
                                                                   limit=ask.limit)]

    def experiment_control(self, experiment_id: int, action: str, request: gr.Request = None) -> dict:
        """Pause, resume or cancel an experiment's job, or run its failed cells again (retry_failed); what is logged
        stays. Returns its status.

        Args:
            experiment_id: the experiment's number
            action: pause, resume, cancel or retry_failed
        """
        ask = checked(ExperimentAction, {"experiment_id": experiment_id, "action": action}, self.settings)
        return apply_action(self.services, ask, self._owner(request)).to_dict()

    def experiment_results(self, experiment_id: int, offset: int = 0, limit: int = 50, only: str = "all",
                           check: str | None = None, where: dict | None = None, sort: list[str] | None = None,
                           request: gr.Request = None) -> dict:
        """One page of an experiment's rows x variants table: per row its dataset row, seed, model, values and
        reference, and per variant the cell's output (text cut to 400 characters; images and audio as their file),
        status and scores. total_rows counts the rows that pass the filters.

        Args:
            experiment_id: the experiment's number
            offset: rows to skip
            limit: rows to return, 1..200
            only: all, failed (rows with a failed cell), disagree (rows where the variants' scores differ) or
                check_failed (rows where a cell did not pass the check)
            check: the check that disagree, check_failed and sort read; default the first
            where: dataset column -> the value its rows must hold
            sort: two variants [a, b]: rows where a beats b by most first
        """
        ask = checked(ResultsQuery, {"experiment_id": experiment_id, "offset": offset, "limit": limit, "only": only,
                                   "check": check, "where": where, "sort": sort}, self.settings)
        return dataclasses.asdict(page_of(self.services, ask, self._owner(request)))

    def experiment_compare(self, baseline: int, candidate: int, check: str, baseline_variant: str | None = None,
                           candidate_variant: str | None = None, request: gr.Request = None) -> dict:
        """Two experiments on the same dataset version: per dataset row the change of a check from the baseline to
        the candidate; rows that got better and worse (sorted by change), the mean change with its 95% interval, a
        sign test, and one sentence that says it.

        Args:
            baseline: the baseline experiment's number
            candidate: the candidate experiment's number
            check: the check to compare on
            baseline_variant: the baseline's variant (needed when it has several and no one shared variant)
            candidate_variant: the candidate's variant
        """
        ask = checked(ExperimentPair, {"baseline": baseline, "candidate": candidate, "check": check,
                                     "baseline_variant": baseline_variant, "candidate_variant": candidate_variant},
                    self.settings)
        result = experiments.compare_experiments(self.services.log, ask.baseline, ask.candidate, ask.check,
                                                 baseline_variant=ask.baseline_variant,
                                                 candidate_variant=ask.candidate_variant,
                                                 owner=self._owner(request))
        rows = lambda changes: [dataclasses.asdict(c) | {"change": c.change} for c in changes]  # noqa: E731
        return dataclasses.asdict(result) | {"improved": rows(result.improved), "worsened": rows(result.worsened)}

    def experiment_rerun(self, experiment_id: int, rows: list[int], title: str | None = None,
                         request: gr.Request = None) -> dict:
        """Run chosen dataset rows of an experiment again, as a new experiment linked to it (its parent). Returns
        the new experiment's number and status.

        Args:
            experiment_id: the experiment whose rows to run again
            rows: dataset row numbers (from 0)
            title: a title for the new experiment
        """
        ask = checked(RerunRows, {"experiment_id": experiment_id, "rows": rows, "title": title}, self.settings)
        owner = self._owner(request)
        made = experiments.rerun_rows(self.services, ask.experiment_id, ask.rows, owner=owner,
                                      **({"title": ask.title} if ask.title else {}))
        return {"experiment_id": made.id, "parent": ask.experiment_id,
                "status": experiments.status(self.services, made.id, owner).to_dict()}

    def experiment_export(self, experiment_id: int, fmt: str = "jsonl", request: gr.Request = None) -> str:
        """An experiment's results as a file: jsonl, csv or parquet (every run with its scores; import_runs takes a
        jsonl back), or its HTML report.

        Args:
            experiment_id: the experiment's number
            fmt: jsonl, csv, parquet or report
        """
        ask = checked(ExportAsk, {"experiment_id": experiment_id, "fmt": fmt}, self.settings)
        return export_file(self.services, ask.experiment_id, ask.fmt, self._owner(request))
