"""The template library: every file loads and renders, expansion, errors, the sandbox, user templates."""

from __future__ import annotations

import json
import time
from collections import Counter
from pathlib import Path

import pytest
from hypothesis import given, settings as hsettings, strategies as st

from playground.templates import (LIBRARY_DIR, MAX_VARIANTS, Template, TemplateError, Variable, expand,
                                  import_template, load_library, make_template, parse_template, parse_values,
                                  render_source, save_user_template, template_to_text, with_variant)

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
    ("---\nname: x\nmodality: text\nvariants: {" + ", ".join(f"v{i}: b" for i in range(MAX_VARIANTS + 1))
     + "}\n---\n", "9 variants; at most 8"),
    ("---\nname: x\nmodality: text\nvariants: {Bad Name: b}\n---\n", "variant name 'Bad Name' is not allowed"),
    ("---\nname: x\nmodality: text\nvariants: {a: ''}\n---\n", "must be non-empty text"),
    ("---\nname: x\nmodality: text\nvariants: [a, b]\n---\n", "'variants' must be a mapping"),
    ("---\nname: x\nvariants: {a: b}\n---\n", "modality must be one of text, image, music, got None"),
    ("---\nname: x\nmodality: text\nvariables: [a]\nvariants: {a: b}\n---\n", "'variables' must be a mapping"),
    ("---\nname: x\nmodality: text\nvariables: {range: '1'}\nvariants: {a: b}\n---\n", "reserved"),
    ("---\nname: x\nmodality: text\nparams: {top_k: [1]}\nvariants: {a: b}\n---\n", "params: 'top_k'"),
    ("---\nname: x\nmodality: text\nsystem: 'Hi {{ who }}'\nvariants: {a: b}\n---\n", "system uses who"),
    ("---\nname: x\nmodality: text\nvariants: {a: b}\n---\n".replace("name: x", "name: .hidden"), "not allowed"),
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


# ---- more: the library's params, shadowing, rendering one variant, budgets, user templates -----------------------

PARAM_LIMITS = {
    "text": {"max_new_tokens": (1, 512), "temperature": (0, 2), "top_p": (0, 1), "top_k": (0, 1000),
             "repetition_penalty": (0.5, 2), "do_sample": (False, True)},
    "image": {"width": (256, 1024), "height": (256, 1024), "num_inference_steps": (1, 50),
              "guidance_scale": (0, 30)},
    "music": {"duration_s": (0.5, 15), "guidance_scale": (1, 15), "temperature": (0, 2), "top_k": (0, 2048)},
}


def test_library_params_are_known_and_within_limits(library):
    for template in library.templates.values():
        limits = PARAM_LIMITS[template.modality]
        for key, value in template.params.items():
            assert key in limits, (template.name, key)
            low, high = limits[key]
            assert low <= value <= high, (template.name, key, value)
            if key in ("width", "height"):
                assert value % 64 == 0, (template.name, key, value)
        assert template.path.parent.name == template.modality and template.path.stem == template.name
        assert template.system is None or template.modality == "text"
        assert template.negative_prompt is None or template.modality == "image"


def test_expansion_orders_rows_outer_and_variants_inner():
    template = make_template("grid", "text", {"a": "{{ x }}-{{ y }}", "b": "{{ y }}+{{ x }}"},
                             variables={"x": "1", "y": "p"})
    cells = expand(template, values={"x": '["1", "2"]', "y": "p\n\nq\n"})
    assert [c.prompt for c in cells] == ["1-p", "p+1", "1-q", "q+1", "2-p", "p+2", "2-q", "q+2"]
    assert [(c.row, c.col) for c in cells] == [(r, c) for r in range(4) for c in range(2)]
    assert cells[3].label == "b · x=1 · y=q" and cells[3].values == {"x": "1", "y": "q"}


def test_template_render_uses_defaults_and_refuses_unknown_names():
    template = parse_template(GOOD)
    assert template.render("role") == "You are a copywriter. Write a tagline for a lantern."
    assert template.render("plain", {"product": "a kettle"}) == "Write a tagline for a kettle."
    with pytest.raises(TemplateError, match="unknown variable 'prodcut'; this template declares: product"):
        template.render("plain", {"prodcut": "a kettle"})
    with pytest.raises(TemplateError, match="no variant 'nope'; variants: plain, role"):
        template.render("nope", {})


