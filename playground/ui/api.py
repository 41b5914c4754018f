"""The public API (gradio_client, "Use via API", MCP tools): named arguments, JSON in and out, files as files.

Every endpoint checks its arguments through the request layer (playground.requests: types, ranges, sizes) and
answers bad input with a gr.Error that says what to send; the tabs' own event handlers are private and not part of
this surface. Each endpoint's type hints become its published schema (and its MCP tool's input schema).
"""

from __future__ import annotations

import time
from pathlib import Path

import gradio as gr

from ..requests import (ComparisonPage, ComparisonRef, ComparisonRequest, ExportRequest, HistoryQuery, ImportFile,
                        Rating, TemplateFilter, TemplateName, TemplateText, Winner, check)
from ..scoring import comparison_summary
from ..services import Services
from ..store import ImportLimits
from ..store.scores import scores_for_runs
from ..templates import expand, template_to_text
from . import exports
from .errors import at_boundary
from .queues import MODEL_QUEUE
from .streaming import stage_text


def run_json(record) -> dict:
    return {"run_id": record.id, "variant": record.variant, "values": record.variables, "seed": record.seed,
            "model": record.model_id, "status": record.status, "text": record.output_text,
            "file": record.artifact, "error": record.error, "cached": record.cached_from is not None,
            "row": record.row, "col": record.col, "stars": record.stars, "note": record.note,
            "wall_s": record.wall_s, "tokens_per_s": record.tokens_per_s, "replaces": record.replaces}


