"""One door for engines and checks: the built-in ones listed in one place each, third-party ones found through
entry points, all registered here once, on first need.

A plugin package declares, in its own pyproject.toml:

```toml
[project.entry-points."playground.engines"]
shout = "shout_engine:ENGINE"          # an Engine, a list of them, or a function returning either

[project.entry-points."playground.checks"]
politeness = "shout_engine:Politeness" # a Check subclass, a list of them, or a function returning either
```

and `pip install` makes it appear in the model picker and the checks. Built-ins load first and keep their names: a
plugin cannot replace one. A plugin that fails to load is logged and skipped; the app still starts. Torch-free and
gradio-free, like the registry.
"""

from __future__ import annotations

import logging
import threading
from importlib.metadata import entry_points
from typing import Any, Callable, Iterable

log = logging.getLogger(__name__)

ENGINE_GROUP = "playground.engines"
CHECK_GROUP = "playground.checks"

_lock = threading.RLock()
_loaded: set[str] = set()


def load_engines() -> None:
    """Register the built-in engines, then every installed plugin's (once per process)."""
    from .engines import BUILTIN_ENGINES
    from .registry import Engine, register

    _load_once(ENGINE_GROUP, BUILTIN_ENGINES, Engine, register)


def load_checks() -> None:
    """Register the built-in checks, then every installed plugin's (once per process)."""
    from .scoring.base import Check, register
    from .scoring.checks import BUILTIN_CHECKS

    _load_once(CHECK_GROUP, BUILTIN_CHECKS, Check, register)


def _load_once(group: str, builtins: Iterable, kind: type, register: Callable[[Any], Any]) -> None:
    with _lock:
        if group in _loaded:
            return
        _loaded.add(group)           # before loading: a plugin that asks for the registry does not loop
        for item in builtins:
            register(item)
        for point in entry_points(group=group):
            try:
                items = _items(point.load(), kind)
                for item in items:
                    register(item)
            except Exception as error:     # a broken plugin must not stop the app
                log.warning("plugin %s (%s = %s) is skipped: %s: %s", group, point.name, point.value,
                            type(error).__name__, error)
            else:
                log.info("plugin %s: %s registered %d", group, point.name, len(items))


def _items(obj: Any, kind: type) -> list:
    """What an entry point names: one item, a list or tuple of them, or a function that returns either."""
    if _is_kind(obj, kind):
        return [obj]
    if callable(obj) and not isinstance(obj, type):
        obj = obj()
        if _is_kind(obj, kind):
            return [obj]
    if isinstance(obj, (list, tuple)) and obj and all(_is_kind(item, kind) for item in obj):
        return list(obj)
    raise TypeError(f"expected {_describe(kind)}, or a list of them, got {type(obj).__name__}")


def _is_kind(obj: Any, kind: type) -> bool:
    return isinstance(obj, kind) or (isinstance(obj, type) and issubclass(obj, kind) and obj is not kind)


def _describe(kind: type) -> str:
    return f"an {kind.__name__}" if kind.__name__ == "Engine" else f"a {kind.__name__} subclass"
