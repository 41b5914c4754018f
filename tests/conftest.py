"""Shared fixtures: tiny models are built once per test session, offline, and loaded like real checkpoints."""

from __future__ import annotations

import os
from pathlib import Path

import pytest

# Tests never reach the hub: everything they load is built locally.
os.environ.setdefault("HF_HUB_OFFLINE", "1")
os.environ.setdefault("TRANSFORMERS_OFFLINE", "1")
os.environ.setdefault("HF_HUB_DISABLE_TELEMETRY", "1")


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory) -> Path:
    return tmp_path_factory.mktemp("models")


@pytest.fixture(scope="session")
def settings(tmp_path_factory, models_dir):
    from playground.settings import Settings

    data_dir = tmp_path_factory.mktemp("data")
    # Share the built tiny models across every data dir used in the session.
    (data_dir / "models").symlink_to(models_dir, target_is_directory=True)
    return Settings(data_dir=data_dir, offline=True, device="cpu", max_models_loaded=3)


@pytest.fixture(scope="session")
def catalog(settings):
    from playground.backends.catalog import Catalog

    return Catalog(settings)


@pytest.fixture(scope="session")
def text_backend(catalog):
    return catalog.get("text", "tiny-text")


@pytest.fixture(scope="session")
def image_backend(catalog):
    return catalog.get("image", "tiny-image")


@pytest.fixture(scope="session")
def music_backend(catalog):
    return catalog.get("music", "tiny-music")


def _free_port() -> int:
    import socket

    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


@pytest.fixture(scope="session")
def served_app(settings, catalog):
    """The real app on localhost, on the session's tiny models, for gradio_client and browser tests."""
    from playground.services import Services
    from playground.ui.app import build_app, launch_kwargs

    demo = build_app(settings, Services.create(settings, catalog=catalog))
    demo.launch(server_name="127.0.0.1", server_port=_free_port(), prevent_thread_lock=True, quiet=True,
                **launch_kwargs(settings))
    demo.url = demo.local_url
    yield demo
    demo.close()
