"""Scoring finished cells: the hook the runner calls after each cell, and re-scoring of logged comparisons."""

from __future__ import annotations

import io
from pathlib import Path
from typing import Any, Iterable

from ..engines import compute
from ..store.scores import Score, check_score, save_scores
from .base import CellInput, ScorerContext, make_checks


def cell_input(record, output: Any = None, log=None) -> CellInput:
    """What the checks look at, from a run record plus its output in any of the forms the app has at hand:
    a backend Output (text / PIL image / (rate, waveform)), text, PNG or WAV bytes, a file path, or nothing
    (then the record's text, or its artifact file read through `log`)."""
    cell = CellInput(modality=record.modality, prompt=record.prompt, record=record,
                     reference=getattr(record, "reference", None),
                     reference_file=log.reference_path(record) if log is not None else None)
    if output is None:
        if record.output_text is not None:
            output = record.output_text
        elif record.artifact and log is not None:
            output = log.artifact_path(record)
    if output is None:
        cell.text = record.output_text
        return cell
    if hasattr(output, "text") and hasattr(output, "image") and hasattr(output, "audio"):
        cell.text, cell.image, cell.audio = output.text, output.image, output.audio
        if cell.text is None and cell.image is None and cell.audio is None:
            cell.text = record.output_text
        return cell
    if isinstance(output, str) and record.modality == "text":
        cell.text = output
        return cell
    if isinstance(output, (str, Path)):
        output = Path(output).read_bytes()
    if isinstance(output, (bytes, bytearray)):
        _decode(cell, bytes(output))
        return cell
    if isinstance(output, tuple) and len(output) == 2:
        cell.audio = output
        return cell
    cell.image = output                       # a PIL image
    return cell


def _decode(cell: CellInput, data: bytes) -> None:
    if data[:4] == b"RIFF" and data[8:12] == b"WAVE":
        from .audio import read_wav

        cell.audio = read_wav(data)
    elif cell.modality == "text":
        cell.text = data.decode("utf-8")
    else:
        from PIL import Image

        image = Image.open(io.BytesIO(data))
        image.load()
        cell.image = image


def score_cell(record, output: Any, checks: Iterable, scorer_context: ScorerContext, *,
               log=None) -> list[Score]:
    """Run every check that applies to this cell; a failed cell gets no scores.

    A check that breaks on this output, or answers with something that is not a score (a NaN), gives a score with
    no value and the error in its detail, so one bad scorer never loses the cell or the other scores."""
    if record.status != "ok":
        return []
    checks = make_checks(list(checks))
    cell = cell_input(record, output, log)
    scores = []
    for check in checks:
        if record.modality not in check.modalities:
            continue
        try:
            if check.runs_torch:      # with the model work, on one thread (engines/compute.py)
                score = compute.run(check.score, cell, scorer_context)
            else:
                score = check.score(cell, scorer_context)
            check_score(score)
        except Exception as error:    # noqa: BLE001 - a scorer's failure is recorded, not raised
            score = check.make(None, None, error=f"{type(error).__name__}: {error}"[:500])
        scores.append(score)
    return scores


def score_and_save(log, record, output: Any, checks: Iterable, scorer_context: ScorerContext) -> list[Score]:
    """score_cell, then store the scores under the run (replacing scores of the same name)."""
    scores = score_cell(record, output, checks, scorer_context, log=log)
    if scores and record.id is not None:
        save_scores(log, record.id, scores)
    return scores


def rescore_comparison(log, comparison_id: int, checks: Iterable, scorer_context: ScorerContext,
                       on_cell=None) -> dict[int, list[Score]]:
    """Compute `checks` again on a logged comparison, from its logged text and artifact files, and store them.

    Checks are validated against the comparison's modality before anything runs. A run whose file has gone
    (e.g. imported without media) gets no scores. `on_cell(done, total)` reports progress."""
    comparison = log.get_comparison(comparison_id)
    checks = make_checks(list(checks), comparison.modality)
    results: dict[int, list[Score]] = {}
    runs = comparison.runs
    for done, record in enumerate(runs, start=1):
        if record.status == "ok":
            path = log.artifact_path(record) if record.artifact else None
            if record.output_text is not None or (path is not None and path.is_file()):
                results[record.id] = score_and_save(log, record, path, checks, scorer_context)
        if on_cell is not None:
            on_cell(done, len(runs))
    return results
