"""The events the pipeline puts on the Broker, made by the same code that sends them, with
where each must go: the catalogue that ``knative/validate`` routes through the Broker's
Triggers with Knative Eventing's own filter code (``just knative-validate``).

- ``task.ready`` of every task type a function serves: exactly one Trigger, whose subscriber is
  that function's Service (``func.yaml``);
- ``task.ready`` of a control-flow task: no Trigger (eas-control runs those itself and never
  posts them);
- ``task.finished`` and ``task.failed`` of every task type, ``product.created``,
  ``job.submitted``, ``reconcile`` and the PingSource's tick: exactly one Trigger, eas-control's.

``python -m eas_runtime.deploy.event_catalogue [ROOT]`` prints the catalogue as JSON.
"""
from __future__ import annotations

import datetime as dt
import json
import sys
from pathlib import Path
from typing import Any

from eas_runtime import events

CONTROL = "Service/eas-control"
UNROUTED_CONTROL_FLOW = ("eas-control runs control-flow tasks itself; their task.ready is "
                         "never posted to the Broker")


def _structured(event) -> dict[str, Any]:
    _, body = events.to_http(event, "structured")
    return json.loads(body)


def _entry(name: str, event, expect: str, subscriber: str = "", reason: str = "") -> dict:
    out: dict[str, Any] = {"name": name, "event": _structured(event), "expect": expect}
    if subscriber:
        out["subscriber"] = subscriber
    if reason:
        out["reason"] = reason
    return out


def _finished(kind: str, task_type: str):
    """A task.finished/failed event as the wrapper makes it (``wrapper._conclude``)."""
    return events.make_event(
        kind, f"/eas/functions/{task_type}",
        {"task_id": 1, "attempt_id": 1, "job_id": 1, "task_type": task_type,
         "state": "done" if kind == events.TASK_FINISHED else "failed",
         "error_kind": None if kind == events.TASK_FINISHED else "science", "outputs": []},
        id=events.stable_id(kind, 1), subject="1",
        tasktype=task_type, jobid=1, taskid=1, attemptid=1)


def catalogue(root: str | Path = ".") -> dict:
    """``{"broker": "eas/default", "events": [...]}`` for the repository at ``root``."""
    from eas_runtime.broker.config import load_config
    from eas_runtime.control.scheduler import Ready
    from eas_runtime.deploy.descriptor import load_all
    from eas_runtime.jobs import CONTROL_FLOW
    from eas_runtime.store.base import ObjectInfo, product_created_event

    root = Path(root)
    served = sorted((t, d.name) for d in load_all(root) if d.is_function for t in d.task_types)
    out = []
    for task_type, service in served:
        out.append(_entry(f"task.ready {task_type}", Ready(1, 1, task_type, 1).event(),
                          "exactly-one", f"Service/{service}"))
    for task_type in sorted(CONTROL_FLOW):
        out.append(_entry(f"task.ready {task_type}", Ready(1, 1, task_type, 1).event(),
                          "none", reason=UNROUTED_CONTROL_FLOW))
    for kind in (events.TASK_FINISHED, events.TASK_FAILED):
        for task_type, _ in served:
            out.append(_entry(f"{kind.removeprefix(events.PREFIX)} {task_type}",
                              _finished(kind, task_type), "exactly-one", CONTROL))
    info = ObjectInfo(bucket="eas", key="inbox/star.fits", size=1, etag="e",
                      last_modified=dt.datetime(2026, 1, 1, tzinfo=dt.timezone.utc))
    out.append(_entry("product.created", product_created_event(info, "1"), "exactly-one", CONTROL))
    out.append(_entry("job.submitted", events.make_event(
        events.JOB_SUBMITTED, events.SOURCE_CLI, {"job_name": "j", "task_list": []}, id="1",
        subject="j"), "exactly-one", CONTROL))
    out.append(_entry("reconcile", events.make_event(
        events.RECONCILE, "/eas/invoke", {"reason": "invoke"}, id="1"), "exactly-one", CONTROL))
    config = load_config(root / "broker_config")
    for ping in config.pingsources:
        event = events.CloudEvent({"type": events.PING, "source": ping.source, "id": "1",
                                   "datacontenttype": ping.content_type or "application/json"},
                                  json.loads(ping.data) if ping.data else None)
        out.append(_entry(f"ping {ping.name}", event, "exactly-one", CONTROL))
    brokers = sorted(config.brokers)
    return {"broker": brokers[0] if len(brokers) == 1 else "", "events": out}


def main(argv: list[str] | None = None) -> int:
    args = sys.argv[1:] if argv is None else argv
    json.dump(catalogue(args[0] if args else "."), sys.stdout, indent=2)
    print()
    return 0


if __name__ == "__main__":
    sys.exit(main())
