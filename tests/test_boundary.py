"""The app's edges without a server: argument checks, disk/database errors in words, path-free messages, CLI flags."""

from __future__ import annotations

import errno
import math
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from playground.ui import validate as v
from playground.ui.errors import scrub, storage_message, user_error

ROOT = Path(__file__).resolve().parent.parent


@pytest.mark.parametrize("value, message", [
    (True, "whole number"), (1.5, "whole number"), (math.nan, "whole number"), (math.inf, "whole number"),
    ("3", "whole number"), (None, "whole number"), (2**70, "between"), (0, "between"), (-5, "between"),
])
def test_record_ids_refuse_what_python_would_coerce(value, message):
    with pytest.raises(v.BadInput, match=message):
        v.record_id(value, "run_id")


def test_record_ids_accept_integral_json_numbers():
    assert v.record_id(12, "id") == 12 and v.record_id(12.0, "id") == 12 and v.record_id(2**63 - 1) == 2**63 - 1


@pytest.mark.parametrize("value, message", [
    ([True], "whole number"), ([1.5], "whole number"), ([math.nan], "whole number"), ([2**32], "between"),
    ("1, 2", "list of whole numbers"), ([], "list of whole numbers"), (list(range(100)), "limit"),
])
def test_seeds_are_checked_one_by_one(value, message):
    with pytest.raises(v.BadInput, match=message):
        v.seeds(value)


def test_a_string_is_not_split_into_a_list_and_text_is_bounded():
    with pytest.raises(v.BadInput, match="list of strings"):
        v.text_list("tiny-text", "models", max_items=8, max_chars=300)
    with pytest.raises(v.BadInput, match="10,000 characters"):
        v.text_list(["m" * 10_000], "models", max_items=8, max_chars=300)
    with pytest.raises(v.BadInput, match="lone surrogate"):
        v.text("a\ud800b", "note", max_chars=100)
    with pytest.raises(v.BadInput, match="true or false"):
        v.flag(1, "rerun")
    assert v.text_list(["tiny-text"], "models", max_items=8, max_chars=300) == ["tiny-text"]


def test_values_and_params_refuse_odd_types():
    with pytest.raises(v.BadInput, match="text or a list"):
        v.variable_values({"product": True})
    with pytest.raises(v.BadInput, match="finite"):
        v.params({"temperature": math.nan})
    with pytest.raises(v.BadInput, match="must be an object"):
        v.params(["temperature"])
    assert v.variable_values({"product": ["a", 2]}) == {"product": ["a", "2"]}


def test_storage_errors_name_the_data_dir_and_what_to_do(tmp_path):
    data_dir = tmp_path / "my-data"
    full = OSError(errno.ENOSPC, "No space left on device", str(data_dir / "artifacts" / "x.png"))
    message = storage_message(full, data_dir)
    assert "'my-data'" in message and "--data-dir" in message and "full" in message
    assert str(tmp_path) not in message
    readonly = sqlite3.OperationalError("attempt to write a readonly database")
    assert "read-only" in storage_message(readonly, data_dir)
    error = user_error(PermissionError(errno.EACCES, "Permission denied", str(data_dir / "runs.db")), data_dir)
    assert "permissions" in error.message and str(data_dir) not in error.message


def test_messages_lose_absolute_paths(tmp_path):
    text = f"cannot read {tmp_path}/data/artifacts/ab/cd.png nor /etc/passwd; see ./relative/path"
    cleaned = scrub(text, tmp_path / "data")
    assert "<data dir>/artifacts" in cleaned and "/etc/" not in cleaned and "passwd" in cleaned
    assert str(tmp_path) not in cleaned and "./relative/path" in cleaned


def _immutable(path: Path) -> bool:
    done = subprocess.run(["chattr", "+i", str(path)], capture_output=True)
    return done.returncode == 0


