"""Exports of a whole, well-used log: each comparison written once, and every export this app writes imports back
into it at the default limits. The log is built directly (thousands of runs from 60-cell grids), not generated."""

from __future__ import annotations

import json
import zipfile

import pytest

from playground.settings import Settings
from playground.spec import build_spec
from playground.store import ImportLimits, RunLog, RunRecord
from playground.store.rows import insert_run
from playground.templates import make_template

pytestmark = pytest.mark.slow

PRODUCTS = [f"a {adjective} {thing}" for adjective in ("solar", "folding", "quiet", "pocket")
            for thing in ("lantern", "kettle", "backpack", "speaker", "desk lamp")]


def _grid_spec(number: int) -> dict:
    """The spec of a 60-cell grid (3 variants x 20 values) as the runner logs it."""
    template = make_template(
        name="product-tagline", modality="text", system="You write short, vivid marketing copy. Answer in one line.",
        variants={"plain": "Write a tagline for {{ product }}. Keep it under twelve words and avoid cliches.",
                  "role": "You are an award-winning copywriter at a small agency that sells outdoor gear. Write "
                          "one tagline for {{ product }} that a tired parent would remember.",
                  "few-shot": "Taglines we liked: 'Light that follows the sun.' 'Boil water, not time.' Now one "
                              "for {{ product }}, in the same spirit, under twelve words."},
        variables={"product": PRODUCTS[0]})
    spec = build_spec(template, values={"product": PRODUCTS}, models=["tiny-text"], seeds=[number],
                      params={"max_new_tokens": 60, "temperature": 0.8}, max_cells=60,
                      checks=[{"type": "length", "unit": "words"}, {"type": "contains", "value": "light"}])
    return spec


def _fill(log: RunLog, comparisons: int) -> int:
    runs = 0
    for number in range(1, comparisons + 1):
        spec = _grid_spec(number)
        comparison = log.start_comparison("text", f"taglines, take {number}", "product-tagline",
                                          spec={**spec.to_dict(), "pid": 1})
        with log._write() as tx:
            for cell in spec.cells:
                insert_run(tx, RunRecord(
                    modality="text", model_id=cell.model_id, prompt=cell.prompt, seed=cell.seed,
                    params=spec.params, comparison_id=comparison, row=cell.row, col=cell.col, variant=cell.variant,
                    variables=dict(cell.values), system=cell.system, template_name="product-tagline",
                    output_text=f"{cell.values['product'].title()}: light that goes where you go, take {number}.",
                    formatted_prompt=f"<|system|>{cell.system}<|user|>{cell.prompt}<|assistant|>",
                    backend="local-text", device="cpu", dtype="float32", wall_s=0.8, load_s=0.0,
                    tokens_per_s=40.0, prompt_tokens=60, completion_tokens=14,
                    versions={"playground": "0.1.0", "torch": "2.13.0", "transformers": "5.0.0"},
                    metrics={"batch_rows": 8, "finish_reason": "eos"}))
                runs += 1
        log.finish_comparison(comparison, "done")
    return runs


@pytest.fixture(scope="module")
def big_log(tmp_path_factory):
    with RunLog(tmp_path_factory.mktemp("big")) as log:
        yield log, _fill(log, 65)


@pytest.mark.parametrize("fmt", ["zip", "jsonl"])
def test_a_whole_log_export_imports_back_at_the_default_limits(big_log, tmp_path, fmt):
    log, runs = big_log
    assert runs == 3900
    export = log.export(tmp_path / f"everything.{fmt}", fmt, runs=log.list_runs(limit=10**9))
    limits = ImportLimits.from_settings(Settings())
    with RunLog(tmp_path / "elsewhere") as other:
        report = other.import_jsonl(export, limits)
        assert (report.imported, report.errors) == (runs, [])
        comparisons = other.list_comparisons(limit=1000)
        assert len(comparisons) == 65 and all(c.run_count == 60 for c in comparisons)
        for comparison in comparisons:
            spec = other.get_comparison_header(comparison.id).spec
            assert len(spec["cells"]) == 60 and spec["checks"][0] == {"type": "length", "unit": "words"}


def test_each_comparison_is_written_once(big_log, tmp_path):
    log, runs = big_log
    export = log.export(tmp_path / "everything.zip", "zip", runs=log.list_runs(limit=10**9))
    with zipfile.ZipFile(export) as archive:
        lines = archive.read("runs.jsonl").decode("utf-8").splitlines()
    rows = [json.loads(line) for line in lines]
    assert len(rows) == runs                                           # still one run a line
    with_spec = [row for row in rows if "spec" in row["comparison"]]
    assert len(with_spec) == 65 and len({row["comparison"]["uid"] for row in with_spec}) == 65
    spec_bytes = sum(len(json.dumps(row["comparison"]["spec"])) for row in with_spec)
    assert spec_bytes < sum(map(len, lines)) / 2                       # the specs no longer dominate the export


def test_older_exports_with_the_spec_on_every_row_and_reordered_rows_still_import(big_log, tmp_path):
    log, _ = big_log
    export = log.export(tmp_path / "two.jsonl", "jsonl", runs=log.get_comparison(1).runs + log.get_comparison(2).runs)
    rows = [json.loads(line) for line in export.read_text().splitlines()]
    specs = {row["comparison"]["uid"]: row["comparison"]["spec"] for row in rows if "spec" in row["comparison"]}
    older = [{**row, "comparison": {**row["comparison"], "spec": specs[row["comparison"]["uid"]]}} for row in rows]
    for name, lines in (("older.jsonl", older), ("reordered.jsonl", rows[::-1])):
        path = tmp_path / name
        path.write_text("".join(json.dumps(row) + "\n" for row in lines))
        with RunLog(tmp_path / name.replace(".", "-")) as other:
            assert other.import_jsonl(path).imported == 120
            assert [len(other.get_comparison_header(c.id).spec["cells"]) for c in other.list_comparisons()] == [60, 60]


def test_the_cli_says_when_an_export_would_not_import_here_whole(big_log, tmp_path, capsys, monkeypatch):
    from playground.cli import main

    log, _ = big_log
    monkeypatch.setenv("PLAYGROUND_MAX_IMPORT_ROWS", "3000")
    assert main(["--data-dir", str(log.data_dir), "export", str(tmp_path / "all.zip")]) == 0
    captured = capsys.readouterr()
    assert "exported 3900 runs" in captured.out
    assert "would stop short: the file has more than 3000 rows" in captured.err and "max_import_rows" in captured.err
    assert main(["--data-dir", str(log.data_dir), "export", str(tmp_path / "one.zip"), "--comparison", "1"]) == 0
    assert "warning" not in capsys.readouterr().err
