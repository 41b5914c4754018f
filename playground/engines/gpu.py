"""The one GPU boundary. On a ZeroGPU Space, `spaces.GPU` runs the decorated function in a forked worker with a GPU
attached, pickling its arguments there and its yields back: so it takes only picklable arguments (names, requests,
an options dict), looks the warm model up inside, and is a generator whose events cross the process boundary one by
one. Elsewhere the decorator is absent and this is a plain generator. Remote engines never come here.
"""

from __future__ import annotations

from typing import Iterator

from .base import Event, GenerationRequest

# The catalog whose warm models the GPU function serves. Set once by Services; a forked worker inherits it.
_catalog = None
DEFAULT_SECONDS_PER_CELL = {"text": 3.0, "image": 8.0, "music": 15.0}
MIN_LEASE_S, MAX_LEASE_S = 15, 300


def attach(catalog) -> None:
    global _catalog
    _catalog = catalog


def lease_seconds(modality: str, model_id: str, revision: str | None, requests: list[GenerationRequest],
                  options: dict) -> int:
    """The ZeroGPU lease for one batch: the model's measured seconds per cell (or a default) times the cells,
    with head-room, so short grids do not spend a long lease from the visitor's quota."""
    model = _catalog.find_loaded(modality, model_id, revision) if _catalog is not None else None
    per_cell = getattr(model, "seconds_per_cell", None) or DEFAULT_SECONDS_PER_CELL.get(modality, 10.0)
    return int(min(max(MIN_LEASE_S, 1.5 * per_cell * len(requests) + 5), MAX_LEASE_S))


def _stream_on_gpu(modality: str, model_id: str, revision: str | None, requests: list[GenerationRequest],
                   options: dict) -> Iterator[Event]:
    model = _catalog.find_loaded(modality, model_id, revision)
    if model is None:          # evicted meanwhile (or a worker without it): load it here
        model = _catalog.get(_catalog.resolve(modality, model_id, revision))
    yield from model.stream(requests, options)


def _decorate(function):
    """`spaces.GPU` where the package is installed: a no-op off ZeroGPU (it returns the function itself)."""
    try:
        import spaces  # type: ignore[import-not-found]
    except ImportError:
        return function
    return spaces.GPU(duration=lease_seconds)(function)


stream_on_gpu = _decorate(_stream_on_gpu)
