"""Nothing shared fetches from a third party: hostile strings in a shared template, in a comparison's row values and
score names, and in an import file reach every page that shows them, in a real browser, and a loopback listener
standing in for a third-party host records no request. The browser blocks nothing: the pages must never ask."""

from __future__ import annotations

import json
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest

from conftest import OUTPUT, _free_port

pytestmark = [pytest.mark.slow, pytest.mark.browser]


class Listener:
    """A host on loopback that answers every request with a tiny image and keeps the paths it was asked for."""

    def __init__(self):
        self.paths: list[str] = []
        listener = self

        class Handler(BaseHTTPRequestHandler):
            def do_GET(self):  # noqa: N802 - the http.server name
                listener.paths.append(self.path)
                self.send_response(200)
                self.send_header("Content-Type", "image/gif")
                self.end_headers()
                self.wfile.write(b"GIF89a\x01\x00\x01\x00\x00\x00\x00;")

            do_POST = do_HEAD = do_GET

            def log_message(self, *args):
                pass

        self.server = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.base = f"http://127.0.0.1:{self.server.server_address[1]}"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    def close(self) -> None:
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture(scope="module")
def listener():
    host = Listener()
    yield host
    host.close()


def hostile(base: str, where: str) -> dict[str, str]:
    """Every shape that fetched before, aimed at the listener; the path says which field it came from."""
    return {"markdown": f"![x]({base}/{where}-md)", "html": f'<img src="{base}/{where}-img">',
            "alt": f"![a\nb]({base}/{where}-alt)", "fence": f"```\n</code></pre><img src={base}/{where}-fence>\n```"}


def template_text(base: str) -> str:
    description, technique = hostile(base, "description"), hostile(base, "technique")
    variant, notes = hostile(base, "variant"), hostile(base, "notes")
    value = hostile(base, "value")
    return "\n".join([
        "---",
        "name: shared-fetch",
        "modality: text",
        f"description: {json.dumps(description['markdown'] + ' ' + description['html'])}",
        f"technique: {json.dumps([technique['markdown'], technique['html']])}",
        "variables:",
        f"  product: {{default: {json.dumps(value['html'])}, description: {json.dumps(value['markdown'])}, "
        f"examples: [{json.dumps(value['markdown'])}]}}",
        f"  tone: {{default: {json.dumps(value['markdown'])}}}",
        "params: {max_new_tokens: 4}",
        "variants:",
        f"  fenced: {json.dumps(variant['fence'] + ' Write about {{ product }}.')}",
        f"  plain: {json.dumps('Write a tagline for {{ product }}, {{ tone }}. ' + variant['html'])}",
        "---",
        f"Notes {notes['alt']} and {notes['html']} and {notes['markdown']}",
        "",
    ])


def checks_text(base: str) -> str:
    """Checks whose names are hostile: they show in the evidence panel, History and the report."""
    names = hostile(base, "score")
    return "\n".join(json.dumps({"type": "contains", "value": "a", "name": names[kind]})
                     for kind in ("markdown", "html", "alt"))


def import_file(path, base: str) -> None:
    """An export whose score names are hostile and malformed: the import status quotes them."""
    names = hostile(base, "import")
    row = {"modality": "text", "model_id": "tiny-text", "prompt": "p", "seed": 1, "params": {},
           "output_text": "o", "scores": {name: 1 for name in names.values()}}
    path.write_text(json.dumps(row) + "\n", encoding="utf-8")


@pytest.fixture(scope="module")
def own_app(tmp_path_factory, settings, catalog, models_dir):
    """An app of its own: the hostile template stays out of the other tests' library."""
    from playground.services import Services
    from playground.ui.app import build_app, launch_kwargs

    data_dir = tmp_path_factory.mktemp("no-fetch")
    (data_dir / "models").symlink_to(models_dir, target_is_directory=True)
    mine = settings.replace(data_dir=data_dir)
    demo = build_app(mine, Services.create(mine, catalog=catalog))
    demo.launch(server_name="127.0.0.1", server_port=_free_port(), prevent_thread_lock=True, quiet=True,
                **launch_kwargs(mine))
    yield demo
    demo.close()


def upload(page, button: str, path) -> None:
    with page.expect_file_chooser() as chooser:
        page.click(button)
    chooser.value.set_files(str(path))


