"""Every check on fixed inputs, declarations and their errors, and the per-cell hook (no models needed here)."""

from __future__ import annotations

import io
import math
import sys
import wave

import numpy as np
import pytest

from playground.scoring import CellInput, CheckError, ScorerContext, make_check, make_checks, parse_check_arg
from playground.scoring import registry, score_cell
from playground.scoring.text import flesch_kincaid_grade, parse_judge_score, syllables, token_f1
from playground.store import RunRecord


@pytest.fixture
def context(tmp_path):
    return ScorerContext(models_dir=tmp_path, offline=True)


def run_check(spec, text=None, *, context=None, record=None, audio=None, prompt="a prompt", modality="text"):
    check = make_check(spec)
    cell = CellInput(modality=modality, prompt=prompt, record=record, text=text, audio=audio)
    return check.score(cell, context or ScorerContext(models_dir="/nonexistent", offline=True))


# ---- text checks ----------------------------------------------------------------------------------------------------

@pytest.mark.parametrize("spec, text, value", [
    ({"type": "contains", "value": "Lantern"}, "A solar lantern for camping", 1.0),
    ({"type": "contains", "value": "Lantern", "case_sensitive": True}, "A solar lantern", 0.0),
    ({"type": "contains", "value": "torch"}, "A solar lantern", 0.0),
    ({"type": "not_contains", "value": "as an ai"}, "As an AI, I cannot", 0.0),
    ({"type": "not_contains", "value": "as an ai"}, "Light your way.", 1.0),
    ({"type": "starts_with", "value": "yes"}, "  Yes, it works", 1.0),
    ({"type": "starts_with", "value": "yes"}, "No. yes", 0.0),
    ({"type": "regex", "pattern": r"\b\d{4}-\d{2}-\d{2}\b"}, "due 2025-01-31.", 1.0),
    ({"type": "regex", "pattern": r"^hello", "ignore_case": True}, "HELLO there", 1.0),
    ({"type": "regex", "pattern": r"^hello"}, "HELLO there", 0.0),
])
def test_string_checks(spec, text, value):
    score = run_check(spec, text)
    assert score.value == value and score.passed is bool(value)
    assert score.detail["check"] == spec["type"] and score.detail["better"] == "higher"


def test_regex_reports_the_match_and_refuses_bad_patterns():
    assert run_check({"type": "regex", "pattern": r"\d+"}, "abc 123 def").detail["match"] == "123"
    with pytest.raises(CheckError, match="does not compile"):
        make_check({"type": "regex", "pattern": "(unclosed"})


def test_json_checks():
    assert run_check({"type": "json_valid"}, '{"a": 1}').passed is True
    assert run_check({"type": "json_valid"}, '```json\n{"a": [1, 2]}\n```').passed is True
    bad = run_check({"type": "json_valid"}, '{"a": 1,}')
    assert bad.value == 0.0 and "line 1" in bad.detail["error"]
    schema = {"type": "object", "required": ["name", "year"],
              "properties": {"name": {"type": "string"}, "year": {"type": "integer"}}}
    assert run_check({"type": "json_schema", "schema": schema}, '{"name": "x", "year": 2024}').passed is True
    wrong = run_check({"type": "json_schema", "schema": schema}, '{"name": "x", "year": "2024"}')
    assert wrong.value == 0.0 and wrong.detail["errors"] == ["year: '2024' is not of type 'integer'"]
    assert run_check({"type": "json_schema", "schema": schema}, "not json").detail["error"].startswith("not JSON")
    with pytest.raises(CheckError, match="not a valid JSON Schema"):
        make_check({"type": "json_schema", "schema": {"type": "no-such-type"}})


def test_length_in_words_tokens_and_chars():
    text = "Light up every night, anywhere — it's solar!"
    words = run_check({"type": "length"}, text)
    assert words.value == 7 and words.passed is None and words.detail["better"] is None
    assert run_check({"type": "length", "unit": "chars"}, text).value == len(text)
    assert run_check({"type": "length", "max": 5}, text).passed is False
    assert run_check({"type": "length", "min": 3, "max": 10}, text).passed is True
    # A limit on one side says which way is better; both sides or none: a plain measurement.
    assert run_check({"type": "length", "max": 5}, text).detail["better"] == "lower"
    assert run_check({"type": "length", "min": 5}, text).detail["better"] == "higher"
    assert run_check({"type": "length", "min": 3, "max": 10}, text).detail["better"] is None
    record = RunRecord(modality="text", model_id="m", prompt="p", seed=1, params={}, completion_tokens=12)
    assert run_check({"type": "length", "unit": "tokens"}, text, record=record).value == 12
    approx = run_check({"type": "length", "unit": "tokens"}, "Hi, you!")
    assert approx.value == 4 and "approximate" in approx.detail
    with pytest.raises(CheckError, match="must be one of words, tokens, chars"):
        make_check({"type": "length", "unit": "pages"})


