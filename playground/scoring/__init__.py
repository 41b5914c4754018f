"""Checks and scorers for every cell (text checks, LLM judge, CLIP, CLAP, audio levels, cost) and the statistics
that say which variant wins and how sure that is. No gradio and no torch at import time."""

from ..store.scores import Score
from .base import (REGISTRY, CellInput, Check, CheckError, ScorerContext, make_check, make_checks,
                   parse_check_arg, parse_check_args, registry)
from .cell import cell_input, rescore_comparison, score_and_save, score_cell
from .stats import Summary, comparison_summary, summarize

__all__ = ["REGISTRY", "CellInput", "Check", "CheckError", "Score", "ScorerContext", "Summary", "cell_input",
           "comparison_summary", "make_check", "make_checks", "parse_check_arg", "parse_check_args", "registry", "rescore_comparison",
           "score_and_save", "score_cell", "summarize"]
