"""Checks on text outputs: substrings and patterns, JSON and JSON Schema, length, reading level, similarity to a
reference answer, and an LLM judge with a rubric."""

from __future__ import annotations

import difflib
import json
import re
from collections import Counter

from typing import Any, Literal

from pydantic import Field, field_validator

from .base import CellInput, Check, ScorerContext
from ..requests import whole
from ..requests.checks import CheckArgs, CheckText, json_object

_REGEX_TIMEOUT_S = 1.0          # a pathological pattern gives up instead of hanging the server


def _text(cell: CellInput) -> str:
    return cell.text or ""


def _case(text: str, case_sensitive: bool) -> str:
    return text if case_sensitive else text.casefold()


NO_REFERENCE = "no reference for this cell: give the check its value, or map a dataset column as the expected answer"


class Contains(Check):
    type, modalities, main_arg = "contains", ("text",), "value"
    description = "passes when the output contains the text (1 = pass, 0 = fail)"
    from_reference = {"value": "reference"}

    class Args(CheckArgs):
        value: CheckText = Field(description="the text to look for (in an experiment: the row's expected answer "
                                 "when left out)")
        case_sensitive: bool = Field(False, description="match upper and lower case exactly")

    def _found(self, cell) -> bool | None:
        value = self.argument("value", cell)
        if value is None:
            return None
        return _case(value, self.options["case_sensitive"]) in _case(_text(cell), self.options["case_sensitive"])

    def score(self, cell, context):
        found = self._found(cell)
        if found is None:
            return self.make(None, None, error=NO_REFERENCE)
        return self.make(1.0 if found else 0.0, found)


class NotContains(Contains):
    type = "not_contains"
    description = "passes when the output does not contain the text"

    def score(self, cell, context):
        found = self._found(cell)
        if found is None:
            return self.make(None, None, error=NO_REFERENCE)
        return self.make(0.0 if found else 1.0, not found)


class StartsWith(Contains):
    type = "starts_with"
    description = "passes when the output (leading spaces ignored) starts with the text"

    def score(self, cell, context):
        value = self.argument("value", cell)
        if value is None:
            return self.make(None, None, error=NO_REFERENCE)
        ok = _case(_text(cell).lstrip(), self.options["case_sensitive"]).startswith(
            _case(value, self.options["case_sensitive"]))
        return self.make(1.0 if ok else 0.0, ok)


class Equals(Contains):
    type = "equals"
    description = "passes when the output, spaces at both ends ignored, is the text (or the row's expected answer)"

    def score(self, cell, context):
        value = self.argument("value", cell)
        if value is None:
            return self.make(None, None, error=NO_REFERENCE)
        ok = _case(_text(cell).strip(), self.options["case_sensitive"]) == _case(
            value.strip(), self.options["case_sensitive"])
        return self.make(1.0 if ok else 0.0, ok)


class Regex(Check):
    type, modalities, main_arg = "regex", ("text",), "pattern"
    description = "passes when the regular expression matches somewhere in the output"
    class Args(CheckArgs):
        pattern: str = Field(max_length=1000, description="a regular expression (Python syntax)")
        ignore_case: bool = Field(False, description="ignore upper and lower case")

        @field_validator("pattern")
        @classmethod
        def _compiles(cls, pattern: str) -> str:
            import regex

            try:
                regex.compile(pattern)
            except regex.error as error:
                raise ValueError(f"does not compile: {error}") from None
            return pattern

    def score(self, cell, context):
        import regex

        flags = regex.IGNORECASE if self.options["ignore_case"] else 0
        try:
            match = regex.search(self.options["pattern"], _text(cell), flags, timeout=_REGEX_TIMEOUT_S)
        except TimeoutError:
            return self.make(None, None, error=f"the pattern ran over {_REGEX_TIMEOUT_S:g} s on this output")
        return self.make(1.0 if match else 0.0, match is not None,
                         match=match.group(0)[:200] if match else None)


_FENCE = re.compile(r"^\s*```[a-zA-Z0-9_-]*\s*\n(.*?)\n\s*```\s*$", re.DOTALL)


def _parse_json(text: str):
    """The output as JSON; a single ```json fenced block around it is accepted (models love to add one)."""
    fenced = _FENCE.match(text)
    return json.loads(fenced.group(1) if fenced else text)


class JsonValid(Check):
    type, modalities = "json_valid", ("text",)
    description = "passes when the output is valid JSON (a ```json fence around it is allowed)"

    def score(self, cell, context):
        try:
            _parse_json(_text(cell))
        except json.JSONDecodeError as error:
            return self.make(0.0, False, error=f"{error.msg} (line {error.lineno}, column {error.colno})")
        return self.make(1.0, True)


