"""The long-lived objects one app (or one CLI run) works with, created together from the settings."""

from __future__ import annotations

import threading
from dataclasses import dataclass, field

from .backends.catalog import Catalog
from .runner import Runner
from .settings import Settings
from .store import RunLog
from .templates import LIBRARY_DIR, Library, load_library


@dataclass
class Services:
    settings: Settings
    catalog: Catalog
    log: RunLog
    runner: Runner
    _library: Library | None = None
    _library_lock: threading.Lock = field(default_factory=threading.Lock)

    @classmethod
    def create(cls, settings: Settings, catalog: Catalog | None = None) -> "Services":
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        catalog = catalog or Catalog(settings)
        log = RunLog(settings.data_dir)
        return cls(settings=settings, catalog=catalog, log=log, runner=Runner(catalog, log, settings))

    @property
    def library(self) -> Library:
        """The template library (repo prompts/ plus the user's own), loaded on first use."""
        with self._library_lock:
            if self._library is None:
                self._library = load_library(LIBRARY_DIR, self.settings.user_templates_dir)
            return self._library

    def reload_library(self) -> Library:
        with self._library_lock:
            self._library = None
        return self.library
