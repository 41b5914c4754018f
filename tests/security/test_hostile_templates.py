"""Hostile templates: work charged by size, format width bombs, renders bounded in time and memory."""

from __future__ import annotations

import time
import tracemalloc
from pathlib import Path

import pytest

from playground.templates import (MAX_SOURCE_CHARS, MAX_VALUE_CHARS, TemplateError, expand, make_template,
                                  render_source)
from playground.templates.sandbox import compile_source, render_here
from playground.templates.worker import _POOL

MEGABYTE_STRING = "{% set s = ('word ' * 20000) %}{% set s = s ~ s ~ s ~ s ~ s ~ s ~ s ~ s ~ s ~ s %}"


def refused(source: str, values: dict | None = None, limit_s: float = 4.0, **kwargs) -> str:
    start = time.perf_counter()
    with pytest.raises(TemplateError) as caught:
        render_source(source, values or {}, max_chars=10**9, **kwargs)
    assert time.perf_counter() - start < limit_s
    return str(caught.value)


@pytest.mark.parametrize("call", ["s|wordcount", "s.count('w')", "s|upper|length"])
def test_a_call_on_a_big_string_costs_its_size(call):
    """300 word counts of a 1 MB string took 12 s of CPU when each call cost one step."""
    source = MEGABYTE_STRING + "{% for i in range(300) %}{{ " + call + " }}{% endfor %}"
    start = time.perf_counter()
    with pytest.raises(TemplateError, match="characters of (work|text)"):    # a budget, not the clock
        render_here(source, {}, max_chars=10**9, where="t", seconds=120)
    assert time.perf_counter() - start < 8
    assert refused(source)                                             # and through the worker, quickly


def test_ordinary_work_on_ordinary_values_is_not_charged_out():
    out = render_source("{% for i in range(300) %}{{ x|wordcount }},{% endfor %}", {"x": "word " * 1000},
                        max_chars=10**6)
    assert out.count("1000,") == 300


def test_values_and_variants_are_bounded_before_rendering():
    assert "at most 20000" in refused("{{ x|wordcount }}", {"x": "w " * 1_000_000}, limit_s=1)
    template = make_template("t", "text", {"a": "{{ x }}"})
    with pytest.raises(TemplateError, match="at most"):
        expand(template, values={"x": "y" * (MAX_VALUE_CHARS + 1)})
    with pytest.raises(TemplateError, match="limit is"):
        expand(template, variants={"a": "x" * (MAX_SOURCE_CHARS + 1)})
    with pytest.raises(TemplateError, match="at most 64 cells"):
        expand(template, values={"x": [str(i) for i in range(10_000)]})
    with pytest.raises(TemplateError, match="characters; at most"):
        expand(template, values={"x": "a\n" * 200_000})


@pytest.mark.parametrize("bomb", [
    "{{ '{:>1500000000}'.format('x') }}",
    "{{ '{:>{}}'.format('x', '1500000000') }}",
    "{{ '{:>{w}}'.format('x', w='999999999') }}",
    "{{ '{a:>1500000000}'.format_map({'a': 'x'}) }}",
    "{{ '{:.1500000000f}'.format(1.5) }}",
    "{{ '{:099999999}'.format(1) }}",
    "{{ 'x{:>999999999}'['format']('y') }}",
    "{{ '%(a)999999999s' % {'a': 'x'} }}",
    "{{ '%.999999999f' % 1.0 }}",
])
def test_format_width_bombs_are_refused_before_formatting(bomb):
    """Jinja 3.1.6 hands out its own str.format wrapper: a width must be refused before the string is built."""
    tracemalloc.start()
    try:
        with pytest.raises(TemplateError, match="format width"):
            render_here(bomb, {}, max_chars=10**9, where="t")
        peak = tracemalloc.get_traced_memory()[1]
    finally:
        tracemalloc.stop()
    assert peak < 20 * 2**20
    assert "format width" in refused(bomb)


def test_bounded_str_format_still_works():
    assert render_source("{{ '{:>5}|{:.2f}|{a}'.format('x', 1.234, a=y) }}", {"y": "Y"}) == "    x|1.23|Y"


def test_a_render_that_cannot_be_stopped_in_process_is_killed():
    """One C-level call (wordwrap of 1 MB with width 1) ran 16 s between two budget checks."""
    source = ("{% set s = ('a' * 100000) %}{{ (s ~ s ~ s ~ s ~ s ~ s ~ s ~ s ~ s ~ s)|wordwrap(1)|length }}")
    message = refused(source, limit_s=6)
    assert "took more than" in message
    assert render_source("still {{ x }}", {"x": "works"}) == "still works"      # a fresh worker took over


def test_the_whole_grid_shares_one_time_budget():
    slow = "{% set s = ('a' * 100000) %}{{ (s ~ s ~ s ~ s ~ s ~ s ~ s ~ s ~ s ~ s)|wordwrap(1)|length }}"
    template = make_template("t", "text", {"a": slow})
    start = time.perf_counter()
    with pytest.raises(TemplateError):
        expand(template, values={"x": [str(i) for i in range(8)]})
    assert time.perf_counter() - start < 8


def test_workers_run_with_a_memory_cap():
    render_source("{{ 1 }}", {})
    worker = _POOL.idle[-1]
    limits = Path(f"/proc/{worker.process.pid}/limits").read_text()
    line = next(row for row in limits.splitlines() if row.startswith("Max address space"))
    assert line.split()[3] != "unlimited"


def test_compiling_deeply_chained_filters_is_quick():
    """Jinja's constant folder is cubic in nesting depth; compiling happens in the server process."""
    start = time.perf_counter()
    compile_source("{{ 'ab'" + "|trim" * 150 + " }}", "t")
    with pytest.raises(TemplateError, match="nested too deeply"):
        compile_source("{{ 'ab'" + "|center(99999)|replace('a', 'aaaaaaaaaa')" * 150 + " }}", "t")
    assert time.perf_counter() - start < 2
