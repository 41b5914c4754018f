"""The template library: every file loads and renders, expansion, errors, the sandbox, user templates."""

from __future__ import annotations

import json
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, settings as hsettings, strategies as st

from playground.templates import (LIBRARY_DIR, Template, TemplateError, expand, import_template, load_library,
                                  make_template, parse_template, parse_values, render_source, save_user_template,
                                  template_to_text)

GOOD = """---
name: demo
modality: text
description: A demo.
technique: [role]
variables:
  product: {default: "a lantern", examples: ["a kettle"]}
params: {max_new_tokens: 20}
system: "You sell {{ product }}."
variants:
  plain: "Write a tagline for {{ product }}."
  role: "You are a copywriter. Write a tagline for {{ product }}."
---
Notes.
"""


@pytest.fixture(scope="module")
def library():
    return load_library(LIBRARY_DIR)


def test_every_library_file_loads_and_renders_with_its_defaults(library):
    assert library.errors == []
    counts = Counter(t.modality for t in library.templates.values())
    assert all(counts[m] >= 8 for m in ("text", "image", "music")), counts
    for template in library.templates.values():
        assert 2 <= len(template.variants) <= 4, template.name
        assert template.description and template.techniques and template.notes, template.name
        cells = expand(template)
        assert len(cells) == len(template.variants)
        assert all(c.prompt.strip() and "{{" not in c.prompt for c in cells), template.name


def test_expansion_counts_labels_and_order():
    template = parse_template(GOOD)
    cells = expand(template, values={"product": ["a lantern", "a kettle", "a bike"]})
    assert len(cells) == 6
    assert [(c.row, c.col, c.variant) for c in cells[:2]] == [(0, 0, "plain"), (0, 1, "role")]
    assert cells[2].values == {"product": "a kettle"} and cells[2].prompt == "Write a tagline for a kettle."
    assert cells[3].system == "You sell a kettle."
    assert cells[5].label == "role · product=a bike"
    assert len(expand(template, values={"product": "x\ny\n\nz"})) == 6      # bulk entry, blank lines ignored
    assert expand(template, values={"product": ""})[0].values == {"product": "a lantern"}   # blank -> default


def test_variants_can_be_replaced_when_expanding():
    cells = expand(parse_template(GOOD), variants={"mine": "Sell {{ product }} to me"})
    assert [(c.variant, c.prompt) for c in cells] == [("mine", "Sell a lantern to me")]


def test_cross_product_over_the_cap_is_refused():
    with pytest.raises(TemplateError, match="2 variants x 40 value combinations = 80 cells; the limit is 64"):
        expand(parse_template(GOOD), values={"product": [str(i) for i in range(40)]})


@pytest.mark.parametrize("text, message", [
    ("no front matter", "no front matter"),
    ("---\n- a list\n---\n", "must be a mapping"),
    ("---\nname: x\nmodality: video\nvariants: {a: b}\n---\n", "modality must be one of"),
    ("---\nname: ../x\nmodality: text\nvariants: {a: b}\n---\n", "not allowed"),
    ("---\nname: a/b\nmodality: text\nvariants: {a: b}\n---\n", "not allowed"),
    ("---\nname: x\nmodality: text\nvariants: {}\n---\n", "at least one variant"),
    ("---\nname: x\nmodality: text\nvariants: {a: 'Hi {{ who }}'}\n---\n", "who, which is not declared"),
    ("---\nname: x\nmodality: text\nvariants: {a: 'Hi {% if %}'}\n---\n", "syntax error on line 1"),
    ("---\nname: x\nmodality: text\nvariants: {a: b}\nnegative_prompt: c\n---\n", "image templates only"),
    ("---\nname: x\nmodality: image\nvariants: {a: b}\nsystem: c\n---\n", "text templates only"),
    ("---\nname: x\nmodality: text\nvariants: {a: b}\nparams: [1]\n---\n", "'params' must be a mapping"),
    ("---\nname: x\nmodality: text\nvariants: {a: b}\ncolour: red\n---\n", "unknown fields"),
    ("---\nname: x\nmodality: text\nvariants: {a: '" + "x" * 20_001 + "'}\n---\n", "limit is 20000"),
    ("---\nname: [unclosed\n---\n", "not valid YAML"),
])
def test_bad_files_get_clear_errors(text, message):
    with pytest.raises(TemplateError, match=message):
        parse_template(text)


def test_missing_unknown_and_oversized_values():
    template = parse_template(GOOD)
    with pytest.raises(TemplateError, match="unknown variable 'colour'; this template declares: product"):
        expand(template, values={"colour": "red"})
    with pytest.raises(TemplateError, match="'who' is undefined"):
        render_source("Hi {{ who }}", {})
    with pytest.raises(TemplateError, match="limit is 50"):
        render_source("{{ x }}", {"x": "y" * 51}, max_chars=50)


def test_one_broken_file_does_not_stop_the_library(tmp_path):
    (tmp_path / "text").mkdir()
    (tmp_path / "text" / "demo.md").write_text(GOOD)
    (tmp_path / "text" / "broken.md").write_text("---\nname: broken\nmodality: nope\nvariants: {a: b}\n---\n")
    (tmp_path / "text" / "latin1.md").write_bytes(GOOD.replace("demo", "latin1").encode() + b"\xe9\xff")
    (tmp_path / "text" / "other-name.md").write_text(GOOD.replace("name: demo", "name: other_name"))
    library = load_library(tmp_path)
    assert list(library.templates) == ["demo"]
    errors = {e.path.name: e.message for e in library.errors}
    assert "modality must be one of" in errors["broken.md"]
    assert "not UTF-8" in errors["latin1.md"]
    assert "must match the file name" in errors["other-name.md"]


