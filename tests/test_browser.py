"""The app in a real browser (Debian chromium through Playwright), on tiny models.

For each tab: pick a template, keep 3 variants, run, see 3 labelled outputs; rate one and find it in History;
reload and open the comparison from History; export it. Screenshots land in test-output/ for a person to look at.
"""

from __future__ import annotations

import zipfile

import pytest

from conftest import OUTPUT

pytestmark = [pytest.mark.slow, pytest.mark.browser]



@pytest.fixture
def page(browser, served_app):
    context = browser.new_context(viewport={"width": 1440, "height": 900}, accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(60_000)
    page.goto(served_app.url)
    page.wait_for_selector("#text-run")
    yield page
    context.close()


def keep_three_variants(page, modality: str) -> list[str]:
    names = page.locator(f"[id^='{modality}-variant-name-']:visible input, [id^='{modality}-variant-name-'] "
                         f"input:visible")
    page.wait_for_function(
        f"document.querySelectorAll(\"[id^='{modality}-variant-name-'] input\").length > 0")
    for _ in range(8):
        count = names.count()
        if count == 3:
            break
        if count < 3:
            page.click(f"#{modality}-dup-0")
        else:
            page.click(f"#{modality}-del-{count - 1}")
        page.wait_for_function(
            f"(n) => [...document.querySelectorAll(\"[id^='{modality}-variant-name-'] input\")]"
            f".filter(e => e.offsetParent !== null).length !== n", arg=count)
    assert names.count() == 3
    return [names.nth(i).input_value() for i in range(3)]


def open_tab(page, label: str) -> None:
    """Click a tab; at phone width some tabs sit in Gradio's "More tabs" menu."""
    tab = page.get_by_role("tab", name=label)
    if tab.count() and tab.first.is_visible():
        tab.first.click()
        return
    page.get_by_label("More tabs").click()
    page.locator(".overflow-dropdown button", has_text=label).click()


@pytest.mark.parametrize("modality, tab", [("text", "Text"), ("image", "Image"), ("music", "Music")])
def test_three_variant_comparison_rate_reload_history_export(page, served_app, modality, tab):
    OUTPUT.mkdir(parents=True, exist_ok=True)
    open_tab(page, tab)
    page.wait_for_selector(f"#{modality}-run")
    variants = keep_three_variants(page, modality)
    page.click(f"#{modality}-run")
    grid = page.locator(f"#{modality}-grid")
    grid.locator(".pp-cell.pp-ok").nth(2).wait_for(timeout=120_000)
    page.wait_for_function(f"document.querySelector('#{modality}-grid progress')?.value == 3")
    assert grid.locator(".pp-cell.pp-ok").count() == 3
    headers = grid.locator(".pp-colhead").all_inner_texts()
    assert headers == variants
    if modality == "image":
        grid.locator("img.pp-image").first.wait_for()
        assert page.evaluate(f"document.querySelector('#{modality}-grid img.pp-image').naturalWidth") == 32   # the tiny model's preset size
    if modality == "music":
        assert grid.locator("audio.pp-audio").count() == 3 and grid.locator("svg.pp-wave").count() == 3
    page.screenshot(path=str(OUTPUT / f"{modality}-tab.png"), full_page=True)

    # Rate the first output: 4 stars.
    first = grid.locator(".pp-cell.pp-ok").first
    run_id = first.get_attribute("data-run")
    first.locator(".pp-star").nth(3).click()
    page.wait_for_function(
        f"document.querySelectorAll('#{modality}-grid .pp-cell[data-run=\"{run_id}\"] .pp-star.on').length == 4")

    # Reload: the tab shows the same comparison again, ratings included.
    page.reload()
    page.wait_for_selector("#text-run")
    open_tab(page, tab)
    page.locator(f"#{modality}-grid .pp-cell[data-run='{run_id}'] .pp-star.on").nth(3).wait_for()

    # History: the comparison is listed, opens as the same grid, and shows the rating.
    comparison_id = page.locator(f"#{modality}-grid .pp-grid-wrap").get_attribute("data-comparison")
    open_tab(page, "History")
    page.click("#history-search")
    page.locator("#history-comparisons").get_by_text(f"{modality}", exact=True).first.wait_for(state="attached")
    page.locator("#history-open-id input").fill(comparison_id)
    page.click("#history-open")
    history_grid = page.locator("#history-grid")
    history_grid.locator(".pp-cell.pp-ok").nth(2).wait_for()
    assert history_grid.locator(".pp-cell.pp-ok").count() == 3
    assert history_grid.locator(f".pp-cell[data-run='{run_id}'] .pp-star.on").count() == 4
    page.screenshot(path=str(OUTPUT / f"{modality}-history.png"), full_page=True)

    # Export this comparison as a zip with its media.
    page.get_by_label("zip").check()
    page.click("#history-export")
    link = page.locator("#history-export-file a").first
    link.wait_for()
    with page.expect_download() as download_info:
        link.click()
    archive_path = OUTPUT / f"{modality}-export.zip"
    download_info.value.save_as(archive_path)
    with zipfile.ZipFile(archive_path) as archive:
        names = archive.namelist()
    assert "runs.jsonl" in names
    if modality != "text":
        assert sum(n.startswith("media/") for n in names) == 3


def test_library_and_phone_width(page, served_app):
    OUTPUT.mkdir(parents=True, exist_ok=True)
    open_tab(page, "Library")
    table = page.locator("#library-table")
    table.get_by_text("camera-lens", exact=True).filter(visible=True).first.wait_for()
    page.locator("#library-query input, #library-query textarea").first.fill("tagline")
    table.get_by_text("product-tagline", exact=True).filter(visible=True).first.click()
    page.locator("#library-preview h3").wait_for()
    assert "product-tagline" in page.locator("#library-preview").inner_text()
    assert "variants:" in page.locator("#library-source").inner_text()
    page.screenshot(path=str(OUTPUT / "library-selected.png"), full_page=True)
    page.click("#library-open")
    page.wait_for_function("document.querySelector('#text-template input')?.value.startsWith('product-tagline')")
    page.screenshot(path=str(OUTPUT / "library-tab.png"), full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})
    open_tab(page, "Text")
    page.screenshot(path=str(OUTPUT / "text-phone.png"), full_page=True)


