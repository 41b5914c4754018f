"""Remote model servers: the OpenAI SDK's own environment variables plus named endpoints in endpoints.yaml.

```yaml
# <data dir>/endpoints.yaml
endpoints:
  - name: lab-vllm                      # models are picked as lab-vllm:<model>
    base_url: http://gpu-box:8000/v1
    api_key_env: LAB_VLLM_KEY           # the NAME of the variable that holds the key; never the key itself
    models: [meta-llama/Llama-3.1-8B-Instruct]
    max_concurrency: 16                 # requests in flight at once (default: PLAYGROUND_REMOTE_CONCURRENCY)
    price_per_1k_input: 0.00015         # optional: what 1,000 prompt tokens cost (an experiment's dry run
    price_per_1k_output: 0.0006         #   estimates its cost from these), in any currency, the same for both
```
`OPENAI_BASE_URL` / `OPENAI_API_KEY` define the endpoint named `openai` (models picked as openai:<model>); an entry
named `openai` in the file lists its models for the picker. Keys are read from the environment at request time
and never stored: records keep the host only.
"""

from __future__ import annotations

import logging
import os
import re
from dataclasses import dataclass
from pathlib import Path
from urllib.parse import urlsplit

log = logging.getLogger(__name__)
_NAME = re.compile(r"^[a-z0-9][a-z0-9_-]{1,39}$")
RESERVED = {"hf", "tiny"}
PRICES = ("price_per_1k_input", "price_per_1k_output")
MAX_FILE_BYTES = 64_000


@dataclass(frozen=True)
class Endpoint:
    name: str
    base_url: str
    api_key_env: str | None = None
    models: tuple[str, ...] = ()
    max_concurrency: int | None = None
    timeout_s: float | None = None
    price_per_1k_input: float | None = None
    price_per_1k_output: float | None = None

    @property
    def host(self) -> str:
        """scheme://host:port, without credentials or path: what a record keeps."""
        parts = urlsplit(self.base_url)
        return f"{parts.scheme}://{parts.hostname or ''}{f':{parts.port}' if parts.port else ''}"

    @property
    def api_key(self) -> str | None:
        return os.environ.get(self.api_key_env) if self.api_key_env else None


def load_endpoints(path: Path) -> dict[str, Endpoint]:
    """The configured endpoints; a broken file is logged and skipped, never fatal."""
    endpoints: dict[str, Endpoint] = {}
    base_url = os.environ.get("OPENAI_BASE_URL", "").strip()
    if base_url or os.environ.get("OPENAI_API_KEY"):
        endpoints["openai"] = Endpoint("openai", base_url or "https://api.openai.com/v1", "OPENAI_API_KEY")
    try:
        entries = _read(path)
    except ValueError as error:
        log.warning("%s is ignored: %s", path.name, error)
        return endpoints
    for number, entry in enumerate(entries, start=1):
        try:
            endpoint = _endpoint(entry, endpoints.get("openai"))
        except ValueError as error:
            log.warning("%s entry %d is ignored: %s", path.name, number, error)
            continue
        endpoints[endpoint.name] = endpoint
    return endpoints


def _read(path: Path) -> list:
    if not path.is_file():
        return []
    import yaml

    if path.stat().st_size > MAX_FILE_BYTES:
        raise ValueError(f"larger than {MAX_FILE_BYTES} bytes")
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except (OSError, UnicodeDecodeError, yaml.YAMLError, RecursionError) as error:
        raise ValueError(f"cannot be read as YAML: {error}") from None
    entries = (data or {}).get("endpoints") if isinstance(data, dict) else None
    if not isinstance(entries, list):
        raise ValueError("expected a top-level 'endpoints:' list")
    return entries


def _endpoint(entry, default: Endpoint | None) -> Endpoint:
    if not isinstance(entry, dict):
        raise ValueError("each endpoint is a mapping with name, base_url, api_key_env and models")
    unknown = set(entry) - {"name", "base_url", "api_key_env", "models", "max_concurrency", "timeout_s",
                            *PRICES}
    if unknown:
        raise ValueError(f"unknown keys {sorted(unknown)}")
    name = entry.get("name")
    if not isinstance(name, str) or not _NAME.match(name) or name in RESERVED:
        raise ValueError(f"name {name!r} must be 2-40 lowercase letters, digits, '-' or '_' (not hf or tiny)")
    base_url = entry.get("base_url") or (default.base_url if name == "openai" and default else None)
    if not isinstance(base_url, str) or urlsplit(base_url).scheme not in ("http", "https"):
        raise ValueError(f"{name}: base_url must be an http(s) URL like http://host:8000/v1")
    if urlsplit(base_url).password:
        raise ValueError(f"{name}: put the key in an environment variable named by api_key_env, not in the URL")
    key_env = entry.get("api_key_env", "OPENAI_API_KEY" if name == "openai" else None)
    if key_env is not None and (not isinstance(key_env, str) or not re.fullmatch(r"[A-Za-z_][A-Za-z0-9_]*", key_env)):
        raise ValueError(f"{name}: api_key_env is the NAME of an environment variable, like LAB_VLLM_KEY")
    models = entry.get("models") or []
    if not isinstance(models, list) or not all(isinstance(m, str) and m.strip() for m in models):
        raise ValueError(f"{name}: models must be a list of model names")
    concurrency = entry.get("max_concurrency")
    if concurrency is not None and (isinstance(concurrency, bool) or not isinstance(concurrency, int)
                                    or not 1 <= concurrency <= 256):
        raise ValueError(f"{name}: max_concurrency must be a whole number from 1 to 256")
    timeout = entry.get("timeout_s")
    if timeout is not None and (isinstance(timeout, bool) or not isinstance(timeout, (int, float)) or timeout <= 0):
        raise ValueError(f"{name}: timeout_s must be a positive number of seconds")
    prices = {}
    for key in PRICES:
        price = entry.get(key)
        if price is not None and (isinstance(price, bool) or not isinstance(price, (int, float)) or
                                  not 0 <= price < 1e6):
            raise ValueError(f"{name}: {key} must be a number from 0, the price of 1,000 tokens")
        prices[key] = None if price is None else float(price)
    return Endpoint(name, base_url.rstrip("/"), key_env, tuple(m.strip() for m in models), concurrency, timeout,
                    **prices)
