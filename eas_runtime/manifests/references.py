"""Checks across a set of manifests: every name a document refers to must exist in the set.

A reference without a namespace means the referring document's namespace; a document without
a namespace (left to kustomize or kubectl) matches any.
"""
from __future__ import annotations

from collections import defaultdict
from typing import Any, Iterable

from .admission import Finding, parse_iso8601_duration
from .serving_rules import timeout_seconds

KSERVICE = ("serving.knative.dev", "Service")
BROKER = ("eventing.knative.dev", "Broker")
TRIGGER = ("eventing.knative.dev", "Trigger")
CORE_SERVICE = ("", "Service")
TASK_READY = "org.plato.eas.task.ready"


def group_kind(doc: dict) -> tuple[str, str]:
    api = str(doc.get("apiVersion", ""))
    return (api.rsplit("/", 1)[0] if "/" in api else "", str(doc.get("kind", "")))


def _dict_at(doc: dict, key: str) -> dict:
    """``doc[key]`` when it is a mapping, else an empty one."""
    value = doc.get(key)
    return value if isinstance(value, dict) else {}


def _meta(doc: dict) -> tuple[str | None, str | None]:
    meta = doc.get("metadata") or {}
    return meta.get("namespace"), meta.get("name")


class _Index:
    def __init__(self, docs: list[dict]):
        self.by_kind: dict[tuple[str, str], list[tuple[int, dict]]] = defaultdict(list)
        for i, doc in enumerate(docs):
            self.by_kind[group_kind(doc)].append((i, doc))

    def find(self, gk: tuple[str, str], name: Any, namespace: str | None) -> list[dict]:
        return [doc for _, doc in self.by_kind.get(gk, []) if _meta(doc)[1] == name
                and (namespace is None or _meta(doc)[0] in (None, namespace))]

    def names(self, gk: tuple[str, str]) -> str:
        return ", ".join(sorted(str(_meta(d)[1]) for _, d in self.by_kind.get(gk, []))) or "none"


def _check_ref(index: _Index, dest: Any, path: str, namespace: str | None) -> Iterable[Finding]:
    ref = dest.get("ref") if isinstance(dest, dict) else None
    if not isinstance(ref, dict):
        return
    gk = (str(ref.get("apiVersion", "")).rsplit("/", 1)[0] if "/" in str(ref.get("apiVersion", ""))
          else "", str(ref.get("kind", "")))
    if gk not in (KSERVICE, BROKER, CORE_SERVICE):
        return  # a kind this project does not ship: cannot be checked offline
    ns = ref.get("namespace") or namespace
    if not index.find(gk, ref.get("name"), ns):
        label = f"{ref.get('apiVersion')} {gk[1]}"
        yield Finding(f"{path}.ref.name", f"{label} {ref.get('name')!r} does not exist"
                      f"{f' in namespace {ns!r}' if ns else ''} (known: {index.names(gk)})")


def _filter_attributes(spec: dict) -> dict[str, str]:
    """Exact matches a Trigger requires of every event (filter.attributes, or top-level
    ``exact`` / ``all`` of ``exact`` entries in filters)."""
    found: dict[str, str] = {}
    if isinstance(spec.get("filters"), list):
        pending = list(spec["filters"])
        while pending:
            expr = pending.pop()
            if isinstance(expr, dict) and isinstance(expr.get("exact"), dict):
                found.update(expr["exact"])
            elif isinstance(expr, dict) and isinstance(expr.get("all"), list):
                pending.extend(expr["all"])
        return found
    attrs = (spec.get("filter") or {}).get("attributes")
    return dict(attrs) if isinstance(attrs, dict) else found


def _selects(selector: Any, labels: dict) -> bool:
    if not isinstance(selector, dict):
        return False
    for key, value in (selector.get("matchLabels") or {}).items():
        if labels.get(key) != value:
            return False
    for expr in selector.get("matchExpressions") or []:
        key, op, values = expr.get("key"), expr.get("operator"), expr.get("values") or []
        if (op == "In" and labels.get(key) not in values) \
                or (op == "NotIn" and labels.get(key) in values) \
                or (op == "Exists" and key not in labels) \
                or (op == "DoesNotExist" and key in labels):
            return False
    return True