def test_stop_cancels_the_rest_of_the_grid(page, served_app):
    open_tab(page, "Music")
    # 60 cells of 20 s clips: more than a fast machine finishes between the first cell and the click on Stop
    page.locator("#music-seeds input, #music-seeds textarea").first.fill(", ".join(str(s) for s in range(101, 121)))
    page.get_by_role("button", name="Parameters").click()
    page.locator("#music-duration-s input[type=number]").fill("20")
    page.locator("#music-duration-s input[type=number]").press("Enter")
    page.click("#music-run")
    grid = page.locator("#music-grid")
    grid.locator(".pp-cell.pp-ok").first.wait_for(timeout=120_000)
    page.click("#music-stop")
    grid.get_by_text("stopped after", exact=False).wait_for()
    assert grid.locator(".pp-cell.pp-ok").count() < 60
    assert grid.locator(".pp-cell.pp-cancelled").count() > 0


def test_rerun_a_cell_reproduces_it_and_save_variants_as_a_template(page, served_app):
    open_tab(page, "Text")
    page.click("#text-run")
    grid = page.locator("#text-grid")
    grid.locator(".pp-cell.pp-ok").nth(2).wait_for(timeout=120_000)
    first = grid.locator(".pp-cell.pp-ok").first
    old_run, old_text = first.get_attribute("data-run"), first.locator(".pp-text").inner_text()
    first.locator("[data-action=rerun]").click()
    page.wait_for_function("""(old) => {
        const cell = document.querySelector('#text-grid .pp-cell[data-index="0"]');
        return cell && cell.dataset.run && cell.dataset.run !== old;
    }""", arg=old_run)
    fresh = grid.locator(".pp-cell[data-index='0']")
    assert fresh.locator(".pp-text").inner_text() == old_text        # same seed, same tokens

    page.get_by_text("Save these variants to my templates").click()
    page.locator("#text-save-name input, #text-save-name textarea").first.fill("my-taglines")
    page.click("#text-save")
    page.wait_for_function("document.querySelector('#text-template input')?.value.startsWith('my-taglines')")
    assert (served_app.services.settings.user_templates_dir / "my-taglines.md").exists()


