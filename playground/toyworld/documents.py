"""The text toy world's tasks on a given document: contact extraction (prose, fields, JSON), summaries (free, one
sentence, three sentences, three bullets, at most N words), message rewrites (friendly, formal, concise) and
meeting notes (prose, bullets, JSON)."""

from __future__ import annotations

import json
import random

from . import words as w
from .text import Example, _cap, word_count

# ---- contacts -----------------------------------------------------------------------------------------------------


def note(rng: random.Random) -> tuple[str, dict]:
    """A note and its fields (None where the note does not say)."""
    person = f"{rng.choice(['', '', 'Dr. '])}{rng.choice(w.FIRST)} {rng.choice(w.LAST)}"
    org, city, time = rng.choice(w.ORGS), rng.choice(w.CITIES), rng.choice(w.TIMES)
    date = f"{rng.randint(1, 28)} {rng.choice(w.MONTHS)}"
    form = rng.randrange(4)
    if form == 0:
        text = f"Call {person} at {org} before {date} to confirm the {time} appointment in {city}."
        fields = (org, date, time, city)
    elif form == 1:
        start = rng.choice([c for c in w.CITIES if c != city])
        text = f"{person} moves the workshop from {start} to {city} on {date}."
        fields = (None, date, None, city)
    elif form == 2:
        text = f"Meet {person} from {org} at {time} on {date}."
        fields = (org, date, time, None)
    else:
        text = f"{person} will visit {org} in {city} at {time}."
        fields = (org, None, time, city)
    return text, dict(zip(("person", "organization", "date", "time", "place"), (person, *fields)))


def extraction(rng: random.Random, text: str | None = None, fields: dict | None = None,
               kind: str | None = None) -> Example:
    if text is None:
        text, fields = note(rng)
    kind = kind or rng.choice(["plain", "fields", "json", "json"])
    if kind == "plain":
        prompt = rng.choice(["Extract the important details from this note.\n\n", "What are the key details in "
                             "this note?\n\n"]) + text
        known = [f"{k} {v}" for k, v in fields.items() if v and k != "person"]
        reply = f"The note is about {fields['person']}. It mentions " + ", ".join(known) + "."
    elif kind == "fields":
        prompt = ("From the note, fill in these fields, one per line, writing 'none' when missing:\nPerson:\n"
                  f"Organization:\nDate:\nTime:\nPlace:\n\nNote: {text}")
        reply = "\n".join(f"{k.capitalize()}: {v or 'none'}" for k, v in fields.items())
    else:
        prompt = rng.choice([
            "Extract from the note a JSON object with the keys person, organization, date, time, place (null when "
            f"missing). Output JSON only.\n\nNote: {text}",
            f"Return the person, organization, date, time and place in this note as JSON.\n\n{text}"])
        reply = json.dumps(fields)
    return Example(prompt, reply, "extraction", facts={"fields": fields, "kind": kind})


# ---- summaries ----------------------------------------------------------------------------------------------------


def passage(rng: random.Random) -> tuple[str, dict]:
    subject, activity = rng.choice(w.SUBJECTS), rng.choice(w.ACTIVITIES)
    pros, cons = rng.sample(w.PROS, 3), rng.sample(w.CONS, 2)
    text = (f"{subject} are popular with people who {activity}. They {pros[0]}, {pros[1]} and {pros[2]}. "
            f"Their weak points are {cons[0]}, and {cons[1]}.")
    return text, {"subject": subject, "activity": activity, "pros": pros, "cons": cons}


def _short_con(con: str) -> str:
    return con.split(",")[0]


def summary(rng: random.Random, text: str | None = None, facts: dict | None = None, kind: str | None = None,
            limit: int | None = None) -> Example:
    if text is None:
        text, facts = passage(rng)
    s, pros, cons = facts["subject"], facts["pros"], [_short_con(c) for c in facts["cons"]]
    kind = kind or rng.choice(["free", "one", "three", "bullets", "limit", "limit"])
    ask = {"free": "Summarize this text.", "one": "Summarize this text in exactly one sentence.",
           "three": "Summarize this text in three sentences.",
           "bullets": "Summarize this text in exactly three bullet points."}
    if kind == "free":
        reply = (f"{s} are popular with people who {facts['activity']}. They {pros[0]}, {pros[1]} and {pros[2]}, "
                 f"which makes them good value. On the other hand, their weak points are {cons[0]} and {cons[1]}.")
    elif kind == "one":
        reply = f"{s} {pros[0]} and {pros[1]}, but {cons[0]} is a weak point."
    elif kind == "three":
        reply = f"{s} suit people who {facts['activity']}. They {pros[0]}. Their weak point is {cons[0]}."
    elif kind == "bullets":
        reply = (f"- Popular with people who {facts['activity']}\n- They {pros[0]} and {pros[1]}\n"
                 f"- Weak points: {cons[0]} and {cons[1]}")
    else:
        limit = limit or rng.choice([8, 10, 12, 15, 20, 25])
        candidates = [f"{s} {pros[0]} and {pros[1]}, but {cons[0]} is a weak point.",
                      f"{s} {pros[0]}, but {cons[0]} is a weak point.", f"{s} {pros[0]}."]
        reply = next(c for c in candidates if word_count(c) <= limit)
        number = w.NUMBERS.get(limit) if rng.random() < 0.5 else None
        ask["limit"] = f"Summarize this text in at most {number or limit} words."
    return Example(f"{ask[kind]}\n\n{text}", reply, "summary", facts={**facts, "kind": kind, "limit": limit})


