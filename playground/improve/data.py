"""The data a search is scored on and the held-out part its winner is tested on.

Text: a dataset's rows. The search scores every candidate on the same `rows` rows of the search split (a seeded
random sample, so scores of different rounds are comparable); the winner and the original are tested at the end on
up to `test_rows` rows of the held-out split, which the search never reads. A dataset with a split column splits by
its values; one without is split deterministically by a hash of each row's content (half and half unless shares are
given), so a row always lands in the same split, and the search says so.

Images and music: values x seeds. The rows are the template's variable values (its default and examples, or values
given), and the held-out part is new seeds on the same values: a candidate must do better on noise it never saw.
"""

from __future__ import annotations

from ..datasets import DatasetError, Sample
from ..templates import Template
from .spec import ImproveSpec

VALUES_COLUMN = "values_set"       # the one column of a values table for a template without variables


def search_sample(spec: ImproveSpec) -> Sample:
    """The rows every candidate is scored on."""
    if spec.held_out == "seeds":
        return Sample(first=spec.rows)
    return Sample(split=spec.search_split, split_column=spec.split_column, split_shares=spec.split_shares,
                  random=spec.rows, seed=spec.seed)


def test_sample(spec: ImproveSpec) -> Sample:
    """The held-out rows the winner and the original are tested on."""
    if spec.held_out == "seeds":
        return Sample(first=spec.test_rows)
    return Sample(split=spec.test_split, split_column=spec.split_column, split_shares=spec.split_shares,
                  random=spec.test_rows, seed=spec.seed)


def split_plan(info, search_split: str, test_split: str, split_column: str = "split",
               shares: dict[str, float] | None = None) -> tuple[dict[str, float] | None, str]:
    """(split shares to store in the spec, a note saying how the rows are split). A dataset whose split column
    exists splits by it and must hold both splits; one without gets a hash split of the two names."""
    if split_column in info.column_names and shares is None:
        return None, f"rows split by the dataset's {split_column!r} column: search on {search_split!r}, test on " \
                     f"{test_split!r}"
    if shares is None:
        shares = {search_split: 0.5, test_split: 0.5}
    missing = [name for name in (search_split, test_split) if name not in shares]
    if missing:
        raise DatasetError(f"the split shares {shares} name no {missing[0]!r} split: give both the search split "
                           f"and the held-out split a share")
    parts = ", ".join(f"{share:.0%} {name}" for name, share in shares.items())
    return shares, (f"the dataset has no {split_column!r} column, so its rows are split by a hash of their content "
                    f"({parts}): the same row always lands in the same split, and the search never reads the "
                    f"{test_split!r} rows")


def values_rows(template: Template, values: dict[str, list[str]] | None = None) -> list[dict]:
    """Rows of variable values for an image or music search: each variable's given values (else its default and
    examples), row i taking each variable's i-th value (cycling through shorter lists)."""
    values = dict(values or {})
    unknown = [name for name in values if name not in template.variables]
    if unknown:
        raise DatasetError(f"{template.name} has no variable {unknown[0]!r}; its variables: "
                           f"{', '.join(template.variables) or 'none'}")
    lists = {}
    for name, variable in template.variables.items():
        given = [str(v) for v in values.get(name) or [] if str(v).strip()]
        lists[name] = given or list(dict.fromkeys([variable.default, *variable.examples]))
    if not lists:
        return [{VALUES_COLUMN: "1"}]
    count = max(len(found) for found in lists.values())
    return [{name: found[i % len(found)] for name, found in lists.items()} for i in range(count)]
