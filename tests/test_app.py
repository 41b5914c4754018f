"""The served app on tiny models: start-up stays light, and every public endpoint answers through gradio_client."""

from __future__ import annotations

import json
import re
import subprocess
import sys
import zipfile
from pathlib import Path

import pytest

ROOT = Path(__file__).resolve().parent.parent
pytestmark = pytest.mark.slow


def test_building_the_app_imports_no_model_library():
    code = ("import sys; from playground.settings import Settings; from playground.ui.app import build_app; "
            "import tempfile; build_app(Settings(data_dir=tempfile.mkdtemp(), offline=True)); "
            "print(sorted(m for m in ('torch', 'transformers', 'diffusers') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"


@pytest.fixture(scope="module")
def client(served_app):
    from gradio_client import Client

    return Client(served_app.url, verbose=False)


def test_list_and_render_templates(client):
    templates = client.predict("text", api_name="/list_templates")
    assert len(templates) >= 8 and all(t["modality"] == "text" for t in templates)
    name = templates[0]["name"]
    prompts = client.predict(name, None, api_name="/render_template")
    assert len(prompts) == len(templates[0]["variants"]) and all(p["prompt"] for p in prompts)


@pytest.mark.parametrize("modality, params", [
    ("text", {"max_new_tokens": 6}),
    ("image", {"width": 64, "height": 64, "num_inference_steps": 2}),
    ("music", {"duration_s": 0.5}),
])
def test_compare_each_modality(client, modality, params):
    template = client.predict(modality, api_name="/list_templates")[0]
    result = client.predict(template["name"], None, None, None, [1], params, False, api_name="/compare")
    runs = result["runs"]
    assert len(runs) == len(template["variants"]) and all(r["status"] == "ok" for r in runs)
    if modality == "text":
        assert all(isinstance(r["text"], str) for r in runs)
    else:
        assert all(r["file"].endswith(".png" if modality == "image" else ".wav") for r in runs)
    again = client.predict(result["comparison_id"], api_name="/comparison")
    assert [r["run_id"] for r in again["runs"]] == [r["run_id"] for r in runs]


def test_rate_history_and_export(client, served_app):
    template = client.predict("text", api_name="/list_templates")[1]
    result = client.predict(template["name"], None, None, None, [4], {"max_new_tokens": 4}, False,
                            api_name="/compare")
    run_id = result["runs"][0]["run_id"]
    rated = client.predict(run_id, 4, None, "crisp", api_name="/rate")
    assert rated["stars"] == 4 and rated["note"] == "crisp"
    history = client.predict("text", template["name"], "", 100, api_name="/history")
    assert any(r["run_id"] == run_id and r["stars"] == 4 for r in history)
    exported = client.predict(result["comparison_id"], "zip", api_name="/export_comparison")
    with zipfile.ZipFile(exported) as archive:
        rows = [json.loads(line) for line in archive.read("runs.jsonl").decode().splitlines()]
    assert {row["variant"] for row in rows} == set(template["variants"])


@pytest.mark.parametrize("args, message", [
    (("no-such-template", None, None, None, [1], {}, False), "no-such-template"),
    (("{text}", None, None, ["nobody/nothing"], [1], {}, False), "hub is offline"),
    (("{text}", None, None, None, [1], {"max_new_tokens": 10**9}, False), "max_new_tokens"),
    (("{text}", None, None, None, [-1], {}, False), "seed"),
    (("{image}", None, None, ["tiny-text"], [1], {}, False), "is a text model"),
    (("{image}", None, None, None, [1], {"width": 100000}, False), "width"),
    (("{music}", None, None, None, [1], {"duration_s": 600}, False), "duration_s"),
])
def test_bad_input_gets_a_clear_error_and_the_app_keeps_serving(client, args, message):
    from gradio_client.exceptions import AppError

    names = {m: client.predict(m, api_name="/list_templates")[0]["name"] for m in ("text", "image", "music")}
    args = (args[0].format(**names),) + args[1:]
    with pytest.raises(AppError, match=message):
        client.predict(*args, api_name="/compare")
    assert client.predict("music", api_name="/list_templates")


PUBLIC = ["/compare", "/list_templates", "/render_template", "/comparison", "/stats", "/history", "/rate", "/pick_winner",
          "/variant_summary", "/save_template", "/export_comparison", "/export_template", "/import_runs",
          "/dataset_add", "/dataset_rows", "/experiment_start", "/experiment_status", "/experiment_list",
          "/experiment_control", "/experiment_results", "/experiment_compare", "/experiment_rerun",
          "/experiment_export", "/improve_plan", "/improve_start", "/improve_status", "/improve_searches",
          "/improve_pause", "/improve_resume", "/improve_cancel", "/improve_save", "/vote_pair", "/vote_cast"]


def test_the_api_is_the_documented_endpoints_only(client):
    info = client.view_api(print_info=False, return_format="dict")
    assert list(info["named_endpoints"]) == PUBLIC          # /compare first: "Use via API" opens on it
    assert info["unnamed_endpoints"] == {}
    for name, endpoint in info["named_endpoints"].items():
        names = [p["parameter_name"] for p in endpoint["parameters"]]
        assert all(n and not re.fullmatch(r"param(eter)?_\d+", n) for n in names), (name, names)


def test_compare_streams_progress_then_the_whole_comparison(client):
    job = client.submit(template="product-tagline", seeds=[1, 2], params={"max_new_tokens": 4}, rerun=True,
                        api_name="/compare")
    updates = list(job)
    final = job.result()
    running = [u for u in updates if u.get("status") == "running"]
    assert running and all(u["total"] == len(final["runs"]) and u["stage"] for u in running)
    assert final["comparison_id"] == running[-1]["comparison_id"] and final["run_count"] == len(final["runs"])
    assert all(r["status"] == "ok" for r in final["runs"])


@pytest.mark.parametrize("endpoint, kwargs, message", [
    ("/compare", {"template": "product-tagline", "seeds": [True]}, "whole number"),
    ("/compare", {"template": "product-tagline", "seeds": [1.5]}, "whole number"),
    ("/compare", {"template": "product-tagline", "models": "tiny-text"}, "list of strings"),
    ("/compare", {"template": "product-tagline", "models": ["x" * 10_000]}, "limit is 300"),
    ("/compare", {"template": "product-tagline", "rerun": 1}, "true or false"),
    ("/compare", {"template": "product-tagline", "values": {"product": True}}, "text or a list"),
    ("/comparison", {"comparison_id": 2**70}, "between"),
    ("/comparison", {"comparison_id": "abc"}, "whole number"),
    ("/comparison", {"comparison_id": 10**9}, "no comparison"),
    ("/rate", {"run_id": True, "stars": 3}, "whole number"),
    ("/rate", {"run_id": 1, "stars": 2.5}, "whole number"),
    ("/history", {"limit": 10**20}, "between"),
    ("/pick_winner", {"comparison_id": 1, "run_id": 2**70}, "between"),
    ("/export_comparison", {"comparison_id": 1.5, "fmt": "zip"}, "whole number"),
    ("/export_comparison", {"comparison_id": 1, "fmt": "exe"}, "jsonl, csv, zip"),
])
def test_bad_types_get_a_clear_error(client, endpoint, kwargs, message):
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError, match=message):
        client.predict(api_name=endpoint, **kwargs)


