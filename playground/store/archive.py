"""Reading an export someone else made: a .jsonl file or a .zip (runs.jsonl + media/), untrusted throughout.

Every cap is checked as the file is read (size, members, expanded bytes, rows, line length), members are streamed
in chunks, and a media file is kept only if it is what its run's modality produces (a PNG for an image, a WAV for
music) and decodes as one. It is stored under a name the server chooses; the name in the archive is never used
as a path.
"""

from __future__ import annotations

import os
import time
import uuid
import wave
import warnings
import zipfile
import zlib
from pathlib import Path
from typing import Iterator

from .limits import ImportLimits

MEDIA_TYPES = {"image": "png", "music": "wav"}       # what each modality produces
_CHUNK = 1 << 20
_READ_ERRORS = (OSError, zipfile.BadZipFile, zlib.error, RuntimeError, NotImplementedError, EOFError, ValueError)


class ImportRefused(ValueError):
    """The whole file is refused (too big, not an export); the message says which limit and which setting."""


def _mb(n: int) -> str:
    return f"{n / 2**20:.1f} MB"


class ExportFile:
    """An export opened for reading, with every cap checked while it is read."""

    def __init__(self, path: Path, limits: ImportLimits):
        self.path, self.limits = Path(path), limits
        self.archive: zipfile.ZipFile | None = None
        self.media: dict[str, zipfile.ZipInfo] = {}
        self.expanded = 0
        size = self.path.stat().st_size
        if size > limits.max_bytes:
            raise ImportRefused(f"{self.path.name} is {_mb(size)}; the limit is {_mb(limits.max_bytes)} "
                                "(setting max_import_bytes)")
        if not zipfile.is_zipfile(self.path):
            return
        self.archive = zipfile.ZipFile(self.path)
        infos = self.archive.infolist()
        if len(infos) > limits.max_members:
            raise ImportRefused(f"the zip holds {len(infos)} files; the limit is {limits.max_members} "
                                "(setting max_import_members)")
        declared = sum(info.file_size for info in infos)
        if declared > limits.max_expanded_bytes:
            raise ImportRefused(f"the zip expands to {_mb(declared)}; the limit is "
                                f"{_mb(limits.max_expanded_bytes)} (setting max_import_expanded_bytes)")
        self.runs = next((info for info in infos if info.filename == "runs.jsonl"), None)
        if self.runs is None:
            raise ImportRefused("the zip has no runs.jsonl: it is not an export of this app")
        if self.runs.file_size > limits.max_member_bytes:
            raise ImportRefused(f"runs.jsonl expands to {_mb(self.runs.file_size)}; the limit is "
                                f"{_mb(limits.max_member_bytes)} (setting max_import_member_bytes)")
        self.media = {info.filename: info for info in infos
                      if info.filename.startswith("media/") and not info.is_dir()}

    def __enter__(self) -> ExportFile:
        return self

    def __exit__(self, *exc) -> None:
        if self.archive is not None:
            self.archive.close()

    def max_line_chars(self) -> int:
        return 2 * self.limits.max_output_chars + 8 * self.limits.max_prompt_chars + 200_000

    def lines(self, errors: list) -> Iterator[tuple[int, str]]:
        """(line number, text) of each non-empty line, up to max_rows; problems go to `errors` as (line, reason).

        Lines end at b'\\n' only (text may hold U+2028 and kin, which str.splitlines() would split on), and each
        is decoded on its own, so one bad line is reported and the rest still read."""
        limit = 4 * self.max_line_chars()            # bytes: up to 4 per character in UTF-8
        rows, number = 0, 0
        try:
            with (self.archive.open(self.runs) if self.archive is not None else open(self.path, "rb")) as raw:
                while True:
                    data = raw.readline(limit + 1)
                    if not data:
                        return
                    number += 1
                    if len(data) > limit and not data.endswith(b"\n"):
                        errors.append((number, f"the line is longer than {limit} bytes"))
                        while data and not data.endswith(b"\n"):      # skip the rest of it
                            data = raw.readline(_CHUNK)
                        continue
                    try:
                        line = data.decode("utf-8-sig" if number == 1 else "utf-8").rstrip("\r\n")
                    except UnicodeDecodeError as error:
                        errors.append((number, f"not UTF-8 text (byte {error.start}); save the file as UTF-8"))
                        continue
                    if not line.strip():
                        continue
                    rows += 1
                    if rows > self.limits.max_rows:
                        errors.append((number, f"the file has more than {self.limits.max_rows} rows; the rest "
                                               "was not read (setting max_import_rows)"))
                        return
                    yield number, line
        except _READ_ERRORS as error:
            errors.append((number + 1, f"cannot read the file ({type(error).__name__}); the rest was not read"))

    def store_media(self, name: str, modality: str, artifacts_dir: Path) -> Path | None:
        """Copy the media file of a run into artifacts_dir under a fresh name; None when the export has none.

        Raises ValueError when the file is the wrong type, too big, or does not decode."""
        info = self.media.get(f"media/{name}")
        if info is None:
            return None
        expected = MEDIA_TYPES.get(modality)
        suffix = Path(name).suffix.lower().lstrip(".")
        if expected is None or suffix != expected:
            wanted = f"a .{expected} file" if expected else "no file"
            raise ValueError(f"media {Path(name).name[:80]!r}: a {modality} run carries {wanted}, not .{suffix}")
        if info.file_size > self.limits.max_member_bytes:
            raise ValueError(f"media {Path(name).name[:80]!r} expands to {_mb(info.file_size)}; the limit is "
                             f"{_mb(self.limits.max_member_bytes)} (setting max_import_member_bytes)")
        folder = artifacts_dir / time.strftime("%Y-%m", time.gmtime())
        folder.mkdir(parents=True, exist_ok=True)
        final = folder / f"{uuid.uuid4().hex}.{expected}"
        temporary = folder / f".{final.name}.tmp"
        try:
            written = 0
            with self.archive.open(info) as source, open(temporary, "wb") as sink:
                while chunk := source.read(_CHUNK):
                    written += len(chunk)
                    self.expanded += len(chunk)
                    if written > self.limits.max_member_bytes or self.expanded > self.limits.max_expanded_bytes:
                        raise ValueError(f"media {Path(name).name[:80]!r}: the archive expands past its limits "
                                         "(settings max_import_member_bytes, max_import_expanded_bytes)")
                    sink.write(chunk)
                sink.flush()
                os.fsync(sink.fileno())
            (_verify_png if expected == "png" else _verify_wav)(temporary, self.limits)
            os.replace(temporary, final)
        except ValueError:
            temporary.unlink(missing_ok=True)
            raise
        except _READ_ERRORS as error:
            temporary.unlink(missing_ok=True)
            raise ValueError(f"media {Path(name).name[:80]!r} cannot be read ({type(error).__name__})") from None
        except BaseException:
            temporary.unlink(missing_ok=True)
            raise
        return final


