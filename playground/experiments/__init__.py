"""Experiments: a template's variants x a dataset's rows (or a sample) x seeds x models, with checks, run as a
server-side job into one comparison (each cell an ordinary run). What a page, a script or an optimisation loop
calls is exported here; every function takes `owner` (the visitor on a public deployment, None locally).
No gradio and no torch here."""

from .api import (Experiment, ExperimentStatus, build_spec, cancel, check_experiment, get, list_experiments, pause,
                  resume, run_inline, run_on_page, status, submit)
from .batch import BatchImport, export_batch, import_batch
from .compare import ExperimentComparison, RowChange, compare_experiments, rerun_rows
from .estimate import Estimate, ModelEstimate, estimate
from .results import (ResultCell, ResultRow, ResultsPage, experiment_spec, fail_under, results_page, variant_means,
                      variants_of)
from .spec import ExperimentSpec, Plan, cell_key, make_plan, parse_key
from .transfer import export_results, import_results

__all__ = ["BatchImport", "Estimate", "Experiment", "ExperimentComparison", "ExperimentSpec", "ExperimentStatus",
           "ModelEstimate", "Plan", "ResultCell", "ResultRow", "ResultsPage", "RowChange", "build_spec", "cancel",
           "cell_key", "check_experiment", "compare_experiments", "estimate", "experiment_spec", "export_batch",
           "export_results", "fail_under", "get", "import_batch", "import_results", "list_experiments", "make_plan",
           "parse_key", "pause", "rerun_rows", "results_page", "resume", "run_inline", "run_on_page", "status", "submit",
           "variant_means", "variants_of"]
