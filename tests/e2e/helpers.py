"""Helpers for end-to-end tests of the embedded runtime."""
from __future__ import annotations

import time

from sqlalchemy import func, select

from eas_runtime.db.models import Task, WatchRule
from eas_runtime.embedded import EmbeddedRuntime
from eas_runtime.settings import Settings

CHAIN = ["ingest_external_lcs", "verify", "transit_search_bls_reference"]


def wait_for(predicate, timeout_s: float = 180.0, interval_s: float = 0.2, what: str = "condition"):
    """Poll ``predicate`` until it returns something truthy (test helper, not a timing assertion)."""
    deadline = time.monotonic() + timeout_s
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(interval_s)
    raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what}")


def settled(db, expected_tasks: int):
    """Predicate: at least ``expected_tasks`` exist and nothing is in flight (checked twice,
    so that an event between a delivery and the claim it causes is not missed)."""
    from eas_runtime.status import quiescent

    def check():
        with db.read() as s:
            n = s.scalar(select(func.count()).select_from(Task))
        if n < expected_tasks or not quiescent(db):
            return False
        time.sleep(0.3)
        return quiescent(db)
    return check


def embedded_settings(tmp_path, **overrides) -> Settings:
    values = dict(home=str(tmp_path / "eas-home"), gateway_port=0, index_port=0, adapter_port=0,
                  reconcile_s=1.0, heartbeat_s=0.3, stall_s=3.0, redeliver_s=5.0, idle_s=120.0,
                  retry_backoff_s=0.5,
                  # 120 s of unanswered resends, as the defaults allow 10 min: a cold start
                  # on a loaded machine must not count as a function that takes nothing
                  max_unanswered_sends=24)
    values.update(overrides)
    return Settings.load(**values)


def watch(runtime: EmbeddedRuntime, prefix: str = "inbox/", chain=CHAIN) -> None:
    with runtime.db.session() as s:
        s.add(WatchRule(prefix=prefix, task_types=list(chain)))