class PublicApi:
    """The endpoints, in the order the API page lists them; `register` publishes them."""

    def __init__(self, services: Services):
        self.services, self.log, self.settings = services, services.log, services.settings

    def register(self) -> None:
        """Call inside the Blocks context, before the tabs, so that `compare` leads the API page. gr.api publishes
        names, docstrings and type hints (MCP tool names are the endpoint names)."""
        boundary = at_boundary(self.settings.data_dir)
        gr.api(boundary(self.compare), api_name="compare", concurrency_id=MODEL_QUEUE,
               concurrency_limit=self.settings.concurrency)
        for fn in (self.list_templates, self.render_template, self.comparison, self.stats, self.history, self.rate,
                   self.pick_winner, self.variant_summary, self.save_template):
            gr.api(boundary(fn), api_name=fn.__name__)
        self._register_files(boundary)

    def _register_files(self, boundary) -> None:
        """Endpoints with files in or out need real File components so Gradio moves the files through its cache.
        Their inputs are read raw (preprocess off): the request layer checks them like every other argument."""
        with gr.Column(visible=False):
            comparison_in = gr.Number(precision=0, label="comparison_id")
            fmt_in = gr.Dropdown(list(exports.FORMATS), value="jsonl", label="fmt")
            name_in = gr.Textbox(label="template")
            file_out, file_in, report_out = gr.File(), gr.File(type="filepath"), gr.JSON()
            triggers = [gr.Button() for _ in range(3)]
        triggers[0].click(boundary(self.export_comparison), [comparison_in, fmt_in], file_out,
                          api_name="export_comparison", preprocess=False)
        triggers[1].click(boundary(self.export_template), name_in, file_out, api_name="export_template",
                          preprocess=False)
        triggers[2].click(boundary(self.import_runs), file_in, report_out, api_name="import_runs")

    def _owner(self, request) -> str | None:
        return self.services.visitors.owner(request)

    def comparison_json(self, comparison_id: int, offset: int, limit: int, owner: str | None) -> dict:
        header = self.log.get_comparison_header(comparison_id, owner=owner)
        runs = self.log.list_runs(comparison_id=header.id, limit=limit, offset=offset, newest_first=False,
                                  live_only=True)
        scores = scores_for_runs(self.log, [r.id for r in runs])
        return {"comparison_id": header.id, "modality": header.modality, "title": header.title,
                "template": header.template_name, "status": header.status, "created_at": header.created_at,
                "winner_run_id": header.winner_run_id, "run_count": header.run_count, "offset": offset,
                "runs": [run_json(r) | {"scores": {n: s.to_dict() for n, s in scores.get(r.id, {}).items()}}
                         for r in runs]}

    # ---- comparisons ------------------------------------------------------------------------------------------

    def compare(self, template: str, values: dict | None = None, variants: dict | None = None,
                models: list[str] | None = None, seeds: list[int] | None = None, params: dict | None = None,
                rerun: bool = False, checks: list[dict] | None = None, request: gr.Request = None) -> dict:
        """Run a comparison of a library template's variants; streams progress, then returns every cell.

        While it runs, each update is {"status": "running", "done", "total", "stage", "elapsed_s", "run"} ("run":
        the cell that just finished, if any); the last one is the whole comparison, as /comparison returns it.

        Args:
            template: library template name (see list_templates)
            values: variable name -> value or list of values (each list multiplies the grid)
            variants: variant name -> prompt text, replacing the template's variants
            models: list of model ids (presets, hub ids); default: the modality's default model
            seeds: list of seeds 0..4294967295; default [1]
            params: generation parameters (numbers, true/false); default: the template's
            rerun: true to generate again instead of serving cached results
            checks: scores for every cell, e.g. [{"type": "contains", "value": "lantern"}, {"type": "clip"}],
                added to the template's own
        """
        ask = check(ComparisonRequest, {"template": template, "values": values, "variants": variants,
                                        "models": models, "seeds": seeds, "params": params, "rerun": rerun,
                                        "checks": checks}, self.settings)
        owner = self._owner(request)
        chosen = ask.resolve_template(self.services.library_for(owner))
        spec = ask.spec(chosen, self.settings, self.services.catalog.default_model(chosen.modality))
        self.services.runner.check(spec)
        started = time.perf_counter()
        comparison_id, last = None, 0.0
        for progress in self.services.runner.run(spec, owner=owner):
            comparison_id = progress.comparison_id
            now = time.perf_counter()
            if progress.result is None and now - last < 0.5:
                continue
            last = now
            yield {"status": "running", "comparison_id": comparison_id, "done": progress.done,
                   "total": progress.total, "stage": stage_text(progress), "elapsed_s": round(now - started, 2),
                   "run": run_json(progress.result.record) if progress.result is not None else None}
        yield self.comparison_json(comparison_id, 0, self.settings.max_page_runs, owner) | {
            "elapsed_s": round(time.perf_counter() - started, 2)}

    def comparison(self, comparison_id: int, offset: int = 0, limit: int = 1000, request: gr.Request = None) -> dict:
        """A logged comparison and one page of its runs (in grid order); run_count says how many there are.

        Args:
            comparison_id: the comparison's number
            offset: runs to skip (for paging)
            limit: runs to return, 1..1000
        """
        page = check(ComparisonPage, {"comparison_id": comparison_id, "offset": offset, "limit": limit},
                     self.settings)
        return self.comparison_json(page.comparison_id, page.offset, page.limit, self._owner(request))

    def stats(self, comparison_id: int, request: gr.Request = None) -> dict:
        """Which variant wins, and how sure that is: per variant the mean of each score (and of stars and thumbs)
        with a 95% bootstrap interval; per pair of variants the paired difference over the same values, seed and
        model, its interval and a sign test; a winner only where the win is clear.

        Args:
            comparison_id: the comparison's number
        """
        ref = check(ComparisonRef, {"comparison_id": comparison_id}, self.settings)
        self.log.get_comparison_header(ref.comparison_id, owner=self._owner(request))
        return comparison_summary(self.log, ref.comparison_id).to_dict()

    def history(self, modality: str = "", template: str = "", query: str = "", limit: int = 50, offset: int = 0,
                request: gr.Request = None) -> list[dict]:
        """Logged runs, newest first, filtered. `query` searches prompts and text outputs (word prefixes match).

        Args:
            modality: text, image or music; empty for all
            template: a template name; empty for all
            query: words to search for; empty for no search
            limit: how many runs, 1..1000
            offset: runs to skip (for paging)
        """
        ask = check(HistoryQuery, {"modality": modality, "template": template, "query": query, "limit": limit,
                                   "offset": offset}, self.settings)
        records = self.log.list_runs(modality=ask.modality or None, template=ask.template or None,
                                     query=ask.query or None, limit=ask.limit, offset=ask.offset,
                                     owner=self._owner(request))
        return [run_json(r) | {"comparison_id": r.comparison_id, "prompt": r.prompt} for r in records]

    # ---- ratings ----------------------------------------------------------------------------------------------

    def rate(self, run_id: int, stars: int | None = None, thumbs: int | None = None, note: str | None = None,
             request: gr.Request = None) -> dict:
        """Rate a run; fields left out keep their value.

        Args:
            run_id: the run's number
            stars: 1 to 5
            thumbs: -1 (bad), 0 (none) or 1 (good)
            note: free text
        """
        rating = check(Rating, {"run_id": run_id, "stars": stars, "thumbs": thumbs, "note": note}, self.settings)
        owner = self._owner(request)
        self.log.rate(rating.run_id, stars=rating.stars, thumbs=rating.thumbs, note=rating.note, owner=owner)
        return run_json(self.log.get_run(rating.run_id, owner=owner))

    def pick_winner(self, comparison_id: int, run_id: int, request: gr.Request = None) -> dict:
        """Mark one run as the winner of its comparison.

        Args:
            comparison_id: the comparison's number
            run_id: a run of that comparison
        """
        winner = check(Winner, {"comparison_id": comparison_id, "run_id": run_id}, self.settings)
        self.log.set_winner(winner.comparison_id, winner.run_id, owner=self._owner(request))
        return {"comparison_id": winner.comparison_id, "winner_run_id": winner.run_id}

    def variant_summary(self, template: str = "", request: gr.Request = None) -> list[dict]:
        """Which variant wins: runs, ratings, thumbs and wins per template variant.

        Args:
            template: a template name; empty for all
        """
        ask = check(TemplateFilter, {"template": template}, self.settings)
        return self.log.variant_summary(ask.template or None, owner=self._owner(request))

    # ---- templates --------------------------------------------------------------------------------------------

    def list_templates(self, modality: str = "", request: gr.Request = None) -> list[dict]:
        """The template library: name, modality, description, techniques, variables, variants and params.

        Args:
            modality: text, image or music; empty for all
        """
        ask = check(TemplateFilter, {"modality": modality}, self.settings)
        return [{"name": t.name, "modality": t.modality, "description": t.description,
                 "techniques": list(t.techniques), "variables": {n: x.default for n, x in t.variables.items()},
                 "variants": t.variants, "params": t.params, "source": t.source}
                for t in self.services.library_for(self._owner(request)).templates.values()
                if not ask.modality or t.modality == ask.modality]

    def render_template(self, template: str, values: dict | None = None, request: gr.Request = None) -> list[dict]:
        """The prompts a template renders to, one per variant and value combination (nothing is generated).

        Args:
            template: library template name
            values: variable name -> value or list of values
        """
        ask = check(ComparisonRequest, {"template": template, "values": values}, self.settings)
        cells = expand(self.services.library_for(self._owner(request)).get(ask.template),
                       values=dict(ask.values) if ask.values else None, max_cells=self.settings.max_cells)
        return [{"variant": c.variant, "values": c.values, "prompt": c.prompt, "system": c.system,
                 "negative_prompt": c.negative_prompt} for c in cells]

    def save_template(self, text: str, overwrite: bool = False, request: gr.Request = None) -> dict:
        """Save a template (Markdown with YAML front matter) to the user's templates.

        Args:
            text: the template file's text
            overwrite: true to replace your own template of the same name
        """
        ask = check(TemplateText, {"text": text, "overwrite": overwrite}, self.settings)
        saved = self.services.libraries.import_template(ask.text, self._owner(request), overwrite=ask.overwrite)
        return {"name": saved.name, "modality": saved.modality, "variants": list(saved.variants)}

    # ---- files ------------------------------------------------------------------------------------------------

    def export_comparison(self, comparison_id: int, fmt: str = "jsonl", request: gr.Request = None) -> str:
        """Export one comparison as a file: jsonl, csv, or zip (jsonl + csv + the media files).

        Args:
            comparison_id: the comparison's number
            fmt: jsonl, csv or zip
        """
        ask = check(ExportRequest, {"comparison_id": comparison_id, "fmt": fmt}, self.settings)
        runs = self.log.get_comparison(ask.comparison_id, owner=self._owner(request), live_only=False).runs
        return exports.export_runs(self.log, runs, f"comparison-{ask.comparison_id}", ask.fmt)

    def export_template(self, template: str, request: gr.Request = None) -> str:
        """A template as a Markdown file, ready to share or import elsewhere.

        Args:
            template: library template name
        """
        name = check(TemplateName, {"template": template}, self.settings).template
        chosen = self.services.library_for(self._owner(request)).get(name)
        return exports.export_text(template_to_text(chosen), chosen.name, "md")

    def import_runs(self, file: str, request: gr.Request = None) -> dict:
        """Add the runs of an export (.jsonl, or .zip with media) to the log; bad rows are reported by line.

        Args:
            file: the export file
        """
        path = check(ImportFile, {"file": file}, self.settings).file
        report = self.log.import_jsonl(Path(path), ImportLimits.from_settings(self.settings),
                                       owner=self._owner(request))
        return {"imported": report.imported, "errors": [{"line": n, "message": m} for n, m in report.errors]}


def register_api(services: Services) -> None:
    PublicApi(services).register()
