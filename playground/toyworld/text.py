"""The text toy world: (system, prompt, reply) triples in which the reply follows the prompt the way the library's
text templates expect of a good instruction-following model.

What the prompt decides: the tone of a tagline (plain, playful, luxury: from the prompt or the system prompt),
how many taglines and in what shape (a list of three, one with a comment, the tagline only, at most N words, no
exclamation marks); summaries of one sentence, three sentences, three bullets or at most N words; review labels
(a bare label after labelled examples, a loose sentence without them, prose for a vague question); ticket labels
(fooled by a side remark without definitions, right with them); contacts as prose, fields or JSON; messages
rewritten friendly, formal or concise; meeting notes as prose, bullets or JSON. Names and facts are drawn from the
fixed vocabulary in `words.py`, so a small model can copy them.
"""

from __future__ import annotations

import random
import re
from dataclasses import dataclass, field

from . import words as w

TONES = ("plain", "playful", "luxury")
# What a reply in each tone says, as a case-insensitive pattern (the tone checks of the library use the same).
TONE_MARKERS = {"playful": r"\b(yay|woohoo|wow|zing|fun)\b",
                "luxury": r"\b(exquisite|timeless|elegance|elegant|refined|refinement|crafted|indulge)\b"}
LABELS = ("positive", "negative", "mixed")
TICKET_LABELS = ("billing", "bug", "how-to", "account")
_WORD = re.compile(r"[^\W_]+(?:['’-][^\W_]+)*")       # what the `length` check counts as a word


@dataclass(frozen=True)
class Example:
    prompt: str
    reply: str
    task: str
    system: str | None = None
    facts: dict = field(default_factory=dict, compare=False)    # what the reply should hold (for evaluation)


def word_count(text: str) -> int:
    return len(_WORD.findall(text))


def products(held_out: bool = False) -> list[tuple[str, str]]:
    """(product phrase, noun) pairs: the trained ones, or the held-out ones."""
    return [(p, n) for n, phrases in w.NOUNS.items() for p in phrases if (p in w.HELD_OUT) == held_out]


def _an(text: str) -> str:
    return re.sub(r"\b([Aa]) ([aeiou])", lambda m: f"{m.group(1)}n {m.group(2)}", text)


def _cap(text: str) -> str:
    return text[:1].upper() + text[1:]


def fill(phrasing: str, noun: str) -> str:
    return _an(phrasing.format(n=noun))


# ---- taglines -----------------------------------------------------------------------------------------------------

def tagline_options(rng: random.Random, tone: str, noun: str, limit: int | None = None, k: int = 1) -> list[str]:
    pool = [fill(p, noun) for p in w.TAGLINES[tone]]
    if limit is not None:
        pool = [t for t in pool if word_count(t) <= limit] or [min(pool, key=word_count)]
    return rng.sample(pool, min(k, len(pool)))


def _tone_prompt(rng: random.Random, tone: str, product: str, count: str) -> tuple[str, str | None]:
    """The ask for a tagline with the tone said in it (or in the system prompt): (prompt, system)."""
    thing = rng.choice(["tagline", "tagline", "slogan"])
    verb = rng.choice(["Write", "Write", "Give me", "Suggest", "Come up with"])
    article = "a" if count == "list" else "one" if count == "one" else rng.choice(["a", "one"])
    system = None
    if rng.random() < 0.25:
        system = rng.choice(["You are a helpful assistant.", "You are an award-winning copywriter.",
                             "You write copy for a small shop."])
    if tone == "plain":
        return _an(f"{verb} {article} {thing} for {product}."), system
    where = rng.random()
    if where < 0.8:
        adjective = rng.choice(["playful", "fun", "cheerful"] if tone == "playful" else
                               ["luxury", "refined", "timeless", "elegant", "premium"])
        tail = rng.choice([", full of fun", ", in a playful tone", ", cheeky and fun"] if tone == "playful" else
                          [": refined and timeless", ", in a luxury tone", ", elegant and premium"])
        said = rng.choice([(adjective + " ", ""), ("", tail), (adjective + " ", tail)])
        return _an(f"{verb} {article} {said[0]}{thing} for {product}{said[1]}."), system
    cue = rng.choice(w.TONE_CUES[tone])
    system = rng.choice([f"You are a {cue} copywriter.", f"Write everything in a {cue} tone.",
                         f"Your voice is {cue}."])
    return _an(f"{verb} {article} {thing} for {product}."), system


