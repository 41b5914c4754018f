"""Train the offline tiny models on their toy worlds and write them under assets/models/<name>/ with CHECKSUMS.

    python -m playground.toyworld.build                   # all three (text, image, music)
    python -m playground.toyworld.build text image        # some of them
    python -m playground.toyworld.build --check text      # train again in a scratch folder, compare with CHECKSUMS
    python -m playground.toyworld.build text --steps 20 --out /tmp/quick     # a quick try, never over the assets

Every build is fixed by seeds and step counts and runs on one thread with deterministic algorithms, so the same
library versions on the same kind of CPU write the same bytes.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import shutil
import sys
import tempfile
import time
from pathlib import Path

from ..engines.tiny import CHECKSUMS, MODELS_DIR, checksums_of, format_checksums, read_checksums

KINDS = {"text": "tiny-text", "image": "tiny-image", "music": "tiny-music"}


def _trainer(kind: str):
    if kind == "text":
        from . import train_text as module
    elif kind == "image":
        from . import train_image as module
    else:
        from . import train_music as module
    return module


def recipe(kind: str, steps: int | None = None) -> dict:
    """What a build of `kind` trains with: written beside the weights as toyworld.json."""
    module = _trainer(kind)
    settings = {name.lower(): getattr(module, name) for name in dir(module)
                if name.isupper() and isinstance(getattr(module, name), (int, float)) and not name.startswith("_")}
    if steps is not None:
        settings.update({name: steps for name in settings if name.endswith("steps")})
    return {"model": KINDS[kind], "world": f"playground/toyworld/{kind}.py", "trained_by": f"{module.__name__}",
            "settings": settings,
            "note": "trained on a toy world: useful to see that prompts matter, not a real model"}


def build(kind: str, folder: Path, steps: int | None = None, quiet: bool = False) -> dict[str, str]:
    """Train `kind` into `folder` (created or emptied) and return its checksums (CHECKSUMS is written too)."""
    import torch

    folder = Path(folder)
    if folder.exists():
        shutil.rmtree(folder)
    folder.mkdir(parents=True)
    started = time.perf_counter()
    last = [started]

    def progress(*report):
        stage, step, total, loss = report if len(report) == 4 else (kind, *report)
        now = time.perf_counter()
        if not quiet and (step == total or now - last[0] > 30):
            last[0] = now
            print(f"{KINDS[kind]}: {stage} step {step}/{total}, loss {loss:.4f}, {now - started:.0f} s", flush=True)

    threads = torch.get_num_threads()
    try:
        module = _trainer(kind)
        stages = [name for name in inspect.signature(module.train).parameters if name.endswith("steps")]
        module.train(folder, **({stage: steps for stage in stages} if steps is not None else {}), on_step=progress)
    finally:
        torch.set_num_threads(threads)
    (folder / "toyworld.json").write_text(json.dumps(recipe(kind, steps), indent=2, sort_keys=True) + "\n")
    sums = checksums_of(folder)
    (folder / CHECKSUMS).write_text(format_checksums(sums))
    if not quiet:
        print(f"{KINDS[kind]}: built in {time.perf_counter() - started:.0f} s, "
              f"{sum(p.stat().st_size for p in folder.rglob('*') if p.is_file()) / 1e6:.1f} MB", flush=True)
    return sums


def install(kind: str, steps: int | None = None, models_dir: Path = MODELS_DIR) -> Path:
    """Build `kind` beside the assets and move it into place only once complete."""
    target = Path(models_dir) / KINDS[kind]
    target.parent.mkdir(parents=True, exist_ok=True)
    scratch = Path(tempfile.mkdtemp(prefix=f".{target.name}-", dir=target.parent))
    try:
        build(kind, scratch / "model", steps)
        if target.exists():
            shutil.rmtree(target)
        os.replace(scratch / "model", target)
    finally:
        shutil.rmtree(scratch, ignore_errors=True)
    return target


def check(kind: str, models_dir: Path = MODELS_DIR) -> bool:
    """Train `kind` again in a scratch folder and compare every file with the shipped CHECKSUMS."""
    shipped = read_checksums(Path(models_dir) / KINDS[kind])
    with tempfile.TemporaryDirectory() as scratch:
        rebuilt = build(kind, Path(scratch) / KINDS[kind])
    same = True
    for path in sorted(set(shipped) | set(rebuilt)):
        verdict = "same" if shipped.get(path) == rebuilt.get(path) else "DIFFERENT"
        same &= verdict == "same"
        print(f"  {verdict:9} {path}")
    print(f"{KINDS[kind]}: {'reproduced bit for bit' if same else 'NOT reproduced'}", flush=True)
    return same


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m playground.toyworld.build", description=__doc__.splitlines()[0])
    parser.add_argument("kinds", nargs="*", metavar="kind", help="text, image or music (default: all three)")
    parser.add_argument("--check", action="store_true", help="train again and compare with the shipped CHECKSUMS")
    parser.add_argument("--steps", type=int, help="train each stage this many steps instead (a quick try; needs --out)")
    parser.add_argument("--out", type=Path, help="write here instead of assets/models")
    args = parser.parse_args(argv)
    kinds = args.kinds or list(KINDS)
    unknown = [kind for kind in kinds if kind not in KINDS]
    if unknown:
        parser.error(f"unknown kind {unknown[0]!r}; choose from {', '.join(KINDS)}")
    if args.steps is not None and args.out is None:
        parser.error("--steps builds a quick try, not the shipped model: give --out too")
    if args.check:
        return 0 if all([check(kind) for kind in kinds]) else 1
    for kind in kinds:
        if args.out is not None:
            build(kind, args.out / KINDS[kind], args.steps)
        else:
            install(kind)
    return 0


if __name__ == "__main__":
    sys.exit(main())
