"""Every public endpoint as an MCP tool: each has a typed input schema, and each can be called through an MCP
client session (the `mcp` package's own client, over Gradio's streamable HTTP transport)."""

from __future__ import annotations

import ast
import asyncio

import pytest

from conftest import _free_port

pytestmark = pytest.mark.slow
mcp = pytest.importorskip("mcp")


@pytest.fixture(scope="module")
def mcp_app(settings, catalog, tmp_path_factory):
    from playground.services import Services
    from playground.ui.app import build_app, launch_kwargs

    data = tmp_path_factory.mktemp("mcp")
    (data / "models").symlink_to(settings.models_dir, target_is_directory=True)
    own = settings.replace(data_dir=data)
    demo = build_app(own, Services.create(own, catalog=catalog))
    demo.launch(server_name="127.0.0.1", server_port=_free_port(), prevent_thread_lock=True, quiet=True,
                mcp_server=True, **launch_kwargs(own))
    yield demo
    demo.close()


def typed(schema: dict) -> bool:
    """A property schema that says what to send (an empty one, `{}`, accepts anything and tells a client nothing)."""
    if "anyOf" in schema or "oneOf" in schema:
        return all(typed(option) for option in schema.get("anyOf", schema.get("oneOf")))
    return bool(schema.get("type") or schema.get("enum") or schema.get("const") is not None)


def answer(result):
    assert not result.isError, result.content
    text = result.content[-1].text
    try:
        return ast.literal_eval(text)
    except (ValueError, SyntaxError):
        return text


async def call_every_tool(url: str, file_url) -> dict:
    from mcp import ClientSession
    from mcp.client.streamable_http import streamablehttp_client

    called = {}
    # Generous timeouts: a shared, busy machine may take a while to load the model for the first comparison.
    async with streamablehttp_client(url, timeout=300, sse_read_timeout=600) as (read, write, _), \
            ClientSession(read, write) as session:
        await session.initialize()
        tools = {tool.name: tool for tool in (await session.list_tools()).tools}
        called["schemas"] = {name: tool.inputSchema for name, tool in tools.items()}

        async def call(name: str, **arguments):
            called[name] = answer(await session.call_tool(name, arguments))
            return called[name]

        await call("list_templates", modality="text")
        await call("render_template", template="product-tagline", values={"product": "a kettle"})
        result = await call("compare", template="product-tagline", models=["tiny-text"], seeds=[3],
                            params={"max_new_tokens": 3})
        comparison_id, run_id = result["comparison_id"], result["runs"][0]["run_id"]
        await call("comparison", comparison_id=comparison_id, offset=0, limit=10)
        await call("stats", comparison_id=comparison_id)
        await call("history", modality="text", query="", limit=5, offset=0)
        await call("rate", run_id=run_id, stars=4, note="via mcp")
        await call("pick_winner", comparison_id=comparison_id, run_id=run_id)
        await call("variant_summary", template="product-tagline")
        exported = await call("export_comparison", comparison_id=comparison_id, fmt="jsonl")
        template_file = await call("export_template", template="product-tagline")
        await call("save_template", text=file_url(template_file).replace("name: product-tagline", "name: mcp-copy"),
                   overwrite=True)
        await call("import_runs", file=exported)
        dealt = await call("vote_pair", comparison_id=comparison_id, voter="mcp")
        await call("vote_cast", token=dealt["token"], choice="A", voter="mcp", reason="")
        await call_improve_tools(session, call, called)
    return called


async def call_improve_tools(session, call, called: dict) -> None:
    """A search from start to cancel (the app's job threads are held, so it waits queued between the calls)."""
    search = {"template": "product-tagline", "variant": "plain", "proposer": "tiny-text", "models": ["tiny-text"],
              "data": [{"product": f"thing {i}", "split": "dev" if i % 2 else "test"} for i in range(6)],
              "rows": 2, "test_rows": 2, "rounds": 1, "candidates": 1, "params": {"max_new_tokens": 2}}
    await call("improve_plan", search=search)
    started = await call("improve_start", search=search)
    await call("improve_status", search_id=started["id"])
    await call("improve_searches")
    await call("improve_pause", search_id=started["id"])
    await call("improve_resume", search_id=started["id"])
    await call("improve_cancel", search_id=started["id"])
    saved = await session.call_tool("improve_save", {"search_id": started["id"]})
    called["improve_save"] = saved.isError and saved.content[-1].text


def test_every_mcp_tool_has_a_typed_schema_and_answers_a_call(mcp_app, monkeypatch):
    import httpx
    from gradio import processing_utils

    from tests.test_app import PUBLIC

    # The file tool fetches its input by URL; here that URL is this test's own server on localhost, which Gradio's
    # SSRF guard refuses: let it fetch like any client.
    monkeypatch.setattr(processing_utils, "async_transport", httpx.AsyncHTTPTransport())
    mcp_app.services.stop_jobs()          # searches wait, queued, for the improve tools' calls
    called = asyncio.run(call_every_tool(f"{mcp_app.local_url}gradio_api/mcp/",
                                         lambda url: httpx.get(url, timeout=30).text))
    schemas = called.pop("schemas")
    assert list(schemas) == [p.lstrip("/") for p in PUBLIC]
    for name, schema in schemas.items():
        untyped = [p for p, s in schema["properties"].items() if not typed(s)]
        assert not untyped, (name, untyped, schema)
    assert schemas["export_comparison"]["properties"]["comparison_id"]["type"] == "integer"
    assert set(called) == set(schemas)
    assert called["rate"]["stars"] == 4 and called["pick_winner"]["winner_run_id"] == called["rate"]["run_id"]
    assert called["import_runs"]["errors"] == [] and called["save_template"]["name"] == "mcp-copy"
    assert called["vote_cast"] == {"saved": True}
    assert called["improve_plan"]["total"] == 1 + 2 + 2 + 4 and called["improve_cancel"]["status"] == "cancelled"
    assert "has not finished" in called["improve_save"]
