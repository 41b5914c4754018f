"""Datasets: rows an experiment runs a template over. Read from CSV, TSV, JSONL, JSON or Parquet files, pasted rows,
folders, or Hugging Face dataset ids through the `datasets` library; kept in the data dir under their content hash
(the version); previewed; sampled (first N, random N, a range, a filter, named splits); mapped onto a template's
variables, with a column as the reference answer checks read. No gradio and no torch; `datasets` and pyarrow are
imported when rows are read."""

from .errors import DatasetError, did_you_mean
from .mapping import as_reference, as_value, map_columns, reference_media
from .sample import DEFAULT_SHARES, Sample, select_rows
from .store import Column, DatasetInfo, Datasets, Preview, content_hash

__all__ = ["DEFAULT_SHARES", "Column", "DatasetError", "DatasetInfo", "Datasets", "Preview", "Sample", "as_reference",
           "as_value", "content_hash", "did_you_mean", "map_columns", "reference_media", "select_rows"]
