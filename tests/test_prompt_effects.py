"""Prompts matter on the shipped tiny models: library templates run over tens of values through the runner, scored
by checks, and judged by the evidence panel's statistics (paired differences with a bootstrap interval and a sign
test). Statistical claims over many prompts, never exact strings. Also: the shipped files match their checksums,
load with from_pretrained, and the build that made them is deterministic."""

from __future__ import annotations

import shutil
import subprocess
import sys
from dataclasses import replace
from pathlib import Path

import pytest

from playground.engines.tiny import CHECKSUMS, TINY_MODELS, read_checksums, shipped_model
from playground.registry import InvalidInput
from playground.runner import Runner
from playground.store import RunLog
from playground.templates import load_library
from playground.toyworld import measure

ROOT = Path(__file__).resolve().parent.parent


@pytest.fixture(scope="module")
def lab(catalog, settings, tmp_path_factory):
    log = RunLog(tmp_path_factory.mktemp("effects"))
    yield Runner(catalog, log, settings), load_library()
    log.close()


def run(lab, kind: str, name: str):
    experiment = next(e for e in measure.EXPERIMENTS[kind]() if e.name == name)
    return measure.run_experiment(experiment, *lab)


def metric(summary, name: str):
    return next(m for m in summary.metrics if m.name == name)


def pair(found, a: str, b: str):
    return next(p for p in found.pairs if {p.a, p.b} == {a, b})


def mean(found, variant: str) -> float:
    return next(v.mean for v in found.variants if v.variant == variant)


# ---- text ---------------------------------------------------------------------------------------------------------

def test_a_tone_word_wins_its_tone_check_clearly(lab):
    summary, records = run(lab, "text", "tone")
    assert len({r.variables["product"] for r in records}) == 20          # products the model never saw
    playful, luxury = metric(summary, "playful-words"), metric(summary, "luxury-words")
    assert playful.winner == "playful" and luxury.winner == "luxury"
    assert pair(playful, "playful", "plain").clear and pair(luxury, "luxury", "plain").clear
    assert mean(playful, "playful") >= 0.8 and mean(playful, "plain") <= 0.2
    assert mean(luxury, "luxury") >= 0.8 and mean(luxury, "plain") <= 0.2
    replies = {variant: {r.output_text for r in records if r.variant == variant} for variant in ("plain", "playful")}
    assert not replies["plain"] & replies["playful"]                     # three styles, not one


def test_a_word_limit_wins_the_length_check(lab):
    summary, _ = run(lab, "text", "word-limit")
    length = metric(summary, "length")
    assert length.better == "lower" and length.winner == "role-constrained"
    assert mean(length, "role-constrained") <= 8 < mean(length, "plain")


def test_labelled_examples_beat_a_zero_shot_ask_on_review_labels(lab):
    summary, records = run(lab, "text", "review-labels")
    right = metric(summary, measure.LABEL_SCORE)
    assert len(records) == 63
    for shots in ("one-shot", "three-shot"):
        assert pair(right, shots, "zero-shot").clear and pair(right, shots, "zero-shot").a == shots
        assert mean(right, shots) >= 0.8
    assert mean(right, "zero-shot") <= 0.2


def test_label_definitions_beat_an_open_question_on_tickets(lab):
    summary, _ = run(lab, "text", "ticket-labels")
    right = metric(summary, measure.LABEL_SCORE)
    assert right.winner == "defined-labels" and pair(right, "defined-labels", "open").clear
    assert mean(right, "defined-labels") > mean(right, "labels") > mean(right, "open")


def test_asking_for_json_gives_json(lab):
    summary, _ = run(lab, "text", "json")
    valid = metric(summary, "json_valid")
    assert valid.winner == "json-schema" and mean(valid, "json-schema") >= 0.8 and mean(valid, "plain") == 0


# ---- images -------------------------------------------------------------------------------------------------------

