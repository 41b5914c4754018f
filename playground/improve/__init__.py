"""Improve: a model proposes better versions of a template's variant, each scored on the user's data, for text,
images and music; the winner is tested against the original on held-out data with paired statistics.

The loop is OPRO's (see loop.py), run as a server-side job (kind `improve`) on top of the experiments: every
candidate is a variant of its round's experiment and every scored cell an ordinary logged run; the proposer's
calls are runs of the search's own comparison. A search resumes from the log without spending a call twice.
No gradio and no torch here.
"""

from ..jobs import register_kind
from .api import (Search, SearchStatus, build_spec, cancel, get, list_searches, pause, resume, save_winner, status,
                  submit, winner_template)
from .loop import KIND, ImproveError
from .project import Calls, Projection, plan_calls, project
from .record import Candidate, Record
from .result import chart_svg, held_out_result
from .spec import ImproveSpec, Term, parse_objective

register_kind(KIND, "playground.improve.loop:run_job")

__all__ = ["KIND", "Calls", "Candidate", "ImproveError", "ImproveSpec", "Projection", "Record", "Search",
           "SearchStatus", "Term", "build_spec", "cancel", "chart_svg", "get", "held_out_result", "list_searches",
           "parse_objective", "pause", "plan_calls", "project", "resume", "save_winner", "status", "submit",
           "winner_template"]
