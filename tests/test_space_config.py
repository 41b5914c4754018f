"""The README's front matter is the Space configuration: check it against the Spaces configuration reference
(https://huggingface.co/docs/hub/spaces-config-reference) so a bad edit fails here, not at the push."""

from __future__ import annotations

import re
import unicodedata
from pathlib import Path

import pytest
import yaml
from packaging.requirements import Requirement
from packaging.version import Version

ROOT = Path(__file__).resolve().parent.parent

# The reference, field by field: name -> expected type (and the rule checked in validate() below).
FIELDS = {
    "title": str, "emoji": str, "colorFrom": str, "colorTo": str, "sdk": str, "python_version": str,
    "sdk_version": str, "suggested_hardware": str, "suggested_storage": str, "app_file": str,
    "app_build_command": str, "app_port": int, "base_path": str, "fullWidth": bool, "header": str,
    "short_description": str, "models": list, "datasets": list, "tags": list, "thumbnail": str, "pinned": bool,
    "hf_oauth": bool, "hf_oauth_scopes": list, "hf_oauth_expiration_minutes": int,
    "hf_oauth_authorized_org": (str, list), "disable_embedding": bool, "startup_duration_timeout": str,
    "custom_headers": dict, "preload_from_hub": list,
    "license": str, "duplicated_from": str,          # repository card fields the Hub also reads for Spaces
}
COLORS = {"red", "yellow", "green", "blue", "indigo", "purple", "pink", "gray"}
SDKS = {"gradio", "docker", "static"}
HARDWARE = {"cpu-basic", "cpu-upgrade", "t4-small", "t4-medium", "l4x1", "l4x4", "l40sx1", "l40sx4", "l40sx8",
            "a10g-small", "a10g-large", "a10g-largex2", "a10g-largex4", "a100-large", "a100x4", "a100x8"}
STORAGE = {"small", "medium", "large"}
HEADERS = {"cross-origin-embedder-policy", "cross-origin-opener-policy", "cross-origin-resource-policy"}
SHORT_DESCRIPTION_MAX = 60          # the Hub refuses a push with a longer one
ZEROGPU_PYTHON = "3.10"              # the ZeroGPU page lists Python 3.10.13
_REPO_ID = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,95}(/[A-Za-z0-9][A-Za-z0-9._-]{0,95})?$")
_LICENSE = re.compile(r"^[a-z0-9][a-z0-9.+-]*$")
_DURATION = re.compile(r"^\d+(\.\d+)?\s*[smhd]$")


def front_matter(text: str) -> dict:
    if not text.startswith("---\n"):
        raise ValueError("README.md must start with a '---' line: the Space configuration block")
    end = text.find("\n---\n", 4)
    if end < 0:
        raise ValueError("the front matter block is not closed with a '---' line")
    data = yaml.safe_load(text[4:end])
    if not isinstance(data, dict):
        raise ValueError("the front matter must be a YAML mapping")
    return data


def _is_emoji(text: str) -> bool:
    joiners = {"\u200d", "\ufe0f", "\ufe0e"}
    return bool(text) and all(ch in joiners or unicodedata.category(ch) in {"So", "Sk", "Mn", "Cf"} or
                              0x1F3FB <= ord(ch) <= 0x1F3FF for ch in text)


