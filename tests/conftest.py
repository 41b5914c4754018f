"""Shared fixtures: the shipped tiny models, loaded in place like real checkpoints, and tiny scorers built once per
test session, offline."""

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
    from playground.engines import gpu
    from playground.engines.catalog import Catalog

    catalog = Catalog(settings)
    gpu.attach(catalog)
    return catalog


def load(catalog, modality: str, model_id: str):
    return catalog.get(catalog.resolve(modality, model_id))


@pytest.fixture(scope="session")
def text_model(catalog):
    return load(catalog, "text", "tiny-text")


@pytest.fixture(scope="session")
def image_model(catalog):
    return load(catalog, "image", "tiny-image")


@pytest.fixture(scope="session")
def music_model(catalog):
    return load(catalog, "music", "tiny-music")


def _mid_text_model(folder: Path, tokenizer_source: str) -> Path:
    """A mid-size random-weight Llama (8 layers, 512 wide, intermediate 1408, GQA) with the tiny model's tokenizer
    and chat template: big enough for bf16 rounding and matrix-kernel choices to matter."""
    import torch
    from transformers import AutoTokenizer, LlamaConfig, LlamaForCausalLM

    tokenizer = AutoTokenizer.from_pretrained(tokenizer_source)
    torch.manual_seed(0)
    config = LlamaConfig(vocab_size=len(tokenizer), hidden_size=512, intermediate_size=1408, num_hidden_layers=8,
                         num_attention_heads=8, num_key_value_heads=4, max_position_embeddings=1024,
                         tie_word_embeddings=True, bos_token_id=tokenizer.bos_token_id,
                         eos_token_id=tokenizer.eos_token_id, pad_token_id=tokenizer.pad_token_id)
    LlamaForCausalLM(config).save_pretrained(folder)
    tokenizer.save_pretrained(folder)
    return folder


@pytest.fixture(scope="session")
def mid_text(tmp_path_factory, text_model):
    return _mid_text_model(tmp_path_factory.mktemp("mid-text"), text_model.source)


def options(modality: str, values: dict | None = None, settings=None) -> dict:
    """Validated options of the modality's local engine."""
    from playground.registry import engine_for, validate_options

    return validate_options(engine_for(modality, f"tiny-{modality}").options, values, settings)


def collect(model, requests, opts) -> tuple[list, list]:
    """Run a stream to the end: (outputs in request order, every event in arrival order)."""
    from playground.engines.base import Failed, Finished

    events = list(model.stream(requests, opts))
    done = {e.index: e for e in events if isinstance(e, (Finished, Failed))}
    assert sorted(done) == list(range(len(requests))), events
    return [done[i].output if isinstance(done[i], Finished) else done[i] for i in range(len(requests))], events


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


# ---- the browser: Debian's chromium driven by Playwright (never a downloaded browser) --------------------------------

OUTPUT = Path(os.environ.get("PLAYGROUND_TEST_OUTPUT", Path(__file__).resolve().parent.parent / "test-output"))
CHROMIUM_ARGS = ["--no-sandbox", "--disable-gpu", "--disable-background-networking", "--disable-component-update",
                 "--disable-sync", "--disable-quic", "--no-first-run"]


def _chromium() -> str | None:
    import shutil

    for candidate in (os.environ.get("CHROMIUM_PATH"), "/usr/bin/chromium", shutil.which("chromium")):
        if candidate and Path(candidate).exists():
            return candidate
    return None


@pytest.fixture(scope="module")
def browser():
    executable = _chromium()
    if executable is None:
        if os.environ.get("PLAYGROUND_REQUIRE_BROWSER"):
            pytest.fail("chromium is not installed (apt-get install chromium)")
        pytest.skip("chromium is not installed (apt-get install chromium)")
    from playwright.sync_api import sync_playwright

    with sync_playwright() as playwright:
        instance = playwright.chromium.launch(executable_path=executable, args=CHROMIUM_ARGS)
        yield instance
        instance.close()
