"""Take the README's screenshots: the app offline on the shipped tiny models, driven by Debian's Chromium through
Playwright at 1440x900, into assets/screenshot-text.png and assets/screenshot-image.png.

    python scripts/readme_screenshots.py [text] [image] [--out assets] [--port N]
"""

from __future__ import annotations

import argparse
import os
import socket
import sys
import tempfile
from pathlib import Path

ROOT = Path(__file__).resolve().parent.parent
sys.path.insert(0, str(ROOT))
os.environ.setdefault("HF_HUB_OFFLINE", "1")

CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--no-first-run"]
SHOTS = [  # (tab, template, values of its first variable, seeds, file)
    ("text", "tone-tagline", ["a glass teapot", "folding headphones", "a family tent"], "1, 2",
     "screenshot-text.png"),
    ("image", "colour-words", ["white", "black"], "1, 2", "screenshot-image.png"),
]


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def pick_template(page, modality: str, name: str) -> None:
    box = page.locator(f"#{modality}-template input")
    box.click()
    box.fill(name)
    page.locator("ul[role=listbox] li", has_text=name).first.click()
    page.wait_for_function(f"document.querySelector('#{modality}-template input')?.value.startsWith('{name}')")
    page.wait_for_timeout(1500)


def shoot(page, modality, template, values, seeds, path: Path) -> None:
    page.get_by_role("tab", name=modality.capitalize()).first.click()
    pick_template(page, modality, template)
    page.locator(f"#{modality}-var-0 textarea, #{modality}-var-0 input").first.fill("\n".join(values))
    page.locator(f"#{modality}-seeds textarea, #{modality}-seeds input").first.fill(seeds)
    page.click(f"#{modality}-run")
    panel = page.locator(f"#{modality}-grid .pp-summary", has_text="cells,")      # a finished comparison
    panel.wait_for(timeout=600_000)
    page.wait_for_timeout(1500)
    page.screenshot(path=str(path), full_page=True)
    print(f"wrote {path}")


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("tabs", nargs="*", metavar="tab", help="text, image (default: both)")
    parser.add_argument("--out", type=Path, default=ROOT / "assets")
    parser.add_argument("--port", type=int, default=0, help="serve the app on this port (default: a free one)")
    args = parser.parse_args(argv)
    from playwright.sync_api import sync_playwright

    from playground.services import Services
    from playground.settings import Settings
    from playground.ui.app import build_app, launch_kwargs

    with tempfile.TemporaryDirectory() as data:
        settings = Settings(data_dir=Path(data), offline=True, device="cpu")
        demo = build_app(settings, Services.create(settings))
        demo.launch(server_name="127.0.0.1", server_port=args.port or _free_port(), prevent_thread_lock=True,
                    quiet=True, **launch_kwargs(settings))
        try:
            with sync_playwright() as playwright:
                browser = playwright.chromium.launch(executable_path="/usr/bin/chromium", args=CHROMIUM_ARGS)
                page = browser.new_context(viewport={"width": 1440, "height": 900}).new_page()
                page.set_default_timeout(120_000)
                for modality, template, values, seeds, name in SHOTS:
                    if args.tabs and modality not in args.tabs:
                        continue
                    page.goto(demo.local_url)
                    page.wait_for_selector("#text-run")
                    shoot(page, modality, template, values, seeds, args.out / name)
                browser.close()
        finally:
            demo.close()
    return 0


if __name__ == "__main__":
    sys.exit(main())
