"""A running comparison as a stream of grid redraws, with what is happening now and the real time since Run.

The runner is driven in a worker thread so the page keeps hearing from the server while a model loads or builds
(which can take seconds before the first event): every half second the grid is redrawn with the current stage and
the elapsed wall time, counted from the moment the handler started.
"""

from __future__ import annotations

import contextvars
import os
import queue
import threading
import time
from contextlib import contextmanager
from typing import Iterator

from ..spec import ComparisonSpec
from ..services import Services
from . import grid
from .evidence import evidence

_STREAM_EVERY_S = 0.25
_HEARTBEAT_S = 0.5
_DONE = object()


def stage_text(progress) -> str:
    """The stage an event reports (`progress.stage` when the runner gives one), else what can be inferred."""
    stage = getattr(progress, "stage", None)
    if stage:
        return str(stage)
    if progress.step:
        return f"step {progress.step[0]}/{progress.step[1]}"
    if progress.partial:
        return "generating"
    return "running"


def _first_stage(services: Services, spec: ComparisonSpec) -> str:
    """What the grid says the moment Run is pressed, before the runner has said anything: what it will wait for."""
    models = sorted({c.model_id for c in spec.cells})
    preparing = {model: services.catalog.preparing(spec.modality, model) for model in models}

    def names(which: list[str]) -> str:
        return ", ".join(which[:2]) + ("…" if len(which) > 2 else "")

    loading = [m for m in models if preparing[m] == "load"]
    return f"loading {names(loading)}" if loading else "starting"


def _events(services: Services, spec: ComparisonSpec, cancel: threading.Event, owner: str | None = None,
            into: int | None = None):
    """Runner events from a worker thread; None while nothing new arrived for a heartbeat.

    On ZeroGPU Spaces GPU calls must come from the request's own thread, so there the runner is driven inline
    (no heartbeats; the runner's own stage events still show)."""
    if os.environ.get("SPACES_ZERO_GPU", "").lower() in {"1", "true"}:
        yield from services.runner.run(spec, cancel=cancel, owner=owner, into=into)
        return
    events: queue.Queue = queue.Queue()

    def drive():
        try:
            for progress in services.runner.run(spec, cancel=cancel, owner=owner, into=into):
                events.put(progress)
        except BaseException as error:           # re-raised in the handler's thread below
            events.put(error)
        finally:
            events.put(_DONE)

    # The worker runs in a copy of the request's context (Gradio keeps the request in context variables).
    worker = threading.Thread(target=contextvars.copy_context().run, args=(drive,), name="comparison-run",
                              daemon=True)
    worker.start()
    try:
        while True:
            try:
                item = events.get(timeout=_HEARTBEAT_S)
            except queue.Empty:
                yield None
                continue
            if item is _DONE:
                return
            if isinstance(item, BaseException):
                raise item
            yield item
    finally:
        cancel.set() if worker.is_alive() else None     # the page went away: stop the rest of the grid


def stream_grid(services: Services, modality: str, spec: ComparisonSpec, cancel: threading.Event,
                remembered: dict, remember: bool = True, cell_reruns: bool = True, started: float | None = None,
                owner: str | None = None, into: int | None = None, before: tuple | None = None):
    """Run the spec, yielding (grid html, run state, browser state) as cells finish, text streams in, and
    every heartbeat while the model loads or builds. The first frame comes at once, saying what it waits for.
    `before`: the (grid html, run state) the page showed; put back when the runner refuses the spec."""
    started = started or time.perf_counter()
    views = grid.views_for_cells(spec.cells)
    state = {"spec": spec, "views": views, "comparison_id": None, "status": ""}
    comparison_id, done, stage, last = None, 0, _first_stage(services, spec), 0.0

    key = services.visitors.grid_key(owner)

    def frame(message: str, panel: str = "", badges: dict | None = None):
        state["status"] = message
        return (grid.render_grid(views, modality, done=done, total=len(views), comparison_id=comparison_id,
                                 message=message, cell_reruns=cell_reruns, badges=badges, key=key) + panel, state,
                remembered)

    yield frame(f"{stage} · {time.perf_counter() - started:.1f} s")
    events = _events(services, spec, cancel, owner, into)
    while True:
        try:
            progress = next(events)
        except StopIteration:
            break
        except Exception:
            if comparison_id is None and before is not None:
                yield (*before, remembered)          # refused before anything ran: the page keeps what it showed
            raise
        now = time.perf_counter()
        if progress is not None:
            comparison_id = state["comparison_id"] = progress.comparison_id
            stage = stage_text(progress)
            if progress.result is not None:
                done = progress.done
                grid.apply_record(views[progress.result.index], progress.result.record, services.log)
            for index, text in progress.partial.items():
                views[index].status, views[index].text = "running", text
            if progress.step:
                for view in views:
                    if view.status == "pending" and view.run_id is None and progress.step[0] < progress.step[1]:
                        view.status = "running"
            if progress.result is None and now - last < _STREAM_EVERY_S:
                continue
        last = now
        yield frame(f"{stage} · {now - started:.1f} s")
    for view in views:
        if view.status in ("pending", "running") and view.run_id is None:
            view.status = "cancelled"
            view.text = None
    if remember and comparison_id:
        remembered = {**(remembered or {}), modality: comparison_id}
    elapsed = time.perf_counter() - started
    panel, badges = evidence(services.log, comparison_id, owner)
    yield frame(f"stopped after {elapsed:.1f} s" if cancel.is_set() else f"done in {elapsed:.1f} s", panel, badges)


def page_key(request) -> str:
    """One key per open page (Gradio's session hash): Stop cancels that page's run only."""
    return getattr(request, "session_hash", None) or "api"


@contextmanager
def cancel_flag(flags: dict, key: str | None) -> Iterator[threading.Event]:
    """A fresh cancel flag for one page's run, which Stop sets (see stop_run); forgotten when the run ends, so a
    public app does not keep one per page it ever served."""
    key = key or "api"
    flag = flags[key] = threading.Event()
    try:
        yield flag
    finally:
        if flags.get(key) is flag:
            del flags[key]


def stop_run(flags: dict, key: str | None) -> None:
    """Stop the page's run, if one is going."""
    flag = flags.get(key or "api")
    if flag is not None:
        flag.set()
