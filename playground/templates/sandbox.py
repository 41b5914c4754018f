"""The Jinja2 sandbox every template renders in, and the budget each render gets.

The sandbox blocks attribute tricks (underscores, |attr, |format, unbounded str.format). On top of it each render
gets a budget:
- steps: loop iterations and calls;
- work: every call, filter and operator is charged the size of what it reads and what it makes, so a call on a
  1 MB string costs about a million units, not one;
- characters built: strings and lists are charged before they are made for the operations that multiply their
  input (*, ~, +, %, join, replace, indent, expandtabs, format widths), so memory cannot blow up first;
- time: wall clock and CPU, checked at every step and charge.
The budget is cooperative: one C-level call between two checks is bounded by the size caps. The process running
the render is in turn bounded from outside (see worker.py), which holds whatever the template does.
"""

from __future__ import annotations

import contextvars
import functools
import re
import string
import time
from typing import Mapping

import jinja2
import jinja2.meta
from jinja2 import nodes
from jinja2.compiler import CodeGenerator
from jinja2.sandbox import ImmutableSandboxedEnvironment, SecurityError, SandboxedFormatter
from jinja2.utils import _PassArg

from .errors import TemplateError

MAX_SOURCE_CHARS = 20_000          # one variant's template text
MAX_RANGE = 10_000                 # range() inside a template
MAX_REPEAT = 100_000               # 'ab' * n inside a template
MAX_STEPS = 100_000                # loop iterations + calls in one render
MAX_WORK_CHARS = 2_000_000         # characters (and list items) built in one render
MAX_WORK = 20_000_000              # characters read and written by all calls and operators of one render
MAX_INT_ARG = 100_000              # any integer handed to a filter or a method
MAX_INT_BITS = 4096                # integers a template computes with * and **
MAX_FORMAT_WIDTH = 10_000          # width or precision in a format spec ('{:>N}', '%Nd', '{:.Nf}')
MAX_VALUE_CHARS = 20_000           # one variable value handed to a render
RENDER_SECONDS = 2.0               # wall clock and CPU time of one render
_PERCENT_RE = re.compile(r"%(?:\([^)]*\))?[-#0 +]*(\*|\d+)?(?:\.(\*|\d+))?")
_DIGITS_RE = re.compile(r"\d+")


class _Budget:
    __slots__ = ("steps", "chars", "work", "deadline", "cpu_deadline", "seconds")

    def __init__(self, seconds: float = RENDER_SECONDS):
        self.steps = self.chars = self.work = 0
        self.seconds = seconds
        self.deadline = time.monotonic() + seconds
        self.cpu_deadline = time.process_time() + seconds

    def step(self, n: int = 1) -> None:
        self.steps += n
        if self.steps > MAX_STEPS:
            raise SecurityError(f"the template takes more than {MAX_STEPS} loop steps and calls; simplify it")
        self.clock()

    def read(self, n: int) -> None:
        """Work proportional to the size of the data an operation touches."""
        self.work += n
        if self.work > MAX_WORK:
            raise SecurityError(f"the template does more than {MAX_WORK} characters of work on its text; "
                                "simplify it or shorten the values")
        self.clock()

    def charge(self, n: int) -> None:
        """Characters (and list items) an operation builds."""
        self.chars += n
        if n > MAX_WORK_CHARS or self.chars > MAX_WORK_CHARS:
            raise SecurityError(f"the template builds more than {MAX_WORK_CHARS} characters of text")
        self.read(n)

    def clock(self) -> None:
        if time.monotonic() > self.deadline or time.process_time() > self.cpu_deadline:
            raise SecurityError(f"the template took more than {self.seconds:g} s to render; simplify it")


_BUDGET: contextvars.ContextVar[_Budget | None] = contextvars.ContextVar("template_budget", default=None)


def _budget() -> _Budget:
    budget = _BUDGET.get()
    if budget is None:
        # Outside a render, i.e. Jinja folding constants at compile time: refusing here makes Jinja leave the
        # expression to render time, where the budget applies.
        raise SecurityError("evaluated only while rendering")
    return budget


