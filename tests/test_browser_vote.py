"""Blind voting, the offline report and the Diff tab in a real browser (Debian chromium through Playwright).

A phone-width page opened from a vote link votes five times and sees the ranking; nothing on the vote view, and
nothing the server sends while voting, names a variant. The report file opens with the network cut off.
Screenshots land in test-output/ for a person to look at.
"""

from __future__ import annotations

import random
import re
from pathlib import Path

import pytest

from playground.spec import build_spec
from playground.stakeholders.report import write_report
from playground.stakeholders.votes import cast, next_pair
from playground.store.votes import list_votes
from playground.templates import make_template

from conftest import OUTPUT

pytestmark = [pytest.mark.slow, pytest.mark.browser]

PHONE = {"width": 390, "height": 844}
# Names no tiny model would write, so finding one on the page can only be a leak.
SECRET_VARIANTS = {"zebravariant": "Write a tagline for {{ product }}.",
                   "ottervariant": "You are a copywriter. Write a tagline for {{ product }}.",
                   "heronvariant": "Tagline, five words, for {{ product }}."}


def make_comparison(services, modality: str, variants: dict, seeds: list[int], params: dict) -> int:
    template = make_template(name=f"{modality}-vote-browser", modality=modality, variants=variants,
                             variables={"product": "a lantern"})
    spec = build_spec(template, models=[f"tiny-{modality}"], seeds=seeds, params=params)
    comparison_id = None
    for progress in services.runner.run(spec):
        comparison_id = progress.comparison_id
    return comparison_id


@pytest.fixture
def phone(browser):
    context = browser.new_context(viewport=PHONE, device_scale_factor=2, is_mobile=True, has_touch=True,
                                  accept_downloads=True)
    page = context.new_page()
    page.set_default_timeout(60_000)
    yield page
    context.close()


def _pair_label(page) -> str:
    return page.locator("#vote-context").inner_text()


def _assert_blind(page, comparison) -> None:
    view = page.locator("#vote-view").evaluate("e => e.outerHTML").lower()
    for name in SECRET_VARIANTS:
        assert name not in view
    for run in comparison.runs:
        assert f'data-run="{run.id}"' not in view and Path(run.artifact or "none.x").stem not in view


def test_five_blind_votes_on_a_phone_then_the_ranking(phone, served_app):
    OUTPUT.mkdir(parents=True, exist_ok=True)
    services = served_app.services
    comparison_id = make_comparison(services, "text", SECRET_VARIANTS, [1, 2], {"max_new_tokens": 8})
    comparison = services.log.get_comparison(comparison_id)
    page = phone
    page.goto(f"{served_app.url}?vote={comparison_id}")
    page.locator("#vote-a-text textarea").wait_for()
    page.wait_for_function("document.querySelector('#vote-context')?.innerText.includes('Pair 1 of 6')")
    assert page.locator("#vote-b-text textarea").is_visible()
    assert page.locator("#vote-a-image").count() == 0 or not page.locator("#vote-a-image").is_visible()
    _assert_blind(page, comparison)
    page.screenshot(path=str(OUTPUT / "vote-phone-pair.png"), full_page=True)

    sent: list[str] = []                 # everything the server streams back while voting

    def keep(response):
        if "/queue/data" in response.url or "/queue/join" in response.url:
            try:
                sent.append(response.text())
            except Exception:
                pass
    page.on("response", keep)
    shown_texts = []
    for k, choice in enumerate(["vote-a", "vote-b", "vote-a", "vote-tie", "vote-both-bad"]):
        shown_texts.append((page.locator("#vote-a-text textarea").input_value(),
                            page.locator("#vote-b-text textarea").input_value()))
        if k == 0:
            page.locator("#vote-reason textarea, #vote-reason input").first.fill("punchier")
        page.locator(f"#{choice}").click()
        page.wait_for_function("(n) => document.querySelector('#vote-context')?.innerText.includes(`Pair ${n} of 6`)",
                               arg=k + 2)
        _assert_blind(page, comparison)
    page.wait_for_timeout(500)
    assert sent, "the votes went through the queue"
    for body in sent:
        for name in SECRET_VARIANTS:
            assert name not in body.lower()
    votes = list_votes(services.log, comparison_id)
    assert len(votes) == 5 and len({v.voter for v in votes}) == 1 and votes[0].voter.startswith("anon:")
    assert votes[0].reason == "punchier" and [v.outcome for v in votes] == ["win", "win", "win", "tie", "both_bad"]
    # the first vote went to the text shown on the left
    first = votes[0]
    winner = services.log.get_run(first.winner_run_id)
    assert winner.id == first.left_run_id and winner.output_text == shown_texts[0][0]
    page.screenshot(path=str(OUTPUT / "vote-phone-after-five.png"), full_page=True)

    page.locator("#vote-finish").click()
    ranking = page.locator("#vote-ranking table")
    ranking.wait_for()
    text = ranking.inner_text()
    assert all(name in text for name in SECRET_VARIANTS)              # revealed only now
    assert "rating (95%)" in text
    assert not page.locator("#vote-a-text").is_visible()
    page.locator("#vote-ranking").scroll_into_view_if_needed()
    assert page.evaluate("document.documentElement.scrollWidth") <= PHONE["width"]     # nothing wider than a phone
    page.screenshot(path=str(OUTPUT / "vote-phone-ranking.png"), full_page=True)

    # Reloading keeps the same anonymous voter: the 5 pairs already voted on are not dealt again.
    page.goto(f"{served_app.url}?vote={comparison_id}")
    page.wait_for_function("document.querySelector('#vote-context')?.innerText.includes('Pair 6 of 6')")
    page.locator("#vote-a").click()
    page.locator("#vote-ranking table").wait_for()
    assert len(list_votes(services.log, comparison_id)) == 6