def validate(config: dict) -> list[str]:
    """Every way `config` breaks the reference's rules, as messages that say what to change."""
    problems = []
    for name, value in config.items():
        if name not in FIELDS:
            problems.append(f"{name}: not a Spaces configuration field")
        elif not isinstance(value, FIELDS[name]) or (FIELDS[name] is int and isinstance(value, bool)):
            problems.append(f"{name}: must be {getattr(FIELDS[name], '__name__', 'str or list')}, "
                            f"got {type(value).__name__}")
    if problems:
        return problems
    for name in ("title", "sdk", "app_file", "short_description"):
        if not config.get(name):
            problems.append(f"{name}: required here")
    if len(config.get("short_description", "")) > SHORT_DESCRIPTION_MAX:
        problems.append(f"short_description: {len(config['short_description'])} characters; "
                        f"the Hub accepts at most {SHORT_DESCRIPTION_MAX}")
    if "emoji" in config and not _is_emoji(config["emoji"]):
        problems.append(f"emoji: emoji characters only, got {config['emoji']!r}")
    for name in ("colorFrom", "colorTo"):
        if name in config and config[name] not in COLORS:
            problems.append(f"{name}: one of {', '.join(sorted(COLORS))}, got {config[name]!r}")
    if "sdk" in config and config["sdk"] not in SDKS:
        problems.append(f"sdk: one of {', '.join(sorted(SDKS))}, got {config['sdk']!r}")
    if "python_version" in config and not re.fullmatch(r"3\.\d+(\.\d+)?", config["python_version"]):
        problems.append(f"python_version: '3.x' or '3.x.x' as a string, got {config['python_version']!r}")
    if "sdk_version" in config and not re.fullmatch(r"\d+\.\d+\.\d+", config["sdk_version"]):
        problems.append(f"sdk_version: a release like '6.0.0', got {config['sdk_version']!r}")
    if "suggested_hardware" in config and config["suggested_hardware"] not in HARDWARE:
        problems.append(f"suggested_hardware: a hardware flavor ({', '.join(sorted(HARDWARE))}), "
                        f"got {config['suggested_hardware']!r}")
    if "suggested_storage" in config and config["suggested_storage"] not in STORAGE:
        problems.append(f"suggested_storage: small, medium or large, got {config['suggested_storage']!r}")
    if "header" in config and config["header"] not in {"mini", "default"}:
        problems.append(f"header: mini or default, got {config['header']!r}")
    if "base_path" in config and not config["base_path"].startswith("/"):
        problems.append("base_path: must start with '/'")
    if "license" in config and not _LICENSE.match(config["license"]):
        problems.append(f"license: a license id like 'apache-2.0' or 'mit', got {config['license']!r}")
    if "startup_duration_timeout" in config and not _DURATION.match(config["startup_duration_timeout"]):
        problems.append(f"startup_duration_timeout: a duration like '30m' or '1h', "
                        f"got {config['startup_duration_timeout']!r}")
    if "hf_oauth_expiration_minutes" in config and not 1 <= config["hf_oauth_expiration_minutes"] <= 43200:
        problems.append("hf_oauth_expiration_minutes: from 1 to 43200 (30 days)")
    for name in ("models", "datasets", "tags", "hf_oauth_scopes", "preload_from_hub"):
        for item in config.get(name, []):
            if not isinstance(item, str) or not item.strip():
                problems.append(f"{name}: every item must be a non-empty string, got {item!r}")
    for name in ("models", "datasets"):
        for item in config.get(name, []):
            if isinstance(item, str) and not _REPO_ID.match(item):
                problems.append(f"{name}: {item!r} is not a repo id like 'owner/name'")
    for item in config.get("preload_from_hub", []):
        parts = item.split() if isinstance(item, str) else []
        if not 1 <= len(parts) <= 3 or not _REPO_ID.match(parts[0]) or \
                (len(parts) == 3 and not re.fullmatch(r"[0-9a-f]{40}", parts[2])):
            problems.append(f"preload_from_hub: {item!r} must be 'repo', 'repo file1,file2' or "
                            "'repo file1,file2 <40-hex commit>'")
    for key, value in config.get("custom_headers", {}).items():
        if key not in HEADERS or not isinstance(value, str) or value != value.lower():
            problems.append(f"custom_headers: only lower-case {', '.join(sorted(HEADERS))}, got {key!r}")
    return problems


@pytest.fixture(scope="module")
def config() -> dict:
    return front_matter((ROOT / "README.md").read_text(encoding="utf-8"))


def test_the_readme_front_matter_follows_the_spaces_reference(config):
    assert validate(config) == []


def test_the_space_runs_this_app_with_the_gradio_the_requirements_allow(config):
    assert config["sdk"] == "gradio"
    assert (ROOT / config["app_file"]).is_file()
    gradio = next(Requirement(line.split("#")[0].strip())
                  for line in (ROOT / "requirements.txt").read_text().splitlines()
                  if line.strip().lower().startswith("gradio"))
    assert Version(config["sdk_version"]) in gradio.specifier, \
        f"sdk_version {config['sdk_version']} is outside requirements.txt's {gradio}"