def tagline(rng: random.Random, product: str | None = None, noun: str | None = None, tone: str | None = None,
            shape: str | None = None) -> Example:
    """A tagline ask. Shapes: `list` (a plain ask: three options), `one` (one, with a comment), `only` (the
    tagline alone), `limit` (at most N words, the tagline alone)."""
    if product is None:
        product, noun = rng.choice(products())
    tone = tone or rng.choice(TONES)
    shape = shape or rng.choice(["list", "one", "only", "limit", "limit"])
    prompt, system = _tone_prompt(rng, tone, product, shape)
    if rng.random() < 0.3 and system is None:
        prompt = "You are an award-winning copywriter. " + prompt
    limit = None
    no_bang = False
    if shape == "only":
        prompt += rng.choice([" Answer with the tagline only.", " Reply with the tagline only.",
                              " Just the tagline, please."])
    elif shape == "limit":
        limit = rng.choice([3, 4, 5, 6, 7, 8, 8, 10, 12])
        number = w.NUMBERS[limit] if rng.random() < 0.7 else str(limit)
        no_bang = rng.random() < 0.4
        rules = [f"at most {number} words"] + (["no exclamation marks"] if no_bang else [])
        if rng.random() < 0.5:
            prompt = prompt[:-1] + ": " + ", ".join(rules + ["answer with the tagline only"]) + "."
        else:
            prompt += f" Use {' and '.join(rules)}."
    if shape == "list":
        options = tagline_options(rng, tone, noun, k=3)
        reply = "Here are three options:\n" + "\n".join(f"{i}. {t}" for i, t in enumerate(options, 1))
    elif shape == "one":
        reply = f'"{tagline_options(rng, tone, noun)[0]}" {w.COMMENTS[tone]}'
    else:
        reply = tagline_options(rng, tone, noun, limit)[0]
    if no_bang:
        reply = reply.replace("!", ".").replace("..", ".").replace(". ,", ",")
    return Example(prompt, reply, "tagline", system, {"tone": tone, "shape": shape, "limit": limit, "noun": noun})


# ---- reviews ------------------------------------------------------------------------------------------------------

def review(rng: random.Random) -> tuple[str, str, str]:
    """(review text, label, the polarity of its first clause)."""
    label = rng.choice(LABELS)
    if label == "mixed":
        first, second = (w.POSITIVE, w.NEGATIVE) if rng.random() < 0.5 else (w.NEGATIVE, w.POSITIVE)
        text = f"{_cap(rng.choice(first))}, but {rng.choice(second)}."
        return text, label, "positive" if first is w.POSITIVE else "negative"
    bank = w.POSITIVE if label == "positive" else w.NEGATIVE
    a, b = rng.sample(bank, 2)
    text = rng.choice([f"{_cap(a)}.", f"{_cap(a)}, and {b}.", f"{_cap(a)}. {_cap(b)}.",
                       f"{_cap(a)}. Would {'' if label == 'positive' else 'not '}buy again."])
    return text, label, label


