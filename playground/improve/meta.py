"""The proposer's side of the loop: the meta-prompt it reads and how its answer becomes a candidate (or is rejected).

The meta-prompt follows OPRO (Yang et al., "Large Language Models as Optimizers", 2023; google-deepmind/opro,
`opro/optimization/optimize_instructions.py` and `opt_utils.gen_meta_prompt`): the task, then the best earlier
prompts with their scores in ascending order (the best last, nearest the request; OPRO keeps the best 20), then a
few exemplars (OPRO shows 3; here rows where the current best did worst, with what it produced), then the request
for a new prompt that differs from all of them and scores higher, in a marked block. For images and music the
reward (CLIP, PickScore, CLAP or another check) is named, since the proposer cannot see the outputs.

A candidate is the text between <PROMPT> and </PROMPT>. It must keep the variant's variables exactly: one that
drops or invents a `{{ variable }}` is rejected, as is one that repeats an earlier prompt or does not render.
"""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from ..templates import Template, TemplateError, variables_used
from ..templates.sandbox import MAX_SOURCE_CHARS

HISTORY = 20                  # earlier prompts shown (OPRO: the best 20)
EXEMPLARS = 3                 # rows where the best did worst (OPRO: 3 exemplars)
EXEMPLAR_CHARS = 300          # of an input, a reference or an output
OPEN, CLOSE = "<PROMPT>", "</PROMPT>"
_BLOCK = re.compile(re.escape(OPEN) + r"(.*?)" + re.escape(CLOSE), re.S | re.I)
_OPEN_ONLY = re.compile(re.escape(OPEN) + r"(.*)$", re.S | re.I)

REWARDS = {
    "clip": "the CLIP score: how closely the image matches its prompt (cosine similarity, -1 to 1)",
    "pickscore": "the PickScore: predicted human preference for the image given its prompt",
    "clap": "the CLAP score: how closely the audio matches its prompt (cosine similarity, -1 to 1)",
    "hue": "how close the image's main colour is to the colour asked for",
}


@dataclass
class Tried:
    """An earlier prompt with its score, as the meta-prompt lists it."""

    name: str
    text: str
    score: float


@dataclass
class Exemplar:
    values: dict
    reference: str | None
    output: str | None          # None for an image or audio output
    score: float | None


@dataclass
class MetaPrompt:
    task: str                                # what the template is for
    modality: str
    variables: list[str]
    objective: str                           # the reward, in words
    rows: int                                # rows (or value x seed cells) each prompt is scored on
    tried: list[Tried] = field(default_factory=list)
    exemplars: list[Exemplar] = field(default_factory=list)
    system: str | None = None

    def text(self, max_chars: int) -> str:
        """The meta-prompt, within `max_chars`: the weakest earlier prompts go first when it is too long."""
        tried = sorted(self.tried, key=lambda t: t.score)[-HISTORY:]
        while True:
            text = self._compose(tried)
            if len(text) <= max_chars or len(tried) <= 1:
                return text[:max_chars]
            tried = tried[1:]

    def _compose(self, tried: list[Tried]) -> str:
        kind = {"text": "a language model", "image": "an image model", "music": "a music model"}[self.modality]
        names = ", ".join("{{ " + v + " }}" for v in self.variables) or "none"
        lines = [f"Your task is to write a better prompt template for {kind}. The template is for: {self.task}",
                 f"Each template is a Jinja template. It must use exactly these variables, written as shown: {names}.",
                 f"Each template is scored by {self.objective}, averaged over {self.rows} examples; higher is "
                 "better.", ""]
        if self.system:
            lines += [f"The model also gets this system prompt, which stays as it is: {_clip(self.system)}", ""]
        lines += ["Below are earlier templates with their scores, in ascending order (the best last).", ""]
        for entry in tried:
            lines += ["template:", entry.text.strip(), "score:", f"{entry.score:.3f}", ""]
        if self.exemplars:
            lines += ["Below are examples where the best template so far did poorly, with what it produced.", ""]
            for example in self.exemplars:
                lines.append("input: " + "; ".join(f"{k} = {_clip(str(v))}" for k, v in example.values.items()))
                if example.reference is not None:
                    lines.append(f"expected: {_clip(example.reference)}")
                if example.output is not None:
                    lines.append(f"output: {_clip(example.output)}")
                if example.score is not None:
                    lines.append(f"score: {example.score:.3f}")
                lines.append("")
        lines += ["Write a new template that is different from all the templates above and scores higher than all "
                  "of them. Keep every variable exactly as written. Answer with the template only, between "
                  f"{OPEN} and {CLOSE}."]
        return "\n".join(lines)


