"""The long-lived objects one app (or one CLI run) works with, created together from the settings."""

from __future__ import annotations

import logging
import os
from dataclasses import dataclass

from . import hub_sync
from .datasets import Datasets
from .jobs import JobQueue, JobWorker
from .visitors import Visitors
from .engines import gpu
from .engines.catalog import Catalog
from .runner import Runner
from .settings import Settings
from .store import RunLog
from .templates import Library
from .templates.owned import Libraries

log = logging.getLogger(__name__)


@dataclass
class Services:
    settings: Settings
    catalog: Catalog
    log: RunLog
    runner: Runner
    visitors: Visitors = None           # who owns each request (public deployments keep visitors apart)
    mirror: object = None               # the Dataset mirror of the run log (a CommitScheduler), when configured
    libraries: Libraries = None         # the shared template library and each visitor's own templates
    jobs: JobQueue = None               # server-side jobs (experiments) in the run log
    datasets: Datasets = None           # datasets kept in the data dir
    worker: JobWorker | None = None     # this process's job threads, once started

    @classmethod
    def create(cls, settings: Settings, catalog: Catalog | None = None) -> "Services":
        settings.data_dir.mkdir(parents=True, exist_ok=True)
        catalog = catalog or Catalog(settings)
        gpu.attach(catalog)
        run_log = RunLog(settings.data_dir)
        interrupted = run_log.interrupt_stale()
        if interrupted:
            log.info("%d comparison(s) left running by a stopped process are marked interrupted", interrupted)
        services = cls(settings=settings, catalog=catalog, log=run_log, runner=Runner(catalog, run_log, settings),
                       mirror=hub_sync.start(settings, run_log), visitors=Visitors(settings),
                       jobs=JobQueue(run_log, settings.job_stale_after_s), datasets=Datasets(run_log, settings))
        if os.environ.get("SPACES_ZERO_GPU"):     # ZeroGPU wants the models placed at start-up, not per request
            services.preload()
        return services

    def __post_init__(self):
        if self.libraries is None:
            self.libraries = Libraries(self.settings.user_templates_dir, self.settings.visitor_templates_dir)

    def start_jobs(self) -> JobWorker:
        """Run server-side jobs in this process (the app does at start-up): jobs left running by a stopped process
        continue by themselves."""
        from . import improve  # noqa: F401  (registers the improve job kind, so its jobs resume here too)

        if self.worker is None:
            self.worker = JobWorker(self, self.jobs, threads=self.settings.job_workers).start()
        return self.worker

    def stop_jobs(self) -> None:
        if self.worker is not None:
            self.worker.stop()
            self.worker = None

    @property
    def library(self) -> Library:
        """The shared template library (repo prompts/ plus the user's own folder), loaded on first use."""
        return self.libraries.shared()

    def library_for(self, owner: str | None) -> Library:
        """What one visitor may list and read: the shared library plus their own saved templates (owner None:
        the shared library, where everyone is one user)."""
        return self.libraries.for_owner(owner)

    def reload_library(self) -> Library:
        self.libraries.reload()
        return self.library

    def preload(self, modalities=("text", "image", "music")) -> None:
        """Load each tab's default model now (ZeroGPU asks for models on the device at start-up, not per request),
        as many as stay loaded: a further one would only evict the first."""
        for name in modalities[:self.settings.max_models_loaded]:
            model_id = self.catalog.default_model(name)
            try:
                self.catalog.get(self.catalog.resolve(name, model_id))
            except Exception as error:        # the app still starts; the first run reports the problem
                log.warning("preloading %s failed: %s", model_id, error)
