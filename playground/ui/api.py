"""Plain API endpoints (gradio_client, MCP): the same runner and log the tabs use, with JSON-friendly arguments."""

from __future__ import annotations

import time

import gradio as gr

from ..registry import InvalidInput
from ..runner import build_spec
from ..services import Services
from ..templates import TemplateError, expand
from .compare import MODEL_QUEUE


def _run_json(record) -> dict:
    return {"run_id": record.id, "variant": record.variant, "values": record.variables, "seed": record.seed,
            "model": record.model_id, "status": record.status, "text": record.output_text,
            "file": record.artifact, "error": record.error, "cached": record.cached_from is not None,
            "row": record.row, "col": record.col, "stars": record.stars, "note": record.note,
            "wall_s": record.wall_s, "tokens_per_s": record.tokens_per_s}


def register_api(services: Services) -> None:
    """Call inside the Blocks context."""

    def compare(template: str, values: dict | None = None, variants: dict | None = None,
                models: list[str] | None = None, seeds: list[int] | None = None, params: dict | None = None,
                rerun: bool = False) -> dict:
        """Run a comparison of a library template's variants and return every cell.

        Args:
            template: library template name (see list_templates)
            values: variable name -> value or list of values (each list multiplies the grid)
            variants: variant name -> prompt text, replacing the template's variants
            models: model ids (presets, hub ids, or local folders); default: the tab's default model
            seeds: one or more seeds; default [1]
            params: generation parameters; default: the template's
            rerun: true to ignore cached results
        """
        try:
            tpl = services.library.get(template)
            spec = build_spec(tpl, values=values, variants=variants,
                              models=models or [services.catalog.default_model(tpl.modality)],
                              seeds=seeds or [1], params=params, max_cells=services.settings.max_cells,
                              rerun=rerun)
            comparison_id = None
            for progress in services.runner.run(spec):
                comparison_id = progress.comparison_id
        except (InvalidInput, TemplateError) as error:
            raise gr.Error(str(error)) from None
        return comparison(comparison_id)

    def list_templates(modality: str = "") -> list[dict]:
        """The template library (one modality, or all when empty)."""
        return [{"name": t.name, "modality": t.modality, "description": t.description,
                 "techniques": list(t.techniques), "variables": {n: v.default for n, v in t.variables.items()},
                 "variants": t.variants, "params": t.params, "source": t.source}
                for t in services.library.templates.values() if not modality or t.modality == modality]

    def render_template(template: str, values: dict | None = None) -> list[dict]:
        """The prompts a template renders to, one per variant and value combination."""
        try:
            cells = expand(services.library.get(template), values=values, max_cells=services.settings.max_cells)
        except TemplateError as error:
            raise gr.Error(str(error)) from None
        return [{"variant": c.variant, "values": c.values, "prompt": c.prompt, "system": c.system,
                 "negative_prompt": c.negative_prompt} for c in cells]

    def comparison(comparison_id: int) -> dict:
        """A logged comparison with all its runs."""
        try:
            c = services.log.get_comparison(int(comparison_id))
        except (KeyError, LookupError, ValueError) as error:
            raise gr.Error(f"no comparison #{comparison_id}: {error}") from None
        return {"comparison_id": c.id, "modality": c.modality, "title": c.title, "template": c.template_name,
                "status": c.status, "created_at": c.created_at, "winner_run_id": c.winner_run_id,
                "runs": [_run_json(r) for r in c.runs]}

    def history(modality: str = "", template: str = "", query: str = "", limit: int = 50) -> list[dict]:
        """Logged runs, newest first, filtered; `query` searches prompts and text outputs."""
        records = services.log.list_runs(modality=modality or None, template=template or None,
                                         query=query or None, limit=max(1, min(int(limit), 1000)))
        return [_run_json(r) | {"comparison_id": r.comparison_id, "prompt": r.prompt} for r in records]

    def rate(run_id: int, stars: int | None = None, thumbs: int | None = None, note: str | None = None) -> dict:
        """Rate a run: stars 1-5, thumbs -1/0/1, and/or a note."""
        try:
            services.log.rate(int(run_id), stars=stars, thumbs=thumbs, note=note)
            record = services.log.get_run(int(run_id))
        except (ValueError, KeyError, LookupError) as error:
            raise gr.Error(str(error)) from None
        return _run_json(record)

    def export(comparison_id: int, fmt: str = "jsonl") -> str:
        """Export a comparison as jsonl, csv or zip (with media); returns the file."""
        if fmt not in ("jsonl", "csv", "zip"):
            raise gr.Error("fmt must be jsonl, csv or zip")
        runs = comparison(comparison_id)["runs"] and services.log.get_comparison(int(comparison_id)).runs
        folder = services.settings.data_dir / "exports"
        folder.mkdir(parents=True, exist_ok=True)
        dest = folder / f"comparison-{int(comparison_id)}-{time.strftime('%Y%m%d-%H%M%S')}.{fmt}"
        return str(services.log.export(dest, fmt, runs=runs))

    gr.api(compare, api_name="compare", concurrency_id=MODEL_QUEUE,
           concurrency_limit=services.settings.concurrency)
    for fn in (list_templates, render_template, comparison, history, rate):
        gr.api(fn, api_name=fn.__name__)
    gr.api(export, api_name="export_comparison")
