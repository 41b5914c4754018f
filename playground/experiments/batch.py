"""Handing an experiment's cells to a batch engine and taking the answers back.

`export_batch` writes the cells not yet logged OK as OpenAI batch JSONL: one request a line, `custom_id` the cell's
key, `method` POST, `url` /v1/chat/completions, `body` the chat request (model, messages, max_tokens, temperature,
top_p, seed). The OpenAI Batch API, Together's batch API, `vllm run-batch` and Ray Data LLM read it.
`import_batch` reads the batch output format (`custom_id`, `response` {status_code, body}, `error`) and logs each
answer as its cell's run, scored like any cell. It is idempotent: a cell already logged OK is skipped; a custom_id
that names no cell of the experiment, or that appears twice in the file, is refused with its line number.
"""

from __future__ import annotations

import json
import os
import uuid
from dataclasses import dataclass, field
from pathlib import Path

from ..engines.base import GenerationRequest, Output
from ..engines.remote import chat_messages
from ..registry import InvalidInput
from .cells import pending_chunks
from .results import experiment_spec
from .spec import make_plan, parse_key
from .store import logged_cells

URL = "/v1/chat/completions"
MAX_LINE_CHARS = 4_000_000


@dataclass
class BatchImport:
    imported: int = 0
    failed: int = 0                  # answers that carried an error: logged as failed cells (retry them later)
    skipped: int = 0                 # cells already logged OK
    errors: list[tuple[int, str]] = field(default_factory=list)     # (line, what is wrong)


def _prepared(services, experiment_id: int, owner):
    spec = experiment_spec(services.log, experiment_id, owner)
    plan = make_plan(spec, services.datasets, owner=owner)
    if plan.modality != "text":
        raise InvalidInput("experiment", "batch engines answer chat requests: hand off text experiments only")
    checked = services.runner.prepare(plan.modality, [(m, None) for m in spec.models],
                                      plan.params,
                                      [dict(c) for c in plan.template.checks] + list(spec.checks),
                                      has_reference=bool(spec.expected))
    return spec, plan, checked


def _body(cell, resolved, options: dict) -> dict:
    """One cell as a chat request; a sampling value left unset (None) is left to the server's model."""
    temperature = options.get("temperature")
    greedy = not options.get("do_sample", True) or temperature == 0
    body = {"model": resolved.source if resolved.engine.remote else resolved.model_id,
            "messages": chat_messages(GenerationRequest(cell.prompt, cell.seed, cell.system)),
            "max_tokens": options["max_new_tokens"], "seed": cell.seed}
    if greedy or temperature is not None:
        body["temperature"] = 0.0 if greedy else temperature
    if not greedy and options.get("top_p") is not None:
        body["top_p"] = options["top_p"]
    return body


def export_batch(services, experiment_id: int, dest: Path, *, owner: str | None = None) -> int:
    """Write the requests of every cell not yet logged OK to `dest` (OpenAI batch JSONL); returns how many."""
    spec, plan, checked = _prepared(services, experiment_id, owner)
    skip = {key for key, status in logged_cells(services.log, experiment_id).items() if status == "ok"}
    dest = Path(dest)
    temporary = dest.with_name(f".{dest.name}.{uuid.uuid4().hex[:8]}.tmp")
    count = 0
    try:
        with open(temporary, "w", encoding="utf-8") as handle:
            for chunk in pending_chunks(plan, services.datasets, skip, 1024, services.settings.max_prompt_chars):
                for cell in chunk.spec.cells:
                    resolved = checked.resolved(cell)
                    body = _body(cell, resolved, checked.options[resolved.engine.name])
                    handle.write(json.dumps({"custom_id": cell.key, "method": "POST", "url": URL, "body": body},
                                            ensure_ascii=False) + "\n")
                    count += 1
        os.replace(temporary, dest)
    finally:
        temporary.unlink(missing_ok=True)
    return count


def _answer(data: dict) -> tuple[Output | None, str | None]:
    """(the output, None) of a successful answer, or (None, why it failed)."""
    if data.get("error"):
        error = data["error"]
        return None, str(error.get("message") if isinstance(error, dict) else error)[:2000]
    response = data.get("response")
    if not isinstance(response, dict) or not isinstance(response.get("body"), dict):
        raise ValueError("no response.body: not a line of the OpenAI batch output format")
    if response.get("status_code") != 200:
        return None, f"the batch engine answered {response.get('status_code')}: " + \
            json.dumps(response["body"].get("error") or response["body"])[:500]
    body = response["body"]
    try:
        message = body["choices"][0]["message"]
        text = message.get("content") or ""
    except (KeyError, IndexError, TypeError):
        raise ValueError("response.body has no choices[0].message") from None
    usage = body.get("usage") or {}
    return Output(text=text, metrics={"prompt_tokens": usage.get("prompt_tokens"),
                                      "completion_tokens": usage.get("completion_tokens"),
                                      "finish_reason": body["choices"][0].get("finish_reason"),
                                      "revision": body.get("model"), "batch_request": data.get("id")}), None


def read_answers(path: Path, known: set[str], report: BatchImport) -> dict[str, tuple[int, dict]]:
    """custom_id -> (line, parsed line) for every acceptable line; the rest go into `report.errors`."""
    answers: dict[str, tuple[int, dict]] = {}
    with open(path, encoding="utf-8") as handle:
        for number, line in enumerate(handle, start=1):
            if not line.strip():
                continue
            try:
                if len(line) > MAX_LINE_CHARS:
                    raise ValueError(f"longer than {MAX_LINE_CHARS:,} characters")
                data = json.loads(line)
                key = data.get("custom_id") if isinstance(data, dict) else None
                if not isinstance(key, str):
                    raise ValueError("no custom_id")
                if key not in known:
                    raise ValueError(f"custom_id {key[:80]!r} names no cell of this experiment")
                if key in answers:
                    raise ValueError(f"custom_id {key!r} already answered on line {answers[key][0]}")
                answers[key] = (number, data)
            except (ValueError, json.JSONDecodeError) as error:
                report.errors.append((number, str(error)))
    return answers


def import_batch(services, experiment_id: int, path: Path, *, owner: str | None = None) -> BatchImport:
    """Log the answers of a batch output file as the experiment's cells (see the module's docstring)."""
    spec, plan, checked = _prepared(services, experiment_id, owner)
    report = BatchImport()
    known = {key for p in range(len(plan.rows)) for key, *_ in plan.keys(p)}
    answers = read_answers(Path(path), known, report)
    logged = logged_cells(services.log, experiment_id)
    for key in [k for k in answers if logged.get(k) == "ok"]:
        answers.pop(key)
        report.skipped += 1
    position_of = {row: position for position, row in enumerate(plan.rows)}
    positions = sorted({position_of[parse_key(key)[0]] for key in answers})
    skip = known - set(answers)
    for chunk in pending_chunks(plan, services.datasets, skip, 1024, services.settings.max_prompt_chars,
                                positions=positions):
        for index, cell in enumerate(chunk.spec.cells):
            number, data = answers[cell.key]
            try:
                output, error = _answer(data)
            except ValueError as problem:
                report.errors.append((number, str(problem)))
                continue
            if output is None:
                services.runner.log_failure(chunk.spec, index, experiment_id, checked, error)
                report.failed += 1
            else:
                services.runner.log_output(chunk.spec, index, experiment_id, checked, output)
                report.imported += 1
    report.errors.sort()
    return report
