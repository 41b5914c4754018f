"""Whose templates: the shared library everyone reads, and each visitor's own saved templates.

Locally (owner None) the library is the repo's `prompts/` plus the user's templates folder, and saving writes into
that folder, as always. Where visitors are kept apart, that same library is shared and read-only, and each visitor
saves into a folder of their own (named by a hash of their owner id, under `visitor-templates/` in the data dir).
A visitor's view is the shared library plus their own templates: another visitor's templates are never listed,
read, overwritten or suggested ("did you mean ...") to them.
"""

from __future__ import annotations

import hashlib
import os
import threading
from collections import OrderedDict
from dataclasses import replace
from pathlib import Path

from .errors import TemplateError
from .files import import_template, load_library, read_template_file, save_user_template
from .frontmatter import parse_template
from .model import LIBRARY_DIR, Library, LoadError, Template, check_name

MAX_OWN_TEMPLATES = 200          # templates one visitor may keep (each at most MAX_FILE_BYTES)
_CACHED_VIEWS = 256              # visitors whose merged library is kept in memory


def owner_folder(root: Path, owner: str) -> Path:
    """A visitor's own templates folder: a hash of the owner id, so the id itself never names a path."""
    return Path(root) / hashlib.sha256(owner.encode("utf-8")).hexdigest()[:32]


class Libraries:
    """The shared library, loaded once, and each owner's view of it, loaded on first use and kept (bounded)."""

    def __init__(self, user_dir: Path, visitors_dir: Path, library_dir: Path = LIBRARY_DIR):
        self.user_dir, self.visitors_dir, self.library_dir = Path(user_dir), Path(visitors_dir), library_dir
        self._shared: Library | None = None
        self._views: OrderedDict[str, Library] = OrderedDict()
        self._lock = threading.RLock()

    def shared(self) -> Library:
        """The repo's templates plus the user (or operator) templates folder."""
        with self._lock:
            if self._shared is None:
                self._shared = load_library(self.library_dir, self.user_dir)
            return self._shared

    def folder(self, owner: str | None) -> Path:
        return self.user_dir if owner is None else owner_folder(self.visitors_dir, owner)

    def for_owner(self, owner: str | None) -> Library:
        """What this owner may list and read: the shared library plus their own templates."""
        if owner is None:
            return self.shared()
        with self._lock:
            view = self._views.get(owner)
            if view is None:
                view = self._views[owner] = self._merge(self.shared(), load_library(None, self.folder(owner)))
                while len(self._views) > _CACHED_VIEWS:
                    self._views.popitem(last=False)
            self._views.move_to_end(owner)
            return view

    @staticmethod
    def _merge(shared: Library, own: Library) -> Library:
        view = Library(templates=dict(shared.templates), errors=list(shared.errors) + list(own.errors))
        for name, template in own.templates.items():
            if name in view.templates:
                view.errors.append(LoadError(template.path, f"{name!r} is the name of a shared template; a template "
                                                            "of yours may not shadow it. Save it under another name"))
            else:
                view.templates[name] = template
        return view

    def reload(self, owner: str | None = None) -> None:
        """Forget what was loaded: everything (owner None), or one owner's view."""
        with self._lock:
            if owner is None:
                self._shared = None
                self._views.clear()
            else:
                self._views.pop(owner, None)

    def save(self, template: Template, owner: str | None, overwrite: bool = False) -> Path:
        """Save into the owner's folder. A shared template's name is taken; so is one of the owner's own unless
        `overwrite`; an owner with MAX_OWN_TEMPLATES templates must replace one."""
        if owner is None:
            path = save_user_template(template, self.user_dir, self.shared(), overwrite=overwrite)
        else:
            name = check_name(template.name)
            if name in self.shared().templates:
                raise TemplateError(f"{name!r} is the name of a shared template; save under another name")
            folder = self.folder(owner)
            if not (folder / f"{name}.md").exists() and _count(folder) >= MAX_OWN_TEMPLATES:
                raise TemplateError(f"you have {MAX_OWN_TEMPLATES} templates, the most one visitor may keep; "
                                    "replace one of them instead")
            path = save_user_template(template, folder, self.shared(), overwrite=overwrite)
        self.reload(owner)
        return path

    def import_template(self, text_or_path: str | os.PathLike, owner: str | None,
                        overwrite: bool = False) -> Template:
        """Validate a template (its text, or an uploaded .md file) and save it as one of the owner's templates."""
        if owner is None:
            saved = import_template(text_or_path, self.user_dir, self.shared(), overwrite=overwrite)
            self.reload(None)
            return saved
        origin = Path(text_or_path) if isinstance(text_or_path, os.PathLike) else None
        text = read_template_file(origin) if origin is not None else str(text_or_path)
        template = parse_template(text, path=origin, source="user")
        path = self.save(template, owner, overwrite=overwrite)
        return replace(template, path=path, text=path.read_text(encoding="utf-8"))


def _count(folder: Path) -> int:
    try:
        return sum(1 for _ in folder.glob("*.md"))
    except OSError:
        return 0
