"""The one error every template problem becomes."""

from __future__ import annotations

from pathlib import Path


class TemplateError(ValueError):
    """A template problem, with the file (when there is one) and what to fix."""

    def __init__(self, message: str, path: Path | None = None):
        super().__init__(f"{path}: {message}" if path else message)
        self.path = path
        self.message = message

    @property
    def public(self) -> str:
        """The message for someone who is not on the server: the file by its name, not its absolute path."""
        return f"{self.path.name}: {self.message}" if self.path else self.message
