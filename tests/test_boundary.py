"""The app's edges without a server: argument checks, disk/database errors in words, path-free messages, CLI flags."""

from __future__ import annotations

import errno
import math
import sqlite3
import subprocess
import sys
from pathlib import Path

import pytest

from playground.requests import (ComparisonPage, ComparisonRequest, Rating, RequestError, check)
from playground.settings import Settings
from playground.ui.errors import scrub, storage_message, user_error

ROOT = Path(__file__).resolve().parent.parent


def refused(model, data, settings=None) -> str:
    with pytest.raises(RequestError) as caught:
        check(model, data, settings)
    return str(caught.value)


@pytest.mark.parametrize("value, message", [
    (True, "whole number"), (1.5, "whole number"), (math.nan, "whole number"), (math.inf, "whole number"),
    ("3", "whole number"), (None, "whole number"), (2**70, "between"), (0, "between"), (-5, "between"),
])
def test_record_ids_refuse_what_python_would_coerce(value, message):
    assert message in refused(ComparisonPage, {"comparison_id": value})


def test_whole_numbers_accept_integral_json_numbers():
    """The one exception to strict, decided once: 3.0 is the whole number 3 (JSON has one number type)."""
    assert check(ComparisonPage, {"comparison_id": 12.0, "limit": 5.0}).comparison_id == 12
    assert check(ComparisonPage, {"comparison_id": 2**63 - 1}).comparison_id == 2**63 - 1
    assert check(ComparisonRequest, {"template": "t", "seeds": [3.0]}).seeds == [3]


@pytest.mark.parametrize("value, message", [
    ([True], "seeds[0]: must be a whole number, got true"), ([1.5], "seeds[0]: must be a whole number, got 1.5"),
    ([math.nan], "got NaN"), ([2**32], "between 0 and 4294967295"), ("1, 2", "list of whole numbers"),
    (5, "list of whole numbers"), ([], "seeds: is empty"), (list(range(100)), "the limit is 64"),
])
def test_seeds_are_checked_one_by_one(value, message):
    assert message in refused(ComparisonRequest, {"template": "t", "seeds": value})


def test_a_string_is_not_split_into_a_list_and_text_is_bounded():
    assert "list of strings" in refused(ComparisonRequest, {"template": "t", "models": "tiny-text"})
    assert "is 10000 characters long; the limit is 300" in refused(
        ComparisonRequest, {"template": "t", "models": ["m" * 10_000]})
    assert "lone surrogate" in refused(Rating, {"run_id": 1, "note": "a\ud800b"})
    assert "rerun: must be true or false, got 1" in refused(ComparisonRequest, {"template": "t", "rerun": 1})
    assert check(ComparisonRequest, {"template": "t", "models": ["tiny-text"]}).models == ["tiny-text"]


def test_values_and_params_refuse_odd_types():
    assert "text or a list" in refused(ComparisonRequest, {"template": "t", "values": {"product": True}})
    assert "params.temperature: must be a finite number" in refused(
        ComparisonRequest, {"template": "t", "params": {"temperature": math.nan}})
    assert "params: must be an object" in refused(ComparisonRequest, {"template": "t", "params": ["temperature"]})
    assert check(ComparisonRequest, {"template": "t", "values": {"product": ["a", 2]}}).values == {
        "product": ["a", "2"]}


def test_limits_come_from_the_settings():
    small = Settings(max_seeds=2, max_note_chars=5, max_models=1)
    assert "the limit is 2" in refused(ComparisonRequest, {"template": "t", "seeds": [1, 2, 3]}, small)
    assert "the limit is 1" in refused(ComparisonRequest, {"template": "t", "models": ["a", "b"]}, small)
    assert "is 6 characters long; the limit is 5" in refused(Rating, {"run_id": 1, "note": "sixsix"}, small)
    assert check(ComparisonRequest, {"template": "t", "seeds": [1, 2, 3]}).seeds == [1, 2, 3]


def test_a_note_has_one_limit_at_the_api_and_in_the_log(tmp_path):
    """The page and the API capped a note at 5,000 characters, the log at 10,000: one limit now, one wording."""
    from playground.store import RunLog, RunRecord

    limit = Settings().max_note_chars
    log = RunLog(tmp_path)
    run_id = log.add_run(RunRecord(modality="text", model_id="m", prompt="p", seed=1, params={}))
    log.rate(check(Rating, {"run_id": run_id, "note": "n" * limit}).run_id, note="n" * limit)
    too_long = f"note: is {limit + 1} characters long; the limit is {limit}"
    assert too_long in refused(Rating, {"run_id": run_id, "note": "n" * (limit + 1)})
    with pytest.raises(RequestError, match=too_long):
        log.rate(run_id, note="n" * (limit + 1))
    log.close()


@pytest.mark.parametrize("spec, message", [
    ("length:max=1e400", "argument 'max' must be a whole number, got Infinity"),
    ("llm_judge:rubric=r,scale=1e400", "argument 'scale' must be a whole number, got Infinity"),
    ("length:max=nan", 'argument \'max\' must be a whole number, got "nan"'),
    ("reading_level:max_grade=nan", "argument 'max_grade' must be a number"),
    ({"type": "reading_level", "max_grade": math.inf}, "argument 'max_grade' must be a finite number"),
    ({"type": "length", "max": "12"}, "argument 'max' must be a whole number"),
    ({"type": "contains", "value": "x", "case_sensitive": "yes"}, "must be true or false"),
])
def test_check_arguments_get_a_clean_message(spec, message):
    from playground.scoring import CheckError, make_check

    with pytest.raises(CheckError) as caught:
        make_check(spec)
    assert message in str(caught.value)
    assert "Overflow" not in str(caught.value) and "cannot convert" not in str(caught.value)


def test_a_template_holds_no_more_checks_than_a_comparison_runs():
    from playground.templates import TemplateError, parse_template

    limit = Settings().max_checks
    checks = "".join(f"  - {{type: contains, value: w{i}}}\n" for i in range(limit + 1))
    text = f"---\nname: many\nmodality: text\nchecks:\n{checks}variants: {{a: hi}}\n---\n"
    with pytest.raises(TemplateError, match=f"{limit + 1} checks; at most {limit}"):
        parse_template(text)


@pytest.mark.parametrize("body, message", [
    ('{"modality": "text", "variants": {"a": "hi"}, "values": ["x"]}', "values: must be an object"),
    ('{"template": "product-tagline", "seeds": "abc"}', 'seeds: must be a list of whole numbers'),
    ('{"template": "product-tagline", "models": 5}', "models: must be a list of strings"),
    ('{"template": "product-tagline", "params": [1]}', "params: must be an object"),
    ('{"template": "product-tagline", "seeds": [1.5]}', "seeds[0]: must be a whole number, got 1.5"),
    ('{"template": "product-tagline", "check": []}', "check: is an unknown field"),
])
def test_a_bad_comparison_file_ends_in_one_clean_line(tmp_path, capsys, body, message):
    from playground.cli import main

    path = tmp_path / "comparison.json"
    path.write_text(body)
    assert main(["--offline", "--data-dir", str(tmp_path / "data"), "run", str(path)]) == 2
    err = capsys.readouterr().err
    assert message in err and "Traceback" not in err and len(err.strip().splitlines()) == 1, err


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
