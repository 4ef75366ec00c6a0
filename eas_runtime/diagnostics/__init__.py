"""Diagnostics: what the pipeline is doing, what failed and why, how long things took.

The query layer behind the ``eas`` diagnostics subcommands and the index site. Every function
takes a :class:`~eas_runtime.db.session.Database` and keyword filters, reads in one read
transaction with a fixed number of queries per page (no query per row), and returns plain
JSON-serialisable dicts and lists (times as ISO 8601 strings in UTC). Paged answers share one
shape: ``{"items": [...], "page": 0, "page_size": 100, "total": N, "pages": P, ...}``, with
``page`` counted from 0 and ``page_size`` at most :data:`MAX_PAGE_SIZE`.

Display states (:mod:`.states`) are derived at read time from ``stall_s`` (pass the settings'
value) and ``now`` (default: the current time).

Bad filter values raise :class:`DiagnosticsError` (a ValueError: HTTP 400); a job, task or
attempt that does not exist raises :class:`NotFound` (a LookupError: HTTP 404).
"""
from eas_runtime.diagnostics._common import (DEFAULT_PAGE_SIZE, MAX_PAGE_SIZE, DiagnosticsError,
                                             NotFound, parse_since)
from eas_runtime.diagnostics.backup import BackupError, backup, database_rows, is_empty, restore
from eas_runtime.diagnostics.errors import SEVERITIES, dead_letters, errors, logs
from eas_runtime.diagnostics.inflight import claimed_attempts, inflight, pending_deliveries
from eas_runtime.diagnostics.states import DISPLAY_STATES, display_state
from eas_runtime.diagnostics.tables import (export_csv, iter_table, passfail, timing_groups, timings,
                                            write_csv)
from eas_runtime.diagnostics.tasks import jobs, progress, task_detail
from eas_runtime.diagnostics.tree import MAX_DEPTH, tree

__all__ = [
    "DEFAULT_PAGE_SIZE", "MAX_PAGE_SIZE", "MAX_DEPTH", "DISPLAY_STATES", "SEVERITIES",
    "DiagnosticsError", "NotFound", "BackupError",
    "display_state", "parse_since",
    "tree", "progress", "jobs", "task_detail",
    "errors", "dead_letters", "logs",
    "timing_groups", "timings", "passfail", "iter_table", "export_csv", "write_csv",
    "claimed_attempts", "pending_deliveries", "inflight",
    "backup", "restore", "is_empty", "database_rows",
]