def _size(obj, limit: int = MAX_WORK_CHARS) -> int:
    """Roughly how many characters str(obj) takes; stops counting once past the limit."""
    total, stack = 0, [obj]
    while stack:
        item = stack.pop()
        if isinstance(item, (str, bytes)):
            total += len(item)
        elif isinstance(item, (list, tuple, set, frozenset, dict)):
            total += 2 + 2 * len(item)
            if total > limit:
                return total
            stack.extend(item.items() if isinstance(item, dict) else item)
        else:
            total += 8
        if total > limit:
            return total
    return total


def _check_ints(values) -> None:
    for value in values:
        if isinstance(value, int) and not isinstance(value, bool) and abs(value) > MAX_INT_ARG:
            raise SecurityError(f"the number {value} is too large here; at most {MAX_INT_ARG}")


def _join_size(items, sep) -> int:
    items = list(items)
    return sum(_size(i) for i in items) + _size(sep) * max(len(items) - 1, 0)


def _estimate(name: str, value, params: tuple, kwargs: dict) -> int:
    """Output size of the calls that can multiply their input; 0 when the result is checked afterwards."""
    if name == "replace" and isinstance(value, str) and len(params) >= 2:
        old, new = str(params[0]), str(params[1])
        count = value.count(old) if old else len(value) + 1
        return len(value) + count * len(new)
    if name == "join":
        return _join_size(value, params[0] if params else kwargs.get("d", ""))
    if name == "indent" and isinstance(value, str):
        width = params[0] if params else kwargs.get("width", 4)
        width = width if isinstance(width, int) else len(str(width))
        return len(value) + (value.count("\n") + 1) * max(width, 0)
    if name == "expandtabs" and isinstance(value, str):
        tabsize = params[0] if params else kwargs.get("tabsize", 8)
        return len(value) + value.count("\t") * (tabsize if isinstance(tabsize, int) else 8)
    return 0


def _check_spec(spec: str, where: str) -> None:
    """Refuse a width or precision that would build a huge string, before anything is formatted."""
    for digits in _DIGITS_RE.findall(spec or ""):
        if len(digits) > 6 or int(digits) > MAX_FORMAT_WIDTH:
            raise SecurityError(f"format width {digits} in {where!r} is not allowed; at most {MAX_FORMAT_WIDTH}")


class _BoundedFormatter(SandboxedFormatter):
    """str.format in the sandbox: every field's spec (after nested fields are filled in) is checked first."""

    def format_field(self, value, format_spec: str):
        _check_spec(format_spec, "{:" + format_spec + "}")
        budget = _budget()
        budget.read(_size(value))
        result = super().format_field(value, format_spec)
        budget.charge(len(result))
        return result


def _guard_filter(name: str, func):
    pass_arg = _PassArg.from_obj(func)

    @functools.wraps(func)
    def guarded(*args, **kwargs):
        budget = _budget()
        budget.step()
        skip = 1 if pass_arg is not None else 0
        value, params = (args[skip] if len(args) > skip else None), args[skip + 1:]
        _check_ints([*params, *kwargs.values()])
        if _size(value) > MAX_WORK_CHARS:
            raise SecurityError(f"the input of |{name} is more than {MAX_WORK_CHARS} characters")
        if name == "join" and value is not None and not isinstance(value, (str, list, tuple)):
            value = list(value)
            args = (*args[:skip], value, *params)
        budget.read(_size(value) + _size(params) + _size(kwargs))
        budget.charge(_estimate(name, value, params, kwargs))
        result = func(*args, **kwargs)
        if isinstance(result, (str, list, tuple, dict)):
            budget.charge(_size(result))
        return result

    return guarded


class _CodeGenerator(CodeGenerator):
    def visit_Concat(self, node, frame) -> None:           # the ~ operator: sized before it is joined
        self.write("environment.tilde_join((")
        for arg in node.nodes:
            self.visit(arg, frame)
            self.write(", ")
        self.write("))")


