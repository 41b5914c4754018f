"""The evidence under a grid: scores summarised per variant and per pair (statistics across seeds and values),
drawn by summary.py; shared by the comparison tabs, History and the page restore."""

from __future__ import annotations

import logging

from ..scoring import comparison_summary
from ..scoring.panel import summary_html, winners_by_variant

logger = logging.getLogger(__name__)


def evidence(log, comparison_id: int | None, owner: str | None = None) -> tuple[str, dict[str, list[str]]]:
    """(summary panel HTML, variant -> clearly won scores) of a logged comparison; empty when nothing to say."""
    if not comparison_id:
        return "", {}
    try:
        log.get_comparison_header(comparison_id, owner=owner)
        summary = comparison_summary(log, comparison_id)
    except (KeyError, LookupError, ValueError) as error:
        logger.info("no summary for comparison %s: %s", comparison_id, error)
        return "", {}
    if not summary.metrics:
        return "", {}
    return summary_html(summary), winners_by_variant(summary)