def _raw_call(served_app, endpoint: str, body: str) -> str:
    import httpx

    started = httpx.post(f"{served_app.url}gradio_api/call/{endpoint}", content=body,
                         headers={"content-type": "application/json"}, timeout=30)
    assert started.status_code == 200, started.text
    return httpx.get(f"{served_app.url}gradio_api/call/{endpoint}/{started.json()['event_id']}", timeout=60).text


@pytest.mark.parametrize("endpoint, body, message", [
    ("compare", '{"data": ["product-tagline", null, null, null, [NaN], null, false, null]}', "whole number"),
    ("compare", '{"data": ["product-tagline", null, null, null, [Infinity], null, false, null]}', "whole number"),
    ("compare", '{"data": ["product-\\ud800", null, null, null, null, null, false, null]}', "lone surrogate"),
    ("rate", '{"data": [1, null, null, "\\udfff"]}', "lone surrogate"),
    ("comparison", '{"data": [NaN, 0, 10]}', "whole number"),
])
def test_raw_json_only_other_clients_send_gets_a_clear_error(served_app, endpoint, body, message):
    """gradio_client will not send NaN or lone surrogates, but any HTTP client can."""
    stream = _raw_call(served_app, endpoint, body)
    assert "event: error" in stream and message in stream, stream


def test_the_grids_own_calls_answer_bad_payloads_in_words(served_app):
    """The rating and winner functions the page calls: any JSON gets {ok: false, error}, never an HTTP 500."""
    import httpx

    grid_id = next(block_id for block_id, block in served_app.blocks.items()
                   if getattr(block, "elem_id", None) == "text-grid")
    for fn_name, data in [("rate_cell", {"run": 2**70, "stars": 3}), ("rate_cell", {"run": True, "stars": 1}),
                          ("rate_cell", {"run": 1, "stars": "5"}), ("rate_cell", "not a dict"),
                          ("pick_winner", {"comparison": 1.5, "run": 1}),
                          ("pick_winner", {"comparison": 10**9, "run": 10**9})]:
        response = httpx.post(f"{served_app.url}gradio_api/component_server/",
                              json={"data": data, "component_id": grid_id, "fn_name": fn_name,
                                    "session_hash": "boundary-test"}, timeout=30)
        assert response.status_code == 200, (data, response.text)
        answer = response.json()
        assert answer["ok"] is False and answer["error"], (data, answer)