def test_the_python_version_is_one_zerogpu_offers(config):
    assert config["python_version"] == ZEROGPU_PYTHON or config["python_version"].startswith(ZEROGPU_PYTHON + ".")


def test_the_suggested_hardware_is_a_flavor_huggingface_hub_knows(config):
    from huggingface_hub import SpaceHardware

    assert config["suggested_hardware"] in {h.value for h in SpaceHardware}


def test_the_presets_every_visitor_sees_are_preloaded(config):
    """The presets offered on any hardware are fetched while the Space builds, not by the first visitor."""
    from playground.engines.catalog import PRESETS

    preloaded = {item.split()[0] for item in config["preload_from_hub"]}
    cpu_presets = {p.id for p in PRESETS if not p.tiny and not p.gpu}
    assert cpu_presets <= preloaded, f"add to preload_from_hub: {sorted(cpu_presets - preloaded)}"
    assert preloaded <= {p.id for p in PRESETS if not p.tiny}
    assert preloaded <= set(config["models"])


def test_visitors_can_sign_in_with_hugging_face(config):
    assert config.get("hf_oauth") is True      # gr.LoginButton needs it; visitors.py keys history on the username


@pytest.mark.parametrize("change, complaint", [
    ({"short_description": "Compare prompt variants side by side for text, image and music"}, "at most 60"),
    ({"colorFrom": "orange"}, "colorFrom"),
    ({"sdk": "streamlit"}, "sdk"),
    ({"suggested_hardware": "h100"}, "suggested_hardware"),
    ({"python_version": 3.1}, "python_version: must be str"),
    ({"python_version": "3"}, "python_version"),
    ({"pinned": "yes"}, "pinned: must be bool"),
    ({"license": "Apache 2.0"}, "license"),
    ({"preload_from_hub": ["stabilityai/sd-turbo unet/x.safetensors main"]}, "preload_from_hub"),
    ({"emoji": "lab"}, "emoji"),
    ({"startup_time": "1h"}, "not a Spaces configuration field"),
    ({"hf_oauth_expiration_minutes": 50000}, "hf_oauth_expiration_minutes"),
    ({"models": ["not a repo id!"]}, "models"),
])
def test_the_check_catches_what_the_hub_would_refuse(config, change, complaint):
    broken = {**config, **change}
    assert any(complaint in problem for problem in validate(broken)), validate(broken)


def test_a_readme_without_a_closed_front_matter_block_is_refused():
    with pytest.raises(ValueError, match="not closed"):
        front_matter("---\ntitle: x\n")
    with pytest.raises(ValueError, match="must start"):
        front_matter("# Prompt Playground\n")


def _requirement(name: str) -> Requirement:
    for line in (ROOT / "requirements.txt").read_text().splitlines():
        line = line.split("#")[0].strip()
        if line and Requirement(line).name.lower() == name:
            return Requirement(line)
    raise AssertionError(f"requirements.txt has no {name} line")


def test_the_torch_requirement_admits_a_zerogpu_build_and_the_one_installed_here():
    """An exact pin fails on ZeroGPU (it picks its own build from a list) and pulls a CUDA build onto a CPU host;
    a range lets each host keep the build it installed first. transformers 5 needs 2.6 or later."""
    torch_requirement = _requirement("torch")
    assert not any(spec.operator in ("==", "===") for spec in torch_requirement.specifier)
    zerogpu_list = ["2.1.0", "2.1.1", "2.1.2", "2.2.0", "2.2.2", "2.4.0", "2.5.1", "2.6.0", "2.7.1", "2.8.0"]
    assert any(torch_requirement.specifier.contains(v) for v in zerogpu_list)
    assert not torch_requirement.specifier.contains("2.5.1")
    torch = pytest.importorskip("torch")
    assert torch_requirement.specifier.contains(Version(torch.__version__).public)
