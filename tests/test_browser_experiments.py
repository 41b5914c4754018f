"""The Experiments tab in a real browser (Debian chromium through Playwright), on the tiny text model.

An experiment started on one page (1440x900) runs on after that page closes; a new page at phone width (390x844)
finds it in Results, follows it to the end, filters its table, opens a cell's record, shows the paired statistics,
and compares it with a second experiment on the same dataset. Screenshots land in test-output/.
"""

from __future__ import annotations

import pytest

from conftest import OUTPUT
from test_browser import open_tab

pytestmark = [pytest.mark.slow, pytest.mark.browser]

NAMES = ["lantern", "kettle", "bicycle", "tent", "blender", "lamp"]
ROWS = "product,expected,kind\n" + "\n".join(f"a {name} for the browser,{name},{'big' if i % 2 else 'small'}"
                                           for i, name in enumerate(NAMES))


def new_page(browser, url, width, height):
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    page.set_default_timeout(60_000)
    page.goto(url)
    page.wait_for_selector("#text-run")
    open_tab(page, "Experiments")
    page.wait_for_selector("#exp-template")
    return context, page


def pick(page, box: str, text: str) -> None:
    """Choose an option of a Gradio dropdown by its text."""
    page.locator(f"{box} input").click()
    page.locator("ul[role=listbox] li").filter(has_text=text).first.click()


def untick(page, variant: str) -> None:
    page.locator("#exp-variants label").filter(has_text=variant).first.click()


def start(page, label: str) -> int:
    """Estimate, then Run; the id of the experiment the page opened."""
    page.locator("#exp-checks textarea").fill("contains")
    page.locator("#exp-params textarea").fill("max_new_tokens = 2")
    untick(page, "role-constrained")
    if label == "candidate":
        untick(page, "plain")
    page.click("#exp-estimate")
    page.wait_for_selector("#exp-plan .pp-estimate")
    page.click("#exp-run")
    status = page.locator("#exp-status .pp-exp-status")
    status.wait_for()
    return int(status.get_attribute("data-experiment"))


def test_an_experiment_outlives_its_page_and_reads_at_phone_width(browser, served_app):
    OUTPUT.mkdir(parents=True, exist_ok=True)
    first_context, first = new_page(browser, served_app.url, 1440, 900)
    open_tab(first, "New")
    first.get_by_label("Paste rows").check()
    first.locator("#exp-pasted textarea").fill(ROWS)
    first.locator("#exp-dataset-name input").fill("browser-products")
    first.click("#exp-paste-add")
    first.wait_for_selector("#exp-preview :text('a tent for the browser')")
    assert first.locator("#exp-map-0 input").input_value() == "product"
    baseline = start(first, "baseline")
    first.screenshot(path=str(OUTPUT / "experiments-started.png"), full_page=True)
    first_context.close()                          # the job is the server's: closing its page does not stop it

    context, page = new_page(browser, served_app.url, 390, 844)
    open_tab(page, "Results")
    page.locator(f"#exp-list [data-experiment='{baseline}']").click()
    page.wait_for_selector(f"#exp-status [data-experiment='{baseline}'][data-status='done']", timeout=180_000)
    assert "12/12 cells" in page.locator("#exp-status").inner_text()
    table = page.locator("#exp-table")
    page.wait_for_function("document.querySelectorAll('#exp-table tr[data-row]').length == 6")
    assert page.evaluate("document.documentElement.scrollWidth") <= 390     # cards, not a table off the screen
    page.locator("#exp-evidence .pp-summary").wait_for()
    assert page.evaluate("(e => e.scrollWidth <= e.clientWidth + 1)(document.querySelector('#exp-evidence'))"), \
        "the paired statistics scroll sideways on a phone"                  # each row a card instead

    pick(page, "#exp-column", "kind")
    page.locator("#exp-value input").fill("big")
    page.click("#exp-apply")
    page.wait_for_function("document.querySelectorAll('#exp-table tr[data-row]').length == 3")
    assert "a kettle for the browser" in table.inner_text() and "a lantern" not in table.inner_text()
    table.locator(".pp-open-record").first.click()
    record = page.locator("#exp-record .pp-record")
    record.wait_for()
    assert "tiny-text" in record.inner_text() and "max_new_tokens" in record.inner_text()
    page.screenshot(path=str(OUTPUT / "experiments-results-390.png"), full_page=True)

    open_tab(page, "New")
    page.get_by_label("Added before").check()
    pick(page, "#exp-previous", "browser-products")
    page.wait_for_selector("#exp-preview :text('a tent for the browser')")
    candidate = start(page, "candidate")
    page.wait_for_selector(f"#exp-status [data-experiment='{candidate}'][data-status='done']", timeout=180_000)

    open_tab(page, "Compare two")
    pick(page, "#exp-baseline", f"#{baseline} ")
    pick(page, "#exp-candidate", f"#{candidate} ")
    page.wait_for_function("document.querySelector('#exp-candidate-variant input')?.value === 'role'")
    pick(page, "#exp-baseline-variant", "plain")
    page.click("#exp-compare")
    result = page.locator("#exp-compare-result .pp-exp-compare")
    result.wait_for()
    assert f"candidate #{candidate} (role)" in result.inner_text() and "6 rows in both" in result.inner_text()
    assert page.evaluate("document.documentElement.scrollWidth") <= 390
    page.screenshot(path=str(OUTPUT / "experiments-compare-390.png"), full_page=True)
    context.close()
