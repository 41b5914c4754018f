"""The one error of the datasets package, and the "did you mean" every name lookup shares."""

from __future__ import annotations

import difflib


class DatasetError(ValueError):
    """Input a dataset operation refuses; the message says what to change."""


def did_you_mean(name: str, known, what: str = "column") -> str:
    """`no column 'prodcut'; did you mean 'product'? Columns: ...` as one sentence."""
    known = [str(k) for k in known]
    folded = {k.casefold(): k for k in known}
    close = [folded[name.casefold()]] if name.casefold() in folded else \
        difflib.get_close_matches(name, known, n=3, cutoff=0.6)
    hint = f"; did you mean {' or '.join(repr(c) for c in close)}?" if close else ""
    listed = ", ".join(known[:30]) + (", ..." if len(known) > 30 else "")
    return f"no {what} {name[:100]!r}{hint} ({what}s: {listed or 'none'})"