def test_load_errors_name_the_file_and_the_variant(tmp_path):
    (tmp_path / "bad.md").write_text("---\nname: bad\nmodality: text\nvariants:\n  ok: fine\n"
                                     "  broken: \"line one\\n{{ oops(\"\n---\n")
    library = load_library(tmp_path)
    [error] = library.errors
    assert error.path == tmp_path / "bad.md"
    assert "variant 'broken'" in error.message and "syntax error on line 2" in error.message
    with pytest.raises(TemplateError) as caught:
        parse_template((tmp_path / "bad.md").read_text(), path=tmp_path / "bad.md")
    assert str(caught.value).startswith(str(tmp_path / "bad.md")) and caught.value.path == tmp_path / "bad.md"


def test_a_user_template_cannot_shadow_a_library_one(tmp_path):
    (tmp_path / "lib").mkdir()
    (tmp_path / "mine").mkdir()
    (tmp_path / "lib" / "demo.md").write_text(GOOD)
    (tmp_path / "mine" / "demo.md").write_text(GOOD.replace("Notes.", "Mine."))
    library = load_library(tmp_path / "lib", tmp_path / "mine")
    assert library.templates["demo"].source == "library" and library.templates["demo"].notes == "Notes."
    assert "may not shadow it" in library.errors[0].message and library.errors[0].path.parent.name == "mine"


def test_library_get_suggests_close_names(library):
    with pytest.raises(TemplateError, match="did you mean product-tagline"):
        library.get("product-taglin")
    assert {t.modality for t in library.by_modality("music")} == {"music"}


@pytest.mark.parametrize("attack", [
    "{% for a in x %}{% for b in x %}{% for c in x %}{% endfor %}{% endfor %}{% endfor %}",
    "{% for i in range(10000) %}{% for j in range(10000) %}{% endfor %}{% endfor %}",
    "{% macro f(n) %}{% if n %}{{ f(n - 1) }}{{ f(n - 1) }}{% endif %}{% endmacro %}{{ f(40) }}",
    "{% macro f(s) %}{{ f(s ~ s) }}{% endmacro %}{{ f(x) }}",
    "{% set a = 'x' * 100000 %}{% set b = a ~ a %}{% set c = b ~ b %}{% set d = c ~ c %}{% set e = d ~ d %}"
    "{% set f = e ~ e %}{{ f|length }}",
    "{% set a = 'x' * 100000 %}{% set b = a + a %}{% set c = b + b %}{% set d = c + c %}{% set e = d + d %}"
    "{% set f = e + e %}{{ f|length }}",
    "{% set a = 'x' * 100000 %}{{ ([a] * 100000)|join|length }}",
    "{% set a = 'x' * 100000 %}{{ ''.join([a] * 100000)|length }}",
    "{% set a = 'x' * 100000 %}{{ ([a] * 100000)|string|length }}",
    "{% set l = [x, x, x, x, x, x, x, x, x, x] %}{% set l = [l, l, l, l, l, l, l, l, l, l] %}"
    "{% set l = [l, l, l, l, l, l, l, l, l, l] %}{% set l = [l, l, l, l, l, l, l, l, l, l] %}{{ l|tojson|length }}",
    "{% set s %}{% for i in range(10000) %}" + "y" * 5000 + "{% endfor %}{% endset %}{{ s|length }}",
    "{{ 'a'|center(1000000000) }}",
    "{{ ('a\n' * 50000)|indent(99999)|length }}",
    "{{ ('a' * 100000)|replace('', 'b' * 100000)|length }}",
    "{{ ('a' * 100000).replace('a', 'b' * 100000)|length }}",
    "{{ ('\t' * 100000).expandtabs(99999)|length }}",
    "{{ '%099999999d' % 1 }}",
    "{{ '%*d' % (99999999, 1) }}",
    "{{ '%(a)s' % {'a': x} ~ '%.999999999f' % 1.0 }}",
    "{{ [1]|batch(1000000000, 'x')|list }}",
    "{{ x|slice(1000000000)|list }}",
    "{% set n = 9 ** 64 %}{% set n = n * n %}{% set n = n * n %}{% set n = n * n %}{% set n = n * n %}"
    "{% set n = n * n %}{% set n = n * n %}{{ n }}",
    "{{ (9 ** 64) ** 64 }}",
    "{{ namespace(a=1) }}",
    "{{ joiner() }}{{ dict(a=1) }}",
    "{{ x|random }}",
    "{% for i in range(3) recursive %}{{ loop(range(3)) }}{% endfor %}",
])
def test_render_budget_stops_runaway_templates_quickly(attack):
    start = time.perf_counter()
    with pytest.raises(TemplateError):
        render_source(attack, {"x": "value" * 1600}, max_chars=10**9)
    assert time.perf_counter() - start < 5


