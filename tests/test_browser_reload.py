"""What a comparison looks like when it is opened again, in a real browser: a re-run cell keeps its badge and seed,
the checks and the evidence panel come back, History's search narrows both tables and stays readable on a phone.
Screenshots land in test-output/ for a person to look at."""

from __future__ import annotations

import pytest

from conftest import OUTPUT
from test_browser import keep_three_variants, open_tab

pytestmark = [pytest.mark.slow, pytest.mark.browser]


def new_page(browser, served_app, width: int, height: int):
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    page.set_default_timeout(120_000)
    page.goto(served_app.url)
    page.wait_for_selector("#text-run")
    return page


def test_a_reseeded_cell_keeps_its_badge_seed_checks_and_panel_after_a_reload(browser, served_app):
    OUTPUT.mkdir(parents=True, exist_ok=True)
    page = new_page(browser, served_app, 1440, 900)
    keep_three_variants(page, "text")
    page.fill("#text-seeds textarea, #text-seeds input", "1, 2")
    page.fill("#text-checks textarea, #text-checks input", "contains=a")
    page.click("#text-run")
    grid = page.locator("#text-grid")
    grid.locator(".pp-summary").wait_for()
    old_run = grid.locator(".pp-cell[data-index='1']").get_attribute("data-run")
    grid.locator(".pp-cell[data-index='1'] [data-action=reseed]").click()
    page.wait_for_function("""(old) => {
        const cell = document.querySelector('#text-grid .pp-cell[data-index="1"]');
        return cell && cell.dataset.run && cell.dataset.run !== old && cell.classList.contains('pp-ok')
            && document.querySelector('#text-grid .pp-summary');
    }""", arg=old_run)
    badge = grid.locator(".pp-cell[data-index='1'] .pp-badge").inner_text()
    assert badge.startswith("re-run · seed ")
    assert "6 / 6 cells · done" in grid.locator(".pp-progress").inner_text()          # the line stays

    page.reload()
    page.wait_for_selector("#text-run")
    grid.locator(".pp-summary").wait_for()
    assert grid.locator(".pp-cell[data-index='1'] .pp-badge").inner_text() == badge
    assert grid.locator(".pp-rowhead").first.inner_text().endswith("seed 1")           # the row keeps its seed
    assert grid.locator(".pp-rowhead").count() == 2 and grid.locator(".pp-cell").count() == 6
    assert page.locator("#text-checks textarea, #text-checks input").first.input_value() == "contains=a"
    page.screenshot(path=str(OUTPUT / "reseeded-after-reload.png"), full_page=True)

    # A re-run after the reload is scored too: the panel counts every live cell, none missing.
    grid.locator(".pp-cell[data-index='4'] [data-action=reseed]").click()
    page.wait_for_function("""() => document.querySelectorAll('#text-grid .pp-badge').length == 2
        && document.querySelector('#text-grid .pp-summary')""")
    missing = grid.locator(".pp-summary table.pp-variant-stats").first.locator("tbody td:last-child")
    assert missing.all_inner_texts() == ["0", "0", "0"]

    comparison_id = grid.locator(".pp-grid-wrap").get_attribute("data-comparison")
    open_tab(page, "History")
    cells = page.wait_for_function("""(id) => {
        const row = [...document.querySelectorAll('#history-comparisons [role=row][data-index]')]
            .find((r) => r.querySelector("[data-col='0']")?.innerText.trim() === id);
        return row && [3, 4].map((col) => row.querySelector(`[data-col='${col}']`).innerText.trim());
    }""", arg=comparison_id).json_value()
    assert cells == ["product-tagline · 6 cells", "6"]                # the title and the count agree
    page.locator("#history-open-id input").fill(comparison_id)
    page.click("#history-open")
    page.locator("#history-grid .pp-summary").wait_for()
    assert page.locator("#history-grid .pp-badge").count() == 2
    page.context.close()


def test_history_search_narrows_both_tables_and_reads_on_a_phone(browser, served_app):
    OUTPUT.mkdir(parents=True, exist_ok=True)
    page = new_page(browser, served_app, 390, 844)
    page.locator("#text-var-0 textarea, #text-var-0 input").first.fill("a quokkaisland lamp")
    page.click("#text-run")
    page.locator("#text-grid .pp-cell.pp-ok").first.wait_for()
    page.locator("#text-grid .pp-progress.pp-done").wait_for()
    comparison_id = page.locator("#text-grid .pp-grid-wrap").get_attribute("data-comparison")

    open_tab(page, "History")
    page.locator("#history-query input, #history-query textarea").first.fill("quokkaisland")
    page.click("#history-search")
    comparisons = page.locator("#history-comparisons [role=row][data-index]")
    page.wait_for_function("""(id) => {
        const rows = document.querySelectorAll('#history-comparisons [role=row][data-index]');
        return rows.length === 1 && rows[0].querySelector("[data-col='0']").innerText.trim() === id;
    }""", arg=comparison_id)
    assert comparisons.count() == 1
    page.screenshot(path=str(OUTPUT / "history-phone.png"), full_page=True)
    # Short words stay on one line: a cell is as wide as its text, not squeezed to a letter a line.
    for column in ("2", "5"):                 # modality ("text"), status ("done")
        cell = page.locator(f"#history-comparisons [data-testid='cell-0-{column}'] span").first
        fits = cell.evaluate("e => { const r = e.getBoundingClientRect(); "
                             "return r.height < 2 * parseFloat(getComputedStyle(e).lineHeight || 20); }")
        assert fits, column
    page.context.close()
