"""Limits of visitors on a public deployment: cells per experiment, jobs at once, and a daily budget of remote calls
(a remote engine there runs on the operator's key, which strangers must not be able to spend without bound).
Local use has none of these; every limit is a setting."""

from __future__ import annotations

import datetime as _dt
import os

from ..registry import ENGINES, InvalidInput
from ..visitors import keeps_visitors_apart


def visitor_limits_apply(services, owner: str | None) -> bool:
    return owner is not None and keeps_visitors_apart(services.settings)


def remote_calls_today(log, owner: str) -> int:
    """Remote cells a visitor ran since midnight UTC (cache hits cost nothing and are not counted)."""
    remote = [name for name, engine in ENGINES.items() if engine.remote]
    midnight = _dt.datetime.now(_dt.timezone.utc).strftime("%Y-%m-%dT00:00:00")
    row = log._db().execute(
        f"SELECT count(*) FROM runs r JOIN comparisons c ON c.id = r.comparison_id WHERE c.owner = ? AND "
        f"r.created_at >= ? AND r.cached_from IS NULL AND r.backend IN ({', '.join('?' for _ in remote)})",
        (owner, midnight, *remote)).fetchone()
    return row[0]


def check_budget(services, owner: str | None, calls: int) -> None:
    """Refuse `calls` more remote calls when they would pass the visitor's daily budget."""
    if calls <= 0 or not visitor_limits_apply(services, owner):
        return
    limit = services.settings.max_remote_calls_per_visitor
    used = remote_calls_today(services.log, owner)
    if used + calls > limit:
        raise InvalidInput("models", f"{calls:,} remote calls would pass your daily budget of {limit:,} on this "
                           f"server's keys ({used:,} used today): use a local model, fewer rows, or resume "
                           "tomorrow (UTC)")


def check_visitor(services, owner: str | None, cells: int, remote_calls: int) -> None:
    """At submit: a visitor's cap on cells, on jobs at once, and the budget of remote calls."""
    if not visitor_limits_apply(services, owner):
        return
    settings = services.settings
    if cells > settings.max_experiment_cells_per_visitor:
        raise InvalidInput("cells", f"{cells:,} cells; a visitor's experiment may have "
                           f"{settings.max_experiment_cells_per_visitor:,} here: sample fewer rows, seeds or models")
    if services.jobs.active_count(owner) >= settings.max_jobs_per_visitor:
        raise InvalidInput("jobs", f"you have {settings.max_jobs_per_visitor} jobs queued or running: wait for one "
                           "to finish, or pause or cancel one")
    check_budget(services, owner, remote_calls)


def on_zero_gpu() -> bool:
    return bool(os.environ.get("SPACES_ZERO_GPU"))


def check_hardware(local_models: list[str]) -> None:
    """On ZeroGPU a local model gets a GPU only inside a visitor's request, which a server-side job does not have:
    such cells must run in chunks while a page is open, not as a job."""
    if local_models and on_zero_gpu():
        raise InvalidInput("models", f"{', '.join(local_models)} run on this Space's ZeroGPU, which lends a GPU "
                           "only while a page asks for it: press 'Run on this page' in the Experiments tab (it runs "
                           "while the page stays open), or use a remote model (openai:..., hf:...) for a "
                           "server-side experiment")
