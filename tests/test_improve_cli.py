"""Improve from the command line, as a person runs it: the projected calls first (and no start without --yes when
there is no terminal), the search end to end with a real `transformers serve` as the proposer, and a search
SIGKILLed midway and finished by the same command without a call spent twice."""

from __future__ import annotations

import subprocess
import time
from pathlib import Path
from types import SimpleNamespace

import pytest

from playground.store import RunLog
from playground.store.scores import scores_for_runs
from tests.test_experiments_cli import ROOT, TAGLINE, cli, data_dir, environment
from tests.test_improve import proposals, scripted  # noqa: F401

pytestmark = pytest.mark.slow


def split_rows(path: Path, count: int) -> Path:
    path.write_text("product,split\n" + "".join(f"gadget number {i},{'dev' if i % 2 else 'test'}\n"
                                                for i in range(count)))
    return path


def improve_command(folder: Path, rows: Path, proposer: str, *extra: str) -> list[str]:
    return cli(folder, "improve", str(TAGLINE), "--variant", "plain", "--dataset", str(rows), "--proposer", proposer,
               "--models", "tiny-text", "--rounds", "2", "--candidates", "2", *extra)


def runs(folder: Path, where: str = "1", args: tuple = ()) -> list:
    with RunLog(folder) as log:
        return log._db().execute(f"SELECT * FROM runs WHERE {where} ORDER BY id", args).fetchall()


def test_the_cli_asks_first_then_searches_with_transformers_serve_as_proposer(tmp_path, models_dir, text_model):
    from tests.test_engines_remote import SERVED, start_transformers_serve, stop

    process, url = start_transformers_serve(Path(text_model.source), tmp_path)
    try:
        folder = data_dir(tmp_path, models_dir)
        command = improve_command(folder, split_rows(tmp_path / "products.csv", 20), f"openai:{SERVED}",
                                  "--check", "length")
        env = {**environment(), "OPENAI_BASE_URL": url, "OPENAI_API_KEY": "sk-local-test"}
        asked = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=600,
                               stdin=subprocess.DEVNULL)
        assert asked.returncode == 3, asked.stdout + asked.stderr
        assert f"proposer   openai:{SERVED}: 4" in asked.stdout and "generator  tiny-text: 70" in asked.stdout
        assert "confirm the projected calls with --yes" in asked.stderr
        assert runs(folder) == []                                       # nothing spent
        done = subprocess.run(command + ["--yes"], env=env, cwd=ROOT, capture_output=True, text=True, timeout=1200,
                              stdin=subprocess.DEVNULL)
        assert done.returncode == 0, done.stdout + done.stderr
        assert "projected calls (at most)" in done.stdout and "(done)" in done.stdout
        proposed = runs(folder, "cell_key LIKE 'p.%'")
        assert proposed and all(r["model_id"] == f"openai:{SERVED}" and r["status"] == "ok" for r in proposed)
        assert all("ascending order" in r["prompt"] and r["output_text"] for r in proposed)
        with RunLog(folder) as log:
            lineage = scores_for_runs(log, [r["id"] for r in proposed])
        for run in proposed:                           # each answer says what it became, and from which parent
            detail = lineage[run["id"]]["objective"].detail
            assert detail["parent"] == "plain" and detail["round"] == 1 and detail["reason"]
        spent = f"calls spent: proposer {len(proposed)}, generator "
        assert spent in done.stdout
        scored = runs(folder, "cell_key NOT LIKE 'p.%'")
        assert len(scored) == 10 and all(r["variant"] == "plain" for r in scored)      # the original, dev rows
        assert f"generator {len(scored)}" in done.stdout
    finally:
        stop(process)


ANSWERS = {(1, 1): "<PROMPT>Tagline: {{ product }}</PROMPT>",
           (1, 2): "<PROMPT>Write a tagline for {{ product }}, in a few words, please.</PROMPT>",
           (2, 1): "<PROMPT>Tagline: {{ product }}</PROMPT>",
           (2, 2): "<PROMPT>Write, for {{ product }}, one tagline of at most eight words.</PROMPT>"}


def test_a_killed_search_resumes_where_it_stopped_without_repeating_a_call(scripted, tmp_path, models_dir,
                                                                           text_model):
    scripted.reply = proposals(SimpleNamespace(seed=0), ANSWERS)
    folder = data_dir(tmp_path, models_dir)
    command = improve_command(folder, split_rows(tmp_path / "products.csv", 400), "openai:proposer", "--check",
                              "tokens:which=prompt,name=prompt-tokens", "--rows", "200", "--test-rows", "200",
                              "--param", "max_new_tokens=1", "--yes", "--quiet")
    env = {**environment(), "OPENAI_BASE_URL": f"http://127.0.0.1:{scripted.server_port}/v1",
           "OPENAI_API_KEY": "sk-scripted"}
    first = subprocess.Popen(command, env=env, cwd=ROOT, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                             stdin=subprocess.DEVNULL)
    deadline = time.monotonic() + 900
    while len(runs(folder, "cell_key NOT LIKE 'p.%'")) < 200 + 40:      # the original, then part of round 1
        assert first.poll() is None, first.stdout.read()
        assert time.monotonic() < deadline, "the search did not reach round 1"
        time.sleep(0.05)
    first.kill()
    first.wait()
    killed_at = len(runs(folder, "cell_key NOT LIKE 'p.%'"))
    assert 240 <= killed_at < 200 + 2 * 200 and len(scripted.seen) == 2          # midway through round 1
    again = subprocess.run(command, env=env, cwd=ROOT, capture_output=True, text=True, timeout=1800,
                           stdin=subprocess.DEVNULL)
    assert again.returncode == 0, again.stdout + again.stderr
    assert "(continuing" in again.stderr
    assert "held-out test" in again.stdout and "improved beats original on prompt-tokens by" in again.stdout
    assert len(scripted.seen) == 4                 # round 1's proposals were read back from the log, not asked again
    with RunLog(folder) as log:
        twice = log._db().execute("SELECT comparison_id, cell_key FROM runs GROUP BY comparison_id, cell_key "
                                  "HAVING count(*) > 1").fetchall()
    assert twice == []
    # the original, round 1's two candidates, round 2's one new candidate (the other repeats), the held-out pair
    assert len(runs(folder, "cell_key NOT LIKE 'p.%'")) == 200 + 2 * 200 + 200 + 2 * 200
    assert "calls spent: proposer 4, generator 1,200" in again.stdout