def describe_objective(terms: list[tuple[str, float, str]]) -> str:
    """`[(name, weight, check type or "votes")]` -> the reward in words, naming CLIP, PickScore or CLAP."""
    from ..scoring.base import registry

    how = {"higher": "higher is better; a pass counts 1, a fail 0", "lower": "lower is better: its value counts "
           "negated", None: "a pass counts 1, a fail 0"}
    parts = []
    for name, weight, kind in terms:
        better = getattr(registry().get(kind), "better", None)
        words = REWARDS.get(kind) or ("the share of people's votes the output won" if kind == "votes" else
                                      f"the check {name!r} ({how[better]})")
        parts.append(words if weight == 1 else f"{weight:g} x {words}")
    return " plus ".join(parts)


def _clip(text: str, limit: int = EXEMPLAR_CHARS) -> str:
    text = " ".join(str(text).split())
    return text if len(text) <= limit else text[:limit - 1] + "…"


@dataclass
class Verdict:
    text: str | None            # the candidate's template text; None when rejected
    reason: str | None = None   # why it was rejected


def extract(answer: str | None) -> str | None:
    """The text between <PROMPT> and </PROMPT> (the first block; an unclosed block runs to the end)."""
    if not answer:
        return None
    found = _BLOCK.search(answer) or _OPEN_ONLY.search(answer)
    return found.group(1).strip() if found else None


def judge(answer: str | None, template: Template, variant: str, earlier: dict[str, str],
          max_chars: int) -> Verdict:
    """A proposer's answer -> a candidate for `variant`, or the reason it is rejected. `earlier`: name -> text of
    every prompt tried so far (the original included), which a candidate must not repeat."""
    text = extract(answer)
    if text is None:
        return Verdict(None, f"no {OPEN}…{CLOSE} block in the answer")
    if not text:
        return Verdict(None, f"the {OPEN} block is empty")
    if len(text) > min(MAX_SOURCE_CHARS, max_chars):
        return Verdict(None, f"{len(text):,} characters; a prompt may have {min(MAX_SOURCE_CHARS, max_chars):,}")
    try:
        used = variables_used(text)
    except TemplateError as error:
        return Verdict(None, f"not a valid template: {error.message}")
    wanted = variables_used(template.variants[variant])
    if used - wanted or wanted - used:
        parts = []
        if wanted - used:
            parts.append("drops " + ", ".join("{{ " + v + " }}" for v in sorted(wanted - used)))
        if used - wanted:
            parts.append("invents " + ", ".join("{{ " + v + " }}" for v in sorted(used - wanted)))
        return Verdict(None, " and ".join(parts))
    normal = " ".join(text.split())
    for name, before in earlier.items():
        if " ".join(before.split()) == normal:
            return Verdict(None, f"repeats {name}")
    try:
        _render_check(template, variant, text, max_chars)
    except TemplateError as error:
        return Verdict(None, f"does not render: {error.message}")
    return Verdict(text)


def _render_check(template: Template, variant: str, text: str, max_chars: int) -> None:
    """Render the candidate with the template's defaults, in the sandbox, as its cells will be."""
    from ..templates import render_source

    render_source(text, template.defaults(), max_chars=max_chars, where=f"candidate for {variant!r}")
