"""The limits an import is held to: the archive's sizes, and every field against what a new comparison may hold."""

from __future__ import annotations

from dataclasses import dataclass

MAX_SEED = 2**32 - 1


@dataclass(frozen=True)
class ImportLimits:
    max_bytes: int = 200 * 2**20           # the uploaded file
    max_member_bytes: int = 50 * 2**20     # one zip member, expanded
    max_expanded_bytes: int = 1 * 2**30    # all zip members together, expanded
    max_members: int = 20_000              # files in a zip
    max_rows: int = 20_000                 # lines of an export
    max_cells: int = 64                    # cells in one comparison, and the bound on row and col
    max_prompt_chars: int = 8000           # prompt, system prompt, negative prompt
    max_output_chars: int = 200_000        # a text output
    max_side: int = 1536                   # image width/height
    max_duration_s: float = 30.0           # music clip length
    max_seed: int = MAX_SEED

    @classmethod
    def from_settings(cls, settings) -> "ImportLimits":
        """The same limits a new comparison has, plus the archive caps (playground.settings.Settings)."""
        return cls(max_bytes=settings.max_import_bytes, max_member_bytes=settings.max_import_member_bytes,
                   max_expanded_bytes=settings.max_import_expanded_bytes, max_members=settings.max_import_members,
                   max_rows=settings.max_import_rows, max_cells=settings.max_cells,
                   max_prompt_chars=settings.max_prompt_chars, max_side=settings.max_side,
                   max_duration_s=settings.max_duration_s)
