"""Improve: the OPRO loop end to end with real generation and real checks behind a proposer at the edge of the
outside world (a scripted OpenAI-compatible server on 127.0.0.1), its honest held-out verdict, lineage in the log,
and the pieces it is made of (objective, candidate rules, meta-prompt, data, projection)."""

from __future__ import annotations

import csv
import http.server
import json
import threading
from pathlib import Path

import pytest

from playground.improve import api, plan_calls, project
from playground.improve.data import split_plan, values_rows
from playground.improve.meta import MetaPrompt, Tried, extract, judge
from playground.improve.score import term_value
from playground.improve.search import proposer_seed
from playground.improve.spec import ImproveSpec, parse_objective
from playground.jobs import JobWorker
from playground.registry import InvalidInput
from playground.scoring import comparison_summary
from playground.services import Services
from playground.store.scores import Score, scores_for_runs
from playground.templates import make_template
from tests.test_remote_faults import _chunk, _event, _start, answer

PRODUCTS = ["a solar lantern", "noise-cancelling headphones", "a reusable coffee cup", "a folding bicycle",
            "a smart thermostat", "a wool blanket", "a cast-iron pan", "a hiking backpack", "a desk lamp",
            "a water filter", "a pair of running shoes", "a fountain pen", "a yoga mat", "a camping stove",
            "a wireless charger", "a rain jacket", "a kitchen scale", "a travel mug", "a bird feeder", "a chess set"]


# ---- a scripted OpenAI-compatible server ------------------------------------------------------------------------------

class Scripted(http.server.BaseHTTPRequestHandler):
    """Chat completions, streamed as SSE: the server's `reply(body) -> text | (status, body)` decides each answer.
    Every request is kept (its model, seed and last message) in the order it arrived."""

    protocol_version = "HTTP/1.1"

    def do_POST(self):
        body = json.loads(self.rfile.read(int(self.headers.get("Content-Length") or 0)) or b"{}")
        server = self.server
        with server.lock:
            server.seen.append({"model": body.get("model"), "seed": body.get("seed"),
                                "prompt": body["messages"][-1]["content"] if body.get("messages") else ""})
            number = len(server.seen)
        hold = server.hold.get(number)
        if hold is not None:
            hold.arrived.set()
            hold.release.wait(60)
            self.close_connection = True
            return
        reply = server.reply(body)
        if isinstance(reply, tuple):
            answer(self, reply[0], reply[1])
            return
        _start(self)
        _event(self, reply)
        _event(self, None, "stop")
        _chunk(self, b"data: [DONE]\n\n")
        self.wfile.write(b"0\r\n\r\n")
        self.wfile.flush()

    def log_message(self, *args):
        pass


class Hold:
    def __init__(self):
        self.arrived, self.release = threading.Event(), threading.Event()


@pytest.fixture
def scripted():
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), Scripted)
    server.daemon_threads = True
    server.lock, server.seen, server.hold = threading.Lock(), [], {}
    server.reply = lambda body: "A tagline."
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield server
    for hold in server.hold.values():
        hold.release.set()
    server.shutdown()
    server.server_close()


def lab_services(tmp_path, settings, server, monkeypatch, models=("proposer",), **changes) -> Services:
    """Services on a fresh data dir whose endpoints.yaml names the scripted server `lab`."""
    monkeypatch.setenv("LAB_KEY", "sk-test-key")
    data = tmp_path / "data"
    data.mkdir(exist_ok=True)
    if not (data / "models").exists():
        (data / "models").symlink_to(settings.models_dir, target_is_directory=True)
    entry = {"name": "lab", "base_url": f"http://127.0.0.1:{server.server_port}/v1", "api_key_env": "LAB_KEY",
             "models": list(models), "max_concurrency": 1}
    (data / "endpoints.yaml").write_text(json.dumps({"endpoints": [entry]}))
    return Services.create(settings.replace(data_dir=data, remote_retries=0, **changes))