SIZES = [(1440, 900), (390, 844)]
TABS = [("Text", "#text-run"), ("Image", "#image-run"), ("Music", "#music-run"), ("Library", "#library-table"),
        ("History", "#history-search")]


@pytest.mark.parametrize("width, height", SIZES)
def test_every_tab_fits_the_screen(browser, served_app, width, height):
    """No sideways scroll at desktop or phone width; a screenshot of each tab for a person to look at."""
    OUTPUT.mkdir(parents=True, exist_ok=True)
    context = browser.new_context(viewport={"width": width, "height": height})
    page = context.new_page()
    page.set_default_timeout(60_000)
    try:
        page.goto(served_app.url)
        page.wait_for_selector("#text-run")
        for label, ready in TABS:
            open_tab(page, label)
            page.wait_for_selector(ready)
            page.wait_for_timeout(500)
            overflow = page.evaluate("document.documentElement.scrollWidth")
            page.screenshot(path=str(OUTPUT / f"{label.lower()}-{width}x{height}.png"), full_page=True)
            assert overflow <= width, f"{label} is {overflow}px wide at {width}px"
    finally:
        context.close()


def test_cell_actions_are_svg_icons_with_labels(page, served_app):
    open_tab(page, "Text")
    page.click("#text-run")
    cell = page.locator("#text-grid .pp-cell.pp-ok").first
    cell.wait_for(timeout=120_000)
    actions = cell.locator(".pp-actions [data-action], .pp-actions a")
    assert actions.count() >= 10
    for i in range(actions.count()):
        action = actions.nth(i)
        assert action.locator("svg.pp-icon").count() == 1
        assert action.get_attribute("title") and action.get_attribute("aria-label")
    text = cell.locator(".pp-actions").inner_text()
    assert not any(ord(ch) > 0x2000 for ch in text), text       # no emoji or symbol glyphs left
    star = cell.locator(".pp-star svg").first.bounding_box()
    assert star["width"] >= 12 and star["height"] >= 12          # the shared icon symbols are on the page
    assert page.evaluate("document.querySelectorAll('symbol[id^=pp-i-]').length") >= 10
    cell.screenshot(path=str(OUTPUT / "text-cell-actions.png"))


def test_eight_variants_fit_and_duplicates_get_plain_names(page, served_app):
    open_tab(page, "Text")
    names = page.locator("[id^='text-variant-name-'] input")
    page.wait_for_function("document.querySelectorAll(\"[id^='text-variant-name-'] input\").length > 0")
    visible = lambda: [n for n in names.all() if n.is_visible()]  # noqa: E731
    while len(visible()) < 8:
        count = len(visible())
        page.click(f"#text-dup-{count - 1}")
        page.wait_for_function(
            "(n) => [...document.querySelectorAll(\"[id^='text-variant-name-'] input\")]"
            ".filter(e => e.offsetParent !== null).length > n", arg=count)
    values = [n.input_value() for n in visible()]
    assert len(set(values)) == 8 and not any("-2-" in v for v in values), values
    box = page.locator(".pp-variants").first.bounding_box()
    for i in range(8):
        card = page.locator(f"#text-variant-{i}").bounding_box()
        assert card["x"] >= box["x"] - 1 and card["x"] + card["width"] <= box["x"] + box["width"] + 1
    page.screenshot(path=str(OUTPUT / "text-eight-variants.png"), full_page=True)


def test_reload_restores_the_form_with_the_results(page, served_app):
    open_tab(page, "Image")
    page.wait_for_selector("#image-run")
    variants = keep_three_variants(page, "image")
    text = page.locator("#image-variant-1 textarea")
    text.fill("a lighthouse at dusk, {{ subject }} in oil paint")
    page.locator("#image-seeds input, #image-seeds textarea").first.fill("42")
    text.blur()
    page.click("#image-run")
    page.locator("#image-grid .pp-cell.pp-ok").nth(2).wait_for(timeout=120_000)
    page.reload()
    page.wait_for_selector("#text-run")
    open_tab(page, "Image")
    page.wait_for_function("document.querySelector('#image-variant-1 textarea')?.value.startsWith('a lighthouse')")
    assert page.locator("#image-seeds input, #image-seeds textarea").first.input_value() == "42"
    assert [page.locator(f"#image-variant-name-{i} input").input_value() for i in range(3)] == variants
    assert page.locator("#image-grid .pp-cell.pp-ok").count() == 3
    assert "seed 42" in page.locator("#image-grid").inner_text()


