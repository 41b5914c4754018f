"""A served app in public mode (PLAYGROUND_PUBLIC=1) on the session's tiny models, and visitors to it: separate
gradio_client sessions, each one a stranger to the others. Test modules import both fixtures from here."""

from __future__ import annotations

import pytest

from conftest import _free_port


@pytest.fixture(scope="module")
def public_app(settings, catalog, tmp_path_factory):
    from playground.services import Services
    from playground.ui.app import build_app, launch_kwargs

    data = tmp_path_factory.mktemp("public")
    (data / "models").symlink_to(settings.models_dir, target_is_directory=True)
    public = settings.replace(data_dir=data, public=True)
    demo = build_app(public, Services.create(public, catalog=catalog))
    demo.launch(server_name="127.0.0.1", server_port=_free_port(), prevent_thread_lock=True, quiet=True,
                **launch_kwargs(public))
    yield demo
    demo.close()


@pytest.fixture
def visitor(public_app):
    """A new visitor: a gradio_client session of its own."""
    from gradio_client import Client

    return lambda: Client(public_app.local_url, verbose=False)
