"""Hostile template files: YAML alias bombs, deep nesting, odd types; one bad file never stops the library."""

from __future__ import annotations

import time

import pytest

from playground.render import markdown_html
from playground.templates import (TemplateError, load_library, make_template, parse_template, save_user_template,
                                  template_to_text)

GOOD = """---
name: {name}
modality: text
variables:
  product: {{default: "a lantern"}}
variants:
  plain: "Write a tagline for {{{{ product }}}}."
---
Notes.
"""


def alias_bomb(levels: int = 8) -> str:
    """~400 bytes that expand to 10**levels strings in a plain YAML loader."""
    lines = ['a0: &a0 ["lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol", "lol"]']
    for i in range(1, levels + 1):
        lines.append(f"a{i}: &a{i} [" + ", ".join([f"*a{i - 1}"] * 10) + "]")
    anchors = "\n".join("    " + line for line in lines)
    return ("---\nname: bomb\nmodality: text\nvariables:\n  v:\n    default: x\n    examples:\n"
            f"{anchors}\nvariants:\n  a: 'Hi {{{{ v }}}}'\n---\n")


DEEP = "---\nname: deep\nmodality: text\nvariants: {a: b}\nparams: " + "[" * 50_000 + "]" * 50_000 + "\n---\n"

HOSTILE_FILES = {
    "alias": (alias_bomb(), "aliases"),
    "anchor-only": ("---\nname: anchor-only\nmodality: text\ndescription: &d hello\nvariants: {a: b}\n---\n",
                    "anchors"),
    "deep": (DEEP, "nested"),
    "deep-map": ("---\nname: deep-map\nmodality: text\nvariants: {a: b}\nparams: " + "{a: " * 5000 + "1"
                 + "}" * 5000 + "\n---\n", "nested"),
    "binary-tag": ("---\nname: binary-tag\nmodality: text\ndescription: !!binary aGVsbG8=\nvariants: {a: b}\n---\n",
                   "tag"),
    "python-tag": ("---\nname: python-tag\nmodality: text\ndescription: !!python/name:os.system x\n"
                   "variants: {a: b}\n---\n", "tag"),
    "set-tag": ("---\nname: set-tag\nmodality: text\nvariables: {v: {default: !!set {a, b}}}\n"
                "variants: {a: '{{ v }}'}\n---\n", "tag"),
    "list-example": ("---\nname: list-example\nmodality: text\nvariables: {v: {default: x, examples: [[1, 2]]}}\n"
                     "variants: {a: '{{ v }}'}\n---\n", "plain text"),
    "map-description": ("---\nname: map-description\nmodality: text\ndescription: {a: 1}\nvariants: {a: b}\n---\n",
                        "plain text"),
    "bad-checks": ("---\nname: bad-checks\nmodality: text\nvariants: {a: b}\nchecks: [{value: x}]\n---\n",
                   "'type' must be a word"),
}


@pytest.mark.parametrize("name", list(HOSTILE_FILES))
def test_hostile_front_matter_is_refused_quickly(name):
    text, reason = HOSTILE_FILES[name]
    start = time.perf_counter()
    with pytest.raises(TemplateError, match=reason):
        parse_template(text)
    assert time.perf_counter() - start < 2


def test_dates_stay_text():
    template = parse_template("---\nname: d\nmodality: text\nvariables: {day: 2024-01-31}\n"
                              "variants: {a: 'On {{ day }}'}\n---\n")
    assert template.variables["day"].default == "2024-01-31"


@pytest.mark.parametrize("where", ["library", "user"])
def test_the_library_loads_with_a_broken_file_of_each_kind(tmp_path, where):
    library_dir, user_dir = tmp_path / "prompts", tmp_path / "mine"
    library_dir.mkdir()
    user_dir.mkdir()
    (library_dir / "good.md").write_text(GOOD.format(name="good"))
    (user_dir / "mine.md").write_text(GOOD.format(name="mine"))
    bad_dir = library_dir if where == "library" else user_dir
    for name, (text, _) in HOSTILE_FILES.items():
        (bad_dir / f"{name}.md").write_text(text)
    (bad_dir / "latin1.md").write_bytes(b"---\nname: latin1\n\xe9\xff\n---\n")
    (bad_dir / "huge.md").write_text(GOOD.format(name="huge") + "x" * 300_000)
    (bad_dir / "jinja-nest.md").write_text("---\nname: jinja-nest\nmodality: text\nvariants:\n  a: \"{{ 'a'"
                                           + "|trim" * 400 + " }}\"\n---\n")
    start = time.perf_counter()
    library = load_library(library_dir, user_dir)
    assert time.perf_counter() - start < 10
    assert sorted(library.templates) == ["good", "mine"]
    errors = {e.path.name: e.message for e in library.errors}
    assert set(errors) == {f"{n}.md" for n in HOSTILE_FILES} | {"latin1.md", "huge.md", "jinja-nest.md"}
    for name, (_, reason) in HOSTILE_FILES.items():
        assert reason in errors[f"{name}.md"]
    assert all(e.path.parent == bad_dir for e in library.errors)


def test_checks_round_trip_and_are_validated_for_shape_only(tmp_path):
    checks = ({"type": "contains", "value": "lantern"}, {"type": "clip"}, {"type": "max_words", "n": 12,
                                                                          "strict": True})
    template = make_template("c", "text", {"a": "Hi {{ x }}"}, checks=checks)
    assert template.checks == checks
    again = parse_template(template_to_text(template))
    assert again.checks == checks
    path = save_user_template(template, tmp_path)
    assert load_library(tmp_path / "none", tmp_path).templates["c"].checks == checks
    assert path.read_text().count("type:") == 3
    for bad, message in (([{"type": "x", "value": [1]}], "plain value"), ({"type": "x"}, "must be a list"),
                         ([{"type": "Bad Type"}], "'type' must be a word"), ([1], "must be a mapping"),
                         ([{"type": "x"}] * 21, "21 checks; at most 20")):
        with pytest.raises(TemplateError, match=message):
            make_template("c", "text", {"a": "b"}, checks=bad)


def test_notes_show_no_remote_images():
    """Notes (and any Markdown of user origin) load nothing: no image, no raw HTML, no iframe; links http(s) only."""
    notes = ('Look ![chart](https://tracker.example/p.png "t") and ![ref][r] and <img src="http://x.example/a.png">'
             ' <IMG SRC=//x.example/b.png> <iframe src="http://frame.example"></iframe> and'
             ' `![kept](http://code.example)` [run](javascript:alert(1)) [ok](https://a.example)\n\n'
             '```\n<img src="http://fenced.example">\n```\n[r]: http://ref.example/c.png')
    safe = markdown_html(notes)
    assert "<img" not in safe.lower() and "<iframe" not in safe and "javascript:" not in safe.replace(
        "[run](javascript:alert(1))", "")
    assert '<a href="https://tracker.example/p.png"' in safe and ">chart</a>" in safe      # a plain link
    assert "<code>![kept](http://code.example)</code>" in safe
    assert "&lt;img src=&quot;http://fenced.example&quot;&gt;" in safe and "&lt;iframe" in safe
    assert '<a href="https://a.example" rel="nofollow noopener noreferrer" target="_blank">ok</a>' in safe
    assert markdown_html("plain **bold**") == "<p>plain <strong>bold</strong></p>\n"
