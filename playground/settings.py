"""Run-time settings: one frozen pydantic model, read from PLAYGROUND_* environment variables and CLI flags.

Every limit the server enforces is a field here, written once; the request layer (`playground.requests`), the
engines, the store and the UI read it from here. A value that does not parse (`PLAYGROUND_PUBLIC=ture`,
`PLAYGROUND_MAX_CELLS=lots`) stops start-up with a line naming the variable and what it accepts.
"""

from __future__ import annotations

import functools
import os
from pathlib import Path

from pydantic import BaseModel, ConfigDict, Field, ValidationError, field_validator
from pydantic_settings import BaseSettings, SettingsConfigDict

ENV_PREFIX = "PLAYGROUND_"
MAX_SEED = 2**32 - 1    # not a setting: the seed range every engine's random generator takes
MAX_ID = 2**63 - 1      # not a setting: the largest row id SQLite stores
_TRUE = {"1", "true", "yes", "on"}


def _hub_offline_from_env() -> bool:
    return any(os.environ.get(name, "").strip().lower() in _TRUE
               for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE"))


class Settings(BaseModel):
    """Everything the app needs to know about where it runs and how far a request may go.

    Limits are enforced in server code (request layer, engines and runner), so API callers who skip the UI get
    them too. `settings.replace(field=value)` gives a checked copy.
    """

    model_config = ConfigDict(frozen=True, extra="forbid", allow_inf_nan=False, validate_default=True)

    data_dir: Path = Path.home() / ".prompt-playground"
    offline: bool = False          # True: never touch the hub; use the shipped tiny models
    device: str | None = None      # None: pick cuda > mps > cpu
    dtype: str | None = None       # what precision "auto" means; None: bf16/fp16 on GPU, bf16 on CPUs with native bf16
    max_models_loaded: int = Field(2, ge=1, le=64)     # warm models kept by the catalog (LRU)
    max_cells: int = Field(64, ge=1, le=10_000)        # cells in one comparison grid (variants x values x seeds x models)
    max_new_tokens: int = Field(1024, ge=1, le=1_000_000)
    max_steps: int = Field(100, ge=1, le=10_000)
    max_side: int = Field(1536, ge=64, le=16_384)       # image width/height, pixels
    max_duration_s: float = Field(30.0, gt=0, le=3600)  # music clip length
    max_prompt_chars: int = Field(8000, ge=1, le=10_000_000)
    # What one request may carry: the request layer (playground.requests) holds the UI, the API, the CLI and imports
    # to these, and the comparison tabs lay out as many variant columns and variable boxes as allowed here.
    max_variants: int = Field(8, ge=1, le=32)           # variants side by side in one comparison
    max_variables: int = Field(6, ge=1, le=64)          # variables one comparison sets
    max_seeds: int = Field(64, ge=1, le=10_000)         # seeds in one comparison
    max_models: int = Field(8, ge=1, le=64)             # models in one comparison
    max_checks: int = Field(20, ge=0, le=200)           # checks on one comparison (its template's and the request's)
    max_name_chars: int = Field(200, ge=1, le=10_000)   # template, variant, variable, option and check names
    max_model_id_chars: int = Field(300, ge=1, le=10_000)   # hub ids are at most 96; local folders a little longer
    max_value_chars: int = Field(100_000, ge=1, le=10_000_000)  # one variable value, or one variant's text
    max_check_text_chars: int = Field(20_000, ge=1, le=10_000_000)  # one text argument of a check
    max_template_chars: int = Field(200_000, ge=1, le=100_000_000)  # a template file sent to be saved
    max_output_chars: int = Field(200_000, ge=1, le=100_000_000)    # one text output (imports are held to it)
    max_note_chars: int = Field(10_000, ge=1, le=1_000_000)         # a note on a run
    max_query_chars: int = Field(500, ge=1, le=100_000)             # a History search
    max_voter_chars: int = Field(200, ge=1, le=10_000)              # a voter's name or id
    max_reason_chars: int = Field(2_000, ge=1, le=1_000_000)        # why a voter chose as they did
    max_page_runs: int = Field(1000, ge=1, le=100_000)              # runs in one page of an API answer
    # A burst of requests waits in the queue (each caller is told its place) rather than being turned away.
    queue_size: int = Field(256, ge=1, le=100_000)      # Gradio queue max size: requests waiting, not running
    # Requests served at once. Local model work still takes turns (one model's cells at a time: the runner's model
    # turn, on the one compute thread); remote cells, and a comparison waiting for its turn, run beside it.
    concurrency: int = Field(8, ge=1, le=64)
    model_roots: str = ""          # comma-separated folders; when set, local model folders outside them are refused
    remote_concurrency: int = Field(8, ge=1, le=1024)   # requests in flight at once per remote endpoint
    remote_timeout_s: float = Field(120.0, gt=0, le=86_400)  # per request: silence allowed before an answer/byte
    # A remote cell's whole time (retries, waits, and a stream kept open by keep-alive comments, which the
    # per-request timeout never sees as silence); past it the cell fails and keeps the text it had.
    remote_cell_timeout_s: float = Field(600.0, gt=0, le=86_400)
    remote_retries: int = Field(3, ge=0, le=20)   # retries on 429 (honouring Retry-After), 5xx, dropped connections
    hf_base_url: str = ""          # Hugging Face engine: a dedicated Inference Endpoint or other base URL
    hf_provider: str = "auto"      # Hugging Face engine: the Inference Provider to route to
    public: bool = False           # visitors see only their own comparisons (always so on a Space, see visitors.py)
    shared_history: bool = False   # on a public Space: everyone sees every comparison (a team's private Space)
    hub_dataset: str = ""          # owner/name of a Dataset repo that mirrors the run log (needs HF_TOKEN)
    hub_sync_every_min: float = Field(5.0, gt=0, le=10_080)  # minutes between pushes of the mirror; one at shutdown
    # An imported file is untrusted: these caps are checked while it is read, before anything is stored.
    max_import_bytes: int = Field(200 * 2**20, ge=1)           # the uploaded file (.jsonl or .zip)
    max_import_member_bytes: int = Field(50 * 2**20, ge=1)     # one member of a zip, expanded
    max_import_expanded_bytes: int = Field(1 * 2**30, ge=1)    # all members of a zip together, expanded
    max_import_members: int = Field(20_000, ge=1)              # files in a zip
    max_import_rows: int = Field(20_000, ge=1)                 # rows (lines) of an export
    # Every request: a body past its cap is refused before it is parsed; uploads may be as large as an import.
    max_request_bytes: int = Field(4 * 2**20, ge=64 * 1024)    # one request's body (JSON or a form), not an upload
    cache_max_age_s: int = Field(3600, ge=60, le=7 * 86_400)   # uploads and exports in Gradio's cache are deleted
                                                               # when older than this, checked as often
    # Experiments (a template's variants x a dataset's rows x seeds x models) run as server-side jobs.
    max_experiment_cells: int = Field(100_000, ge=1, le=10_000_000)  # cells in one experiment
    max_experiment_cells_per_visitor: int = Field(2_000, ge=1)  # public deployments: cells of one visitor's experiment
    max_jobs_per_visitor: int = Field(2, ge=1, le=1000)  # public deployments: a visitor's jobs queued or running at once
    max_remote_calls_per_visitor: int = Field(2_000, ge=0)  # public deployments: remote calls a visitor may spend a day
    max_dataset_bytes: int = Field(1 * 2**30, ge=1)     # a dataset file (or folder) refused before it is read
    max_dataset_rows: int = Field(1_000_000, ge=1)      # rows of one dataset
    job_workers: int = Field(2, ge=1, le=64)            # jobs one process runs at once
    job_stale_after_s: float = Field(60.0, ge=1, le=86_400)  # a running job without a heartbeat this long is taken over
    experiment_chunk_cells: int = Field(512, ge=1, le=100_000)  # cells handed to an engine at once (keeps it busy)
    # Improve: a model proposes better variants of a prompt, each scored as an experiment (candidates per round are
    # at most max_variants: a round's candidates run side by side as one experiment's variants).
    max_improve_rounds: int = Field(20, ge=1, le=1000)  # rounds of proposals one search may run
    max_improve_candidates: int = Field(8, ge=1, le=32)  # candidates per round (and at most max_variants)
    max_improve_rows: int = Field(1_000, ge=1, le=1_000_000)  # rows each candidate is scored on, and held-out rows
    max_improve_calls: int = Field(20_000, ge=1)        # projected calls (proposer + generator) one search may spend
    cpu_offload: bool = False      # GPU only: keep weights in CPU RAM, each part on the GPU while it runs (small GPUs)
    # Text models' packed weights kept in <data dir>/prepared, so later processes load them directly (least recently
    # used trimmed beyond this size); 0 turns keeping them off.
    prepared_cache_mb: int = Field(8192, ge=0, le=10_000_000)

    @field_validator("data_dir")
    @classmethod
    def _expand(cls, value: Path) -> Path:
        return Path(value).expanduser()

    @property
    def models_dir(self) -> Path:
        return self.data_dir / "models"

    def local_model_roots(self) -> tuple[Path, ...] | None:
        """The folders local models (and scorer models) may be loaded from: PLAYGROUND_MODEL_ROOTS when set; on a
        public deployment (PLAYGROUND_PUBLIC, or a Space) without it, only the data dir's models folder, so a
        stranger can neither load nor probe the server's other folders; None (anywhere) for local use."""
        roots = tuple(Path(r).expanduser().resolve() for r in self.model_roots.split(",") if r.strip())
        if roots:
            return roots
        if self.public or os.environ.get("SPACE_ID"):
            return (self.models_dir.resolve(),)
        return None

    @property
    def user_templates_dir(self) -> Path:
        return self.data_dir / "templates"

    @property
    def visitor_templates_dir(self) -> Path:
        """Where visitors kept apart on a public deployment save their own templates, one folder each."""
        return self.data_dir / "visitor-templates"

    @property
    def db_path(self) -> Path:
        return self.data_dir / "runs.db"

    @property
    def artifacts_dir(self) -> Path:
        return self.data_dir / "artifacts"

    @property
    def references_dir(self) -> Path:
        """Reference images and clips of dataset rows, by content hash (datasets/store.py: keep_reference)."""
        return self.data_dir / "references"

    def replace(self, **changes) -> "Settings":
        """A copy with some fields changed, checked like the original."""
        return type(self).model_validate({**self.model_dump(), **changes})

    @classmethod
    def from_env(cls, **overrides) -> "Settings":
        """Defaults, then PLAYGROUND_<FIELD> environment variables, then explicit overrides (CLI flags).

        A bad value raises SettingsError with one line per variable: its name, what was given, what it accepts."""
        overrides = {k: v for k, v in overrides.items() if v is not None}
        if _hub_offline_from_env() and "offline" not in overrides:
            overrides["offline"] = True
        try:
            read = _FromEnvironment(**overrides)
        except ValidationError as error:
            raise SettingsError(_explain(error, overrides)) from None
        return cls.model_validate(read.model_dump())


@functools.lru_cache(maxsize=1)
def defaults() -> Settings:
    """The settings with nothing configured: the limits of code that is handed no settings (a template file read
    on its own, a run log opened by a script)."""
    return Settings()


class _FromEnvironment(BaseSettings, Settings):
    """The same fields, read from PLAYGROUND_<FIELD> variables (empty ones ignored)."""

    model_config = SettingsConfigDict(env_prefix=ENV_PREFIX, env_ignore_empty=True, extra="ignore", frozen=True,
                                      allow_inf_nan=False)


class SettingsError(ValueError):
    """A setting that does not parse; the message names the variable (or flag) and what it accepts."""


def _explain(error: ValidationError, overrides: dict) -> str:
    lines = []
    for problem in error.errors():
        name = str(problem["loc"][0]) if problem["loc"] else "?"
        field = Settings.model_fields.get(name)
        source = f"--{name.replace('_', '-')}" if name in overrides else f"{ENV_PREFIX}{name.upper()}"
        lines.append(f"{source}={problem.get('input')!r}: {_accepts(field, problem)}")
    return "; ".join(lines)


def _accepts(field, problem: dict) -> str:
    if field is None:
        return problem["msg"]
    if field.annotation is bool:
        return "must be true or false (1/0, true/false, yes/no, on/off)"
    if problem["type"] in ("int_parsing", "float_parsing", "int_from_float", "finite_number"):
        kind = "a whole number" if field.annotation is int else "a number"
        return f"must be {kind}"
    return problem["msg"][0].lower() + problem["msg"][1:]
