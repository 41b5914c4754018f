"""Saved templates belong to the visitor who saved them; the built-in library is shared and read-only. On a public
deployment another visitor can neither list, read, render, export, run, overwrite nor learn the names of them."""

from __future__ import annotations

import pytest

from public_mode import public_app, visitor  # noqa: F401 (fixtures)

pytestmark = pytest.mark.slow

SECRET = """---
name: {name}
modality: text
variants:
  plain: "{prompt}"
---
"""


def test_a_visitors_templates_are_their_own(visitor):
    from gradio_client.exceptions import AppError

    alice, bob = visitor(), visitor()
    alice.predict(SECRET.format(name="alice-plan", prompt="Alice's launch plan"), False, api_name="/save_template")
    assert "alice-plan" in [t["name"] for t in alice.predict("", api_name="/list_templates")]
    assert alice.predict("alice-plan", None, api_name="/render_template")[0]["prompt"] == "Alice's launch plan"

    listed = bob.predict("", api_name="/list_templates")
    assert "alice-plan" not in [t["name"] for t in listed] and "Alice's" not in str(listed)
    assert "product-tagline" in [t["name"] for t in listed]                      # the library is shared
    for call in (lambda: bob.predict("alice-plan", None, api_name="/render_template"),
                 lambda: bob.predict("alice-pla", None, api_name="/render_template"),
                 lambda: bob.predict("alice-plan", api_name="/export_template"),
                 lambda: bob.predict("alice-plan", None, None, ["tiny-text"], [1], None, False, None,
                                     api_name="/compare")):
        with pytest.raises(AppError) as caught:
            call()
        message = str(caught.value)
        assert "no template named" in message and "alice" not in message.partition("did you mean")[2]

    # Bob's "overwrite" writes a template of his own; Alice's is untouched.
    bob.predict(SECRET.format(name="alice-plan", prompt="Bob was here"), True, api_name="/save_template")
    assert bob.predict("alice-plan", None, api_name="/render_template")[0]["prompt"] == "Bob was here"
    assert alice.predict("alice-plan", None, api_name="/render_template")[0]["prompt"] == "Alice's launch plan"

    # The shared library cannot be overwritten by a visitor.
    with pytest.raises(AppError, match="shared template|library template"):
        bob.predict(SECRET.format(name="product-tagline", prompt="defaced"), True, api_name="/save_template")
    assert "defaced" not in str(alice.predict("product-tagline", None, api_name="/render_template"))


def test_a_visitor_may_keep_a_bounded_number(tmp_path, monkeypatch):
    from playground.templates import TemplateError, owned
    from playground.templates.owned import Libraries

    monkeypatch.setattr(owned, "MAX_OWN_TEMPLATES", 2)
    libraries = Libraries(tmp_path / "templates", tmp_path / "visitors")
    for name in ("one", "two"):
        libraries.import_template(SECRET.format(name=name, prompt="x"), "anon:a")
    with pytest.raises(TemplateError, match="the most one visitor may keep"):
        libraries.import_template(SECRET.format(name="three", prompt="x"), "anon:a")
    libraries.import_template(SECRET.format(name="two", prompt="y"), "anon:a", overwrite=True)   # replacing is fine
    libraries.import_template(SECRET.format(name="three", prompt="x"), "anon:b")                 # another visitor
    assert sorted(n for n, t in libraries.for_owner("anon:a").templates.items() if t.source == "user") == \
        ["one", "two"]
    assert "one" not in libraries.for_owner("anon:b").templates
