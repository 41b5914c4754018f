"""Template files on disk: the library (repo prompts/ + the user's folder), saving and importing user templates."""

from __future__ import annotations

import os
import stat
from dataclasses import replace
from pathlib import Path

from .errors import TemplateError
from .frontmatter import MAX_FILE_BYTES, make_template, parse_template, template_to_text
from .model import LIBRARY_DIR, Library, LoadError, Template, check_name


def read_template_file(path: Path, root: Path | None = None) -> str:
    """A template file's text. Only a regular file is opened (a FIFO would block start-up, a device never ends),
    no larger than MAX_FILE_BYTES; with `root`, a link that leads outside that folder is refused, not followed."""
    path = Path(path)
    try:
        target = path.resolve(strict=True)
        if root is not None and Path(root).resolve() not in target.parents:
            raise TemplateError("a link to a file outside the templates folder; copy the file in instead", path)
        descriptor = os.open(target, os.O_RDONLY | os.O_NONBLOCK | getattr(os, "O_NOFOLLOW", 0)
                             | getattr(os, "O_NOCTTY", 0))
    except OSError as error:
        raise TemplateError(f"cannot read: {error.strerror}", path) from None
    try:
        info = os.fstat(descriptor)
        if not stat.S_ISREG(info.st_mode):
            raise TemplateError("not a regular file (a pipe, device or folder); only .md files are read", path)
        if info.st_size > MAX_FILE_BYTES:
            raise TemplateError(f"the file is larger than {MAX_FILE_BYTES} bytes", path)
        raw = b""
        while len(raw) <= MAX_FILE_BYTES:                 # to the end, or past the cap (the file may have grown)
            chunk = os.read(descriptor, MAX_FILE_BYTES + 1 - len(raw))
            if not chunk:
                break
            raw += chunk
    finally:
        os.close(descriptor)
    if len(raw) > MAX_FILE_BYTES:
        raise TemplateError(f"the file is larger than {MAX_FILE_BYTES} bytes", path)
    try:
        return raw.decode("utf-8")
    except UnicodeDecodeError as error:
        raise TemplateError(f"not UTF-8 text (byte {error.start}); save the file as UTF-8", path) from None


def _load_file(path: Path, source: str, root: Path) -> Template:
    template = parse_template(read_template_file(path, root), path=path, source=source)
    if template.name != path.stem:
        raise TemplateError(f"the name {template.name!r} must match the file name {path.stem!r}", path)
    return template


def load_library(library_dir: Path | None = LIBRARY_DIR, user_dir: Path | None = None) -> Library:
    """Every template under library_dir (then user_dir); each broken file is listed, the rest still load."""
    library = Library()
    sources = ([(Path(library_dir), "library")] if library_dir else []) + \
        ([(Path(user_dir), "user")] if user_dir else [])
    for folder, source in sources:
        if not folder.is_dir():
            continue
        try:
            paths = sorted(folder.rglob("*.md"))
        except OSError as error:
            library.errors.append(LoadError(folder, f"cannot list the folder: {error.strerror}"))
            continue
        for path in paths:
            if path.name.lower() == "readme.md":
                continue
            try:
                template = _load_file(path, source, folder)
                if template.name in library.templates:
                    other = library.templates[template.name]
                    if other.source == "library" and source == "user":
                        raise TemplateError(f"{template.name!r} is the name of a library template ({other.path}); "
                                            "a user template may not shadow it. Rename this one", path)
                    raise TemplateError(f"duplicate name {template.name!r}: {other.path} already uses it. "
                                        "Rename one of them", path)
                library.templates[template.name] = template
            except TemplateError as error:
                library.errors.append(LoadError(path, error.message))
            except (RecursionError, MemoryError, ValueError, TypeError) as error:   # never stop the app
                library.errors.append(LoadError(path, f"cannot be read as a template ({type(error).__name__})"))
    return library




def save_user_template(t: Template, user_dir: Path, library: Library | None = None,
                       overwrite: bool = False) -> Path:
    """Write a template into the user's folder (never the repo's prompts/); refuses to shadow a library one."""
    name = check_name(t.name)
    if library is not None:
        taken = name in library.templates and library.templates[name].source == "library"
    else:
        taken = any(LIBRARY_DIR.glob(f"*/{name}.md")) or (LIBRARY_DIR / f"{name}.md").exists()
    if taken:
        raise TemplateError(f"{name!r} is a library template; save under another name")
    user_dir = Path(user_dir).resolve()
    if user_dir == LIBRARY_DIR or LIBRARY_DIR in user_dir.parents:
        raise TemplateError(f"user templates cannot be saved inside the library folder {LIBRARY_DIR}; "
                            "choose another folder")
    user_dir.mkdir(parents=True, exist_ok=True)
    path = (user_dir / f"{name}.md").resolve()
    if path.parent != user_dir:
        raise TemplateError(f"{name!r} would be written outside {user_dir}")
    if path.exists() and not overwrite:
        raise TemplateError(f"you already have a template named {name!r}; pick another name or overwrite it")
    text = template_to_text(t)
    parse_template(text)                        # never write a file the library cannot read back
    tmp = path.with_suffix(".md.tmp")
    tmp.write_text(text, encoding="utf-8")
    tmp.replace(path)
    return path


def import_template(text_or_path: str | os.PathLike, user_dir: Path, library: Library | None = None,
                    overwrite: bool = False) -> Template:
    """Validate a template (its file text, or a path to a .md file) and save it as a user template."""
    origin = None
    if isinstance(text_or_path, os.PathLike):
        origin = Path(text_or_path)
        text = read_template_file(origin)
    else:
        text = str(text_or_path)
    template = parse_template(text, path=origin, source="user")
    path = save_user_template(template, user_dir, library, overwrite=overwrite)
    return replace(template, path=path, text=path.read_text(encoding="utf-8"))


def with_variant(template: Template, variant: str, source: str, name: str | None = None) -> Template:
    """A copy of a template with one more variant (or one variant replaced), ready for save_user_template.

    The copy gets `name` (it must differ from a library template's name when it is saved); variables the new
    variant uses and the template does not declare are added with an empty default."""
    check_name(variant, "variant name")
    return with_changes(template, name=name or template.name, variants={**template.variants, variant: source})


def with_changes(template: Template, **changes) -> Template:
    """A copy of a template with some of make_template's fields changed and every other one (variables with their
    descriptions, notes, checks...) kept."""
    fields = dict(name=template.name, modality=template.modality, variants=template.variants,
                  variables=template.variables, params=template.params, system=template.system,
                  negative_prompt=template.negative_prompt, description=template.description,
                  techniques=template.techniques, notes=template.notes, checks=template.checks)
    return make_template(**(fields | changes))