def test_reading_level_against_hand_computed_grades():
    assert [syllables(w) for w in ("cat", "make", "table", "readability", "the", "queue")] == [1, 1, 2, 5, 1, 1]
    # "The cat sat on the mat." 6 words, 1 sentence, 6 syllables: 0.39*6 + 11.8*1 - 15.59
    assert flesch_kincaid_grade("The cat sat on the mat.") == pytest.approx(0.39 * 6 + 11.8 - 15.59)
    # two sentences, 8 words; syllables: we go out a = 4, beau-ti-ful 3, gar-den 2, blooms 1, to-day 2
    text = "We go out. A beautiful garden blooms today."
    words, sentences, syl = 8, 2, 4 + 3 + 2 + 1 + 2
    assert flesch_kincaid_grade(text) == pytest.approx(0.39 * words / sentences + 11.8 * syl / words - 15.59)
    score = run_check({"type": "reading_level", "max_grade": 8}, "The cat sat on the mat.")
    assert score.passed is True and score.value == pytest.approx(-1.45)
    assert run_check({"type": "reading_level"}, "").value is None


def test_similarity_token_f1_and_ratio():
    assert token_f1("the red fox", "The red fox.") == 1.0
    # common {red, fox}: precision 2/3, recall 2/2 -> F1 0.8
    assert token_f1("a red fox", "red fox") == pytest.approx(0.8)
    assert token_f1("", "") == 1.0 and token_f1("x", "") == 0.0
    score = run_check({"type": "similarity", "reference": "red fox", "threshold": 0.75}, "a red fox")
    assert score.value == pytest.approx(0.8) and score.passed is True
    ratio = run_check({"type": "similarity", "reference": "abcd", "method": "ratio"}, "abce")
    assert ratio.value == pytest.approx(0.75)


def test_llm_judge_records_its_prompt_and_output(tmp_path):
    asked = []

    def judge(prompt: str) -> str:
        asked.append(prompt)
        return "Clear and short, but generic.\nSCORE: 7"

    context = ScorerContext(models_dir=tmp_path, generate=judge)
    score = run_check({"type": "llm_judge", "rubric": "Is it catchy?", "pass_at": 6}, "Light anywhere.",
                      context=context, prompt="Write a tagline for a lantern.")
    assert score.value == 7.0 and score.passed is True
    assert score.detail["judge_prompt"] == asked[0] and "Is it catchy?" in asked[0]
    assert "Write a tagline for a lantern." in asked[0] and "Light anywhere." in asked[0]
    assert score.detail["judge_output"].endswith("SCORE: 7")

    nonsense = run_check({"type": "llm_judge", "rubric": "r"}, "x",
                         context=ScorerContext(models_dir=tmp_path, generate=lambda p: "I like it"))
    assert nonsense.value is None and "no score" in nonsense.detail["error"]
    with pytest.raises(CheckError, match="needs a text engine"):
        run_check({"type": "llm_judge", "rubric": "r"}, "x", context=ScorerContext(models_dir=tmp_path))

    named = []
    context = ScorerContext(models_dir=tmp_path, generate_for=lambda m: (named.append(m), lambda p: "SCORE: 3")[1])
    assert run_check({"type": "llm_judge", "rubric": "r", "model": "judge-model"}, "x", context=context).value == 3
    assert named == ["judge-model"]


def test_parse_judge_score():
    assert parse_judge_score("reasons\nSCORE: 8", 10) == 8
    assert parse_judge_score("Score: **9**", 10) == 9
    assert parse_judge_score("score: 3\n...\nSCORE: 4", 10) == 4
    assert parse_judge_score("6", 10) is None                  # only from where the judge was asked to put it
    assert parse_judge_score("SCORE: 11", 10) is None
    assert parse_judge_score("", 10) is None


# ---- audio and run-record checks ------------------------------------------------------------------------------------

