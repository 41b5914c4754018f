"""What the server keeps to itself: the key that signs browser ids never reaches a page, a public deployment loads
(and so probes) no local folder outside its model roots, and no absolute server path reaches a page or an export."""

from __future__ import annotations

import urllib.request

import pytest

from public_mode import public_app, visitor  # noqa: F401 (fixtures)

from playground.registry import InvalidInput
from playground.settings import Settings


@pytest.mark.slow
def test_the_browser_id_key_is_not_in_the_page_config(public_app):
    from playground.visitors import browser_state_secret

    secret = browser_state_secret(public_app.services.settings.data_dir)
    config = urllib.request.urlopen(public_app.local_url.rstrip("/") + "/config", timeout=30).read().decode()
    assert '"secret"' in config                      # Gradio's BrowserState publishes what it is given...
    assert secret not in config                      # ...which is not the key


@pytest.fixture
def public_catalog(tmp_path):
    from playground.engines.catalog import Catalog

    settings = Settings(data_dir=tmp_path / "data", offline=True, public=True)
    return Catalog(settings, offline=True)


def test_a_public_deployment_loads_no_folder_outside_its_models(public_catalog, tmp_path):
    holds_model = tmp_path / "elsewhere" / "model"
    holds_model.mkdir(parents=True)
    (holds_model / "config.json").write_text('{"architectures": ["LlamaForCausalLM"]}')
    (tmp_path / "empty").mkdir()
    messages = set()
    for folder in (holds_model, tmp_path / "empty", tmp_path / "missing", "/etc"):
        with pytest.raises(InvalidInput) as caught:
            public_catalog.resolve("text", str(folder))
        messages.add(str(caught.value).replace(str(folder), "<folder>"))
    assert len(messages) == 1 and "model roots" in messages.pop()          # one answer: nothing to probe


def test_a_scorer_model_keeps_to_the_roots_and_shows_no_server_path(settings, catalog, tmp_path):
    from playground.runner import Runner
    from playground.spec import build_spec
    from playground.store import RunLog
    from playground.templates import make_template

    public = settings.replace(data_dir=tmp_path / "data", public=True)
    template = make_template(name="pics", modality="image", variants={"a": "a red fox"})
    outside = tmp_path / "clip"
    outside.mkdir()
    with RunLog(public.data_dir) as log:
        runner = Runner(catalog, log, public)
        for model in (str(outside), "/etc", "../../etc"):
            spec = build_spec(template, models=["tiny-image"], seeds=[1], checks=[{"type": "clip", "model": model}])
            with pytest.raises(InvalidInput, match="model roots"):
                runner.check(spec)
        local = Runner(catalog, log, settings)          # local use loads folders anywhere, but never a URL
        spec = build_spec(template, models=["tiny-image"], seeds=[1],
                          checks=[{"type": "clip", "model": "http://127.0.0.1:9/clip"}])
        with pytest.raises(InvalidInput, match="never a server"):
            local.check(spec)


def test_clip_score_names_its_model_not_its_folder(models_dir):
    import numpy as np
    from PIL import Image

    from playground.scoring import CellInput, ScorerContext, make_check

    context = ScorerContext(models_dir=models_dir, offline=True)
    cell = CellInput(modality="image", prompt="a red fox", image=Image.fromarray(np.zeros((32, 32, 3), np.uint8)))
    score = make_check({"type": "clip"}).score(cell, context)
    assert not score.detail["loaded_from"].startswith("/") and str(models_dir) not in str(score.detail)


def test_the_about_panel_names_no_server_path(public_app):
    from playground.ui.app import _about

    text = _about(public_app.services)
    assert str(public_app.services.settings.data_dir) not in text and "/" + "tmp" not in text
