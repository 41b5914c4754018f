"""An image or audio column as the expected answer: an image folder and an audio folder (each with a metadata.csv)
added as datasets keep their files' bytes, every cell of an experiment logs the row's reference file, kept once in
the data dir, and image_match / audio_match compare each output with its own row's reference, on the shipped toy
models (the red circle's images are closer to the red reference than to the blue one; the happy clips to the high
reference)."""

from __future__ import annotations

import csv
import io
import wave
from pathlib import Path

import numpy as np
import pytest

from playground import experiments
from playground.datasets import DatasetError
from playground.jobs import JobWorker
from playground.registry import InvalidInput
from playground.scoring import CellInput, make_check
from playground.scoring.base import ScorerContext
from playground.services import Services
from playground.store.scores import scores_for_runs
from playground.templates import make_template


@pytest.fixture
def services(tmp_path, settings, catalog):
    folder = tmp_path / "data"
    folder.mkdir()
    (folder / "models").symlink_to(settings.models_dir, target_is_directory=True)
    made = Services.create(settings.replace(data_dir=folder), catalog=catalog)
    yield made
    made.stop_jobs()
    made.log.close()


def folder_with(tmp_path: Path, name: str, rows: list[tuple[str, bytes, str]]) -> Path:
    """A folder of files and a metadata.csv (file_name, then a text column): what imagefolder/audiofolder read."""
    folder = tmp_path / name
    folder.mkdir()
    with open(folder / "metadata.csv", "w", newline="") as handle:
        writer = csv.writer(handle)
        writer.writerow(["file_name", "subject"])
        for file_name, data, subject in rows:
            (folder / file_name).write_bytes(data)
            writer.writerow([file_name, subject])
    return folder


def drawn(color: str, shape: str) -> bytes:
    from PIL import Image, ImageDraw

    image = Image.new("RGB", (32, 32), "white")
    draw = ImageDraw.Draw(image)
    (draw.ellipse if shape == "circle" else draw.rectangle)((6, 6, 25, 25), fill=color)
    out = io.BytesIO()
    image.save(out, format="PNG")
    return out.getvalue()


def tone(hz: float, seconds: float = 1.0, rate: int = 32_000) -> bytes:
    t = np.arange(int(seconds * rate)) / rate
    samples = (0.3 * np.sin(2 * np.pi * hz * t) * 32767).astype("<i2")
    out = io.BytesIO()
    with wave.open(out, "wb") as handle:
        handle.setnchannels(1)
        handle.setsampwidth(2)
        handle.setframerate(rate)
        handle.writeframes(samples.tobytes())
    return out.getvalue()


def run_experiment(services, template, dataset, check: dict, *, expected: str, model: str):
    spec = experiments.build_spec(services, template=template, dataset=dataset, expected=expected, models=[model],
                                  seeds=[1, 2], checks=[check])
    experiment = experiments.submit(services, spec)
    assert JobWorker(services, services.jobs).run_one(experiment.job.id).status == "done"
    return services.log.list_runs(comparison_id=experiment.id, limit=100, newest_first=False)


def score_against(services, record, check, reference: Path) -> float:
    """The check's value for this run's output compared with another reference file."""
    from playground.scoring.cell import cell_input

    cell = cell_input(record, None, services.log)
    cell.reference_file = reference
    return check.score(cell, ScorerContext(models_dir=services.settings.models_dir)).value