class _Sandbox(ImmutableSandboxedEnvironment):
    """No underscore attributes, no unbounded format widths, no huge ranges, repeats or powers; undefined names
    are errors; every render stays within its budget."""

    code_generator_class = _CodeGenerator
    intercepted_binops = frozenset({"*", "**", "+", "%", "//", "/", "-"})

    def is_safe_attribute(self, obj, attr, value) -> bool:
        if attr.startswith("_") or attr in {"mro"}:
            return False
        return super().is_safe_attribute(obj, attr, value)

    def wrap_str_format(self, value):
        """Jinja hands out its own str.format wrapper before is_safe_attribute is asked: swap in a bounded one."""
        wrapper = super().wrap_str_format(value)
        if wrapper is None:
            return None
        template, is_map = value.__self__, value.__name__ == "format_map"
        formatter = _BoundedFormatter(self)

        def bounded(*args, **kwargs):
            if is_map:
                if kwargs or len(args) != 1:
                    raise TypeError("format_map() takes exactly one mapping")
                args, kwargs = (), args[0]
            _check_fields(template)
            return str(formatter.vformat(str(template), args, kwargs))

        return functools.update_wrapper(bounded, value)

    def _parse(self, source, name, filename):
        tree = super()._parse(source, name, filename)
        for loop in tree.find_all(nodes.For):              # every loop iteration is a step
            loop.iter = nodes.Filter(loop.iter, "steps_", [], [], None, None, lineno=loop.iter.lineno)
        return tree

    def call(__self, __context, __obj, *args, **kwargs):  # noqa: N805 (jinja's own signature)
        budget = _budget()
        budget.step()
        if __obj is not _safe_range:
            _check_ints([*args, *kwargs.values()])
        method = getattr(__obj, "__name__", "")
        owner = getattr(__obj, "__self__", None)
        budget.read(_size(owner) + _size(args) + _size(kwargs))
        if isinstance(owner, str):
            if method == "join":
                args = (list(args[0]),) + args[1:] if args else args
                budget.charge(_join_size(args[0] if args else (), owner))
            else:
                budget.charge(_estimate(method, owner, args, kwargs))
        result = super().call(__context, __obj, *args, **kwargs)
        if isinstance(result, (str, list, tuple, dict)):
            budget.charge(_size(result))
        return result

    def call_binop(self, context, operator, left, right):
        budget = _budget()
        budget.read(_size(left) + _size(right))
        if operator == "**" and isinstance(right, (int, float)) and abs(right) > 64:
            raise SecurityError(f"power of {right}; at most 64")
        if operator in ("*", "**") and all(isinstance(v, int) for v in (left, right)):
            bits = left.bit_length() * abs(right) if operator == "**" else left.bit_length() + right.bit_length()
            if bits > MAX_INT_BITS:
                raise SecurityError(f"the number would have more than {MAX_INT_BITS} bits")
        if operator == "*":
            for sequence, times in ((left, right), (right, left)):
                if isinstance(sequence, (str, list, tuple)) and isinstance(times, int):
                    if len(sequence) * times > MAX_REPEAT:
                        raise SecurityError(f"repeating {len(sequence)} items {times} times; at most {MAX_REPEAT}")
                    budget.charge(_size(sequence) * max(times, 0))
        if operator == "+" and isinstance(left, (str, list, tuple)):
            budget.charge(_size(left) + _size(right))
        if operator == "%" and isinstance(left, str):
            for match in _PERCENT_RE.finditer(left):
                for number in match.groups():
                    if number == "*" or (number and (len(number) > 6 or int(number) > MAX_FORMAT_WIDTH)):
                        raise SecurityError(f"format width {number} in {match.group(0)!r} is not allowed")
            budget.charge(len(left) + _size(right))
        return super().call_binop(context, operator, left, right)

    def tilde_join(self, items) -> str:
        budget = _budget()
        budget.charge(sum(_size(item) for item in items))
        return "".join(map(str, items))


def _check_fields(template: str) -> None:
    """The literal specs of a format string ('{:>99999999}'); nested ones are checked as they are filled in."""
    for _, _, spec, _ in string.Formatter().parse(template):
        if spec:
            _check_spec(spec, "{:" + spec + "}")


def _safe_range(*args):
    rng = range(*args)
    if len(rng) > MAX_RANGE:
        raise SecurityError(f"range of {len(rng)} items; at most {MAX_RANGE}")
    return rng


def _steps(iterable):
    budget = _budget()
    for item in iterable:
        budget.step()
        yield item


def _checked_concat(parts) -> str:
    parts = list(parts)
    _budget().charge(sum(len(p) for p in parts))
    return "".join(parts)


