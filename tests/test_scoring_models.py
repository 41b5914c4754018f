"""Model scorers on the tiny random-weight CLIP and CLAP, loaded through from_pretrained like the presets."""

from __future__ import annotations

from pathlib import Path

import numpy as np
import pytest

from playground.scoring import CellInput, ScorerContext, make_check, score_cell
from playground.scoring.models import CLAP_PRESET, CLIP_PRESET, resolve_scorer
from playground.scoring.tiny import SCORER_TINY_VERSION, tiny_scorer_path
from playground.store import RunRecord


@pytest.fixture(scope="module")
def context(models_dir):
    return ScorerContext(models_dir=models_dir, offline=True)


def image(seed: int):
    from PIL import Image

    return Image.fromarray(np.random.default_rng(seed).integers(0, 256, (80, 96, 3), dtype=np.uint8))


def tone(freq: float, seconds: float = 2.0, rate: int = 32000):
    t = np.arange(int(rate * seconds)) / rate
    return rate, (0.3 * np.sin(2 * np.pi * freq * t)).astype(np.float32)


def test_tiny_scorers_are_built_once_as_checkpoints(models_dir):
    folder = tiny_scorer_path(models_dir, "tiny-clip")
    assert folder.name == f"tiny-clip-v{SCORER_TINY_VERSION}" and (folder / "config.json").is_file()
    assert "meaningless" in (folder / ".complete").read_text()
    stamp = (folder / "config.json").stat().st_mtime_ns
    assert tiny_scorer_path(models_dir, "tiny-clip") == folder and (folder / "config.json").stat().st_mtime_ns == stamp
    with pytest.raises(KeyError, match="unknown tiny scorer"):
        tiny_scorer_path(models_dir, "tiny-nothing")


def test_presets_fall_back_to_tiny_offline_and_stay_hub_ids_online(tmp_path, models_dir):
    offline = ScorerContext(models_dir=models_dir, offline=True)
    source, meaningless = resolve_scorer(offline, None, CLIP_PRESET, "tiny-clip")
    assert meaningless and source.endswith(f"tiny-clip-v{SCORER_TINY_VERSION}")
    online = ScorerContext(models_dir=tmp_path, offline=False)
    assert resolve_scorer(online, None, CLIP_PRESET, "tiny-clip") == (CLIP_PRESET, False)
    assert resolve_scorer(online, None, CLAP_PRESET, "tiny-clap") == (CLAP_PRESET, False)
    assert resolve_scorer(online, "my/own-clip", CLIP_PRESET, "tiny-clip") == ("my/own-clip", False)
    assert not list(tmp_path.iterdir())                       # nothing built for online use


def test_clip_score_on_the_tiny_clip(context):
    check = make_check({"type": "clip"})
    cell = CellInput(modality="image", prompt="a red fox in a snowy forest", image=image(1))
    first = check.score(cell, context)
    assert -1.0 <= first.value <= 1.0 and first.detail["meaningless"] and first.detail["model"] == CLIP_PRESET
    assert check.score(cell, context).value == first.value                  # deterministic
    other = check.score(CellInput(modality="image", prompt="a red fox in a snowy forest", image=image(2)), context)
    assert other.value != first.value                                         # it does look at the pixels
    assert len([k for k in context._models if k[0] == "clip"]) == 1            # loaded once, then cached
    # the prompt's embedding is computed once for every seed of a variant
    assert len([k for k in context._memo if k[0] == "clip-text" and k[2] == "a red fox in a snowy forest"]) == 1


def test_clip_takes_a_folder_like_a_hub_id(context, models_dir):
    folder = str(tiny_scorer_path(models_dir, "tiny-clip"))
    by_folder = make_check({"type": "clip", "model": folder})
    by_preset = make_check({"type": "clip"})
    cell = CellInput(modality="image", prompt="a lighthouse", image=image(3))
    scored = by_folder.score(cell, context)
    assert scored.value == by_preset.score(cell, context).value
    assert "meaningless" not in scored.detail and scored.detail["loaded_from"] == Path(folder).name   # no path


def test_pickscore_offline_uses_the_tiny_clip_with_its_logit_scale(context):
    score = make_check({"type": "pickscore"}).score(
        CellInput(modality="image", prompt="a cat", image=image(4)), context)
    assert score.detail["meaningless"] and score.detail["logit_scale"] > 0
    clip = make_check({"type": "clip"}).score(CellInput(modality="image", prompt="a cat", image=image(4)), context)
    assert score.value == pytest.approx(score.detail["logit_scale"] * clip.value, abs=1e-4)


def test_clap_score_on_the_tiny_clap_resamples_to_48k(context):
    check = make_check({"type": "clap"})
    low = check.score(CellInput(modality="music", prompt="calm acoustic guitar", audio=tone(220)), context)
    high = check.score(CellInput(modality="music", prompt="calm acoustic guitar", audio=tone(2000)), context)
    assert -1 <= low.value <= 1 and low.value != high.value and low.detail["meaningless"]
    again = check.score(CellInput(modality="music", prompt="calm acoustic guitar", audio=tone(220)), context)
    assert again.value == low.value
    stereo = tone(220)[0], np.stack([tone(220)[1]] * 2)
    assert check.score(CellInput(modality="music", prompt="calm acoustic guitar", audio=stereo),
                       context).value == pytest.approx(low.value, abs=1e-5)
    long_clip = tone(220, seconds=12.0)           # longer than CLAP's 10 s window: cropped, reproducibly
    first = check.score(CellInput(modality="music", prompt="x", audio=long_clip), context).value
    assert check.score(CellInput(modality="music", prompt="x", audio=long_clip), context).value == first


def test_score_cell_reads_png_and_wav_artifacts(context, tmp_path):
    import io
    import wave

    png = io.BytesIO()
    image(5).save(png, format="PNG")
    record = RunRecord(modality="image", model_id="tiny-image", prompt="a fox", seed=1, params={}, wall_s=0.2)
    scores = score_cell(record, png.getvalue(), ["clip", "latency"], context)
    assert [s.name for s in scores] == ["clip", "latency"] and scores[0].value is not None

    rate, wave_ = tone(440)
    path = tmp_path / "clip.wav"
    with wave.open(str(path), "wb") as out:
        out.setnchannels(1)
        out.setsampwidth(2)
        out.setframerate(rate)
        out.writeframes((wave_ * 32767).astype("<i2").tobytes())
    music = RunRecord(modality="music", model_id="tiny-music", prompt="lo-fi beat", seed=1, params={})
    scores = score_cell(music, path, ["clap", "loudness", "silence", "clipping"], context)
    assert [s.name for s in scores] == ["clap", "loudness", "silence", "clipping"]
    assert all(s.value is not None for s in scores)
    assert scores[1].value == pytest.approx(20 * np.log10(0.3 / np.sqrt(2)), abs=0.01)


def test_an_unreachable_scorer_model_is_recorded_not_raised(context):
    record = RunRecord(modality="image", model_id="tiny-image", prompt="a fox", seed=1, params={})
    from types import SimpleNamespace

    output = SimpleNamespace(text=None, image=image(6), audio=None)
    scores = score_cell(record, output, [{"type": "clip", "model": "no-such-org/no-such-clip"}], context)
    assert scores[0].value is None and "error" in scores[0].detail
