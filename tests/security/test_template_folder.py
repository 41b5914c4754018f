"""Start-up reads the user templates folder: a pipe, a device or a link out of the folder is reported and skipped,
never read (a FIFO would block start-up, /dev/zero never ends)."""

from __future__ import annotations

import os
import threading

import pytest

from playground.templates import TemplateError, import_template, load_library

GOOD = """---
name: {name}
modality: text
variants:
  plain: "Write a tagline."
---
"""


def load_within(folder, seconds: float = 20.0):
    """load_library in a thread, so a regression shows as a failure instead of a hung test run."""
    result = {}
    thread = threading.Thread(target=lambda: result.setdefault("library", load_library(folder / "none", folder)),
                              daemon=True)
    thread.start()
    thread.join(seconds)
    assert "library" in result, "loading the templates folder did not finish"
    return result["library"]


@pytest.mark.skipif(not hasattr(os, "mkfifo"), reason="needs FIFOs")
def test_a_fifo_a_device_and_links_out_are_skipped(tmp_path):
    folder = tmp_path / "templates"
    folder.mkdir()
    (folder / "fine.md").write_text(GOOD.format(name="fine"))
    os.mkfifo(folder / "pipe.md")
    (folder / "zero.md").symlink_to("/dev/zero")
    outside = tmp_path / "secret.md"
    outside.write_text(GOOD.format(name="secret"))
    (folder / "secret.md").symlink_to(outside)
    (folder / "inside.md").symlink_to(folder / "fine.md")        # a link within the folder is read

    library = load_within(folder)
    assert "fine" in library.templates and "secret" not in library.templates
    reasons = {error.path.name: error.message for error in library.errors}
    assert "regular file" in reasons["pipe.md"]
    assert "outside the templates folder" in reasons["zero.md"]
    assert "outside the templates folder" in reasons["secret.md"]
    assert "must match the file name" in reasons["inside.md"]     # read, then refused for its name only


def test_an_uploaded_path_must_be_a_regular_file(tmp_path):
    with pytest.raises(TemplateError, match="regular file"):
        import_template(tmp_path, tmp_path / "mine")               # a folder, not a file
    big = tmp_path / "big.md"
    big.write_bytes(b"x" * 300_000)
    with pytest.raises(TemplateError, match="larger than"):
        import_template(big, tmp_path / "mine")