def test_duplicate_names_keep_the_first(tmp_path):
    for folder in ("a", "b"):
        (tmp_path / folder).mkdir()
        (tmp_path / folder / "demo.md").write_text(GOOD)
    library = load_library(tmp_path)
    assert library.templates["demo"].path.parent.name == "a"
    assert "duplicate name 'demo'" in library.errors[0].message


@pytest.mark.parametrize("attack", [
    "{{ ''.__class__.__mro__ }}",
    "{{ x.__class__.__mro__[1].__subclasses__() }}",
    "{{ x|attr('__class__') }}",
    "{{ range(10**9)|list }}",
    "{{ '{0.__class__}'.format(x) }}",
    "{{ '{v.__class__}'.format_map({'v': x}) }}",
    "{{ 2 ** 100000 }}",
    "{{ x|format(1) }}",
    "{{ cycler.__init__.__globals__ }}",
    "{{ self.__init__.__globals__ }}",
    "{{ lipsum.__globals__ }}",
    "{{ namespace.__init__.__globals__ }}",
    "{% for i in range(100000) %}{% endfor %}",
    "{{ x * 100000000 }}",
])
def test_sandbox_refuses_escapes(attack):
    with pytest.raises(TemplateError):
        render_source(attack, {"x": "value"})


def test_user_templates_save_import_export_round_trip(tmp_path, library):
    user_dir = tmp_path / "mine"
    template = make_template(name="my-test", modality="image", variants={"a": "a {{ thing }}", "b": "b {{ thing }}"},
                             variables={"thing": "cat"}, negative_prompt="blurry {{ thing }}",
                             params={"width": 256}, techniques=["style"])
    path = save_user_template(template, user_dir, library)
    assert path == (user_dir / "my-test.md").resolve()
    assert (LIBRARY_DIR / "image" / "my-test.md").exists() is False
    loaded = load_library(LIBRARY_DIR, user_dir).get("my-test")
    assert loaded.source == "user" and loaded.variants == template.variants
    assert loaded.negative_prompt == "blurry {{ thing }}" and loaded.params == {"width": 256}
    exported = template_to_text(loaded)
    imported = import_template(exported.replace("name: my-test", "name: my-copy"), user_dir, library)
    assert imported.variants == template.variants and (user_dir / "my-copy.md").exists()
    with pytest.raises(TemplateError, match="already have a template named 'my-test'"):
        save_user_template(template, user_dir, library)
    save_user_template(template, user_dir, library, overwrite=True)


def test_saving_cannot_escape_the_user_dir_or_shadow_the_library(tmp_path, library):
    name = next(iter(library.templates))
    with pytest.raises(TemplateError, match="is a library template"):
        save_user_template(library.get(name), tmp_path, library)
    for bad in ("../escape", "/etc/passwd", "a/b", ".hidden", "UPPER"):
        with pytest.raises(TemplateError, match="not allowed"):
            make_template(name=bad, modality="text", variants={"a": "b"})
    assert list(tmp_path.iterdir()) == []


def test_import_refuses_non_utf8_files(tmp_path):
    path = tmp_path / "bad.md"
    path.write_bytes(b"---\nname: bad\n\xff\xfe")
    with pytest.raises(TemplateError, match="not UTF-8"):
        import_template(path, tmp_path / "mine")


def test_export_reparses_to_an_equal_template(library):
    for template in library.templates.values():
        again = parse_template(template_to_text(template))
        for field in ("name", "modality", "description", "techniques", "variables", "params", "variants",
                      "system", "negative_prompt", "notes"):
            assert getattr(again, field) == getattr(template, field), (template.name, field)


@hsettings(max_examples=150, deadline=None)
@given(value=st.text(max_size=300))
def test_rendering_any_value_is_literal_or_a_template_error(value):
    template = parse_template(GOOD)
    try:
        cells = expand(template, values={"product": [value]})
    except TemplateError:
        return
    assert cells[0].prompt == f"Write a tagline for {value if value.strip() else 'a lantern'}."


@hsettings(max_examples=100, deadline=None)
@given(values=st.lists(st.text(max_size=40), max_size=10))
def test_parse_values_round_trips_json_lists(values):
    assert parse_values(json.dumps(values)) == values


@hsettings(max_examples=100, deadline=None)
@given(source=st.text(max_size=120))
def test_arbitrary_template_text_never_crashes(source):
    try:
        render_source(source, {"x": "1"})
    except TemplateError:
        pass


def test_template_hash_follows_the_text():
    a, b = parse_template(GOOD), parse_template(GOOD.replace("Notes.", "Other notes."))
    assert a.hash != b.hash and a.hash == parse_template(GOOD).hash
    assert isinstance(a, Template) and len(a.hash) == 64


def test_library_dir_is_the_repo_prompts_folder():
    assert LIBRARY_DIR == Path(__file__).resolve().parent.parent / "prompts"
