"""The limits an import is held to: the archive's sizes, and every field against what a new comparison may hold."""

from __future__ import annotations

import dataclasses
from dataclasses import dataclass

from ..settings import defaults

# Each limit is a setting (playground.settings); an import is held to the same ones as a new comparison.
_SETTINGS = {"max_bytes": "max_import_bytes", "max_member_bytes": "max_import_member_bytes",
             "max_expanded_bytes": "max_import_expanded_bytes", "max_members": "max_import_members",
             "max_rows": "max_import_rows"}
_D = defaults()


@dataclass(frozen=True)
class ImportLimits:
    max_bytes: int = _D.max_import_bytes                    # the uploaded file
    max_member_bytes: int = _D.max_import_member_bytes      # one zip member, expanded
    max_expanded_bytes: int = _D.max_import_expanded_bytes  # all zip members together, expanded
    max_members: int = _D.max_import_members                # files in a zip
    max_rows: int = _D.max_import_rows                      # lines of an export
    max_cells: int = _D.max_cells                           # cells in one comparison, and the bound on row and col
    max_prompt_chars: int = _D.max_prompt_chars             # prompt, system prompt, negative prompt
    max_output_chars: int = _D.max_output_chars             # a text output
    max_side: int = _D.max_side                             # image width/height
    max_duration_s: float = _D.max_duration_s               # music clip length
    max_name_chars: int = _D.max_name_chars                 # template, variant names
    max_model_id_chars: int = _D.max_model_id_chars
    max_note_chars: int = _D.max_note_chars

    @classmethod
    def from_settings(cls, settings) -> "ImportLimits":
        """The same limits a new comparison has, plus the archive caps (playground.settings.Settings)."""
        return cls(**{f.name: getattr(settings, _SETTINGS.get(f.name, f.name)) for f in dataclasses.fields(cls)})
