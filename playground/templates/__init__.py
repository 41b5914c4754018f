"""The prompt-template library: Markdown files with YAML front matter, rendered in a Jinja2 sandbox.

A template names a technique and carries 1-8 variants of a prompt that differ in exactly that technique, plus the
variables they share. `expand` turns variants x variable values into grid cells that remember what made them.
No gradio and no model library here.

Modules: model (the records), sandbox (Jinja sandbox and render budget), worker (renders in killable processes),
frontmatter (file format and its schema), files (library, saving, importing), expand (grids), notes (safe notes).
"""

from .errors import TemplateError
from .expand import EXPAND_SECONDS, MAX_VALUES_INPUT_CHARS, expand, parse_values
from .files import import_template, load_library, save_user_template, with_changes, with_variant
from .frontmatter import (FRONT_KEYS, MAX_CHECKS, MAX_FILE_BYTES, MAX_YAML_DEPTH, RESERVED_NAMES, check_checks,
                          make_template, parse_template, template_to_text)
from .model import (DEFAULT_MAX_CHARS, LIBRARY_DIR, MAX_VALUE_CHARS, MAX_VARIANTS, MODALITIES, NAME_RULE, Library,
                    LoadError, PromptCell, Template, Variable, check_name)
from .sandbox import (MAX_FORMAT_WIDTH, MAX_SOURCE_CHARS, MAX_STEPS, MAX_WORK, MAX_WORK_CHARS, RENDER_SECONDS,
                      variables_used)
from .worker import render_source

__all__ = ["DEFAULT_MAX_CHARS", "EXPAND_SECONDS", "FRONT_KEYS", "LIBRARY_DIR", "MAX_CHECKS", "MAX_FILE_BYTES",
           "MAX_FORMAT_WIDTH", "MAX_SOURCE_CHARS", "MAX_STEPS", "MAX_VALUES_INPUT_CHARS", "MAX_VALUE_CHARS",
           "MAX_VARIANTS", "MAX_WORK", "MAX_WORK_CHARS", "MAX_YAML_DEPTH", "MODALITIES", "NAME_RULE",
           "RENDER_SECONDS", "RESERVED_NAMES", "Library", "LoadError", "PromptCell", "Template", "TemplateError",
           "Variable", "check_checks", "check_name", "expand", "import_template", "load_library", "make_template",
           "parse_template", "parse_values", "render_source", "save_user_template",
           "template_to_text", "variables_used", "with_changes", "with_variant"]
