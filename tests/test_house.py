"""Rules of the house: the core modules stay free of gradio and torch, and a new engine is one module plus its
registration (this file holds a whole engine and runs a grid with it, touching nothing else)."""

from __future__ import annotations

import subprocess
import sys
from pathlib import Path

import pytest

from playground.engines.base import Finished, GenerationRequest, Output, Partial
from playground.registry import ENGINES, Engine, InvalidInput, Options, engine_for, register
from playground.runner import Runner
from playground.spec import build_spec
from playground.store import RunLog
from playground.templates import make_template

ROOT = Path(__file__).resolve().parent.parent
CORE = ["playground.registry", "playground.runner", "playground.spec", "playground.templates", "playground.store", "playground.engines",
        "playground.engines.catalog", "playground.services", "playground.settings", "playground.cli",
        "playground.jobs", "playground.datasets", "playground.experiments", "playground.experiments.batch",
        "playground.improve"]


@pytest.mark.parametrize("module", CORE)
def test_core_modules_import_neither_gradio_nor_torch(module):
    code = (f"import sys, {module}; print(sorted(m for m in ('gradio', 'torch', 'transformers', 'diffusers', "
            "'openai') if m in sys.modules))")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120)
    assert done.returncode == 0, done.stderr
    assert done.stdout.strip().splitlines()[-1] == "[]"


# ---- a whole engine in a few lines --------------------------------------------------------------------------------

class ShoutOptions(Options):
    exclaim: int = 1


class ShoutModel:
    """Answers with the prompt in capitals: a stand-in for any new remote API."""

    versions = {"shout": "1.0"}

    def __init__(self, resolved, settings):
        self.device, self.dtype = "shout", None

    def stream(self, requests: list[GenerationRequest], options: dict):
        for index, request in enumerate(requests):
            text = request.prompt.upper() + "!" * options["exclaim"]
            yield Partial({index: text[:3]})
            yield Finished(index, Output(text=text, metrics={"wall_s": 0.001, "revision": "shout-1"}))


@pytest.fixture
def shout():
    engine = register(Engine("shout", "text", "Shouting test engine", ShoutOptions, "test_house:ShoutModel",
                             prefix="shout:", batch_size=16))
    yield engine
    ENGINES.pop("shout")


def test_a_new_engine_is_one_module_and_its_registration(shout, catalog, settings, tmp_path):
    assert engine_for("text", "shout:anything") is shout
    with pytest.raises(InvalidInput, match="not available for image"):
        engine_for("image", "shout:anything")
    log = RunLog(tmp_path)
    template = make_template(name="shout-test", modality="text", variants={"a": "hello {{ x }}", "b": "bye {{ x }}"},
                             variables={"x": "you"})
    spec = build_spec(template, models=["shout:loud", "tiny-text"], seeds=[1], params={"exclaim": 3,
                                                                                        "max_new_tokens": 2})
    records = [e.result.record for e in Runner(catalog, log, settings).run(spec) if e.result]
    shouted = [r for r in records if r.backend == "shout"]
    assert [r.output_text for r in shouted] == ["HELLO YOU!!!", "BYE YOU!!!"]
    assert shouted[0].model_revision == "shout-1" and shouted[0].params == {"exclaim": 3}
    assert all(r.status == "ok" for r in records)
    log.close()


# ---- settings: a typo stops start-up with a line that names the variable ----------------------------------------

@pytest.mark.parametrize("name, value, says", [
    ("PLAYGROUND_PUBLIC", "ture", "PLAYGROUND_PUBLIC='ture': must be true or false"),
    ("PLAYGROUND_MAX_CELLS", "lots", "PLAYGROUND_MAX_CELLS='lots': must be a whole number"),
    ("PLAYGROUND_MAX_CELLS", "0", "PLAYGROUND_MAX_CELLS='0': "),
    ("PLAYGROUND_REMOTE_TIMEOUT_S", "nan", "PLAYGROUND_REMOTE_TIMEOUT_S='nan': must be a number"),
])
def test_a_bad_setting_names_its_variable_and_what_it_accepts(monkeypatch, name, value, says):
    from playground.settings import Settings, SettingsError

    monkeypatch.setenv(name, value)
    with pytest.raises(SettingsError) as caught:
        Settings.from_env()
    assert says in str(caught.value)


def test_a_bad_setting_stops_the_app_and_the_cli_with_one_line(tmp_path):
    env = {"PATH": "/usr/bin:/bin", "PLAYGROUND_PUBLIC": "ture", "HOME": str(tmp_path)}
    for command in ([sys.executable, "app.py", "--data-dir", str(tmp_path)],
                    [sys.executable, "-m", "playground", "templates", "--data-dir", str(tmp_path)]):
        done = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=120, env=env)
        assert done.returncode != 0
        assert done.stderr.strip().splitlines() == [
            "error: PLAYGROUND_PUBLIC='ture': must be true or false (1/0, true/false, yes/no, on/off)"]


def test_settings_are_frozen_and_replace_checks_the_new_values(settings):
    from pydantic import ValidationError

    with pytest.raises(ValidationError):
        settings.max_cells = 3
    assert settings.replace(max_cells=3).max_cells == 3 and settings.max_cells != 3
    with pytest.raises(ValidationError):
        settings.replace(max_cells="many")