def test_vote_on_images_and_music_on_a_phone(phone, served_app):
    OUTPUT.mkdir(parents=True, exist_ok=True)
    services = served_app.services
    page = phone
    for modality, params in (("image", {"num_inference_steps": 2}), ("music", {"duration_s": 1.0})):
        comparison_id = make_comparison(services, modality, {"red": "a red {{ product }}",
                                                             "blue": "a blue {{ product }}"}, [4], params)
        page.goto(f"{served_app.url}?vote={comparison_id}")
        page.wait_for_function("document.querySelector('#vote-context')?.innerText.includes('Pair 1 of 1')")
        side = page.locator(f"#vote-a-{modality if modality == 'image' else 'audio'}")
        side.wait_for()
        if modality == "image":
            side.locator("img").first.wait_for()
            assert page.evaluate("document.querySelector('#vote-a-image img').naturalWidth") > 0
            src = side.locator("img").first.get_attribute("src")
            assert not any(Path(r.artifact).stem in src for r in services.log.get_comparison(comparison_id).runs)
        else:                            # the clip is loaded: the player knows its length
            page.wait_for_function("document.querySelector('#vote-a-audio #duration')?.innerText === '0:01'")
        page.screenshot(path=str(OUTPUT / f"vote-phone-{modality}.png"), full_page=True)
        page.locator("#vote-b").click()
        page.locator("#vote-ranking table").wait_for()
        assert len(list_votes(services.log, comparison_id)) == 1


def test_report_opens_offline_in_chromium(browser, served_app, tmp_path):
    OUTPUT.mkdir(parents=True, exist_ok=True)
    services = served_app.services
    comparison_id = make_comparison(services, "image", {"red": "a red {{ product }}", "blue": "a blue {{ product }}",
                                                        "green": "a green {{ product }}"}, [1, 2],
                                    {"num_inference_steps": 2})
    runs = services.log.get_comparison(comparison_id).runs
    services.log.rate(runs[0].id, stars=5, note="vivid")
    services.log.set_winner(comparison_id, runs[0].id)
    rng = random.Random(1)
    for reason in ("brighter", "", "cleaner edges", ""):
        cast(services.log, next_pair(services.log, comparison_id, "ann", rng), "A", "ann", reason)
    path = write_report(services.log, comparison_id, OUTPUT / "report-image.html")
    context = browser.new_context(viewport={"width": 1280, "height": 900}, offline=True)
    requested = []

    def block(route):
        requested.append(route.request.url)
        if route.request.url.startswith("file:"):
            return route.continue_()
        return route.abort()
    context.route("**/*", block)
    page = context.new_page()
    page.goto(path.as_uri())
    page.wait_for_function("[...document.images].length === 6 && [...document.images].every(i => i.complete)")
    assert page.evaluate("[...document.images].every(i => i.naturalWidth > 0)")
    assert [u for u in requested if not u.startswith("file:")] == []
    assert page.locator("#grid td.cell").count() == 6 and page.locator("#records tbody tr").count() == 6
    assert "Winner:" in page.locator("#winner").inner_text()
    assert re.search("Voters (prefer|are split)", page.locator("#winner").inner_text())
    assert "cleaner edges" in page.locator("#reasons").inner_text()
    page.screenshot(path=str(OUTPUT / "report-image.png"), full_page=True)
    page.emulate_media(media="print")
    page.screenshot(path=str(OUTPUT / "report-image-print.png"), full_page=True)
    page.pdf(path=str(OUTPUT / "report-image.pdf")) if hasattr(page, "pdf") else None
    context.close()


def test_diff_tab_shows_word_diffs_and_the_image_slider(browser, served_app):
    OUTPUT.mkdir(parents=True, exist_ok=True)
    services = served_app.services
    text_id = make_comparison(services, "text", {"plain": "Write a tagline for {{ product }}.",
                                                 "role": "You are a copywriter. Write a tagline for {{ product }}."},
                              [1], {"max_new_tokens": 8})
    image_id = make_comparison(services, "image", {"red": "a red {{ product }}", "blue": "a blue {{ product }}"},
                               [1], {"num_inference_steps": 2})
    context = browser.new_context(viewport={"width": 1280, "height": 1000})
    page = context.new_page()
    page.set_default_timeout(60_000)
    page.goto(served_app.url)
    page.wait_for_selector("#text-run")
    page.get_by_role("tab", name="Diff").click()
    page.locator("#diff-comparison input").fill(str(text_id))
    page.click("#diff-load")
    page.locator("#diff-html ins").first.wait_for()
    inserted = page.locator("#diff-html .pp-diff ins").all_inner_texts()
    assert [t.strip() for t in inserted][0] == "You are a copywriter."
    page.screenshot(path=str(OUTPUT / "diff-text.png"), full_page=True)
    page.locator("#diff-comparison input").fill(str(image_id))
    page.click("#diff-load")
    page.locator("#diff-slider img").first.wait_for()
    assert page.locator("#diff-slider img").count() >= 2
    page.wait_for_function("document.querySelector('#diff-html .pp-diff del')?.innerText === 'red'")
    assert page.locator("#diff-html .pp-diff ins").first.inner_text() == "blue"
    page.screenshot(path=str(OUTPUT / "diff-image.png"), full_page=True)
    context.close()
