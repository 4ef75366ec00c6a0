"""Faults on the embedded runtime: a function process killed mid-task, a lost event."""
from __future__ import annotations

import signal
import uuid

from sqlalchemy import select

from eas_runtime import events
from eas_runtime.db.models import (A_RUNNING, DONE, Attempt, Product, ProductVersion, Task)
from tests.e2e.helpers import settled, wait_for


def _submit(runtime, job) -> None:
    events.send(events.make_event(events.JOB_SUBMITTED, "/test", job, id=uuid.uuid4().hex), runtime.broker_url,
                token=runtime.settings.internal_token)


def test_function_killed_mid_task_is_recovered_without_a_duplicate_product(runtime):
    _submit(runtime, {"job_name": "kill", "working_directory": "kill", "task_list": [
        {"task": "null", "name": "victim", "duration": 3, "outputs": {"receipt": "receipt.json"}}]})

    def running_attempt():
        with runtime.db.read() as s:
            return s.scalar(select(Attempt).where(Attempt.state == A_RUNNING))
    first = wait_for(running_attempt, what="the attempt to start")
    # the whole replica (functions-framework's server and its worker) dies, as a pod would
    runtime.serving.kill_replica("eas-null", signal.SIGKILL)

    wait_for(settled(runtime.db, expected_tasks=1), timeout_s=120, what="recovery")
    with runtime.db.read() as s:
        task = s.scalars(select(Task)).one()
        attempts = s.scalars(select(Attempt).order_by(Attempt.number)).all()
        products = s.scalars(select(Product).where(Product.key == "kill/receipt.json")).all()
        versions = s.scalars(select(ProductVersion)).all()
    assert task.state == DONE
    # the lost attempt is kept, visible as its own failed attempt; the retry succeeded
    assert [a.number for a in attempts] == [1, 2]
    assert attempts[0].error_kind == "infrastructure" and not attempts[1].error
    assert attempts[1].pid != first.pid
    assert len(products) == 1 and len(versions) == 1 and versions[0].attempt_id == attempts[1].id
