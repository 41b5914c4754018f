"""Start Prompt Playground: `python app.py [--offline] [--port N] [--data-dir DIR]`."""

from __future__ import annotations

import argparse
import logging
import os
import sqlite3

from playground.settings import Settings


def parse_args(argv=None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(description="Prompt Playground: compare prompt variants side by side.")
    parser.add_argument("--offline", action="store_true", default=None,
                        help="never contact the model hub; use tiny local models (also HF_HUB_OFFLINE=1)")
    parser.add_argument("--data-dir", help="where the run log, media and your templates live")
    parser.add_argument("--host", default=os.environ.get("GRADIO_SERVER_NAME", "127.0.0.1"))
    parser.add_argument("--port", type=int, default=int(os.environ.get("GRADIO_SERVER_PORT", 7860)))
    parser.add_argument("--device", help="cuda, mps or cpu (default: the best available)")
    parser.add_argument("--mcp", action="store_true", help="also serve the API as MCP tools")
    return parser.parse_args(argv)


def main(argv=None) -> None:
    args = parse_args(argv)
    if args.mcp:
        import importlib.util

        if importlib.util.find_spec("mcp") is None:
            raise SystemExit("--mcp needs the MCP extra: pip install \"gradio[mcp]\"")
    # The server logs (start-up, model loads with timings, hub checks, failures) to stderr; PLAYGROUND_LOG_LEVEL
    # changes how much.
    logging.basicConfig(level=os.environ.get("PLAYGROUND_LOG_LEVEL", "INFO").upper(),
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("httpx").setLevel(logging.WARNING)     # Gradio's own start-up probes, one line each
    try:
        settings = Settings.from_env(offline=args.offline, data_dir=args.data_dir, device=args.device)
    except ValueError as error:
        raise SystemExit(f"error: {error}") from None
    from playground.ui.app import build_app, launch_kwargs   # after settings: keeps --help instant
    from playground.ui.errors import storage_message

    try:
        demo = build_app(settings)
    except (OSError, sqlite3.Error) as error:
        raise SystemExit(f"error: {storage_message(error, settings.data_dir, full_path=True)}") from None
    logging.getLogger("playground").info("data dir %s; models: %s", settings.data_dir,
                                         "offline tiny models" if demo.services.catalog.offline else "the Hub")
    demo.launch(server_name=args.host, server_port=args.port, mcp_server=args.mcp or None,
                **launch_kwargs(settings))


if __name__ == "__main__":
    main()
