"""The Improve tab in a real browser (Debian chromium through Playwright), for a text, an image and a music
template: fill the form, see the projected calls, start, watch the search to its end with the chart of score by
round and the held-out verdict, and save the winner. The proposer is a scripted OpenAI-compatible server at the
edge; generation and checks are real (tiny models). Screenshots land in test-output/."""

from __future__ import annotations

from types import SimpleNamespace

import pytest

from conftest import OUTPUT
from tests.test_improve import lab_services, products_csv, proposals, scripted  # noqa: F401
from tests.test_improve_app import served

pytestmark = [pytest.mark.slow, pytest.mark.browser]

CASES = {
    "text": {"template": "product-tagline", "variable": "product", "checks": "tokens:which=prompt,name=prompt-tokens",
             "params": "max_new_tokens=3", "values": ""},
    "image": {"template": "color-palette", "variable": "scene", "checks": "hue=red",
              "params": "num_inference_steps=2\nwidth=64\nheight=64", "values": "scene=a barn\nscene=a lake"},
    "music": {"template": "mood-words", "variable": "style", "checks": "clap", "params": "duration_s=0.5",
              "values": "style=piano\nstyle=drums"},
}


def choose(page, element: str, option: str) -> None:
    page.locator(f"#{element} input").click()
    page.get_by_role("option", name=option, exact=True).click()


def fill(page, element: str, value: str) -> None:
    page.locator(f"#{element} input, #{element} textarea").first.fill(value)


@pytest.mark.parametrize("modality", list(CASES))
def test_improve_a_template_from_the_browser(scripted, tmp_path, settings, monkeypatch, browser, modality):
    case = CASES[modality]
    services = lab_services(tmp_path, settings, scripted, monkeypatch)
    name = case["variable"]
    scripted.reply = proposals(SimpleNamespace(seed=0), {
        (1, 1): f"<PROMPT>{{{{ {name} }}}}, red</PROMPT>",
        (1, 2): f"<PROMPT>Please make this, with great care and attention to every detail: {{{{ {name} }}}}."
                "</PROMPT>"})
    demo = served(services)
    context = browser.new_context(viewport={"width": 1440, "height": 1000})
    try:
        page = context.new_page()
        page.set_default_timeout(120_000)
        page.goto(demo.local_url)
        page.get_by_role("tab", name="Experiments").click()
        page.get_by_role("tab", name="Improve").click()
        choose(page, "improve-template", case["template"])
        page.wait_for_function("document.querySelector('#improve-variant input').value !== ''")
        if modality == "text":
            page.locator("#improve-upload input[type=file]").set_input_files(str(products_csv(tmp_path, split=True)))
            page.wait_for_function("document.querySelector('#improve-dataset input').value.includes('products')")
            fill(page, "improve-rows", "3")
            fill(page, "improve-test-rows", "6")
        else:
            fill(page, "improve-values", case["values"])
        fill(page, "improve-proposer", "lab:proposer")
        fill(page, "improve-models", f"tiny-{modality}")
        fill(page, "improve-checks", case["checks"])
        fill(page, "improve-params", case["params"])
        fill(page, "improve-rounds", "1")
        fill(page, "improve-candidates", "2")
        page.click("#improve-project")
        page.locator("#improve-projection", has_text="projected calls (at most)").wait_for()
        assert scripted.seen == []                                    # nothing spent before the person agrees
        start = page.locator("#improve-start")
        assert start.inner_text().startswith("Start: spend up to")
        start.click()
        page.locator("#improve-progress", has_text="done, round").wait_for(timeout=600_000)
        page.locator("#improve-chart svg .pp-dot").first.wait_for()
        assert page.locator("#improve-chart svg .pp-dot").count() == 3        # the original and two candidates
        assert "r1-c1" in page.locator("#improve-candidates-table").inner_text()
        result = page.locator("#improve-result").inner_text()
        assert "Held-out test" in result or "No held-out test" in result
        OUTPUT.mkdir(parents=True, exist_ok=True)
        page.screenshot(path=str(OUTPUT / f"improve-{modality}.png"), full_page=True)
        (search,) = services.jobs.list("improve")
        if search.progress["best"] != search.progress["original"]:
            fill(page, "improve-save-name", f"{case['template']}-better")
            page.click("#improve-save")
            page.locator("#improve-saved", has_text="Saved").wait_for()
            assert f"{case['template']}-better" in services.library.templates
        if modality == "text":
            assert "improved beats original on prompt-tokens" in result
    finally:
        context.close()
        demo.close()
        services.stop_jobs()
