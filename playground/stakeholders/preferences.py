"""What the votes of a comparison say: per-variant rankings, and preference pairs as JSONL (DPO) or CSV.

JSONL: one {"prompt", "chosen", "rejected"} object a line, decisive votes only (ties and "both bad" say nothing
about which output to prefer). For text, chosen/rejected are the output texts and prompt is the chosen output's
prompt (variants differ in their prompt; the chosen one is what the preferred output answered). For images and
audio, chosen/rejected are the media files' paths inside the data dir (as `artifact` in run exports; a zip export
holds them under media/): never a server's absolute path. CSV: every vote with its runs, variants, prompts and
reason, each text cell guarded against spreadsheet formulas.
"""

from __future__ import annotations

import csv
import io
import json
import os
import uuid
from pathlib import Path

from ..store import RunLog, RunRecord
from ..store.transfer import csv_safe
from ..store.votes import Vote, list_votes
from .ranking import RankRow, outcomes_from_votes, rank

CSV_HEADERS = ["vote_id", "comparison_id", "voter", "outcome", "winner_run_id", "left_run_id", "run_a", "run_b",
               "variant_a", "variant_b", "winner_variant", "prompt_a", "prompt_b", "output_a", "output_b",
               "values", "seed", "model", "reason", "created_at"]


def comparison_ranking(log: RunLog, comparison_id: int, *, comparison=None, votes: list[Vote] | None = None,
                       **options) -> list[RankRow]:
    """Bradley-Terry ranking of a comparison's variants from its votes (every variant listed, voted on or not).
    A caller that has the comparison and its votes loaded already passes them."""
    comparison = comparison or log.get_comparison(comparison_id)
    votes = list_votes(log, comparison_id) if votes is None else votes
    variants = sorted({r.variant or f"column {r.col}" for r in comparison.runs},
                      key=lambda v: min(r.col for r in comparison.runs if (r.variant or f"column {r.col}") == v))
    outcomes = outcomes_from_votes(votes, comparison.runs)
    return rank(outcomes, variants, **options)


def _output(log: RunLog, run: RunRecord) -> str:
    if run.artifact is not None:
        return run.artifact
    return run.output_text or ""


def preference_pairs(log: RunLog, comparison_id: int | None = None) -> list[dict]:
    """Decisive votes as {"prompt", "chosen", "rejected"} dicts, in the order they were cast."""
    pairs = []
    for vote in list_votes(log, comparison_id):
        if vote.winner_run_id is None:
            continue
        try:
            chosen, rejected = log.get_run(vote.winner_run_id), log.get_run(vote.loser_run_id)
        except KeyError:
            continue
        pairs.append({"prompt": chosen.prompt, "chosen": _output(log, chosen), "rejected": _output(log, rejected)})
    return pairs


def _csv_rows(log: RunLog, votes: list[Vote]) -> list[list]:
    rows = []
    for vote in votes:
        try:
            a, b = log.get_run(vote.run_low), log.get_run(vote.run_high)
        except KeyError:
            continue
        winner = {a.id: a.variant, b.id: b.variant}.get(vote.winner_run_id, "")
        rows.append([vote.id, vote.comparison_id, vote.voter, vote.outcome, vote.winner_run_id or "",
                     vote.left_run_id, a.id, b.id, a.variant, b.variant, winner, a.prompt, b.prompt,
                     _output(log, a), _output(log, b), json.dumps(a.variables, ensure_ascii=False), a.seed,
                     a.model_id, vote.reason or "", vote.created_at])
    return rows


def export_preferences(log: RunLog, dest: Path, fmt: str, comparison_id: int | None = None) -> Path:
    """Write the votes (of one comparison, or all) to `dest` as jsonl (DPO pairs) or csv; complete or absent."""
    if fmt not in ("jsonl", "csv"):
        raise ValueError(f"format must be jsonl or csv, got {fmt!r}")
    dest = Path(dest)
    dest.parent.mkdir(parents=True, exist_ok=True)
    if fmt == "jsonl":
        text = "".join(json.dumps(p, ensure_ascii=False) + "\n" for p in preference_pairs(log, comparison_id))
    else:
        buffer = io.StringIO()
        writer = csv.writer(buffer)
        writer.writerow(CSV_HEADERS)
        writer.writerows([csv_safe(cell) for cell in row] for row in _csv_rows(log, list_votes(log, comparison_id)))
        text = buffer.getvalue()
    temporary = dest.with_name(f".{dest.name}.{uuid.uuid4().hex[:8]}.tmp")
    try:
        with open(temporary, "w", encoding="utf-8", newline="") as handle:
            handle.write(text)
        os.replace(temporary, dest)
    except BaseException:
        temporary.unlink(missing_ok=True)
        raise
    return dest