def test_an_image_column_is_each_rows_reference_and_image_match_follows_the_prompt(services, tmp_path):
    folder = folder_with(tmp_path, "shapes", [("red.png", drawn("red", "circle"), "a red circle"),
                                              ("blue.png", drawn("blue", "square"), "a blue square")])
    dataset = services.datasets.add(folder, name="shapes")
    assert {c.name: c.type for c in dataset.columns} == {"image": "image", "subject": "text"}
    (folder / "red.png").unlink()                  # the stored dataset holds the bytes, not the user's files
    template = make_template(name="shape", modality="image", variants={"plain": "{{ subject }} on a white background"},
                             variables={"subject": "a red circle"}, params={"num_inference_steps": 25})
    runs = run_experiment(services, template, dataset, {"type": "image_match"}, expected="image",
                          model="tiny-image")
    assert len(runs) == 4 and all(r.status == "ok" for r in runs)
    kept = {r.variables["subject"]: services.log.reference_path(r) for r in runs}
    assert kept["a red circle"].read_bytes() == drawn("red", "circle") and kept["a red circle"].suffix == ".png"
    assert kept["a blue square"] != kept["a red circle"]
    assert len(list((services.settings.data_dir / "references").rglob("*.png"))) == 2     # kept once per file
    check = make_check({"type": "image_match"}, has_reference=True)
    for record in runs:
        score = scores_for_runs(services.log, [record.id])[record.id]["image_match=pixels"]
        own = kept[record.variables["subject"]]
        other = next(path for path in kept.values() if path != own)
        assert 0 < score.value <= 1 and score.value == pytest.approx(score_against(services, record, check, own))
        assert score.value > score_against(services, record, check, other), record.variables


def audio_parquet(path: Path, rows: list[tuple[str, bytes, str]]) -> Path:
    """A Parquet file with an Audio column holding each clip's bytes: how Hugging Face datasets keep audio (an
    audio folder needs torchcodec and FFmpeg to be read)."""
    import json

    import pyarrow as pa
    import pyarrow.parquet as pq

    clips = pa.array([{"bytes": data, "path": name} for name, data, _ in rows],
                     type=pa.struct({"bytes": pa.binary(), "path": pa.string()}))
    table = pa.table({"audio": clips, "subject": [subject for *_, subject in rows]})
    features = {"audio": {"_type": "Audio"}, "subject": {"dtype": "string", "_type": "Value"}}
    pq.write_table(table.replace_schema_metadata({"huggingface": json.dumps({"info": {"features": features}})}), path)
    return path


def test_an_audio_column_is_each_rows_reference_and_audio_match_follows_the_mood(services, tmp_path):
    file = audio_parquet(tmp_path / "moods.parquet", [("high.wav", tone(1000), "happy, sunny, major key, upbeat"),
                                                      ("low.wav", tone(250), "melancholic, slow, minor key, wistful")])
    dataset = services.datasets.add(file, name="moods")
    assert {c.name: c.type for c in dataset.columns} == {"audio": "audio", "subject": "text"}
    template = make_template(name="mood", modality="music", variants={"plain": "solo piano melody, {{ subject }}"},
                             variables={"subject": "happy"}, params={"duration_s": 1.0})
    runs = run_experiment(services, template, dataset, {"type": "audio_match"}, expected="audio",
                          model="tiny-music")
    assert len(runs) == 4 and all(r.status == "ok" for r in runs)
    kept = {r.variables["subject"].split(",")[0]: services.log.reference_path(r) for r in runs}
    check = make_check({"type": "audio_match"}, has_reference=True)
    for record in runs:
        mood = record.variables["subject"].split(",")[0]
        other = kept["melancholic" if mood == "happy" else "happy"]
        own = score_against(services, record, check, kept[mood])
        assert -1 <= own <= 1 and own > score_against(services, record, check, other), mood


def test_an_audio_folder_without_its_decoder_says_what_to_do(services, tmp_path):
    pytest.importorskip("torch")
    try:
        import torchcodec  # noqa: F401
        pytest.skip("torchcodec is installed: the folder reads")
    except ImportError:
        pass
    folder = folder_with(tmp_path, "moods", [("high.wav", tone(1000), "happy")])
    with pytest.raises(DatasetError, match="torchcodec .* or add a Parquet file whose audio column holds"):
        services.datasets.add(folder, name="moods")


