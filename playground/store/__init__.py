"""The run log: SQLite records (schema, records, queries) and export/import, with artifact files beside them."""

from .log import RunLog
from .records import Comparison, ImportReport, RunRecord, cache_key
from .schema import COMPARISON_STATUSES, MIGRATIONS, SCHEMA_VERSION, STATUSES

__all__ = ["COMPARISON_STATUSES", "MIGRATIONS", "SCHEMA_VERSION", "STATUSES", "Comparison", "ImportReport", "RunLog",
           "RunRecord", "cache_key"]