class JsonSchema(Check):
    type, modalities = "json_schema", ("text",)
    description = "passes when the output is JSON that the JSON Schema accepts"
    from_reference = {"schema": {}}

    class Args(CheckArgs):
        schema_: dict = Field(alias="schema", description="a JSON Schema object (or its JSON text)")

        @field_validator("schema_", mode="before")
        @classmethod
        def _decoded(cls, value: Any) -> Any:
            return json_object(value)

        @field_validator("schema_")
        @classmethod
        def _valid(cls, schema: dict) -> dict:
            return _valid_schema(schema)

    def score(self, cell, context):
        import jsonschema

        schema = self.options["schema"]
        if schema is None:
            if cell.reference is None:
                return self.make(None, None, error=NO_REFERENCE)
            try:
                schema = _valid_schema(json_object(cell.reference))
            except ValueError as error:
                return self.make(None, None, error=f"the row's expected answer is not a JSON Schema: {error}")
        try:
            data = _parse_json(_text(cell))
        except json.JSONDecodeError as error:
            return self.make(0.0, False, error=f"not JSON: {error.msg}")
        validator = jsonschema.validators.validator_for(schema)(schema)
        errors = sorted(validator.iter_errors(data), key=lambda e: list(e.path))
        if errors:
            return self.make(0.0, False, errors=[f"{'/'.join(map(str, e.path)) or '(root)'}: {e.message}"
                                                 for e in errors[:5]])
        return self.make(1.0, True)


def _valid_schema(schema) -> dict:
    import jsonschema

    if not isinstance(schema, dict):
        raise ValueError("is not a JSON Schema (an object)")
    try:
        jsonschema.validators.validator_for(schema).check_schema(schema)
    except jsonschema.SchemaError as error:
        raise ValueError(f"is not a valid JSON Schema: {error.message}") from None
    return schema


_WORD = re.compile(r"[^\W_]+(?:['’-][^\W_]+)*")
_TOKEN = re.compile(r"[^\W_]+|[^\w\s]")


class Length(Check):
    type, modalities, better = "length", ("text",), None
    description = ("the output's length in words, tokens or characters; passes when within min..max if given. "
                   "With only a max, shorter is better; with only a min, longer")
    class Args(CheckArgs):
        unit: Literal["words", "tokens", "chars"] = "words"
        min: whole(0, 10**9) | None = Field(None, description="fewest allowed")
        max: whole(0, 10**9) | None = Field(None, description="most allowed")

    def score(self, cell, context):
        text, unit, detail = _text(cell), self.options["unit"], {"unit": self.options["unit"]}
        if unit == "words":
            count = len(_WORD.findall(text))
        elif unit == "chars":
            count = len(text)
        elif cell.record is not None and cell.record.completion_tokens is not None:
            count = cell.record.completion_tokens          # the model's own tokenizer counted these
        else:
            count = len(_TOKEN.findall(text))
            detail["approximate"] = "no token count logged; counted words and punctuation"
        low, high = self.options["min"], self.options["max"]
        passed = None if low is None and high is None else (
            (low is None or count >= low) and (high is None or count <= high))
        better = "lower" if low is None and high is not None else "higher" if high is None and low is not None else None
        return self.make(count, passed, better=better, **detail)


def syllables(word: str) -> int:
    """English syllables by vowel groups, the usual heuristic of Flesch-Kincaid implementations."""
    word = word.lower().strip("'’")
    if not word:
        return 0
    groups = re.findall(r"[aeiouy]+", word)
    count = len(groups)
    if word.endswith("e") and not word.endswith(("le", "ee", "ye")) and count > 1:
        count -= 1                         # silent final e: "make", not "table"
    return max(count, 1)


def flesch_kincaid_grade(text: str) -> float | None:
    """0.39 (words / sentences) + 11.8 (syllables / words) - 15.59; None for text without words."""
    words = [w for w in _WORD.findall(text) if any(ch.isalpha() for ch in w)]
    if not words:
        return None
    sentences = max(len([s for s in re.split(r"[.!?]+(?:\s|$)", text) if _WORD.search(s)]), 1)
    total_syllables = sum(syllables(w) for w in words)
    return 0.39 * len(words) / sentences + 11.8 * total_syllables / len(words) - 15.59