def products_csv(folder: Path, split: bool = False) -> Path:
    path = folder / "products.csv"
    with path.open("w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["product", "split"] if split else ["product"])
        for index, product in enumerate(PRODUCTS):
            writer.writerow([product, "dev" if index % 2 else "test"] if split else [product])
    return path


def tagline_template():
    return make_template(name="tagline", modality="text", description="One-line product taglines.",
                         variants={"plain": "Write a tagline for {{ product }}.",
                                   "role": "You are a copywriter. Write one tagline for {{ product }}."},
                         variables={"product": "a lantern"}, params={"max_new_tokens": 3})


def proposals(spec: ImproveSpec, answers: dict[tuple[int, int], str]):
    """A reply function: the proposer's answer for (round, candidate), found by the seed the search sends."""
    by_seed = {proposer_seed(spec, r, k): text for (r, k), text in answers.items()}

    def reply(body):
        if body.get("model") == "proposer":
            return by_seed.get(body.get("seed"), "I cannot help with that.")
        return "A tagline."
    return reply


def run_search(services, spec) -> api.SearchStatus:
    search = api.submit(services, spec)
    JobWorker(services, services.jobs).run_one(search.job.id)
    return api.status(services, search.id)


# ---- the loop keeps what truly scores best, and says honestly whether it is better ----------------------------------

PROMPT_TOKENS = {"type": "tokens", "which": "prompt", "name": "prompt-tokens"}


def test_the_loop_keeps_the_candidate_that_truly_scores_best_and_tests_it_on_held_out_rows(
        scripted, tmp_path, settings, monkeypatch):
    services = lab_services(tmp_path, settings, scripted, monkeypatch)
    dataset = services.datasets.add(products_csv(tmp_path, split=True))
    spec = api.build_spec(services, template=tagline_template(), variant="plain", dataset=dataset,
                          models=["tiny-text"], proposer="lab:proposer", checks=[PROMPT_TOKENS],
                          rows=4, test_rows=6, rounds=2, candidates=4)
    scripted.reply = proposals(spec, {
        (1, 1): "Here it is: <PROMPT>Please write, with great care and attention to every single detail, one short "
                "tagline for {{ product }}.</PROMPT>",
        (1, 2): "<PROMPT>Tagline: {{ product }}</PROMPT>",
        (1, 3): "<PROMPT>Write a tagline for {{ item }}.</PROMPT>",
        (1, 4): "<PROMPT>Write a tagline for {{ product }} aimed at {{ audience }}.</PROMPT>",
        (2, 1): "<PROMPT>Tagline: {{ product }}</PROMPT>",
        (2, 2): "<PROMPT>Write a slogan for {{ product }}, please.</PROMPT>"})
    found = run_search(services, spec)
    record = found.record
    assert found.status == "done", found.error
    by_name = {c.name: c for c in record.candidates}
    assert by_name["r1-c3"].status == "rejected" and "drops {{ product }}" in by_name["r1-c3"].reason
    assert "invents {{ audience }}" in by_name["r1-c4"].reason
    assert by_name["r2-c1"].reason == "repeats r1-c2"
    scored = [c for c in record.candidates if c.score is not None]
    truly_best = max(scored, key=lambda c: c.score)
    assert truly_best.name == "r1-c2" == record.best           # the shortest prompt: fewest prompt tokens
    assert record.best_score > record.original_score
    assert record.stopped == "stopped early: round 2 brought no gain"
    assert [r["round"] for r in record.by_round] == [0, 1, 2]
    test = record.test
    assert test["improved"] and test["clear"] and test["wins"] == test["pairs"] == 6
    assert test["sentence"].startswith("improved beats original on prompt-tokens by +")
    assert "better in 6 of 6 pairs" in test["sentence"]
    # the held-out rows were never searched on
    search_rows = {r["cell_key"].split(".")[0] for r in _runs(services, by_name["plain"].experiment)}
    test_rows = {r["cell_key"].split(".")[0] for r in _runs(services, test["experiment"])}
    assert search_rows and test_rows and not search_rows & test_rows
    # the statistics read from the log say the same as the search
    summary = comparison_summary(services.log, test["experiment"])
    assert next(m for m in summary.metrics if m.name == "objective").winner == "improved"
    assert record.calls == {"proposer": 8, "generator": 4 + 2 * 4 + 1 * 4 + 2 * 6}   # rejected ones cost no cell


def _runs(services, comparison_id: int) -> list:
    return services.log._db().execute("SELECT * FROM runs WHERE comparison_id = ?", (comparison_id,)).fetchall()


def test_every_candidate_and_cell_is_logged_with_its_lineage(scripted, tmp_path, settings, monkeypatch):
    services = lab_services(tmp_path, settings, scripted, monkeypatch)
    dataset = services.datasets.add(products_csv(tmp_path))        # no split column: a hash split
    spec = api.build_spec(services, template=tagline_template(), variant="plain", dataset=dataset,
                          models=["tiny-text"], proposer="lab:proposer", checks=[PROMPT_TOKENS], rows=3,
                          test_rows=3, rounds=1, candidates=2)
    scripted.reply = proposals(spec, {(1, 1): "<PROMPT>Tagline: {{ product }}</PROMPT>",
                                      (1, 2): "no block here"})
    found = run_search(services, spec)
    assert found.status == "done", found.error
    proposer_runs = _runs(services, found.id)
    assert [r["cell_key"] for r in proposer_runs] == ["p.r1.c1", "p.r1.c2"]
    first = proposer_runs[0]
    assert first["model_id"] == "lab:proposer" and first["seed"] == proposer_seed(spec, 1, 1)
    assert "ascending order" in first["prompt"] and "Write a tagline for {{ product }}." in first["prompt"]
    assert json.loads(first["params"])["temperature"] == 1.0
    lineage = scores_for_runs(services.log, [r["id"] for r in proposer_runs])
    kept, rejected = (lineage[r["id"]]["objective"] for r in proposer_runs)
    assert kept.detail["parent"] == "plain" and kept.detail["round"] == 1 and kept.value is not None
    assert kept.detail["experiment"] and rejected.detail["status"] == "rejected"
    assert "no <PROMPT>" in rejected.detail["reason"] and rejected.value is None
    experiment = kept.detail["experiment"]
    header = services.log.get_comparison_header(experiment)
    assert "proposer run #" in header.spec["experiment"]["template"]          # the round's template says how
    cells = _runs(services, experiment)
    assert cells and all(r["template_name"] == "tagline" and r["variant"] == "r1-c1" for r in cells)
    assert all("objective" in s for s in scores_for_runs(services.log, [r["id"] for r in cells]).values())
    titles = [c.title for c in services.log.list_comparisons(limit=20)]
    assert any("round 1" in t for t in titles) and any("held-out" in t for t in titles)
    saved = api.save_winner(services, found.id, name="tagline-better")
    assert saved.variants["plain-improved"] == "Tagline: {{ product }}"
    assert f"improve #{found.id}" in saved.notes and f"comparison #{found.record.test['experiment']}" in saved.notes
    assert "tagline-better" in services.reload_library().templates


# ---- bad luck and bad input ----------------------------------------------------------------------------------------

def test_a_refused_key_fails_the_round_with_its_reason_and_a_resume_tries_again(
        scripted, tmp_path, settings, monkeypatch):
    services = lab_services(tmp_path, settings, scripted, monkeypatch)
    dataset = services.datasets.add(products_csv(tmp_path, split=True))
    spec = api.build_spec(services, template=tagline_template(), variant="plain", dataset=dataset,
                          models=["tiny-text"], proposer="lab:proposer", checks=[PROMPT_TOKENS], rows=2,
                          test_rows=2, rounds=1, candidates=2)
    scripted.reply = lambda body: (401, {"error": {"message": "Incorrect API key provided", "type": "auth"}})
    found = run_search(services, spec)
    assert found.status == "failed"
    assert "every proposer call of round 1 failed" in found.error and "API key" in found.error
    assert found.record.calls["proposer"] == 2 and found.record.original_score is not None
    generated = found.record.calls["generator"]
    scripted.reply = proposals(spec, {(1, 1): "<PROMPT>Tagline: {{ product }}</PROMPT>"})
    found = run_search(services, spec)                                    # the same search, resumed
    assert found.status == "done" and found.record.best == "r1-c1"
    assert found.record.calls["proposer"] == 4                            # 2 refused + 2 answered, all counted
    assert found.record.calls["generator"] == generated + 2 + 2 * 2       # the original is not scored again


def test_bad_input_gets_a_message_that_says_what_to_change(scripted, tmp_path, settings, monkeypatch):
    services = lab_services(tmp_path, settings, scripted, monkeypatch)
    dataset = services.datasets.add(products_csv(tmp_path, split=True))
    common = dict(template=tagline_template(), variant="plain", dataset=dataset, models=["tiny-text"],
                  proposer="lab:proposer", checks=[PROMPT_TOKENS], rows=2, test_rows=2, rounds=1, candidates=2)
    with pytest.raises(InvalidInput, match="a budget of 0 calls runs nothing"):
        project(services, api.build_spec(services, **common, max_calls=0))
    with pytest.raises(InvalidInput, match="cannot pay for one round"):
        project(services, api.build_spec(services, **common, max_calls=5))
    with pytest.raises(ValueError, match="no rows in split 'dev'"):
        api.build_spec(services, **{**common, "dataset": services.datasets.add_rows(
            [{"product": p, "split": "train" if i % 2 else "test"} for i, p in enumerate(PRODUCTS)],
            name="no-dev")})
    with pytest.raises(InvalidInput, match="measurement with no better side"):
        api.build_spec(services, **{**common, "checks": [{"type": "length"}]})
    with pytest.raises(InvalidInput, match="cannot be loaded offline"):
        project(services, api.build_spec(services, **{**common, "template": make_template(
            name="fox", modality="image", variants={"bare": "{{ subject }}"}, variables={"subject": "a fox"}),
            "variant": "bare", "dataset": None, "models": ["tiny-image"],
            "checks": [{"type": "clip", "model": "openai/clip-vit-base-patch32"}]}))
    with pytest.raises(InvalidInput, match="proposer"):
        project(services, api.build_spec(services, **{**common, "proposer": "nowhere:model"}))


# ---- the parts -------------------------------------------------------------------------------------------------------

def test_objective_terms_and_cell_values():
    assert [(t.name, t.weight) for t in parse_objective("length*1 + contains=lantern*0.5")] == \
        [("length", 1.0), ("contains=lantern", 0.5)]
    for bad in ("", "length*", "length*0", "length*nan + x"):
        with pytest.raises(InvalidInput):
            parse_objective(bad)
    assert term_value(Score("c", 3.0, True)) == 1.0 and term_value(Score("c", 14.0, False)) == 0.0
    assert term_value(Score("s", 0.4, None, {"better": "higher"})) == 0.4
    assert term_value(Score("t", 12.0, None, {"better": "lower"})) == -12.0
    assert term_value(Score("m", 12.0, None, {"better": None})) is None


def test_a_candidate_keeps_the_variants_variables_or_is_rejected():
    template = tagline_template()
    earlier = {"plain": template.variants["plain"]}
    ok = judge("Sure!\n<PROMPT>One tagline for {{ product }}, five words.</PROMPT>", template, "plain", earlier, 8000)
    assert ok.text == "One tagline for {{ product }}, five words." and ok.reason is None
    cases = {"<PROMPT>A tagline.</PROMPT>": "drops {{ product }}",
             "<PROMPT>{{ product }} for {{ buyer }}</PROMPT>": "invents {{ buyer }}",
             "<PROMPT>Write a tagline   for {{ product }}.</PROMPT>": "repeats plain",
             "<PROMPT>{{ product </PROMPT>": "not a valid template",
             "<PROMPT>  </PROMPT>": "is empty", "just words": "no <PROMPT>"}
    for answer_, reason in cases.items():
        assert reason in judge(answer_, template, "plain", earlier, 8000).reason, answer_
    assert extract("<prompt>unclosed {{ product }}") == "unclosed {{ product }}"


def test_the_meta_prompt_lists_earlier_prompts_worst_first_within_its_length():
    meta = MetaPrompt(task="taglines", modality="image", variables=["subject"], objective="the CLIP score",
                      rows=6, tried=[Tried("b", "best {{ subject }}", 0.9), Tried("w", "worst {{ subject }}", 0.1),
                                     Tried("m", "middle {{ subject }}", 0.5)])
    text = meta.text(8000)
    assert text.index("worst") < text.index("middle") < text.index("best {{")
    assert "CLIP score" in text and "{{ subject }}" in text and "<PROMPT>" in text
    short = meta.text(len(text) - 5)
    assert "worst {{" not in short and "best {{" in short


def test_data_for_images_is_values_and_a_split_is_made_when_missing():
    template = make_template(name="fox", modality="image", variants={"a": "{{ subject }} in {{ place }}"},
                             variables={"subject": "a fox", "place": "a forest"})
    assert values_rows(template) == [{"subject": "a fox", "place": "a forest"}]
    assert values_rows(template, {"subject": ["a cat", "a dog"]}) == [
        {"subject": "a cat", "place": "a forest"}, {"subject": "a dog", "place": "a forest"}]

    class Info:
        column_names = ["product"]
    shares, note = split_plan(Info(), "dev", "test")
    assert shares == {"dev": 0.5, "test": 0.5} and "hash" in note
    with pytest.raises(ValueError, match="held out"):
        ImproveSpec.parse({**_spec_data(), "search_split": "test"})


def _spec_data() -> dict:
    template = tagline_template()
    return {"template": template.text, "template_name": "tagline", "template_hash": template.hash, "variant": "plain",
            "modality": "text", "dataset": "0" * 64, "models": ["tiny-text"], "objective": [{"name": "length"}],
            "proposer": "tiny-text"}


def test_the_projection_counts_every_call_and_the_budget_decides_the_rounds():
    spec = ImproveSpec.parse({**_spec_data(), "rows": 10, "test_rows": 20, "rounds": 3, "candidates": 4,
                              "models": ["tiny-text", "lab:m"]})
    calls = plan_calls(spec)
    assert (calls.proposer, calls.original, calls.candidates, calls.held_out) == (12, 20, 240, 80)
    assert calls.total == 352 and plan_calls(spec, 1).total == 12 // 3 + 20 + 80 + 80


def test_a_proposer_with_nothing_usable_ends_the_search_with_its_calls_counted(
        scripted, tmp_path, settings, monkeypatch):
    services = lab_services(tmp_path, settings, scripted, monkeypatch)
    dataset = services.datasets.add(products_csv(tmp_path, split=True))
    spec = api.build_spec(services, template=tagline_template(), variant="plain", dataset=dataset,
                          models=["tiny-text"], proposer="lab:proposer", checks=[PROMPT_TOKENS], rows=2,
                          test_rows=2, rounds=3, candidates=2)
    scripted.reply = lambda body: "" if body.get("seed") % 2 else "<PROMPT>no variable here</PROMPT>"
    found = run_search(services, spec)
    assert found.status == "done", found.error
    assert {c.reason for c in found.record.candidates if c.round == 1} == {
        "no <PROMPT>…</PROMPT> block in the answer", "drops {{ product }}"}
    assert "round 1: no usable candidate (every answer was rejected)" in found.record.notes
    assert found.record.stopped == "stopped early: round 1 brought no gain" and found.record.test is None
    assert found.record.calls == {"proposer": 2, "generator": 2}     # the original's 2 cells; no held-out test
    with pytest.raises(ValueError, match="no winner to save: no candidate beat the original"):
        api.save_winner(services, found.id)


def test_limits_are_settings_enforced_where_every_search_is_projected(scripted, tmp_path, settings, monkeypatch):
    services = lab_services(tmp_path, settings, scripted, monkeypatch, max_improve_candidates=2,
                            max_improve_rows=3, max_improve_calls=30)
    dataset = services.datasets.add(products_csv(tmp_path, split=True))
    common = dict(template=tagline_template(), variant="plain", dataset=dataset, models=["tiny-text"],
                  proposer="lab:proposer", checks=[PROMPT_TOKENS], rows=2, test_rows=2, rounds=1, candidates=2)
    assert project(services, api.build_spec(services, **common)).calls.total == 2 + 2 + 4 + 4
    for changes, message in (({"candidates": 3}, "candidates: at most 2 per round"),
                             ({"rows": 4}, "rows: 4 rows; at most 3"),
                             ({"rounds": 5}, "max_improve_calls")):
        with pytest.raises(InvalidInput, match=message):
            project(services, api.build_spec(services, **{**common, **changes}))
    assert project(services, api.build_spec(services, **{**common, "rounds": 5, "max_calls": 30})).rounds == 4


def test_a_bare_check_naming_one_of_the_templates_selects_it():
    template = make_template(name="t", modality="text", variants={"plain": "Say {{ x }}."}, variables={"x": "hi"},
                             checks=[{"type": "length", "unit": "words", "max": 12}])
    added, given = api._own_checks(template, [{"type": "length"}])
    assert (added, given) == ([], ["length"])
    added, given = api._own_checks(template, [{"type": "length", "max": 5, "name": "short"}])
    assert added == [{"type": "length", "max": 5, "name": "short"}] and given == ["short"]


@pytest.mark.slow
@pytest.mark.parametrize("modality, template, check, reward", [
    ("image", make_template(name="fox", modality="image", variants={"bare": "{{ subject }}"},
                            variables={"subject": "a fox"},
                            params={"num_inference_steps": 2, "width": 64, "height": 64}),
     {"type": "hue", "color": "red"}, "how close the image's main colour is"),
    ("music", make_template(name="riff", modality="music", variants={"bare": "{{ style }}"},
                            variables={"style": "calm piano"},
                            params={"duration_s": 0.5}),
     {"type": "clap"}, "the CLAP score")])
def test_images_and_music_search_values_x_seeds_and_test_on_new_seeds(
        scripted, tmp_path, settings, monkeypatch, modality, template, check, reward):
    services = lab_services(tmp_path, settings, scripted, monkeypatch)
    variable = next(iter(template.variables))
    spec = api.build_spec(services, template=template, variant="bare", models=[f"tiny-{modality}"],
                          proposer="lab:proposer", checks=[check], rounds=1, candidates=2,
                          values={variable: ["one", "two"]})
    assert (spec.held_out, spec.seeds, spec.test_seeds) == ("seeds", [1, 2], [3, 4, 5, 6])
    scripted.reply = proposals(spec, {(1, 1): f"<PROMPT>{{{{ {variable} }}}}, bright red, vivid</PROMPT>",
                                      (1, 2): f"<PROMPT>{{{{ {variable} }}}} in deep blue</PROMPT>"})
    found = run_search(services, spec)
    assert found.status == "done", found.error
    assert reward in scripted.seen[0]["prompt"]                   # the proposer is told what the reward is
    scored = [c for c in found.record.candidates if c.score is not None]
    assert len(scored) == 3 and all(c.cells == 2 * 2 for c in scored)        # 2 values x 2 seeds each
    best = max(scored, key=lambda c: c.score)
    assert found.record.best == best.name
    if best.name != "bare":
        test_runs = _runs(services, found.record.test["experiment"])
        assert {r["seed"] for r in test_runs} == {3, 4, 5, 6} and len(test_runs) == 2 * 2 * 4