def test_a_reference_check_without_a_media_column_is_refused_up_front(services, tmp_path):
    dataset = services.datasets.add_rows([{"subject": "a red circle", "reference": "red"}], name="words")
    template = make_template(name="shape", modality="image", variants={"plain": "{{ subject }}"},
                             variables={"subject": "x"})
    spec = experiments.build_spec(services, template=template, dataset=dataset, expected="reference",
                                  models=["tiny-image"], seeds=[1], checks=[{"type": "image_match"}])
    with pytest.raises(InvalidInput, match="column 'reference' holds text: choose the dataset's image column"):
        experiments.submit(services, spec)


def test_the_measures_themselves():
    from PIL import Image

    from playground.scoring.reference import pixel_similarity, spectrum_similarity
    from playground.scoring.audio import read_wav

    red, blue = Image.new("RGB", (40, 40), "red"), Image.new("RGB", (40, 40), "blue")
    assert pixel_similarity(red, red) == 1 and pixel_similarity(red, blue) == pytest.approx(1 / 3)
    high, low = read_wav(tone(1000)), read_wav(tone(250))
    assert spectrum_similarity(high, high) == pytest.approx(1)
    assert spectrum_similarity(high, read_wav(tone(1000, rate=16_000))) > 0.95      # the rate does not matter
    assert spectrum_similarity(high, low) < 0.5
    assert spectrum_similarity(high, (16_000, np.zeros(16_000, dtype=np.float32))) == 0      # silence: no shape
    cell = CellInput(modality="image", prompt="x", image=red)
    with pytest.raises(ValueError, match="choose the dataset's image column"):
        make_check({"type": "image_match"}).score(cell, ScorerContext(models_dir=Path(".")))


def test_an_import_refuses_a_reference_that_names_another_file(services, tmp_path):
    import json

    from playground.store import RunRecord

    kept = "references/ab/" + "ab" * 32 + ".png"
    rows = [RunRecord(modality="image", model_id="tiny-image", prompt="p", seed=1, params={}, status="ok",
                      reference_file=name, uid=f"imported-{i}") for i, name in enumerate([kept, "artifacts/2026-12/x.png",
                                                                                    "references/../runs.db"])]
    path = tmp_path / "runs.jsonl"
    path.write_text("\n".join(json.dumps({k: v for k, v in vars(r).items() if v is not None}) for r in rows))
    report = services.log.import_jsonl(path)
    assert report.imported == 1 and [number for number, _ in report.errors] == [2, 3], report
    assert all("must name a kept reference" in message for _, message in report.errors)
    assert [r.reference_file for r in services.log.list_runs(limit=10)] == [kept]


def test_the_embedding_methods_compare_both_sides_with_one_model(models_dir, tmp_path):
    """clip and clap embed the output and the reference with the same (offline: tiny, meaningless) model: the same
    file on both sides is 1, another one less."""
    from PIL import Image

    from playground.scoring.audio import read_wav

    context = ScorerContext(models_dir=models_dir, offline=True)
    red, blue = tmp_path / "red.png", tmp_path / "blue.png"
    red.write_bytes(drawn("red", "circle"))
    blue.write_bytes(drawn("blue", "square"))
    image = Image.open(red)
    check = make_check({"type": "image_match", "method": "clip"}, has_reference=True)
    same = check.score(CellInput(modality="image", prompt="x", image=image, reference_file=red), context)
    other = check.score(CellInput(modality="image", prompt="x", image=image, reference_file=blue), context)
    assert same.value == pytest.approx(1, abs=1e-5) and other.value < same.value
    assert same.detail["method"] == "clip" and same.detail["meaningless"] and same.detail["loaded_from"].startswith("tiny-clip")
    high, low = tmp_path / "high.wav", tmp_path / "low.wav"
    high.write_bytes(tone(1000))
    low.write_bytes(tone(250))
    check = make_check({"type": "audio_match", "method": "clap"}, has_reference=True)
    clip = read_wav(tone(1000))
    same = check.score(CellInput(modality="music", prompt="x", audio=clip, reference_file=high), context)
    other = check.score(CellInput(modality="music", prompt="x", audio=clip, reference_file=low), context)
    assert same.value == pytest.approx(1, abs=1e-5) and other.value < same.value and same.detail["meaningless"]