class ReadingLevel(Check):
    type, modalities, better = "reading_level", ("text",), None
    description = "Flesch-Kincaid grade level (US school grade); passes when at most max_grade if given"
    class Args(CheckArgs):
        max_grade: float | None = Field(None, description="highest acceptable grade")

    def score(self, cell, context):
        grade = flesch_kincaid_grade(_text(cell))
        if grade is None:
            return self.make(None, None, error="no words to grade")
        limit = self.options["max_grade"]
        return self.make(round(grade, 4), None if limit is None else grade <= limit)


def token_f1(answer: str, reference: str) -> float:
    """SQuAD-style token F1 between two texts (case and punctuation ignored)."""
    a, b = _WORD.findall(answer.casefold()), _WORD.findall(reference.casefold())
    if not a or not b:
        return float(a == b)
    common = sum((Counter(a) & Counter(b)).values())
    if common == 0:
        return 0.0
    precision, recall = common / len(a), common / len(b)
    return 2 * precision * recall / (precision + recall)


class Similarity(Check):
    type, modalities, main_arg = "similarity", ("text",), "reference"
    description = "similarity to a reference answer, 0 to 1 (token F1, or difflib's character ratio)"
    from_reference = {"reference": "reference"}

    class Args(CheckArgs):
        reference: CheckText = Field(description="the reference answer (in an experiment: the row's expected "
                                     "answer when left out)")
        method: Literal["token_f1", "ratio"] = "token_f1"
        threshold: float | None = Field(None, description="passes at or above this")

    def score(self, cell, context):
        text, reference = _text(cell), self.argument("reference", cell)
        if reference is None:
            return self.make(None, None, error=NO_REFERENCE)
        if self.options["method"] == "ratio":
            value = difflib.SequenceMatcher(None, text.strip(), reference.strip(), autojunk=False).ratio()
        else:
            value = token_f1(text, reference)
        threshold = self.options["threshold"]
        return self.make(round(value, 6), None if threshold is None else value >= threshold,
                         method=self.options["method"])


JUDGE_PROMPT = """You are a strict, fair judge of an AI model's answer.

Rubric:
{rubric}

The model was asked:
<prompt>
{prompt}
</prompt>

The model answered:
<answer>
{answer}
</answer>
{reference}
Judge the answer against the rubric only. Write one or two sentences of reasons, then a last line of the form
SCORE: <a whole number from 1 to {scale}>"""

REFERENCE_BLOCK = """
A reference answer (a good answer need not match it word for word):
<reference>
{reference}
</reference>
"""

_SCORE_LINE = re.compile(r"score\s*[:=]\s*\**\s*(\d+(?:\.\d+)?)", re.IGNORECASE)


def parse_judge_score(output: str, scale: int) -> float | None:
    """The judge's score: the last `SCORE: n` line, else a lone number; None when absent or out of range."""
    found = _SCORE_LINE.findall(output or "")
    if not found:
        numbers = re.findall(r"^\s*(\d+(?:\.\d+)?)\s*$", output or "", re.MULTILINE)
        found = numbers[-1:] if numbers else []
    if not found:
        return None
    value = float(found[-1])
    return value if 1 <= value <= scale else None


class LLMJudge(Check):
    type, modalities, needs_model, main_arg = "llm_judge", ("text",), True, "rubric"
    description = "a text model grades the output against a rubric, 1 to scale; its prompt and output are kept"
    class Args(CheckArgs):
        rubric: CheckText = Field(description="what a good answer does")
        scale: whole(2, 100) = Field(10, description="the top of the score range")
        pass_at: float | None = Field(None, description="passes at or above this score")
        model: CheckText | None = Field(None, description="the judge model (default: the app's judge)")
        reference: CheckText | None = Field(None, description="a reference answer the judge compares with "
                                            "(default: the row's expected answer, when there is one)")

    def score(self, cell, context: ScorerContext):
        reference = self.argument("reference", cell)
        shown = "" if reference is None else REFERENCE_BLOCK.format(reference=reference)
        prompt = JUDGE_PROMPT.format(rubric=self.options["rubric"].strip(), prompt=cell.prompt,
                                     answer=_text(cell), scale=self.options["scale"], reference=shown)
        output = context.judge(self.options["model"])(prompt)
        value = parse_judge_score(output, self.options["scale"])
        detail = {"judge_prompt": prompt, "judge_output": output, "judge_model": self.options["model"],
                  "scale": self.options["scale"]}
        if value is None:
            detail["error"] = f"the judge gave no score from 1 to {self.options['scale']}"
        pass_at = self.options["pass_at"]
        passed = None if value is None or pass_at is None else value >= pass_at
        return self.make(value, passed, **detail)