# ---- rewrites -----------------------------------------------------------------------------------------------------


def message(rng: random.Random) -> tuple[str, dict]:
    if rng.random() < 0.5:
        doc, due, stake = rng.choice(w.DOCS), rng.choice(w.DUE), rng.choice(w.STAKES)
        return (f"The {doc} is late again. I need it by {due} or we miss the {stake}.",
                {"form": "late", "doc": doc, "due": due, "stake": stake})
    thing, problem, fix, result = rng.choice(w.NOTICES)
    return (f"Your {thing} {problem}. {_cap(fix)} or {result}.",
            {"form": "notice", "thing": thing, "problem": problem, "fix": fix, "result": result})


REWRITE_ASKS = {"friendly": ["Rewrite this message in a warm, friendly tone. Keep every fact.",
                             "Make this message sound friendly."],
                "formal": ["Rewrite this message in a formal, polite business tone. Keep every fact.",
                           "Make this message formal and polite."],
                "concise": ["Rewrite this message as briefly as possible without losing any fact.",
                            "Shorten this message, keeping every fact."]}


def rewrite(rng: random.Random, text: str | None = None, facts: dict | None = None,
            tone: str | None = None) -> Example:
    if text is None:
        text, facts = message(rng)
    tone = tone or rng.choice(list(REWRITE_ASKS))
    f = facts
    if f["form"] == "late":
        reply = {"friendly": f"Hi! Just a friendly reminder that the {f['doc']} is running late. Could you send it "
                             f"by {f['due']}? Otherwise we miss the {f['stake']}. Thanks so much!",
                 "formal": f"Dear colleague, the {f['doc']} has not yet been received. Kindly send it by "
                           f"{f['due']}, as otherwise we miss the {f['stake']}. Kind regards.",
                 "concise": f"Send the {f['doc']} by {f['due']}, or we miss the {f['stake']}."}[tone]
    else:
        reply = {"friendly": f"Hi there! Your {f['thing']} {f['problem']}. Could you {f['fix']}? Otherwise "
                             f"{f['result']}. Thanks so much!",
                 "formal": f"Dear customer, we regret to inform you that your {f['thing']} {f['problem']}. Please "
                           f"{f['fix']}, as otherwise {f['result']}. Kind regards.",
                 "concise": f"{_cap(f['thing'])} {f['problem']}: {f['fix']} or {f['result']}."}[tone]
    return Example(f"{rng.choice(REWRITE_ASKS[tone])}\n\n{text}", reply, "rewrite", facts={**facts, "tone": tone})


# ---- meeting notes ------------------------------------------------------------------------------------------------

_TASKS = ["send the budget", "write the rollback plan", "book the venue", "update the website", "call the supplier",
          "test the new release"]
_NEEDS = ["legal sign-off on the contract", "final pricing", "the new logo", "access to the servers"]
_DAYS = ["Friday", "Monday", "Tuesday night", "the end of the month", "May 12", "June 3"]


def meeting(rng: random.Random) -> tuple[str, list[dict]]:
    owners = rng.sample(w.FIRST, 2)
    task, day, need = rng.choice(_TASKS), rng.choice(_DAYS), rng.choice(_NEEDS)
    moved = rng.choice([d for d in _DAYS if d != day])
    sentences = [f"{owners[0]} will {task} by {day}.", f"We agreed to move the launch to {moved}.",
                 f"{owners[1]} still needs {need}."]
    items = [{"owner": owners[0], "task": task, "deadline": day},
             {"owner": "team", "task": "move the launch", "deadline": moved},
             {"owner": owners[1], "task": f"get {need}", "deadline": None}]
    order = rng.sample(range(3), 3)
    return " ".join(sentences[i] for i in order), [items[i] for i in order]


def actions(rng: random.Random, text: str | None = None, items: list | None = None,
            kind: str | None = None) -> Example:
    if text is None:
        text, items = meeting(rng)
    kind = kind or rng.choice(["free", "bullets", "json"])
    if kind == "free":
        prompt = f"Summarize these meeting notes.\n\n{text}"
        reply = "The meeting set three things in motion. " + text
    elif kind == "bullets":
        prompt = ("Summarize these meeting notes as a bullet list of action items, one line each, in the form "
                  f"'- Owner: task (deadline)'.\n\n{text}")
        reply = "\n".join(f"- {_cap(i['owner'])}: {i['task']} ({i['deadline'] or 'no deadline'})" for i in items)
    else:
        prompt = ("Return the action items in these meeting notes as JSON: a list of objects with the keys \"owner\", "
                  f"\"task\" and \"deadline\" (null if none). Output JSON only.\n\n{text}")
        reply = json.dumps(items)
    return Example(prompt, reply, "actions", facts={"items": items, "kind": kind})
