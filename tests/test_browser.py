"""The app in a real browser (Debian chromium through Playwright), on tiny models.

For each tab: pick a template, keep 3 variants, run, see 3 labelled outputs; rate one and find it in History;
reload and open the comparison from History; export it. Screenshots land in test-output/ for a person to look at.
"""

from __future__ import annotations

import os
import shutil
import zipfile
from pathlib import Path

import pytest

pytestmark = [pytest.mark.slow, pytest.mark.browser]

ROOT = Path(__file__).resolve().parent.parent
OUTPUT = Path(os.environ.get("PLAYGROUND_TEST_OUTPUT", ROOT / "test-output"))
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--disable-quic", "--no-first-run"]


def _chromium() -> str | None:
    for candidate in (os.environ.get("CHROMIUM_PATH"), "/usr/bin/chromium", shutil.which("chromium")):
        if candidate and Path(candidate).exists():
            return candidate
    return None


@pytest.fixture(scope="module")
def browser():
    executable = _chromium()
    if executable is None:
        if os.environ.get("PLAYGROUND_REQUIRE_BROWSER"):
            pytest.fail("chromium is not installed (apt-get install chromium)")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield instance
        instance.close()


@pytest.fixture
def page(browser, served_app):
    context = browser.new_context(viewport={"width": 1440, "height": 1000}, accept_downloads=True)
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
    page.get_by_role("tab", name=label).click()


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
        assert page.evaluate(f"document.querySelector('#{modality}-grid img.pp-image').naturalWidth") == 128   # the tiny model's preset size
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
    page.click("#library-open")
    page.wait_for_function("document.querySelector('#text-template input')?.value.startsWith('product-tagline')")
    page.screenshot(path=str(OUTPUT / "library-tab.png"), full_page=True)
    page.set_viewport_size({"width": 390, "height": 844})
    open_tab(page, "Text")
    page.screenshot(path=str(OUTPUT / "text-phone.png"), full_page=True)


def test_stop_cancels_the_rest_of_the_grid(page, served_app):
    open_tab(page, "Music")
    page.locator("#music-seeds input, #music-seeds textarea").first.fill("101, 102, 103, 104, 105, 106")
    page.click("#music-run")
    grid = page.locator("#music-grid")
    grid.locator(".pp-cell.pp-ok").first.wait_for(timeout=120_000)
    page.click("#music-stop")
    grid.get_by_text("stopped after", exact=False).wait_for()
    assert grid.locator(".pp-cell.pp-ok").count() < 18
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