def sine(amplitude: float, seconds: float = 1.0, rate: int = 32000) -> tuple[int, np.ndarray]:
    t = np.arange(int(rate * seconds)) / rate
    return rate, (amplitude * np.sin(2 * np.pi * 440 * t)).astype(np.float32)


def test_loudness_of_known_signals():
    # a sine at amplitude A has RMS A/sqrt(2): 20 log10(0.5 / sqrt 2) = -9.03 dBFS
    score = run_check({"type": "loudness", "min_db": -20, "max_db": -6}, audio=sine(0.5), modality="music")
    assert score.value == pytest.approx(20 * math.log10(0.5 / math.sqrt(2)), abs=1e-3) and score.passed is True
    square = (16000, np.full(16000, 0.25, dtype=np.float32))
    assert run_check({"type": "loudness"}, audio=square, modality="music").value == pytest.approx(
        20 * math.log10(0.25), abs=1e-4)
    silent = run_check({"type": "loudness", "min_db": -60}, audio=(16000, np.zeros(1600, np.float32)),
                       modality="music")
    assert silent.value == -120.0 and silent.passed is False


def test_clipping_and_silence():
    rate, wave_ = sine(0.5)
    clipped = np.clip(wave_ * 4, -1, 1)          # most samples pinned at full scale
    assert run_check({"type": "clipping"}, audio=(rate, wave_), modality="music").value == 0.0
    score = run_check({"type": "clipping"}, audio=(rate, clipped), modality="music")
    assert score.value > 0.5 and score.passed is False and score.detail["better"] == "lower"
    half_silent = np.concatenate([wave_, np.zeros_like(wave_)])    # 1 s tone then 1 s of silence
    silence = run_check({"type": "silence", "max_fraction": 0.25}, audio=(rate, half_silent), modality="music")
    assert silence.value == pytest.approx(0.5) and silence.passed is False and silence.detail["windows"] == 40
    stereo = np.stack([wave_, wave_])
    assert run_check({"type": "silence"}, audio=(rate, stereo), modality="music").value == 0.0


def test_run_record_scores():
    record = RunRecord(modality="text", model_id="m", prompt="p", seed=1, params={}, wall_s=1.5, prompt_tokens=10,
                       completion_tokens=30, tokens_per_s=20.0, device="cpu")
    assert run_check({"type": "latency"}, record=record).value == 1.5
    assert run_check({"type": "latency"}, record=record).detail["better"] == "lower"
    assert run_check({"type": "tokens"}, record=record).value == 40
    assert run_check("tokens=completion", record=record).value == 30
    assert run_check({"type": "tokens_per_s"}, record=record).value == 20.0
    music = RunRecord(modality="music", model_id="m", prompt="p", seed=1, params={}, realtime_factor=0.5)
    assert run_check({"type": "realtime_factor"}, record=music, modality="music").value == 0.5
    empty = RunRecord(modality="text", model_id="m", prompt="p", seed=1, params={})
    assert run_check({"type": "tokens"}, record=empty).value is None


# ---- declarations ---------------------------------------------------------------------------------------------------

def test_parse_check_arg():
    assert parse_check_arg("clip") == {"type": "clip"}
    assert parse_check_arg("contains=lantern") == {"type": "contains", "value": "lantern"}
    assert parse_check_arg("contains=http://x.y") == {"type": "contains", "value": "http://x.y"}
    assert parse_check_arg("length:unit=words,max=50") == {"type": "length", "unit": "words", "max": 50}
    assert parse_check_arg('{"type": "regex", "pattern": "a,b"}') == {"type": "regex", "pattern": "a,b"}
    for bad, message in [("", "empty"), ("nope=1", "unknown check type"), ("json_valid=1", "named arguments"),
                         ("length:max", "name=value"), ("{bad", "not valid JSON")]:
        with pytest.raises(CheckError, match=message):
            parse_check_arg(bad)


def test_make_checks_errors_say_what_to_change():
    with pytest.raises(CheckError, match="unknown check type 'contain'"):
        make_check({"type": "contain", "value": "x"})
    with pytest.raises(CheckError, match="argument 'value' is required"):
        make_check({"type": "contains"})
    with pytest.raises(CheckError, match="argument 'valeu' is an unknown argument; allowed: value"):
        make_check({"type": "contains", "valeu": "x"})
    with pytest.raises(CheckError, match="must be a whole number"):
        make_check({"type": "length", "max": 2.5})
    with pytest.raises(CheckError, match="applies to image outputs, not text"):
        make_checks([{"type": "clip"}], "text")
    with pytest.raises(CheckError, match="two checks are named 'contains=x'"):
        make_checks(["contains=x", "contains=x"])
    with pytest.raises(CheckError, match="21 checks; the limit is 20"):
        make_checks([{"type": "contains", "value": str(i)} for i in range(21)])
    checks = make_checks(["contains=x", {"type": "contains", "value": "x", "name": "has x"}], "text")
    assert [c.name for c in checks] == ["contains=x", "has x"]


