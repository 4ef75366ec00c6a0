"""Fault injection on a real embedded runtime: 100 uploads while function replicas and
eas-control are SIGKILLed several times and the whole runtime is stopped and started once on the
same ``EAS_HOME``. Nothing may be lost (every upload has its job, every task ends DONE, nothing
stays queued or running) and nothing duplicated (one job per upload, one successful attempt per
task, one product version per output key).

The chain is ``ingest_external_lcs -> verify`` on small light curves, to stay fast. Kills use
:meth:`LocalServing.kill_replica`, as ``tests/e2e/test_faults.py`` does.
"""
from __future__ import annotations

import signal
import time

import pytest
from sqlalchemy import func, select

from eas_runtime.db.models import DONE, Attempt, Job, Product, ProductVersion, Task, TaskOutput
from eas_runtime.demo import make_lightcurves
from eas_runtime.embedded import EmbeddedRuntime
from eas_runtime.resources import Resources
from tests.e2e.helpers import embedded_settings, settled, wait_for, watch
from tests.reliability.campaign import Tally

UPLOADS = 100
CHAIN = ["ingest_external_lcs", "verify"]
#: Upload number -> the fault injected just before it.
FAULTS = {8: "eas-ingest-external-lcs", 16: "eas-control", 24: "eas-verify", 33: "eas-ingest-external-lcs",
          42: "eas-control", 50: "restart", 58: "eas-verify", 66: "eas-ingest-external-lcs", 75: "eas-control",
          84: "eas-ingest-external-lcs", 92: "eas-verify"}
AREA = "faults"


@pytest.mark.timeout(900)
def test_kills_and_a_restart_during_100_uploads_lose_and_duplicate_nothing(tmp_path):
    settings = embedded_settings(tmp_path)
    runtime = EmbeddedRuntime(settings).start()
    tally = Tally()
    try:
        watch(runtime, prefix="faults/", chain=CHAIN)
        sources = [path for path, _ in make_lightcurves(tmp_path / "lcs", 4)]
        store = Resources(runtime.settings, db=runtime.db).store
        keys, kills = [], []
        for i in range(UPLOADS):
            fault = FAULTS.get(i)
            if fault == "restart":
                runtime.stop()
                # uploads while the runtime is down: their notifications wait in the store's queue
                for j in range(3):
                    keys.append(_upload(store, sources, len(keys)))
                runtime = EmbeddedRuntime(runtime.settings).start()
                store = Resources(runtime.settings, db=runtime.db).store
            elif fault:
                kills.append(_kill(runtime, fault))
            if len(keys) < UPLOADS:
                keys.append(_upload(store, sources, len(keys)))
            time.sleep(0.05)
        assert sum(1 for k in kills if k) >= 5, f"too few kills hit a running process: {kills}"
        try:
            wait_for(settled(runtime.db, expected_tasks=len(CHAIN) * UPLOADS), timeout_s=480, what="the uploads")
        except AssertionError:
            pass  # what did not finish is counted below
        _count(runtime, keys, tally)
    finally:
        tally.save()
        runtime.stop()
    bad = tally.failed(AREA)
    assert not bad, f"{len(bad)} upload(s) lost or duplicated (kills: {kills}):\n" + "\n".join(
        f"  [{f['column']}] {f['input']} -> {f['answer']}" for f in bad[:20])


def _upload(store, sources, n: int) -> str:
    source = sources[n % len(sources)]
    key = f"faults/lc_{n:03d}{source.suffix}"
    store.put_file(key, source)
    return key


def _kill(runtime: EmbeddedRuntime, service: str) -> str:
    """SIGKILL the busiest replica of ``service``; '' when none was running."""
    try:
        pid = runtime.serving.kill_replica(service, signal.SIGKILL)
    except LookupError:
        return ""
    return f"{service}:{pid}"


def _count(runtime: EmbeddedRuntime, keys: list[str], tally: Tally) -> None:
    with runtime.db.read() as s:
        for key in keys:
            tally.count(AREA, "tried")
            name = f"watch faults/ {key.rsplit('/', 1)[1]}"
            jobs = s.scalars(select(Job).where(Job.name == name)).all()
            if not jobs:
                tally.count(AREA, "lost", what=key, answer="no job")
                continue
            if len(jobs) > 1:
                tally.count(AREA, "duplicated", what=key, answer=f"{len(jobs)} jobs")
                continue
            tasks = s.scalars(select(Task).where(Task.job_id == jobs[0].id)).all()
            states = sorted(t.state for t in tasks)
            if len(tasks) != len(CHAIN) or states != [DONE] * len(CHAIN):
                tally.count(AREA, "lost", what=key, answer=f"tasks {states}")
                continue
            problem = ""
            for task in tasks:
                good = s.scalar(select(func.count()).select_from(Attempt)
                                .where(Attempt.task_id == task.id, Attempt.error.is_(False),
                                       Attempt.ended_at.is_not(None)))
                if good != 1:
                    problem += f"task {task.id} ({task.task_type}) has {good} successful attempts; "
                for output in s.scalars(select(TaskOutput.key).where(TaskOutput.task_id == task.id)):
                    versions = s.scalar(select(func.count()).select_from(ProductVersion).join(Product)
                                        .where(Product.key == output))
                    if versions != 1:
                        problem += f"{output} has {versions} versions; "
            if problem:
                tally.count(AREA, "duplicated", what=key, answer=problem)
            else:
                tally.count(AREA, "handled")