def test_a_read_only_data_dir_at_start_up_gets_one_line(tmp_path):
    """A real unwritable folder: `chattr +i` holds even for root."""
    data_dir = tmp_path / "locked"
    data_dir.mkdir()
    if not _immutable(data_dir):
        pytest.skip("chattr +i is not supported on this file system")
    try:
        done = subprocess.run([sys.executable, "app.py", "--offline", "--data-dir", str(data_dir), "--port", "1"],
                              cwd=ROOT, capture_output=True, text=True, timeout=120)
    finally:
        subprocess.run(["chattr", "-i", str(data_dir)], check=True)
    assert done.returncode != 0
    assert "Traceback" not in done.stderr
    lines = done.stderr.strip().splitlines()
    assert len(lines) == 1 and str(data_dir) in lines[0] and "--data-dir" in lines[0], done.stderr


def test_a_file_where_the_data_dir_should_be(tmp_path):
    blocker = tmp_path / "data"
    blocker.write_text("not a folder")
    done = subprocess.run([sys.executable, "app.py", "--offline", "--data-dir", str(blocker / "sub"), "--port", "1"],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode != 0 and "Traceback" not in done.stderr
    assert "a file stands where a folder should be" in done.stderr


def test_a_read_only_run_log_is_reported_in_words(tmp_path):
    """Writing to a run log the process may not change: the message says so and names the data dir."""
    from playground.store import RunLog

    data_dir = tmp_path / "data"
    RunLog(data_dir).close()
    db = data_dir / "runs.db"
    if not _immutable(db):
        pytest.skip("chattr +i is not supported on this file system")
    try:
        with pytest.raises(sqlite3.Error) as caught:
            connection = sqlite3.connect(db)
            connection.execute("INSERT INTO comparisons (modality, title, spec, created_at, status) "
                               "VALUES ('text', 't', '{}', 'now', 'done')")
            connection.commit()
    finally:
        subprocess.run(["chattr", "-i", str(db)], check=True)
    message = user_error(caught.value, data_dir).message
    assert "'data'" in message and ("read-only" in message or "cannot be opened" in message), message


@pytest.mark.parametrize("argv", [
    ["--data-dir", "{dir}", "--offline", "templates", "--modality", "music"],
    ["templates", "--modality", "music", "--data-dir", "{dir}", "--offline"],
])
def test_cli_flags_work_before_and_after_the_subcommand(tmp_path, argv):
    from playground.cli import build_parser

    args = build_parser().parse_args([a.format(dir=tmp_path) for a in argv])
    assert args.data_dir == str(tmp_path) and args.offline is True and args.command == "templates"
    done = subprocess.run([sys.executable, "-m", "playground"] + [a.format(dir=tmp_path / "d") for a in argv],
                          cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert (tmp_path / "d" / "runs.db").exists()


def test_duplicate_names_count_up_instead_of_nesting():
    from playground.ui.form import fresh_name

    assert fresh_name("role", ["plain", "role"]) == "role-2"
    assert fresh_name("role-2", ["role", "role-2"]) == "role-3"
    assert fresh_name("role-constrained-2", ["role-constrained", "role-constrained-2", "role-constrained-3"]) == \
        "role-constrained-4"
    assert fresh_name("v2", ["v2"]) == "v2-2"


def test_variables_typed_into_variants_are_found_and_blanks_reported():
    from playground.templates import Template
    from playground.ui.form import blank_values, form_variables, used_variables

    texts = ["Write for {{ audience }} about {{ product }}.", "{{ product }} in {{ tone|upper }}", "{{ broken"]
    assert used_variables(texts) == ["audience", "product", "tone"]
    assert form_variables(["product"], texts, 6) == ["product", "audience", "tone"]
    assert form_variables(["product"], texts, 2) == ["product", "audience"]
    from playground.templates import LIBRARY_DIR, load_library

    base: Template = load_library(LIBRARY_DIR).get("product-tagline")
    warnings, errors = blank_values(base, ["product", "audience", "tone"], ["", "", "calm"], texts)
    assert errors == ["audience"]
    assert warnings and "product is blank: using its default" in warnings[0]
