"""What the run log keeps of an engine's output: its metrics on the record and its media as a file. No gradio, no
torch at import."""

from __future__ import annotations

import io

from .engines.base import Output, to_wav_bytes
from .store import RunRecord


def fill_metrics(record: RunRecord, output: Output, load_s: float) -> None:
    metrics = dict(output.metrics)
    record.output_text = output.text
    record.wall_s = metrics.pop("wall_s", None)
    record.load_s = load_s
    for name in ("tokens_per_s", "realtime_factor", "prompt_tokens", "completion_tokens", "formatted_prompt",
                 "ttft_s", "endpoint"):
        value = metrics.pop(name, None)
        if value is not None:
            setattr(record, name, value)
    if metrics.get("revision"):      # a remote server names what it really ran
        record.model_revision = metrics.pop("revision")
    record.metrics = {k: v for k, v in metrics.items() if isinstance(v, (int, float, str, bool))}


def artifact_bytes(output: Output) -> tuple[bytes | None, str | None]:
    if output.image is not None:
        buffer = io.BytesIO()
        output.image.save(buffer, format="PNG")
        return buffer.getvalue(), "png"
    if output.audio is not None:
        return to_wav_bytes(*output.audio), "wav"
    return None, None