def test_every_check_describes_itself():
    for kind, cls in registry().items():
        described = cls.describe()
        assert described["type"] == kind and described["description"] and described["modalities"]
        assert described["better"] in ("higher", "lower", None)


def test_scoring_imports_neither_torch_nor_gradio():
    import subprocess

    code = ("import sys, playground.scoring, playground.scoring.models, playground.store.scores; "
            "bad = [m for m in sys.modules if m.split('.')[0] in ('torch', 'gradio', 'transformers')]; "
            "sys.exit(1 if bad else 0)")
    assert subprocess.run([sys.executable, "-c", code]).returncode == 0


# ---- the per-cell hook ----------------------------------------------------------------------------------------------

def wav_bytes(rate: int, waveform: np.ndarray) -> bytes:
    buffer = io.BytesIO()
    with wave.open(buffer, "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes((np.clip(waveform, -1, 1) * 32767).astype("<i2").tobytes())
    return buffer.getvalue()


def test_score_cell_on_text_wav_and_failures(context):
    record = RunRecord(modality="text", model_id="m", prompt="p", seed=1, params={}, wall_s=0.5,
                       output_text="A solar lantern.")
    scores = score_cell(record, None, ["contains=lantern", "latency", {"type": "json_valid"}], context)
    assert [(s.name, s.value) for s in scores] == [("contains=lantern", 1.0), ("latency", 0.5), ("json_valid", 0.0)]
    assert score_cell(record, "no light here", ["contains=lantern"], context)[0].value == 0.0

    failed = RunRecord(modality="text", model_id="m", prompt="p", seed=1, params={}, status="error", error="boom")
    assert score_cell(failed, None, ["contains=x"], context) == []

    music = RunRecord(modality="music", model_id="m", prompt="p", seed=1, params={})
    rate, tone = sine(0.5)
    scores = score_cell(music, wav_bytes(rate, tone), ["loudness", "clipping", "contains=x"], context)
    assert [s.name for s in scores] == ["loudness", "clipping"]       # text checks skip music cells
    assert scores[0].value == pytest.approx(-9.03, abs=0.01)


def test_a_breaking_scorer_is_recorded_not_raised(context):
    record = RunRecord(modality="music", model_id="m", prompt="p", seed=1, params={})
    scores = score_cell(record, None, ["loudness", "latency"], context)      # no audio at all
    assert scores[0].value is None and "no audio" in scores[0].detail["error"]
    assert scores[1].value is None and "no time logged" in scores[1].detail["error"]


def test_hue_measures_how_close_the_main_colour_is_to_the_one_named():
    from PIL import Image

    def hue(spec, color, prompt="a fox"):
        return make_check(spec).score(CellInput("image", prompt, image=Image.new("RGB", (40, 40), color)), None)

    assert hue({"type": "hue", "color": "red"}, "red").value == 1.0
    assert hue({"type": "hue", "color": "red"}, "cyan").value == pytest.approx(0.0, abs=0.01)
    assert hue({"type": "hue", "color": "blue"}, "#00ff00").value == pytest.approx(1 / 3, abs=0.01)
    named = hue({"type": "hue"}, "blue", prompt="a fox in deep blue water")       # the prompt's colour word
    assert named.value == 1.0 and named.detail["color"] == "blue" and named.detail["better"] == "higher"
    bounded = hue({"type": "hue", "color": "red", "min": 0.8}, "orange")
    assert bounded.passed is False and 0.7 < bounded.value < 0.8
    assert hue({"type": "hue", "color": "red", "min": 0.8}, "gray").passed is False        # no colour at all
    assert "no colour to compare with" in hue({"type": "hue"}, "red").detail["error"]
    assert "not a colour name" in hue({"type": "hue", "color": "blurple"}, "red").detail["error"]
    with pytest.raises(CheckError):
        make_checks([{"type": "hue"}], "text")
