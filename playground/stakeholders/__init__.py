"""For showing results to stakeholders: blind A/B votes and rankings, a self-contained HTML report, variant diffs."""