def test_ordinary_jinja_still_works():
    source = ("{% for w in x.split(',') %}{{ loop.index }}/{{ loop.length }}. {{ w|trim|title }}"
              "{% if not loop.last %}; {% endif %}{% endfor %} | {{ '%s and %s' % (a, b) }} {{ a ~ '!' }} "
              "{{ [a, b]|join(', ') }} {% macro m(t) %}<{{ t }}>{% endmacro %}{{ m(a) }} {{ x|wordcount }} "
              "{{ 'l1\nl2'|indent(2) }} {{ range(3)|list }} {{ 2 ** 10 }} {{ x|replace('a', '@')|upper }}")
    assert render_source(source, {"x": "hello world, big apple", "a": "A", "b": "B"}) == (
        "1/2. Hello World; 2/2. Big Apple | A and B A! A, B <A> 4 l1\n  l2 [0, 1, 2] 1024 HELLO WORLD, BIG @PPLE")


def test_saving_is_refused_without_a_library_object_and_inside_the_library(tmp_path, library):
    name = next(iter(library.templates))
    with pytest.raises(TemplateError, match="is a library template"):
        save_user_template(library.get(name), tmp_path)
    mine = make_template(name="fresh-one", modality="text", variants={"a": "b"})
    with pytest.raises(TemplateError, match="inside the library folder"):
        save_user_template(mine, LIBRARY_DIR / "text")
    assert not (LIBRARY_DIR / "text" / "fresh-one.md").exists()
    escaped = Template(name="../escape", modality="text", description="", techniques=(), variables={}, params={},
                       variants={"a": "b"})
    with pytest.raises(TemplateError, match="not allowed"):
        save_user_template(escaped, tmp_path / "mine")
    assert not (tmp_path / "escape.md").exists() and not (tmp_path / "mine").exists()


def test_a_new_variant_on_a_copy_of_a_library_template(tmp_path, library):
    base = library.get("product-tagline")
    copy = with_variant(base, "few-shot", "Examples: 'Light that lasts.'\nNow one for {{ product }} in {{ tone }}.",
                        name="my-tagline")
    assert list(copy.variants) == [*base.variants, "few-shot"] and copy.source == "adhoc"
    assert copy.variables["product"] == base.variables["product"] and copy.variables["tone"] == Variable("tone", "")
    path = save_user_template(copy, tmp_path, library)
    again = load_library(LIBRARY_DIR, tmp_path).get("my-tagline")
    assert again.path == path and again.variants == copy.variants and again.notes == base.notes
    assert base.variants != again.variants                                       # the library one is untouched
    with pytest.raises(TemplateError, match="is a library template"):
        save_user_template(with_variant(base, "extra", "x {{ product }}"), tmp_path, library)


def test_import_from_a_path_names_the_file_in_errors(tmp_path):
    good = tmp_path / "demo.md"
    good.write_text(GOOD)
    imported = import_template(good, tmp_path / "mine")
    assert imported.path == (tmp_path / "mine" / "demo.md").resolve() and imported.source == "user"
    assert parse_template(imported.text).variants == parse_template(GOOD).variants
    bad = tmp_path / "bad.md"
    bad.write_text("---\nname: bad\nmodality: radio\nvariants: {a: b}\n---\n")
    with pytest.raises(TemplateError) as caught:
        import_template(bad, tmp_path / "mine")
    assert caught.value.path == bad and str(bad) in str(caught.value)


def test_parse_values_bulk_entry():
    assert parse_values("a\n\n  b  \n\n") == ["a", "b"]
    assert parse_values('["x", "", "y z"]') == ["x", "", "y z"]
    assert parse_values("[not json") == ["[not json"]
    assert parse_values(["keep", " as is "]) == ["keep", " as is "]
    assert parse_values("") == []


@hsettings(max_examples=100, deadline=None)
@given(inner=st.text(max_size=60))
def test_values_that_look_like_jinja_are_inserted_literally(inner):
    value = "{{ " + inner + " }}{% if x %}"
    assert render_source("<{{ product }}>", {"product": value}) == f"<{value}>"
    assert parse_template(GOOD).render("plain", {"product": value}) == f"Write a tagline for {value}."


def test_a_template_edited_in_the_form_keeps_its_checks_notes_and_variable_help(library):
    from playground.templates import with_changes
    from playground.ui.form import edited_template

    base = library.get("product-tagline")
    assert base.checks and base.notes, "the test needs a template with checks and notes"
    variants = {**base.variants, "shout": "{{ product | upper }}!"}
    edited = edited_template(base, "text", variants, list(base.variables), {"system": base.system})
    assert edited.variants == variants and edited.text != base.text
    assert (edited.checks, edited.notes, edited.variables) == (base.checks, base.notes, base.variables)
    renamed = with_changes(edited, name="my-tagline")
    assert renamed.name == "my-tagline" and renamed.checks == base.checks
    assert edited_template(base, "text", dict(base.variants), list(base.variables), {"system": base.system}) is base