def test_colour_words_reach_the_image_and_the_hue_check_separates_them(lab):
    """The red circle wins the red check over both other columns in every pair, the blue square beats it on the blue
    check, and the circle is a circle. (Green comes out green on black only: the autoencoder turns green on white
    into purple, which the blue check scores near blue.)"""
    experiment = next(e for e in measure.EXPERIMENTS["image"]() if e.name == "colour")
    quicker = replace(experiment, seeds=(1, 2), params={"num_inference_steps": 25})     # 18 cells, half the steps
    summary, records = measure.run_experiment(quicker, *lab)
    assert len(records) == 18
    red, blue = metric(summary, "hue=red"), metric(summary, "hue=blue")
    assert red.winner == "red-circle", red.verdict
    for found, better, worse in ((red, "red-circle", "blue-square"), (red, "red-circle", "green-triangle"),
                                 (blue, "blue-square", "red-circle")):
        ahead = pair(found, better, worse)
        assert ahead.a == better and ahead.clear and ahead.wins == ahead.n == 6, ahead.sentence
    assert mean(red, "red-circle") >= 0.8 and mean(blue, "blue-square") >= 0.8
    assert mean(metric(summary, "right-shape"), "red-circle") >= 0.8


# ---- music --------------------------------------------------------------------------------------------------------

def test_mood_words_move_the_register_of_the_music(lab):
    """Happy is bright, melancholic is dark: the pitch follows the words in every pair (one-second clips suffice)."""
    experiment = next(e for e in measure.EXPERIMENTS["music"]() if e.name == "mood")
    summary, records = measure.run_experiment(replace(experiment, params={"duration_s": 1.0}), *lab)
    assert len(records) == 24
    pitch = metric(summary, "pitch-hz")
    high_low = pair(pitch, "happy", "melancholic")
    assert high_low.a == "happy" and high_low.wins == high_low.n == 8 and high_low.p_value < 0.01
    assert mean(pitch, "happy") >= 3 * mean(pitch, "melancholic")      # 1,000 Hz against 250 Hz


# ---- the shipped files --------------------------------------------------------------------------------------------

@pytest.mark.parametrize("name", sorted(TINY_MODELS))
def test_shipped_models_match_their_checksums_and_load_with_from_pretrained(name):
    folder, revision = shipped_model(name)
    assert set(read_checksums(folder)) == {p.relative_to(folder).as_posix() for p in folder.rglob("*")
                                           if p.is_file() and p.name != CHECKSUMS}
    assert len(revision) == 16
    if TINY_MODELS[name] == "text":
        from transformers import AutoModelForCausalLM, AutoTokenizer

        assert AutoTokenizer.from_pretrained(folder).chat_template
        assert AutoModelForCausalLM.from_pretrained(folder).num_parameters() < 3_000_000
    elif TINY_MODELS[name] == "image":
        from diffusers import AutoPipelineForText2Image

        assert type(AutoPipelineForText2Image.from_pretrained(folder).scheduler).__name__ == "DDIMScheduler"
    else:
        from transformers import AutoProcessor, MusicgenForConditionalGeneration

        assert AutoProcessor.from_pretrained(folder) and MusicgenForConditionalGeneration.from_pretrained(folder)
    assert sum(p.stat().st_size for p in folder.rglob("*")) < 12_000_000


def test_a_changed_shipped_file_is_refused_with_what_to_do(tmp_path):
    folder, _ = shipped_model("tiny-text")
    copy = tmp_path / "tiny-text"
    shutil.copytree(folder, copy)
    with (copy / "config.json").open("a") as handle:
        handle.write(" ")
    with pytest.raises(InvalidInput, match=r"config\.json .*do not match CHECKSUMS.*toyworld\.build text"):
        shipped_model("tiny-text", tmp_path)


_QUICK_BUILD = """
import sys, tempfile
from pathlib import Path
from playground.toyworld.build import build
for kind in ("text", "image", "music"):
    sums = build(kind, Path(tempfile.mkdtemp()) / kind, steps=2, quiet=True)
    print(kind, sorted(sums.items()))
"""


@pytest.mark.slow
def test_the_build_is_deterministic_across_processes():
    """A few steps of each build, twice in fresh processes, write the same bytes: seeds, one thread and
    deterministic algorithms, nothing timed. (`python -m playground.toyworld.build --check` does the full run.)"""
    runs = [subprocess.run([sys.executable, "-c", _QUICK_BUILD], cwd=ROOT, capture_output=True, text=True,
                           check=True, timeout=600).stdout for _ in range(2)]
    assert runs[0] == runs[1] and len(runs[0].splitlines()) == 3