def import_problem(path: Path, limits: ImportLimits) -> str | None:
    """What would keep an import at `limits` from taking all of this export (a cap it passes), or None: an export is
    checked with the importer's own reader right after it is written."""
    errors: list = []
    try:
        with ExportFile(path, limits) as source:
            for _ in source.lines(errors):
                pass
    except ImportRefused as error:
        return str(error)
    except (OSError, zipfile.BadZipFile) as error:
        return f"it cannot be read back ({type(error).__name__})"
    return errors[0][1] if errors else None


def _verify_png(path: Path, limits: ImportLimits) -> None:
    from PIL import Image, UnidentifiedImageError

    try:
        with warnings.catch_warnings():
            warnings.simplefilter("error", Image.DecompressionBombWarning)
            with Image.open(path) as image:
                if image.format != "PNG":
                    raise ValueError(f"media is {image.format or 'not an image'}, not a PNG")
                width, height = image.size
                if width > limits.max_side or height > limits.max_side:
                    raise ValueError(f"image is {width}x{height}; at most {limits.max_side} a side")
                image.load()
    except (UnidentifiedImageError, Image.DecompressionBombError, Image.DecompressionBombWarning, OSError,
            SyntaxError) as error:
        raise ValueError(f"media is not a readable PNG image ({type(error).__name__})") from None


def _verify_wav(path: Path, limits: ImportLimits) -> None:
    try:
        with wave.open(str(path), "rb") as clip:
            channels, width, rate, frames = (clip.getnchannels(), clip.getsampwidth(), clip.getframerate(),
                                             clip.getnframes())
            if not (1 <= channels <= 2 and width in (1, 2, 3, 4) and 1000 <= rate <= 192_000):
                raise ValueError(f"audio has {channels} channels, {width}-byte samples at {rate} Hz")
            if frames / rate > limits.max_duration_s * 2 + 1:
                raise ValueError(f"audio is {frames / rate:.1f} s long; at most {limits.max_duration_s:g} s")
            data = clip.readframes(frames)
            if len(data) != frames * channels * width:
                raise ValueError(f"audio is truncated: {len(data)} of {frames * channels * width} bytes")
    except (wave.Error, EOFError, OSError) as error:
        raise ValueError(f"media is not a readable WAV file ({type(error).__name__}: "
                         f"{str(error).replace(str(path), 'the file')[:200]})") from None
