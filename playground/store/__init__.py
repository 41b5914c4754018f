"""The run log: SQLite records (schema, records, queries) and export/import, with artifact files beside them."""

from .archive import ImportRefused
from .limits import ImportLimits
from .log import RunLog
from .records import (AlreadyLogged, Comparison, ImportReport, InvalidId, NotFound, RunRecord, StoreInputError,
                      cache_key, check_id)
from .schema import COMPARISON_STATUSES, MIGRATIONS, SCHEMA_VERSION, STATUSES

__all__ = ["AlreadyLogged", "COMPARISON_STATUSES", "MIGRATIONS", "SCHEMA_VERSION", "STATUSES", "Comparison",
           "ImportLimits", "ImportRefused", "ImportReport", "InvalidId", "NotFound", "RunLog", "RunRecord",
           "StoreInputError", "cache_key", "check_id"]
