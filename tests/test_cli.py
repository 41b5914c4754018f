"""The command line as a person meets it: names the library lists, bad ids, and comparisons that are not there."""

from __future__ import annotations

import json

import pytest

from playground.cli import main
from playground.store import RunLog, RunRecord
from playground.store.votes import record_vote


def _data(tmp_path, models_dir):
    data = tmp_path / "data"
    data.mkdir()
    (data / "models").symlink_to(models_dir, target_is_directory=True)
    return data


def _comparison(data, outcomes=()) -> int:
    """A logged text comparison of two runs, with one vote per outcome given ("win" or "tie")."""
    with RunLog(data) as log:
        comparison = log.start_comparison("text", "taglines", "product-tagline")
        runs = [log.add_run(RunRecord(modality="text", model_id="tiny-text", prompt=f"p{col}", params={}, seed=1,
                                      col=col, variant=f"v{col}", comparison_id=comparison, output_text=f"out {col}"))
                for col in range(2)]
        for number, outcome in enumerate(outcomes):
            record_vote(log, comparison_id=comparison, left_run_id=runs[0], right_run_id=runs[1], outcome=outcome,
                        voter=f"voter-{number}", winner_run_id=runs[0] if outcome == "win" else None)
        log.finish_comparison(comparison, "done")
    return comparison


@pytest.mark.parametrize("argv", [
    ["stats", "0"], ["stats", "-1"], ["rerun", "0"], ["report", "-1"], ["export", "out.jsonl", "--comparison", "0"],
    ["votes", "0", "-o", "v.jsonl"],
])
def test_an_id_that_cannot_name_a_comparison_gets_one_line(tmp_path, capsys, monkeypatch, argv):
    monkeypatch.chdir(tmp_path)
    assert main(["--data-dir", str(tmp_path / "data"), *argv]) == 2
    err = capsys.readouterr().err
    assert err.startswith("error: comparison id must be") and "Traceback" not in err and err.count("\n") == 1


def test_votes_of_a_missing_comparison_or_of_none_say_so_and_write_nothing(tmp_path, capsys):
    data = tmp_path / "data"
    quiet = _comparison(data)
    ties = _comparison(data, ["tie"])
    voted = _comparison(data, ["win", "tie"])
    dest = tmp_path / "f.jsonl"
    assert main(["--data-dir", str(data), "votes", "999", "-o", str(dest)]) == 2
    assert "no comparison #999" in capsys.readouterr().err and not dest.exists()
    assert main(["--data-dir", str(data), "votes", str(quiet), "-o", str(dest)]) == 1
    assert f"comparison #{quiet} has no votes yet" in capsys.readouterr().err and not dest.exists()
    assert main(["--data-dir", str(data), "votes", str(ties), "-o", str(dest)]) == 1
    assert "all ties or 'both bad'" in capsys.readouterr().err and not dest.exists()
    assert main(["--data-dir", str(data), "votes", str(voted), "-o", str(dest)]) == 0
    assert f"1 preference pairs of comparison #{voted} exported" in capsys.readouterr().out
    assert json.loads(dest.read_text())["chosen"] == "out 0"
    assert main(["--data-dir", str(data), "votes", "-o", str(tmp_path / "all.csv")]) == 0
    assert "3 votes of the log exported" in capsys.readouterr().out


def test_run_takes_a_template_name_the_library_lists(tmp_path, capsys, catalog, models_dir):
    data = _data(tmp_path, models_dir)
    assert main(["--offline", "--data-dir", str(data), "templates"]) == 0
    assert "product-tagline" in capsys.readouterr().out
    assert main(["--offline", "--data-dir", str(data), "run", "product-tagline", "--models", "tiny-text",
                 "--param", "max_new_tokens=2", "--quiet"]) == 0
    assert "0 failed" in capsys.readouterr().out
    assert main(["--offline", "--data-dir", str(data), "run", "product-tagilne"]) == 2
    err = capsys.readouterr().err
    assert "neither a file nor a library template" in err and "did you mean product-tagline" in err


def test_two_checks_of_one_name_are_told_how_to_rename_one(tmp_path, capsys):
    assert main(["--offline", "--data-dir", str(tmp_path / "data"), "run", "product-tagline", "--check", "length",
                 "--check", "length:unit=chars"]) == 2
    err = capsys.readouterr().err
    assert "two checks are named 'length'" in err and "e.g. length:unit=chars,name=length-2" in err
