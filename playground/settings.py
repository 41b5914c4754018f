"""Run-time settings: one frozen dataclass, read from PLAYGROUND_* environment variables and CLI flags."""

from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass
from pathlib import Path

ENV_PREFIX = "PLAYGROUND_"


def _hub_offline_from_env() -> bool:
    return any(os.environ.get(name, "").strip().lower() in {"1", "true", "yes", "on"}
               for name in ("HF_HUB_OFFLINE", "TRANSFORMERS_OFFLINE", f"{ENV_PREFIX}OFFLINE"))


@dataclass(frozen=True)
class Settings:
    """Everything the app needs to know about where it runs and how far a request may go.

    Limits are enforced in server code (engines and runner), so API callers who skip the UI get them too.
    """

    data_dir: Path = Path.home() / ".prompt-playground"
    offline: bool = False          # True: never touch the hub; use the tiny models built locally
    device: str | None = None      # None: pick cuda > mps > cpu
    dtype: str | None = None       # what precision "auto" means; None: bf16/fp16 on GPU, bf16 on CPUs with native bf16
    max_models_loaded: int = 2     # warm models kept by the catalog (LRU)
    max_cells: int = 64            # cells in one comparison grid (variants x values x seeds x models)
    max_new_tokens: int = 1024
    max_steps: int = 100
    max_side: int = 1536           # image width/height, pixels
    max_duration_s: float = 30.0   # music clip length
    max_prompt_chars: int = 8000
    queue_size: int = 32           # Gradio queue max size
    concurrency: int = 1           # model work runs one event at a time: one shared queue for the GPU/CPU
    model_roots: str = ""          # comma-separated folders; when set, local model folders outside them are refused
    remote_concurrency: int = 8    # requests in flight at once per remote endpoint (endpoints.yaml may override)
    remote_timeout_s: float = 120.0  # per request to a remote model server
    remote_retries: int = 3        # retries with backoff on 429, 5xx and connection errors
    hf_base_url: str = ""          # Hugging Face engine: a dedicated Inference Endpoint or other base URL
    hf_provider: str = "auto"      # Hugging Face engine: the Inference Provider to route to
    public: bool = False           # visitors see only their own comparisons (always so on a Space, see visitors.py)
    shared_history: bool = False   # on a public Space: everyone sees every comparison (a team's private Space)
    hub_dataset: str = ""          # owner/name of a Dataset repo that mirrors the run log (needs HF_TOKEN)
    hub_sync_every_min: float = 5.0   # minutes between pushes of the mirror; one more at shutdown
    # An imported file is untrusted: these caps are checked while it is read, before anything is stored.
    max_import_bytes: int = 200 * 2**20            # the uploaded file (.jsonl or .zip)
    max_import_member_bytes: int = 50 * 2**20      # one member of a zip, expanded (runs.jsonl, one image or clip)
    max_import_expanded_bytes: int = 1 * 2**30     # all members of a zip together, expanded
    max_import_members: int = 20_000               # files in a zip
    max_import_rows: int = 20_000                  # rows (lines) of an export
    cpu_offload: bool = False      # GPU only: keep weights in CPU RAM, each part on the GPU while it runs (small GPUs)

    def __post_init__(self):
        object.__setattr__(self, "data_dir", Path(self.data_dir).expanduser())

    @property
    def models_dir(self) -> Path:
        return self.data_dir / "models"

    @property
    def user_templates_dir(self) -> Path:
        return self.data_dir / "templates"

    @property
    def db_path(self) -> Path:
        return self.data_dir / "runs.db"

    @property
    def artifacts_dir(self) -> Path:
        return self.data_dir / "artifacts"

    @classmethod
    def from_env(cls, **overrides) -> "Settings":
        """Defaults, then PLAYGROUND_<FIELD> environment variables, then explicit overrides (CLI flags)."""
        values: dict = {}
        for field in dataclasses.fields(cls):
            raw = os.environ.get(ENV_PREFIX + field.name.upper())
            if raw is None or raw == "":
                continue
            values[field.name] = _coerce(field.name, field.default, raw)
        if _hub_offline_from_env():
            values["offline"] = True
        values.update({k: v for k, v in overrides.items() if v is not None})
        return cls(**values)


def _coerce(name: str, default, raw: str):
    if isinstance(default, bool):
        return raw.strip().lower() in {"1", "true", "yes", "on"}
    try:
        if isinstance(default, int):
            return int(raw)
        if isinstance(default, float):
            return float(raw)
    except ValueError:
        raise ValueError(f"{ENV_PREFIX}{name.upper()}={raw!r} is not a number") from None
    return raw