def _finalize(value):
    _budget().charge(_size(value))
    return value


# optimized=False: Jinja's constant folder revisits nested expressions (cubic in their depth; 100 chained filters
# took 3 s to compile), and compiling happens in the server process when a template is saved.
_ENV = _Sandbox(undefined=jinja2.StrictUndefined, autoescape=False, keep_trailing_newline=False, optimized=False,
                finalize=_finalize)
_ENV.globals = {"range": _safe_range}
for _name in ("format", "attr", "random"):       # format strings, attribute lookups by name, nondeterminism
    _ENV.filters.pop(_name, None)
_ENV.filters = {name: _guard_filter(name, func) for name, func in _ENV.filters.items()}
_ENV.filters["steps_"] = _steps
_ENV.concat = _checked_concat


@functools.lru_cache(maxsize=256)
def _compiled(source: str) -> jinja2.Template:
    """Compiled once per source: a grid renders the same variant for every row."""
    return _ENV.from_string(source)


def compile_source(source: str, where: str, path=None) -> jinja2.Template:
    if not isinstance(source, str):
        raise TemplateError(f"{where}: the template must be text", path)
    if len(source) > MAX_SOURCE_CHARS:
        raise TemplateError(f"{where}: the template is {len(source)} characters; the limit is {MAX_SOURCE_CHARS}. "
                            "Shorten it", path)
    try:
        return _compiled(source)
    except jinja2.TemplateSyntaxError as error:
        raise TemplateError(f"{where}: syntax error on line {error.lineno}: {error.message}", path) from None
    except (RecursionError, MemoryError, SyntaxError) as error:    # SyntaxError: Python's own nesting limit
        raise TemplateError(f"{where}: the template is nested too deeply ({type(error).__name__})", path) from None


def variables_used(source: str) -> set[str]:
    """The variables a template source reads (jinja2.meta), without the sandbox's own globals."""
    if len(source) > MAX_SOURCE_CHARS:
        raise TemplateError(f"the template is {len(source)} characters; the limit is {MAX_SOURCE_CHARS}")
    try:
        return jinja2.meta.find_undeclared_variables(_ENV.parse(source)) - set(_ENV.globals)
    except jinja2.TemplateSyntaxError as error:
        raise TemplateError(f"syntax error on line {error.lineno}: {error.message}") from None
    except (RecursionError, MemoryError) as error:
        raise TemplateError(f"the template is nested too deeply ({type(error).__name__})") from None


def check_value_sizes(values: Mapping[str, object], path=None) -> None:
    """Values are bounded before any render sees them: the sandbox's work grows with the size of its inputs."""
    for name, value in values.items():
        if len(str(value)) > MAX_VALUE_CHARS:
            raise TemplateError(f"the value of {str(name)[:64]!r} is {len(str(value))} characters; at most "
                                f"{MAX_VALUE_CHARS}. Shorten it", path)


def render_here(source: str, values: Mapping[str, str], *, max_chars: int, where: str,
                seconds: float = RENDER_SECONDS) -> str:
    """Render in this process under the cooperative budget; any failure is a TemplateError saying what to fix."""
    check_value_sizes(values)
    template = compile_source(source, where)
    token = _BUDGET.set(_Budget(seconds))
    try:
        parts, length = [], 0
        for part in template.generate({k: str(v) for k, v in values.items()}):
            parts.append(part)
            length += len(part)
            if length > max_chars:
                raise TemplateError(f"{where}: the rendered prompt is too long; the limit is {max_chars} characters. "
                                    "Shorten the template or the variable values")
        return "".join(parts)
    except jinja2.UndefinedError as error:
        raise TemplateError(f"{where}: {error.message}; give it a value or declare it under variables") from None
    except SecurityError as error:
        raise TemplateError(f"{where}: refused by the sandbox: {error}") from None
    except jinja2.TemplateError as error:
        raise TemplateError(f"{where}: {error}") from None
    except (TypeError, ValueError, LookupError, AttributeError, ArithmeticError, RecursionError,
            MemoryError) as error:
        if isinstance(error, TemplateError):
            raise
        raise TemplateError(f"{where}: {type(error).__name__}: {str(error)[:300]}") from None
    finally:
        _BUDGET.reset(token)