def test_exports_come_back_as_files_and_are_not_served_by_name(client, served_app):
    import httpx

    result = client.predict(template="product-tagline", seeds=[3], params={"max_new_tokens": 4},
                            api_name="/compare")
    downloaded = client.predict(comparison_id=result["comparison_id"], fmt="csv", api_name="/export_comparison")
    assert Path(downloaded).read_text(encoding="utf-8").startswith("run_id") or "variant" in Path(downloaded).read_text()
    data_dir = served_app.services.settings.data_dir
    assert not (data_dir / "exports").exists()
    from playground.ui.app import launch_kwargs
    from playground.ui.exports import EXPORT_ROOT

    assert all("export" not in p for p in launch_kwargs(served_app.services.settings)["allowed_paths"])
    written = sorted(EXPORT_ROOT.glob(f"*/comparison-{result['comparison_id']}-*.csv"))
    assert written, "the export is written to the private folder"
    response = httpx.get(f"{served_app.url}gradio_api/file={written[-1]}", timeout=30)
    assert response.status_code in (403, 404)
    template_file = client.predict(template="product-tagline", api_name="/export_template")
    assert "name: product-tagline" in Path(template_file).read_text(encoding="utf-8")


def test_errors_do_not_disclose_server_paths(client, served_app):
    from gradio_client.exceptions import AppError

    with pytest.raises(AppError) as caught:
        client.predict(template="product-tagline", models=["/etc/no-such-model-folder"], api_name="/compare")
    assert "/etc/" not in str(caught.value)
    assert str(served_app.services.settings.data_dir) not in str(caught.value)


def test_a_refused_call_logs_one_line_and_a_server_fault_its_traceback(client, served_app, capfd, caplog,
                                                                       monkeypatch):
    import logging

    from gradio_client.exceptions import AppError

    caplog.set_level(logging.INFO, logger="playground.ui")
    capfd.readouterr()
    with pytest.raises(AppError, match="no template named"):
        client.predict("no-such-template", api_name="/render_template")
    with pytest.raises(AppError, match="comparison_id: must be"):
        client.predict(0, api_name="/stats")
    with pytest.raises(AppError, match="no comparison #999999"):
        client.predict(999999, api_name="/comparison")
    assert "Traceback" not in capfd.readouterr().err
    refused = [r for r in caplog.records if "refused" in r.getMessage()]
    assert len(refused) == 3 and not any(r.exc_info for r in refused), [r.getMessage() for r in refused]
    assert "render_template refused: no template named 'no-such-template'" in refused[0].getMessage()

    def broken(*args, **kwargs):
        raise RuntimeError("a bug of the server's own")

    monkeypatch.setattr(served_app.services.log, "variant_summary", broken)
    with pytest.raises(AppError, match="Something went wrong"):
        client.predict(api_name="/variant_summary")
    faults = [r for r in caplog.records if r.exc_info and r.exc_info[0] is RuntimeError]
    assert len(faults) == 1 and "variant_summary" in faults[0].getMessage()
    assert capfd.readouterr().err.count("Traceback") == 0     # logged once, by the log record above


def test_mcp_tools_have_meaningful_names_and_descriptions(settings, catalog):
    import httpx

    from playground.services import Services
    from playground.ui.app import build_app, launch_kwargs
    from tests.conftest import _free_port

    pytest.importorskip("mcp")
    demo = build_app(settings, Services.create(settings, catalog=catalog))
    demo.launch(server_name="127.0.0.1", server_port=_free_port(), prevent_thread_lock=True, quiet=True,
                mcp_server=True, **launch_kwargs(settings))
    try:
        tools = httpx.get(f"{demo.local_url}gradio_api/mcp/schema", timeout=60).json()
    finally:
        demo.close()
    names = [tool["name"] for tool in tools]
    assert names == [p.lstrip("/") for p in PUBLIC]
    for tool in tools:
        assert len(tool["description"]) > 30, tool
        assert "lambda" not in tool["name"] and not tool["name"][-1].isdigit()