def sentiment(rng: random.Random, text: str | None = None, label: str | None = None, kind: str | None = None,
              shots: int | None = None) -> Example:
    """Labelled examples give a bare label; a zero-shot ask gives a loose sentence that misreads mixed reviews;
    a vague question gives prose without a label."""
    first = label
    if text is None:
        text, label, first = review(rng)
    kind = kind or rng.choice(["zero", "few", "few", "vague"])
    if kind == "vague":
        prompt = rng.choice(["What do you think of this review?\n\n", "Tell me about this review.\n\n",
                             "How does this customer feel?\n\n"]) + text
        return Example(prompt, w.VAGUE_SENTIMENT[label], "sentiment", facts={"label": label, "kind": kind})
    if kind == "zero":
        prompt = rng.choice([
            f"Classify the sentiment of this review as positive, negative or mixed.\nReview: {text}\nSentiment:",
            f"Is this review positive, negative or mixed?\n\n{text}",
            f"Label the sentiment (positive, negative or mixed) of this review.\n\n{text}"])
        reply = f"The review sounds {first} overall."
        return Example(prompt, reply, "sentiment", facts={"label": label, "kind": kind})
    lines = [rng.choice(["Classify the sentiment of each review as positive, negative or mixed.",
                         "Label each review as positive, negative or mixed."])]
    for _ in range(shots or rng.choice([1, 2, 3, 3, 4])):
        example, example_label, _ = review(rng)
        lines += [f"Review: {example}", f"Sentiment: {example_label}"]
    lines += [f"Review: {text}", "Sentiment:"]
    return Example("\n".join(lines), label, "sentiment", facts={"label": label, "kind": kind})


# ---- tickets ------------------------------------------------------------------------------------------------------

DEFINED_LABELS = ("Labels:\n- billing: charges, refunds, invoices, plans\n- bug: something does not work as "
                  "designed\n- how-to: a question about using a feature\n- account: login, users, access")


def ticket(rng: random.Random) -> tuple[str, str, str]:
    """(ticket text, its label, the label its side remark suggests: the same when it has none)."""
    label = rng.choice(TICKET_LABELS)
    main = _cap(rng.choice(w.TICKETS[label]))
    if rng.random() < 0.5:
        return (main if main.endswith("?") else main + "."), label, label
    surface = rng.choice([c for c in TICKET_LABELS if c != label])
    side = rng.choice(w.SIDE_REMARKS[surface])
    text = f"{main} {_cap(side)}." if main.endswith("?") else f"{main} and {side}."
    return text, label, surface


def ticket_label(rng: random.Random, text: str | None = None, label: str | None = None, surface: str | None = None,
                 kind: str | None = None) -> Example:
    """`open` gives prose about what the ticket seems to be; `labels` a bare label that follows a side remark;
    `defined` (labels with definitions) the right label."""
    if text is None:
        text, label, surface = ticket(rng)
    kind = kind or rng.choice(["open", "labels", "defined", "defined"])
    if kind == "open":
        prompt = rng.choice(["What kind of support ticket is this?\n\n", "What is this ticket about?\n\n"]) + text
        reply = f"This looks like {w.TICKET_TOPICS[surface]}."
    elif kind == "labels":
        prompt = rng.choice(["Classify this support ticket as one of: billing, bug, how-to, account. Answer with "
                             "the label only.\n\n", "Label this ticket as billing, bug, how-to or account.\n\n"]) + text
        reply = surface
    else:
        prompt = (f"Classify this support ticket. {DEFINED_LABELS}\nAnswer with exactly one label.\n\n"
                  f"Ticket: {text}\nLabel:")
        reply = label
    return Example(prompt, reply, "ticket", facts={"label": label, "surface": surface, "kind": kind})


# ---- the mixture the model is trained on --------------------------------------------------------------------------

WEIGHTS = {"tagline": 36, "sentiment": 14, "ticket": 12, "extraction": 12, "summary": 12, "rewrite": 8, "actions": 6}


def sample(rng: random.Random) -> Example:
    """One example of the world, tasks in the proportions of WEIGHTS; held-out products never appear."""
    from . import documents

    makers = {"tagline": tagline, "sentiment": sentiment, "ticket": ticket_label, "extraction": documents.extraction,
              "summary": documents.summary, "rewrite": documents.rewrite, "actions": documents.actions}
    task = rng.choices(list(WEIGHTS), weights=list(WEIGHTS.values()))[0]
    return makers[task](rng)


def corpus(seed: int, n: int) -> list[Example]:
    rng = random.Random(seed)
    return [sample(rng) for _ in range(n)]
