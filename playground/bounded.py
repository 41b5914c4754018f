"""Comparisons of texts with their work counted, for inputs a stranger chooses.

difflib's SequenceMatcher is quadratic (and worse) in the worst case: two 20,000-character texts made of one
repeated word kept a server busy for minutes. `BoundedMatcher` charges every search for a longest match what it
may scan (its stretch of `a` and the places in `b` each element of it occurs) against a budget shared by the
caller, and raises `OverBudget` when it runs out, so the caller can fall back to something coarser.
"""

from __future__ import annotations

import difflib


class OverBudget(Exception):
    """The comparison would take more work than its budget allows."""


class BoundedMatcher(difflib.SequenceMatcher):
    """difflib.SequenceMatcher with a work budget: `budget` is a one-item list, shared across matchers so one
    comparison made of several (lines, then words) keeps to one total."""

    def __init__(self, a, b, budget: list[int], isjunk=None):
        self.budget = budget
        super().__init__(isjunk, a, b, autojunk=False)

    def find_longest_match(self, alo=0, ahi=None, blo=0, bhi=None):
        ahi = len(self.a) if ahi is None else ahi
        self.budget[0] -= (ahi - alo) + sum(len(self.b2j.get(self.a[i], ())) for i in range(alo, ahi))
        if self.budget[0] < 0:
            raise OverBudget
        return super().find_longest_match(alo, ahi, blo, len(self.b) if bhi is None else bhi)