# ---- one door: a third-party engine and check installed with pip -------------------------------------------------

PLUGIN = '''
from playground.engines.base import Finished, Output
from playground.registry import Engine, Options
from playground.scoring.base import Check


class EchoOptions(Options):
    max_new_tokens: int = 16


class EchoModel:
    """Answers with the prompt reversed: a stand-in for any third-party API."""

    versions = {"echo-engine": "0.1"}

    def __init__(self, resolved, settings):
        self.device, self.dtype = "echo", None

    def stream(self, requests, options):
        for index, request in enumerate(requests):
            yield Finished(index, Output(text=request.prompt[::-1], metrics={"wall_s": 0.001}))


class Palindrome(Check):
    type, modalities, description = "palindrome", ("text",), "1 when the output reads the same both ways"

    def score(self, cell, context):
        text = (cell.text or "").lower()
        return self.make(float(text == text[::-1]))


ENGINE = Engine("echo", "text", "Echo (a plugin)", EchoOptions, "echo_engine:EchoModel", prefix="echo:",
                batch_size=8, models=("echo:backwards",))
'''

PLUGIN_PYPROJECT = '''
[build-system]
requires = ["setuptools"]
build-backend = "setuptools.build_meta"

[project]
name = "echo-engine"
version = "0.1"

[project.entry-points."playground.engines"]
echo = "echo_engine:ENGINE"

[project.entry-points."playground.checks"]
palindrome = "echo_engine:Palindrome"
'''


@pytest.fixture(scope="module")
def plugin_site(tmp_path_factory) -> Path:
    """The plugin package built and installed by pip into a folder of its own (the running venv stays clean)."""
    source, site = tmp_path_factory.mktemp("echo-src"), tmp_path_factory.mktemp("echo-site")
    (source / "echo_engine.py").write_text(PLUGIN)
    (source / "pyproject.toml").write_text(PLUGIN_PYPROJECT)
    done = subprocess.run([sys.executable, "-m", "pip", "install", "--quiet", "--no-deps", "--no-build-isolation",
                           "--target", str(site), str(source)], capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return site


def test_an_installed_engine_is_in_the_model_picker_and_runs_in_a_grid(plugin_site, models_dir, tmp_path):
    data = tmp_path / "data"
    data.mkdir()
    (data / "models").symlink_to(models_dir, target_is_directory=True)
    env = {**__import__("os").environ, "PYTHONPATH": str(plugin_site), "HF_HUB_OFFLINE": "1"}
    picker = subprocess.run(
        [sys.executable, "-c", "from playground.settings import Settings; from playground.engines.catalog import "
         f"Catalog; print(Catalog(Settings(data_dir={str(data)!r}, offline=True)).model_choices('text'))"],
        cwd=ROOT, env=env, capture_output=True, text=True, timeout=120)
    assert "('echo:backwards · Echo (a plugin)', 'echo:backwards')" in picker.stdout, picker.stderr
    done = subprocess.run([sys.executable, "-m", "playground", "--data-dir", str(data), "run",
                           "prompts/text/product-tagline.md", "--models", "echo:backwards", "--check", "palindrome",
                           "--quiet"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    log = RunLog(data)
    runs = log.list_runs()
    assert len(runs) == 3 and {r.backend for r in runs} == {"echo"}
    assert all(r.output_text == r.prompt[::-1] and r.versions["echo-engine"] == "0.1" for r in runs)
    from playground.store.scores import scores_for_runs

    scores = scores_for_runs(log, [r.id for r in runs])
    assert all("palindrome" in scores[r.id] for r in runs)
    log.close()


def test_a_broken_plugin_is_skipped_and_the_app_still_starts(tmp_path):
    site = tmp_path / "site"
    dist = site / "broken_plugin-0.1.dist-info"
    dist.mkdir(parents=True)
    (dist / "METADATA").write_text("Metadata-Version: 2.1\nName: broken-plugin\nVersion: 0.1\n")
    (dist / "entry_points.txt").write_text("[playground.engines]\nbroken = no_such_module:ENGINE\n")
    code = ("import logging; logging.basicConfig(); from playground.registry import engines_for; "
            "print(sorted(e.name for e in engines_for('text')))")
    done = subprocess.run([sys.executable, "-c", code], cwd=ROOT, capture_output=True, text=True, timeout=120,
                          env={**__import__("os").environ, "PYTHONPATH": str(site)})
    assert done.returncode == 0 and "'local-text'" in done.stdout, done.stderr
    assert "plugin playground.engines (broken = no_such_module:ENGINE) is skipped" in done.stderr


def test_an_engine_class_that_is_not_an_engine_model_gets_a_message(catalog):
    from playground.registry import Engine

    register(Engine("hollow", "text", "lacks stream", ShoutOptions, "test_house:Hollow", prefix="hollow:"))
    try:
        with pytest.raises(InvalidInput, match="lacks versions, stream"):
            catalog.remote(catalog.resolve("text", "hollow:x"))
    finally:
        ENGINES.pop("hollow")


class Hollow:
    def __init__(self, resolved, settings):
        self.device, self.dtype = "hollow", None
