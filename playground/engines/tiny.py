"""The offline tiny models: small models trained on toy worlds, shipped with the code.

`tiny-text` (a 3-layer Llama with a chat template), `tiny-image` (a 32x32 Stable Diffusion pipeline) and
`tiny-music` (a tiny MusicGen) live under `assets/models/<name>/` with a `CHECKSUMS` file (sha256 per file). They are
loaded in place with `from_pretrained`, through exactly the code real checkpoints take, once their files match
their checksums. They are useful to see that prompts matter, not real models: what they learned is in
`playground/toyworld/`, and `python -m playground.toyworld.build` trains them again, bit for bit.
"""

from __future__ import annotations

import hashlib
from pathlib import Path

from ..registry import InvalidInput

TINY_MODELS = {"tiny-text": "text", "tiny-image": "image", "tiny-music": "music"}
MODELS_DIR = Path(__file__).resolve().parent.parent.parent / "assets" / "models"
CHECKSUMS = "CHECKSUMS"


def model_files(folder: Path) -> list[Path]:
    """Every file of a model folder that its checksums cover, in a stable order."""
    return sorted(p for p in Path(folder).rglob("*") if p.is_file() and p.name != CHECKSUMS)


def checksums_of(folder: Path) -> dict[str, str]:
    """relative path -> sha256 of each file in `folder`."""
    folder = Path(folder)
    return {p.relative_to(folder).as_posix(): hashlib.sha256(p.read_bytes()).hexdigest() for p in model_files(folder)}


def format_checksums(sums: dict[str, str]) -> str:
    """The `sha256sum` format: `<hash>  <path>` a line, so `sha256sum -c CHECKSUMS` checks a folder too."""
    return "".join(f"{digest}  {path}\n" for path, digest in sorted(sums.items()))


def read_checksums(folder: Path) -> dict[str, str]:
    sums = {}
    for line in (Path(folder) / CHECKSUMS).read_text(encoding="utf-8").splitlines():
        if line.strip():
            digest, path = line.split(maxsplit=1)
            sums[path.strip().lstrip("*")] = digest
    return sums


def revision_of(sums: dict[str, str]) -> str:
    """A short hash of every file's name and bytes: two folders with the same one hold the same model."""
    return hashlib.sha256(format_checksums(sums).encode()).hexdigest()[:16]


def shipped_model(name: str, models_dir: Path = MODELS_DIR) -> tuple[Path, str]:
    """(folder, revision) of a shipped tiny model, after checking its files against CHECKSUMS."""
    if name not in TINY_MODELS:
        raise KeyError(f"unknown tiny model {name!r}; known: {', '.join(TINY_MODELS)}")
    folder = Path(models_dir) / name
    rebuild = f"restore it with git, or rebuild it with `python -m playground.toyworld.build {TINY_MODELS[name]}`"
    if not (folder / CHECKSUMS).is_file():
        raise InvalidInput("model", f"{name}: {folder} has no {CHECKSUMS} file; {rebuild}")
    expected, found = read_checksums(folder), checksums_of(folder)
    if found != expected:
        wrong = sorted(p for p in set(expected) | set(found) if expected.get(p) != found.get(p))
        raise InvalidInput("model", f"{name}: {', '.join(wrong[:3])} under {folder} do not match {CHECKSUMS}; "
                           f"{rebuild}")
    return folder, revision_of(found)
