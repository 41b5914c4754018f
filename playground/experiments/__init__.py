"""Experiments: a template's variants x a dataset's rows (or a sample) x seeds x models, with checks, run as a
server-side job into one comparison (each cell an ordinary run). See api.py for what a page or a script calls.
No gradio and no torch here."""

from .api import (Experiment, ExperimentStatus, build_spec, cancel, check_experiment, get, list_experiments, pause,
                  resume, status, submit)
from .spec import ExperimentSpec, Plan, cell_key, make_plan, parse_key

__all__ = ["Experiment", "ExperimentSpec", "ExperimentStatus", "Plan", "build_spec", "cancel", "cell_key",
           "check_experiment", "get", "list_experiments", "make_plan", "parse_key", "pause", "resume", "status",
           "submit"]
