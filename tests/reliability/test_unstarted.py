"""A function that never takes its work (its replicas cannot start) costs each attempt a bounded
number of ``task.ready`` sends; then the task fails as an infrastructure error that says why.

End to end on the embedded runtime: the ``null`` function's Service is replaced by one whose
container exits at once, so every cold start fails, every delivery is dead-lettered and every
resend of the reconcile tick goes unanswered.
"""
from __future__ import annotations

import shutil
import uuid

import yaml
from sqlalchemy import func, select

from eas_runtime import events
from eas_runtime.db.models import FAILED, Attempt, DeadLetter, Delivery, Task
from eas_runtime.embedded import EmbeddedRuntime
from eas_runtime.settings import PROJECT_ROOT
from tests.e2e.helpers import embedded_settings, wait_for


def test_tasks_of_a_function_that_cannot_start_fail_after_a_bounded_number_of_sends(tmp_path):
    knative = tmp_path / "knative"
    shutil.copytree(PROJECT_ROOT / "knative" / "base", knative)
    manifest = knative / "eas-null.yaml"
    doc = yaml.safe_load(manifest.read_text())
    container = doc["spec"]["template"]["spec"]["containers"][0]
    container["command"], container["args"] = ["python3"], ["-c", "raise SystemExit(3)"]
    manifest.write_text(yaml.safe_dump(doc))
    bound, attempts = 3, 2
    runtime = EmbeddedRuntime(embedded_settings(
        tmp_path, knative_dir=str(knative), redeliver_s=1.0, reconcile_s=0.5,
        max_unanswered_sends=bound, max_attempts=attempts, retry_backoff_s=0.1)).start()
    try:
        event = events.make_event(events.JOB_SUBMITTED, "/test/unstarted",
                                  {"task_list": [{"task": "null"}]}, id=uuid.uuid4().hex)
        events.send(event, runtime.broker_url, token=runtime.settings.internal_token)

        def failed():
            with runtime.db.read() as s:
                return s.scalar(select(func.count()).select_from(Task).where(Task.state == FAILED))
        wait_for(failed, timeout_s=300, what="the task to fail")
        with runtime.db.read() as s:
            rows = s.execute(select(Attempt.error_kind, Attempt.error_text, Attempt.unanswered_sends)
                             .order_by(Attempt.number)).all()
            sends = s.scalar(select(func.count()).select_from(Delivery).where(
                Delivery.event_type == events.TASK_READY))
        assert len(rows) == attempts
        for kind, text, unanswered in rows:
            assert kind == "infrastructure" and unanswered == bound
            assert text.startswith(f"never started: {bound} sends of task.ready over ")
            assert "task type 'null'" in text and "dead letters" in text
        # bounded: each attempt's first send and bound - 1 resends
        assert sends == attempts * bound
        # why, in the dead letters (once the broker's own retries of a send are spent): the
        # replica exited during its start
        def dead_letters():
            with runtime.db.read() as s:
                return [r for r in s.scalars(select(DeadLetter.reason)).all()
                        if "eas-null" in r and "exited during start" in r]
        wait_for(dead_letters, timeout_s=120, what="a dead letter naming the failed start")
        # nothing was sent after the task failed, over a dozen reconcile ticks since
        with runtime.db.read() as s:
            assert s.scalar(select(func.count()).select_from(Delivery).where(
                Delivery.event_type == events.TASK_READY)) == sends
    finally:
        runtime.stop()
