"""Task routing across Services and Triggers: what the validator's per-reference checks leave out.

The validator (``eas_runtime.manifests.references``) already rejects a Trigger whose subscriber or Broker
does not exist, a ``task.ready`` Trigger without a ``tasktype`` filter, and two Triggers for one
task type. Here, over a set of documents and the descriptors they were generated from:

- every task type of a descriptor has a ``task.ready`` Trigger, and it delivers to the Service
  of that descriptor;
- every ``task.ready`` Trigger delivers to a Service that serves its task type;
- every descriptor has exactly one Knative Service, and every science-function Service (label
  ``eas.plato/task-type``) has a descriptor and receives its labelled task type.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Iterable

from eas_runtime.manifests.references import KSERVICE, TASK_READY, TRIGGER, _filter_attributes, group_kind

from .descriptor import Descriptor

TASK_LABEL = "eas.plato/task-type"


def _name(doc: dict) -> str:
    return str((doc.get("metadata") or {}).get("name"))


def task_triggers(docs: Iterable[dict]) -> dict[str, list[tuple[str, str | None]]]:
    """task type -> [(Trigger name, subscriber Service name or None)] of ``task.ready`` Triggers."""
    out: dict[str, list[tuple[str, str | None]]] = defaultdict(list)
    for doc in docs:
        if group_kind(doc) != TRIGGER or not isinstance(doc.get("spec"), dict):
            continue
        attrs = _filter_attributes(doc["spec"])
        if attrs.get("type") != TASK_READY or "tasktype" not in attrs:
            continue
        ref = (doc["spec"].get("subscriber") or {}).get("ref") or {}
        target = ref.get("name") if ref.get("kind") == "Service" \
            and str(ref.get("apiVersion", "")).startswith("serving.knative.dev/") else None
        out[str(attrs["tasktype"])].append((_name(doc), target))
    return out


def check_routing(docs: list[dict], descriptors: list[Descriptor] | None = None) -> list[str]:
    """Problems, one line each (empty when every task type is routed to exactly one Service)."""
    docs = [d for d in docs if isinstance(d, dict)]
    services = {_name(d): d for d in docs if group_kind(d) == KSERVICE}
    routes = task_triggers(docs)
    served: dict[str, set[str]] = defaultdict(set)     # service -> task types it serves
    problems: list[str] = []
    by_name = {d.name: d for d in descriptors or []}
    for desc in descriptors or []:
        count = sum(1 for d in docs if group_kind(d) == KSERVICE and _name(d) == desc.name)
        if count != 1:
            problems.append(f"{desc.path}: Service {desc.name!r} appears {count} times "
                            "among the manifests (wanted exactly once)")
        for task_type in desc.task_types:
            served[desc.name].add(task_type)
            targets = routes.get(task_type, [])
            if not targets:
                problems.append(f"{desc.path}: task type {task_type!r} has no task.ready "
                                f"Trigger (Service {desc.name} would never receive it)")
            for trigger, target in targets:
                if target != desc.name:
                    problems.append(f"Trigger/{trigger}: task type {task_type!r} goes to "
                                    f"{target!r}, but {desc.path} serves it with {desc.name!r}")
    for name, doc in services.items():
        label = ((doc.get("metadata") or {}).get("labels") or {}).get(TASK_LABEL)
        if label is None:
            continue
        if descriptors is not None and name not in by_name:
            problems.append(f"Service/{name}: a science function without a descriptor "
                            "(functions/<task_type>/func.yaml); generated Services come from one")
        if descriptors is None:
            served[name].add(str(label))
        if not any(target == name for _, target in routes.get(str(label), [])):
            problems.append(f"Service/{name}: no task.ready Trigger delivers its task type "
                            f"{label!r} to it")
    for task_type, targets in sorted(routes.items()):
        for trigger, target in targets:
            if target is not None and target in served and task_type not in served[target]:
                problems.append(f"Trigger/{trigger}: delivers task type {task_type!r} to "
                                f"{target}, which serves {sorted(served[target])}")
    return list(dict.fromkeys(problems))
