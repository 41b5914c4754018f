"""The public API (gradio_client, "Use via API", MCP tools): named arguments, JSON in and out, files as files.

Every endpoint checks its arguments here (types, ranges, sizes) and answers bad input with a gr.Error that says
what to send; the tabs' own event handlers are private and not part of this surface.
"""

from __future__ import annotations

import time
from pathlib import Path

import gradio as gr

from ..spec import build_spec
from ..services import Services
from ..scoring import comparison_summary
from ..store import ImportLimits
from ..store.scores import scores_for_runs
from ..templates import expand, template_to_text
from . import exports, validate as v
from .errors import at_boundary
from .compare import MODEL_QUEUE
from .streaming import stage_text

MAX_PAGE = 1000


def run_json(record) -> dict:
    return {"run_id": record.id, "variant": record.variant, "values": record.variables, "seed": record.seed,
            "model": record.model_id, "status": record.status, "text": record.output_text,
            "file": record.artifact, "error": record.error, "cached": record.cached_from is not None,
            "row": record.row, "col": record.col, "stars": record.stars, "note": record.note,
            "wall_s": record.wall_s, "tokens_per_s": record.tokens_per_s}


def register_api(services: Services) -> None:
    """Call inside the Blocks context, before the tabs, so that `compare` leads the API page."""
    log, settings = services.log, services.settings
    boundary = at_boundary(settings.data_dir)

    def comparison_json(comparison_id: int, offset: int = 0, limit: int = MAX_PAGE, owner: str | None = None) -> dict:
        header = log.get_comparison_header(comparison_id, owner=owner)
        runs = log.list_runs(comparison_id=header.id, limit=limit, offset=offset, newest_first=False)
        scores = scores_for_runs(log, [r.id for r in runs])
        return {"comparison_id": header.id, "modality": header.modality, "title": header.title,
                "template": header.template_name, "status": header.status, "created_at": header.created_at,
                "winner_run_id": header.winner_run_id, "run_count": header.run_count, "offset": offset,
                "runs": [run_json(r) | {"scores": {n: s.to_dict() for n, s in scores.get(r.id, {}).items()}}
                         for r in runs]}

    @boundary
    def compare(template: str, values: dict | None = None, variants: dict | None = None,
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
        name = v.text(template, "template", max_chars=v.MAX_NAME_CHARS, allow_empty=False)
        values_ = v.variable_values(values)
        variants_ = v.variants(variants)
        models_ = (v.text_list(models, "models", max_items=v.MAX_MODELS, max_chars=v.MAX_MODEL_ID_CHARS)
                   if models is not None else [])
        seeds_ = v.seeds(seeds) if seeds is not None else [1]
        params_ = v.params(params)
        rerun_ = v.flag(rerun, "rerun")
        if checks is not None and (not isinstance(checks, list) or not all(isinstance(c, dict) for c in checks)):
            raise v.BadInput("checks must be a list of objects like {\"type\": \"contains\", \"value\": \"x\"}")
        owner = services.visitors.owner(request)
        tpl = services.library_for(owner).get(name)
        spec = build_spec(tpl, values=values_ or None, variants=variants_,
                          models=models_ or [services.catalog.default_model(tpl.modality)], seeds=seeds_,
                          params=params_, max_cells=settings.max_cells, rerun=rerun_, checks=checks)
        services.runner.check(spec)
        started = time.perf_counter()
        comparison_id, last = None, 0.0
        for progress in services.runner.run(spec, owner=owner):
            comparison_id = progress.comparison_id
            now = time.perf_counter()
            if progress.result is None and now - last < 0.5:
                continue
            last = now
            yield {"status": "running", "comparison_id": comparison_id, "done": progress.done,
                   "total": progress.total, "stage": stage_text(progress), "elapsed_s": round(now - started, 2),
                   "run": run_json(progress.result.record) if progress.result is not None else None}
        yield comparison_json(comparison_id, 0, MAX_PAGE, owner) | {"elapsed_s": round(time.perf_counter() - started, 2)}

    @boundary
    def list_templates(modality: str = "", request: gr.Request = None) -> list[dict]:
        """The template library: name, modality, description, techniques, variables, variants and params.

        Args:
            modality: text, image or music; empty for all
        """
        if modality:
            v.choice(modality, "modality", ("text", "image", "music"))
        return [{"name": t.name, "modality": t.modality, "description": t.description,
                 "techniques": list(t.techniques), "variables": {n: x.default for n, x in t.variables.items()},
                 "variants": t.variants, "params": t.params, "source": t.source}
                for t in services.library_for(services.visitors.owner(request)).templates.values()
                if not modality or t.modality == modality]

    @boundary
    def render_template(template: str, values: dict | None = None, request: gr.Request = None) -> list[dict]:
        """The prompts a template renders to, one per variant and value combination (nothing is generated).

        Args:
            template: library template name
            values: variable name -> value or list of values
        """
        name = v.text(template, "template", max_chars=v.MAX_NAME_CHARS, allow_empty=False)
        cells = expand(services.library_for(services.visitors.owner(request)).get(name), values=v.variable_values(values) or None,
                       max_cells=settings.max_cells)
        return [{"variant": c.variant, "values": c.values, "prompt": c.prompt, "system": c.system,
                 "negative_prompt": c.negative_prompt} for c in cells]

    @boundary
    def comparison(comparison_id: int, offset: int = 0, limit: int = MAX_PAGE, request: gr.Request = None) -> dict:
        """A logged comparison and one page of its runs (in grid order); run_count says how many there are.

        Args:
            comparison_id: the comparison's number
            offset: runs to skip (for paging)
            limit: runs to return, 1..1000
        """
        return comparison_json(v.record_id(comparison_id, "comparison_id"),
                               v.whole_number(offset, "offset"), v.whole_number(limit, "limit", low=1, high=MAX_PAGE),
                               services.visitors.owner(request))

    @boundary
    def history(modality: str = "", template: str = "", query: str = "", limit: int = 50, offset: int = 0,
                request: gr.Request = None) -> list[dict]:
        """Logged runs, newest first, filtered. `query` searches prompts and text outputs (word prefixes match).

        Args:
            modality: text, image or music; empty for all
            template: a template name; empty for all
            query: words to search for; empty for no search
            limit: how many runs, 1..1000
            offset: runs to skip (for paging)
        """
        if modality:
            v.choice(modality, "modality", ("text", "image", "music"))
        records = log.list_runs(modality=modality or None,
                                template=v.text(template, "template", max_chars=v.MAX_NAME_CHARS) or None,
                                query=v.text(query, "query", max_chars=v.MAX_QUERY_CHARS) or None,
                                limit=v.whole_number(limit, "limit", low=1, high=MAX_PAGE),
                                offset=v.whole_number(offset, "offset"), owner=services.visitors.owner(request))
        return [run_json(r) | {"comparison_id": r.comparison_id, "prompt": r.prompt} for r in records]

    @boundary
    def rate(run_id: int, stars: int | None = None, thumbs: int | None = None, note: str | None = None,
             request: gr.Request = None) -> dict:
        """Rate a run; fields left out keep their value.

        Args:
            run_id: the run's number
            stars: 1 to 5
            thumbs: -1 (bad), 0 (none) or 1 (good)
            note: free text
        """
        run_id, owner = v.record_id(run_id, "run_id"), services.visitors.owner(request)
        log.rate(run_id, stars=v.optional_int(stars, "stars", low=1, high=5),
                 thumbs=v.optional_int(thumbs, "thumbs", low=-1, high=1),
                 note=v.optional_text(note, "note", max_chars=v.MAX_NOTE_CHARS), owner=owner)
        return run_json(log.get_run(run_id, owner=owner))

    @boundary
    def pick_winner(comparison_id: int, run_id: int, request: gr.Request = None) -> dict:
        """Mark one run as the winner of its comparison.

        Args:
            comparison_id: the comparison's number
            run_id: a run of that comparison
        """
        comparison_id = v.record_id(comparison_id, "comparison_id")
        log.set_winner(comparison_id, v.record_id(run_id, "run_id"), owner=services.visitors.owner(request))
        return {"comparison_id": comparison_id, "winner_run_id": run_id}

    @boundary
    def variant_summary(template: str = "", request: gr.Request = None) -> list[dict]:
        """Which variant wins: runs, ratings, thumbs and wins per template variant.

        Args:
            template: a template name; empty for all
        """
        return log.variant_summary(v.text(template, "template", max_chars=v.MAX_NAME_CHARS) or None,
                                   owner=services.visitors.owner(request))

    @boundary
    def save_template(text: str, overwrite: bool = False, request: gr.Request = None) -> dict:
        """Save a template (Markdown with YAML front matter) to the user's templates.

        Args:
            text: the template file's text
            overwrite: true to replace your own template of the same name
        """
        source = v.text(text, "text", max_chars=200_000, allow_empty=False)
        saved = services.libraries.import_template(source, services.visitors.owner(request),
                                                   overwrite=v.flag(overwrite, "overwrite"))
        return {"name": saved.name, "modality": saved.modality, "variants": list(saved.variants)}

    @boundary
    def stats(comparison_id: int, request: gr.Request = None) -> dict:
        """Which variant wins, and how sure that is: per variant the mean of each score (and of stars and thumbs)
        with a 95% bootstrap interval; per pair of variants the paired difference over the same values, seed and
        model, its interval and a sign test; a winner only where the win is clear.

        Args:
            comparison_id: the comparison's number
        """
        comparison_id = v.record_id(comparison_id, "comparison_id")
        log.get_comparison_header(comparison_id, owner=services.visitors.owner(request))
        return comparison_summary(log, comparison_id).to_dict()

    # gr.api publishes names and docstrings (MCP tool names are the function names).
    gr.api(compare, api_name="compare", concurrency_id=MODEL_QUEUE,
           concurrency_limit=settings.comparisons_at_once)     # the runner's model slot takes turns
    for fn in (list_templates, render_template, comparison, stats, history, rate, pick_winner, variant_summary,
               save_template):
        gr.api(fn, api_name=fn.__name__)

    # Endpoints with files in or out need real File components so Gradio moves the files through its cache.
    @boundary
    def export_comparison(comparison_id: int, fmt: str = "jsonl", request: gr.Request = None) -> str:
        """Export one comparison as a file: jsonl, csv, or zip (jsonl + csv + the media files).

        Args:
            comparison_id: the comparison's number
            fmt: jsonl, csv or zip
        """
        comparison_id = v.record_id(comparison_id, "comparison_id")
        fmt = v.choice(fmt, "fmt", exports.FORMATS)
        runs = log.get_comparison(comparison_id, owner=services.visitors.owner(request)).runs
        return exports.export_runs(log, runs, f"comparison-{comparison_id}", fmt)

    @boundary
    def export_template(template: str, request: gr.Request = None) -> str:
        """A template as a Markdown file, ready to share or import elsewhere.

        Args:
            template: library template name
        """
        t = services.library_for(services.visitors.owner(request)).get(v.text(template, "template", max_chars=v.MAX_NAME_CHARS, allow_empty=False))
        return exports.export_text(template_to_text(t), t.name, "md")

    @boundary
    def import_runs(file: str, request: gr.Request = None) -> dict:
        """Add the runs of an export (.jsonl, or .zip with media) to the log; bad rows are reported by line.

        Args:
            file: the export file
        """
        if not file:
            raise v.BadInput("file is missing: send an export (.jsonl or .zip)")
        report = log.import_jsonl(Path(file), ImportLimits.from_settings(services.settings),
                                  owner=services.visitors.owner(request))
        return {"imported": report.imported, "errors": [{"line": n, "message": m} for n, m in report.errors]}

    with gr.Column(visible=False):
        cid_in, fmt_in, name_in = gr.JSON(), gr.Textbox(), gr.Textbox()
        file_out, file_in, report_out = gr.File(), gr.File(type="filepath"), gr.JSON()
        triggers = [gr.Button() for _ in range(3)]
    triggers[0].click(export_comparison, [cid_in, fmt_in], file_out, api_name="export_comparison")
    triggers[1].click(export_template, name_in, file_out, api_name="export_template")
    triggers[2].click(import_runs, file_in, report_out, api_name="import_runs")