def check_references(docs: list[dict]) -> list[tuple[int, Finding]]:
    """Findings as (position of the document in ``docs``, finding)."""
    index = _Index(docs)
    out: list[tuple[int, Finding]] = []
    seen: dict[tuple, int] = {}
    tasktypes: dict[str, list[str]] = defaultdict(list)
    for i, doc in enumerate(docs):
        gk, (ns, name) = group_kind(doc), _meta(doc)
        spec = _dict_at(doc, "spec")
        key = (gk, ns, name)
        if name and key in seen:
            out.append((i, Finding("metadata.name", f"{gk[1]} {name!r} is defined twice "
                                   f"(also document {seen[key] + 1} of this set)")))
        seen.setdefault(key, i)
        if gk == CORE_SERVICE and index.find(KSERVICE, name, ns):
            out.append((i, Finding("metadata.name", f"core Service {name!r} clashes with the "
                                   "Kubernetes Service that Knative creates for the Knative "
                                   "Service of the same name")))
        if gk == BROKER:
            delivery = spec.get("delivery") or {}
            out += [(i, f) for f in _check_ref(index, delivery.get("deadLetterSink"),
                                               "spec.delivery.deadLetterSink", ns)]
        elif gk == TRIGGER:
            out += [(i, f) for f in _check_trigger(index, doc, spec, ns, tasktypes)]
        elif gk[0] == "sources.knative.dev":
            out += [(i, f) for f in _check_ref(index, spec.get("sink"), "spec.sink", ns)]
            subject = spec.get("subject")
            if gk[1] == "SinkBinding" and isinstance(subject, dict) and "selector" in subject:
                sgk = group_kind(subject)
                candidates = [(d.get("metadata") or {}).get("labels") or {}
                              for _, d in index.by_kind.get(sgk, [])]
                if not any(_selects(subject["selector"], labels) for labels in candidates):
                    out.append((i, Finding("spec.subject.selector", f"selects no {sgk[1]} of "
                                           f"{subject.get('apiVersion')} in this set")))
        out += [(i, f) for f in _check_secret_keys(index, doc, ns)]
    for i, doc in enumerate(docs):
        spec = _dict_at(doc, "spec")
        attrs = _filter_attributes(spec) if group_kind(doc) == TRIGGER else {}
        if attrs.get("type") == TASK_READY and "tasktype" in attrs:
            tasktype = attrs["tasktype"]
            others = [n for n in tasktypes.get(tasktype, []) if n != _meta(doc)[1]]
            if others:
                where = "spec.filters" if "filters" in spec else "spec.filter.attributes"
                out.append((i, Finding(where, f"tasktype {tasktype!r} is also routed by "
                                       f"Trigger {', '.join(others)}: each task type needs "
                                       "exactly one task.ready Trigger")))
    return out


def _check_trigger(index: _Index, doc: dict, spec: dict, ns: str | None,
                   tasktypes: dict[str, list[str]]) -> Iterable[Finding]:
    broker = spec.get("broker")
    if isinstance(broker, str) and broker and not index.find(BROKER, broker, ns):
        yield Finding("spec.broker", f"Broker {broker!r} does not exist"
                      f"{f' in namespace {ns!r}' if ns else ''} (known: {index.names(BROKER)})")
    yield from _check_ref(index, spec.get("subscriber"), "spec.subscriber", ns)
    delivery = _dict_at(spec, "delivery")
    yield from _check_ref(index, delivery.get("deadLetterSink"), "spec.delivery.deadLetterSink", ns)
    attrs = _filter_attributes(spec)
    if attrs.get("type") == TASK_READY:
        if "tasktype" not in attrs:
            where = "spec.filters" if "filters" in spec else "spec.filter.attributes"
            yield Finding(where, f"a {TASK_READY} Trigger must also filter on "
                          "'tasktype', or its subscriber receives every task")
        else:
            tasktypes[attrs["tasktype"]].append(str(_meta(doc)[1]))
    subscriber = spec.get("subscriber")
    ref = subscriber.get("ref") if isinstance(subscriber, dict) else None
    if isinstance(ref, dict) and "timeout" in delivery:
        targets = index.find(KSERVICE, ref.get("name"), ref.get("namespace") or ns)
        try:
            wanted = parse_iso8601_duration(delivery["timeout"])
        except ValueError:
            return
        if targets and wanted > timeout_seconds(targets[0]):
            yield Finding("spec.delivery.timeout", f"{delivery['timeout']} is longer than the "
                          f"subscriber's timeoutSeconds ({timeout_seconds(targets[0])} s), which "
                          "cuts the request first", "warning")


def _check_secret_keys(index: _Index, doc: dict, ns: str | None) -> Iterable[Finding]:
    """secretKeyRef entries naming a Secret of this set must name one of its keys."""
    stack: list[tuple[Any, str]] = [(doc.get("spec"), "spec")]
    while stack:
        node, path = stack.pop()
        if isinstance(node, dict):
            ref = node.get("secretKeyRef")
            if isinstance(ref, dict):
                for secret in index.find(("", "Secret"), ref.get("name"), ns):
                    keys = set(secret.get("data") or {}) | set(secret.get("stringData") or {})
                    if ref.get("key") not in keys:
                        yield Finding(f"{path}.secretKeyRef.key",
                                      f"Secret {ref.get('name')!r} has no key "
                                      f"{ref.get('key')!r} (keys: {', '.join(sorted(keys))})")
            stack.extend((v, f"{path}.{k}") for k, v in node.items())
        elif isinstance(node, list):
            stack.extend((v, f"{path}[{i}]") for i, v in enumerate(node))
