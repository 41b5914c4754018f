"""Toy worlds: procedural (prompt, output) pairs whose outputs depend on the prompt the way the library's templates
expect, and the build that trains the offline tiny models on them (`python -m playground.toyworld.build`).

`text`, `image` and `music` generate each world with the standard library and numpy only; `train_*` train the
models (torch) and `build` writes them under `assets/models/<name>/` with their checksums.
"""
