"""The run log's shared query pieces: which runs are live, and the filters History and the API search runs by.

A comparison shows one run per cell. A re-run of a cell names the run it replaces (`runs.replaces`); the replaced
run stays in the log (exports keep it) but is no longer live: the grid, History, the statistics, votes and the
report all read live runs only, through LIVE.
"""

from __future__ import annotations

import datetime as _dt

from .records import check_count, check_id

# The one rule for which runs are live: no other run replaces it. `r` is the runs table's alias.
LIVE = "NOT EXISTS (SELECT 1 FROM runs successor WHERE successor.replaces = r.id)"


def _bound(value, *, end: bool) -> str:
    """A since/until filter as comparable text; a bare date as `until` includes that whole day."""
    if isinstance(value, _dt.datetime):
        if value.tzinfo is not None:
            value = value.astimezone(_dt.timezone.utc).replace(tzinfo=None)
        return value.isoformat(timespec="milliseconds")
    text = value.isoformat() if isinstance(value, _dt.date) else str(value).strip()
    if end and len(text) == 10:          # YYYY-MM-DD
        return text + "T99"               # sorts after every time of that day
    return text


def _fts_query(text: str) -> str:
    """User text as FTS5 prefix terms: each word quoted (operators and stray quotes are plain words) and matched as
    a word beginning ("lant" finds "lantern"); all words must match."""
    words = [w.replace('"', '""') for w in text.replace("\x00", " ").split()]
    return " ".join(f'"{w}"*' for w in words if w.strip('"'))


def _like(text: str) -> str:
    return "%" + text.replace("\\", "\\\\").replace("%", "\\%").replace("_", "\\_") + "%"


def run_filters(*, modality=None, template=None, model=None, min_stars=None, rated=None, since=None, until=None,
                query=None, comparison_id=None, live_only: bool = False) -> tuple[list[str], list]:
    """WHERE conditions (on runs `r` joined with their current rating `g`) and their arguments for the filters
    given. `model` matches part of the id; `query` searches prompts and outputs (every word must appear; FTS
    syntax in it is taken literally); `since`/`until` take ISO text or datetimes; `live_only`: no replaced runs."""
    where, args = [], []
    if comparison_id is not None:
        comparison_id = check_id(comparison_id, "comparison")
    if min_stars is not None:
        min_stars = check_count(min_stars, "min_stars", 0, 5)
    for column, value in (("r.modality", modality), ("r.template_name", template),
                          ("r.comparison_id", comparison_id)):
        if value is not None:
            where.append(f"{column} = ?")
            args.append(value)
    if model:
        where.append("r.model_id LIKE ? ESCAPE '\\'")
        args.append(_like(str(model)))
    if since:
        where.append("r.created_at >= ?")
        args.append(_bound(since, end=False))
    if until:
        where.append("r.created_at <= ?")
        args.append(_bound(until, end=True))
    if min_stars:
        where.append("g.stars >= ?")
        args.append(int(min_stars))
    if rated is not None:
        where.append("(g.stars IS NOT NULL OR g.thumbs IS NOT NULL)" if rated else
                     "(g.stars IS NULL AND g.thumbs IS NULL)")
    if query and query.strip():
        terms = _fts_query(query)
        if terms:
            where.append("r.id IN (SELECT rowid FROM runs_fts WHERE runs_fts MATCH ?)")
            args.append(terms)
    if live_only:
        where.append(LIVE)
    return where, args


CURRENT_RATING = "LEFT JOIN ratings g ON g.id = (SELECT max(id) FROM ratings WHERE run_id = r.id)"


def row_seeds(db, comparison_id: int) -> dict[int, int]:
    """Row -> the seed the row was first run with (a re-run with a new seed keeps its row, not its row's seed)."""
    rows = db.execute("SELECT row, seed, min(id) FROM runs WHERE comparison_id = ? AND replaces IS NULL GROUP BY row",
                      (int(comparison_id),)).fetchall()
    return {row[0]: row[1] for row in rows}