def test_history_search_matches_word_beginnings(client):
    result = client.predict(template="product-tagline", values={"product": "a solar-powered lantern"},
                            seeds=[5], params={"max_new_tokens": 4}, api_name="/compare")
    run_ids = {r["run_id"] for r in result["runs"]}
    for query in ("lant", "LANTERN", "solar lant", 'lant"ern'):
        found = {r["run_id"] for r in client.predict(query=query, limit=1000, api_name="/history")}
        assert run_ids <= found or query == 'lant"ern', query
    assert not client.predict(query="lanternfish", limit=10, api_name="/history")


def test_a_run_shows_its_stage_and_wall_time_before_the_first_event(served_app):
    """The first redraw comes before the runner has said anything (a model may be loading)."""
    import threading

    from playground.spec import build_spec
    from playground.ui.streaming import stream_grid

    services = served_app.services
    spec = build_spec(services.library.get("product-tagline"), models=["tiny-text"], seeds=[11],
                      params={"max_new_tokens": 3}, rerun=True)
    waits_for = {"load": "loading tiny-text", None: "starting"}[
        services.catalog.preparing("text", "tiny-text")]            # loaded already when another test ran first
    frames = [html for html, _, _ in stream_grid(services, "text", spec, threading.Event(), {})]
    assert waits_for in frames[0] and "0 / 3 cells" in frames[0]
    assert "done in" in frames[-1] and "3 / 3 cells" in frames[-1]


def test_history_opens_a_huge_comparison_one_page_at_a_time(tmp_path, catalog):
    from playground.services import Services
    from playground.settings import Settings
    from playground.store import RunRecord
    from playground.ui.history import PAGE_CELLS, render_page

    services = Services.create(Settings(data_dir=tmp_path, offline=True), catalog=catalog)
    comparison_id = services.log.start_comparison("text", "imported giant")
    for i in range(1500):
        services.log.add_run(RunRecord(modality="text", model_id="tiny-text", prompt=f"p{i}", seed=i, params={},
                                       comparison_id=comparison_id, row=i // 3, col=i % 3, variant=f"v{i % 3}",
                                       output_text=f"out {i}"))
    html_, shown_id, typed, page = render_page(services, f"#{comparison_id}", 0)
    assert shown_id == comparison_id and typed == str(comparison_id) and page == 0
    assert html_.count('class="pp-cell ') == PAGE_CELLS and "of 1,500" in html_ and len(html_) < 200_000
    html_, _, _, page = render_page(services, comparison_id, 10**6)       # past the end: the last page
    assert page == -(-1500 // PAGE_CELLS) - 1 and "out 1499" in html_
    with pytest.raises(ValueError, match="comparison number"):
        render_page(services, "12; DROP TABLE runs", 0)


def test_import_runs_takes_a_file_and_reports(client):
    from gradio_client import handle_file

    result = client.predict(template="product-tagline", seeds=[8], params={"max_new_tokens": 3}, api_name="/compare")
    exported = client.predict(comparison_id=result["comparison_id"], fmt="jsonl", api_name="/export_comparison")
    report = client.predict(file=handle_file(exported), api_name="/import_runs")
    assert isinstance(report["imported"], int) and report["errors"] == []
    saved = client.predict(text=Path(client.predict(template="product-tagline", api_name="/export_template"))
                           .read_text(encoding="utf-8").replace("name: product-tagline", "name: my-copy"),
                           api_name="/save_template")
    assert saved["name"] == "my-copy"
    again = client.predict(text=Path(client.predict(template="my-copy", api_name="/export_template"))
                           .read_text(encoding="utf-8"), overwrite=True, api_name="/save_template")
    assert again["name"] == "my-copy"


def test_compare_carries_scores_and_stats_says_who_wins(client):
    result = client.predict("product-tagline", None, None, ["tiny-text"], [1, 2, 3], {"max_new_tokens": 4}, True,
                            [{"type": "latency"}], api_name="/compare")
    # The template's own check (length) and the caller's (latency), on every cell.
    assert all(set(run["scores"]) == {"length", "latency"} for run in result["runs"])
    summary = client.predict(result["comparison_id"], api_name="/stats")
    assert {m["name"] for m in summary["metrics"]} >= {"length", "latency"}
    assert summary["variants"] and summary["cells"] == len(result["runs"])
    with pytest.raises(Exception, match="check"):
        client.predict("product-tagline", None, None, ["tiny-text"], [1], None, False, [{"type": "nope"}],
                       api_name="/compare")


def test_a_pages_stop_flag_is_forgotten_when_its_run_ends():
    from playground.ui.streaming import cancel_flag, stop_run

    flags: dict = {}
    with cancel_flag(flags, "page-1") as flag:
        stop_run(flags, "page-1")
        assert flag.is_set()
    stop_run(flags, "page-1")               # Stop after the run ended: nothing to stop, nothing kept
    assert flags == {}