def test_no_page_fetches_what_a_template_or_a_comparison_carries(browser, own_app, listener, tmp_path):
    OUTPUT.mkdir(parents=True, exist_ok=True)
    services, url = own_app.services, own_app.local_url
    context = browser.new_context(viewport={"width": 1440, "height": 900})
    page = context.new_page()
    page.set_default_timeout(120_000)
    page.goto(url)
    page.wait_for_selector("#text-run")

    # Library: import the shared template, read it and its preview.
    source = tmp_path / "shared-fetch.md"
    source.write_text(template_text(listener.base), encoding="utf-8")
    page.get_by_role("tab", name="Library").click()
    page.get_by_text("New template or import").click()
    page.set_input_files("#library-import input[type=file]", str(source))
    page.locator("#library-status").get_by_text("Imported").wait_for()
    page.locator("#library-query input, #library-query textarea").first.fill("shared-fetch")
    page.locator("#library-table").get_by_text("shared-fetch", exact=True).filter(visible=True).first.click()
    page.locator("#library-preview h3").wait_for()
    page.screenshot(path=str(OUTPUT / "no-fetch-library.png"), full_page=True)

    # Its tab, filled from it: template info, variable boxes, the rendered prompts; then a run with hostile checks.
    page.click("#library-open")
    page.wait_for_function("document.querySelector('#text-template input')?.value.startsWith('shared-fetch')")
    page.get_by_text("Rendered prompts (first row)").click()
    page.locator("#text-preview").get_by_text("Write about").first.wait_for()     # this template's prompts
    page.fill("#text-seeds textarea, #text-seeds input", "1, 2")
    # Messages quoting the input (an unknown check type, a blank box's default) pop up as toasts.
    page.fill("#text-checks textarea, #text-checks input", hostile(listener.base, "toast-check")["html"])
    page.click("#text-run")
    page.locator(".toast-body").get_by_text("unknown check type").wait_for()
    page.locator("#text-var-0 textarea, #text-var-0 input").first.fill("")
    page.fill("#text-checks textarea, #text-checks input", checks_text(listener.base))
    page.click("#text-run")
    page.locator(".toast-body").get_by_text("is blank: using its default").wait_for()
    page.locator("#text-grid .pp-summary").wait_for(timeout=240_000)
    comparison_id = int(page.locator("#text-grid .pp-grid-wrap").get_attribute("data-comparison"))
    page.screenshot(path=str(OUTPUT / "no-fetch-grid.png"), full_page=True)

    # History: the tables, and the comparison opened with its panel.
    page.get_by_role("tab", name="History").click()
    page.locator("#history-open-id input").fill(str(comparison_id))
    page.click("#history-open")
    page.locator("#history-grid .pp-summary").wait_for()

    # The import status quoting hostile score names.
    bad_export = tmp_path / "bad-export.jsonl"
    import_file(bad_export, listener.base)
    upload(page, "#history-import", bad_export)
    page.locator("#history-import-status").get_by_text("Imported").wait_for()

    # Diff: two columns of one row.
    page.get_by_role("tab", name="Diff").click()
    page.locator("#diff-comparison input").fill(str(comparison_id))
    page.click("#diff-load")
    page.locator("#diff-html .pp-diff-block").first.wait_for()

    # The vote share page, as a stranger opens it.
    uid = services.log.get_comparison_header(comparison_id).uid
    stranger = browser.new_context(viewport={"width": 1440, "height": 900}).new_page()
    stranger.goto(f"{url}?vote={uid}")
    stranger.locator("#vote-context").get_by_text("Pair 1").wait_for(timeout=120_000)
    stranger.screenshot(path=str(OUTPUT / "no-fetch-vote.png"), full_page=True)
    stranger.locator("#vote-reason textarea, #vote-reason input").first.fill(hostile(listener.base, "reason")["html"])
    stranger.click("#vote-a")
    stranger.locator("#vote-status").get_by_text("Vote saved").wait_for()
    stranger.context.close()

    # The report, opened in the browser.
    from playground.scoring.panel import comparison_panel
    from playground.stakeholders.report import write_report

    report = write_report(services.log, comparison_id, tmp_path / "report.html",
                          summary_html=comparison_panel(services.log, comparison_id))
    page.goto(report.as_uri())
    page.locator("#grid").wait_for()

    assert "reason-img" in page.locator("#reasons").inner_text()      # the vote's reason is shown, as text

    time.sleep(1.0)           # anything a page asked for has reached the listener by now
    context.close()
    assert not listener.paths, f"pages fetched from the listener: {sorted(set(listener.paths))}"