def test_a_new_variable_gets_a_box_and_blank_is_refused(page, served_app):
    open_tab(page, "Text")
    box = page.locator("#text-variant-0 textarea")
    box.fill("Write a tagline for {{ product }} aimed at {{ audience }}.")
    box.blur()
    label = page.locator("[id^='text-var-']", has_text="audience")
    label.first.wait_for()
    page.locator("#text-var-warning").get_by_text("audience").wait_for()
    page.click("#text-run")
    page.get_by_text("audience is blank").first.wait_for()
    page.locator("[id^='text-var-']:has-text('audience') textarea").first.fill("retired sailors")
    page.click("#text-run")
    page.locator("#text-grid .pp-cell.pp-ok").first.wait_for(timeout=120_000)
    assert "audience = retired sailors" in page.locator("#text-grid").inner_text()


def test_reseeding_a_cell_replaces_it_in_place(page, served_app):
    open_tab(page, "Text")
    page.click("#text-run")
    grid = page.locator("#text-grid")
    grid.locator(".pp-cell.pp-ok").nth(2).wait_for(timeout=120_000)
    rows_before = grid.locator(".pp-rowhead").count()
    old_run = grid.locator(".pp-cell[data-index='1']").get_attribute("data-run")
    grid.locator(".pp-cell[data-index='1'] [data-action=reseed]").click()
    page.wait_for_function("""(old) => {
        const cell = document.querySelector('#text-grid .pp-cell[data-index="1"]');
        return cell && cell.dataset.run && cell.dataset.run !== old && cell.classList.contains('pp-ok');
    }""", arg=old_run)
    assert grid.locator(".pp-rowhead").count() == rows_before
    badge = grid.locator(".pp-cell[data-index='1'] .pp-badge").inner_text()
    assert badge.startswith("re-run · seed ")
    assert grid.locator(".pp-cell").count() == 3


def test_saving_under_a_taken_name_offers_overwrite_and_it_works(page, served_app):
    open_tab(page, "Text")
    page.get_by_text("Save these variants to my templates").click()
    name = page.locator("#text-save-name input, #text-save-name textarea").first
    name.fill("overwrite-me")
    page.click("#text-save")
    page.locator("#text-save-status").get_by_text("Saved").wait_for()
    page.locator("#text-variant-0 textarea").fill("Second version for {{ product }}.")
    page.click("#text-save")
    page.locator("#text-save-status").get_by_text("already have").wait_for()
    page.locator("#text-save-overwrite input").check()
    page.click("#text-save")
    page.locator("#text-save-status").get_by_text("replaced").wait_for()
    saved = (served_app.services.settings.user_templates_dir / "overwrite-me.md").read_text(encoding="utf-8")
    assert "Second version" in saved


def test_checks_and_the_summary_panel_under_the_grid(page):
    """Checks typed in the tab score every cell; the panel under the grid has a chart per score and the pairs."""
    OUTPUT.mkdir(parents=True, exist_ok=True)
    keep_three_variants(page, "text")
    page.fill("#text-seeds textarea, #text-seeds input", "1, 2, 3")
    page.fill("#text-checks textarea, #text-checks input", "latency\ncontains=tagline")
    page.click("#text-run")
    panel = page.locator("#text-grid .pp-summary")
    panel.wait_for(timeout=180_000)
    names = panel.locator("section.pp-metric").evaluate_all("els => els.map(e => e.dataset.metric)")
    assert {"length", "latency"} <= set(names) and any(n.startswith("contains") for n in names)   # template + typed
    assert panel.locator("svg").count() >= 3 and panel.locator("table").count() >= 3
    panel.scroll_into_view_if_needed()
    page.screenshot(path=str(OUTPUT / "text-summary-panel.png"), full_page=True)
