"""Rules that Knative's admission webhooks enforce and the CRD schemas cannot express.

Each ``check_*`` function takes one manifest (a dict) and returns :class:`Finding` tuples with a
dotted path inside the document. The duration parsers and :func:`delivery_spec` are also used by
the embedded runtime's local broker, so the same YAML means the same thing in both runtimes.
"""
from __future__ import annotations

import difflib
import json
import re
from typing import Any, NamedTuple
from urllib.parse import urlsplit


class Finding(NamedTuple):
    path: str
    message: str
    severity: str = "error"


# --------------------------------------------------------------------------- small helpers
def key_path(base: str, key: str) -> str:
    """``base.key``, or ``base[key]`` when the key holds dots or slashes (annotation keys)."""
    if re.fullmatch(r"[A-Za-z0-9_-]+", key):
        return f"{base}.{key}" if base else key
    return f"{base}[{key}]"


def unknown_key(path: str, key: str, allowed) -> Finding:
    """A finding for a misspelt or unsupported field, with a guess and the allowed names."""
    allowed = sorted(allowed)
    close = difflib.get_close_matches(str(key), allowed, n=1, cutoff=0.6)
    hint = f"; did you mean {close[0]!r}?" if close else ""
    return Finding(key_path(path, str(key)), f"unknown field {key!r}{hint} "
                   f"(allowed: {', '.join(allowed)})")


def _is_int(value: Any) -> bool:
    return isinstance(value, int) and not isinstance(value, bool)


# --------------------------------------------------------------------------- durations
_NUM = r"(\d+(?:[.,]\d+)?)"
_ISO = re.compile(rf"P(?:{_NUM}Y)?(?:{_NUM}M)?(?:{_NUM}W)?(?:{_NUM}D)?"
                  rf"(?:T(?:{_NUM}H)?(?:{_NUM}M)?(?:{_NUM}S)?)?")
_ISO_SECONDS = (365 * 86400, 30 * 86400, 7 * 86400, 86400, 3600, 60, 1)


def parse_iso8601_duration(text: str) -> float:
    """Seconds in an ISO-8601 duration such as ``PT0.5S``, ``PT2S``, ``PT1M``, ``P1DT2H``.

    Years count 365 days and months 30 days (Knative's period parser does the same kind of
    nominal conversion). Raises ``ValueError`` naming the text when it is not a duration.
    """
    match = _ISO.fullmatch(text) if isinstance(text, str) else None
    if (not match or not any(match.groups())
            or (text.find("T") >= 0 and not any(match.groups()[4:]))):
        raise ValueError(f"{text!r} is not an ISO-8601 duration (examples: PT0.5S, PT2S, PT1M)")
    return sum(float(g.replace(",", ".")) * unit
               for g, unit in zip(match.groups(), _ISO_SECONDS) if g)


_GO_PART = re.compile(r"(\d+(?:\.\d*)?|\.\d+)(ns|us|µs|ms|s|m|h)")
_GO_UNITS = {"ns": 1e-9, "us": 1e-6, "µs": 1e-6, "ms": 1e-3, "s": 1.0, "m": 60.0, "h": 3600.0}


def parse_go_duration(text: str) -> float:
    """Seconds in a Go duration (``60s``, ``1m30s``, ``1h``); what Knative annotations use."""
    if not isinstance(text, str):
        raise ValueError(f"{text!r} is not a duration string")
    sign, rest = (-1.0, text[1:]) if text.startswith("-") else (1.0, text.lstrip("+"))
    if rest == "0":
        return 0.0
    pos, total = 0, 0.0
    for match in _GO_PART.finditer(rest):
        if match.start() != pos:
            break
        total += float(match.group(1)) * _GO_UNITS[match.group(2)]
        pos = match.end()
    if pos == 0 or pos != len(rest):
        raise ValueError(f"{text!r} is not a duration (examples: 6s, 60s, 1m30s, 1h)")
    return sign * total


# --------------------------------------------------------------------------- destinations
DESTINATION_KEYS = ("ref", "uri", "CACerts", "audience")
REF_KEYS = ("apiVersion", "kind", "name", "namespace", "address")


def check_destination(dest: Any, path: str) -> list[Finding]:
    """A Destination: ``ref`` (apiVersion, kind, name) and/or ``uri``."""
    if not isinstance(dest, dict):
        return [Finding(path, f"must be a Destination with 'ref' and/or 'uri', got {dest!r}")]
    out = [unknown_key(path, k, DESTINATION_KEYS) for k in dest if k not in DESTINATION_KEYS]
    ref, uri = dest.get("ref"), dest.get("uri")
    if ref is None and uri is None:
        out.append(Finding(path, "needs 'ref' or 'uri' (or both), found neither"))
    if ref is not None:
        if not isinstance(ref, dict):
            out.append(Finding(f"{path}.ref", f"must be an object, got {ref!r}"))
        else:
            out += [unknown_key(f"{path}.ref", k, REF_KEYS) for k in ref if k not in REF_KEYS]
            out += [Finding(f"{path}.ref.{k}", f"is required, got {ref.get(k)!r}")
                    for k in ("apiVersion", "kind", "name")
                    if not isinstance(ref.get(k), str) or not ref.get(k)]
    if uri is not None:
        parts = urlsplit(uri) if isinstance(uri, str) else None
        if parts is None:
            out.append(Finding(f"{path}.uri", f"must be a string, got {uri!r}"))
        elif ref is None and not (parts.scheme and parts.netloc):
            out.append(Finding(f"{path}.uri", f"{uri!r} must be an absolute URL when there is "
                               "no 'ref' (a relative uri is resolved against the ref)"))
        elif ref is not None and parts.scheme:
            out.append(Finding(f"{path}.uri", f"{uri!r}: an absolute URL is not allowed "
                               "together with 'ref'; give a path such as /dead-letter"))
    return out


# --------------------------------------------------------------------------- delivery
DELIVERY_KEYS = ("retry", "backoffPolicy", "backoffDelay", "deadLetterSink", "timeout",
                 "retryAfterMax", "format")
BACKOFF_POLICIES = ("linear", "exponential")
DELIVERY_FORMATS = ("json", "binary")


def check_delivery(delivery: Any, path: str) -> list[Finding]:
    """A ``delivery`` object (Broker spec, Trigger spec): the keys Knative's webhook accepts."""
    if not isinstance(delivery, dict):
        return [Finding(path, f"must be an object, got {delivery!r}")]
    out = [unknown_key(path, k, DELIVERY_KEYS) for k in delivery if k not in DELIVERY_KEYS]
    if "retry" in delivery:
        retry = delivery["retry"]
        if not _is_int(retry) or retry < 0:
            out.append(Finding(f"{path}.retry", f"must be an integer >= 0, got {retry!r}"))
    if "backoffPolicy" in delivery and delivery["backoffPolicy"] not in BACKOFF_POLICIES:
        out.append(Finding(f"{path}.backoffPolicy", f"{delivery['backoffPolicy']!r} is not "
                           f"allowed (allowed: {', '.join(BACKOFF_POLICIES)})"))
    if "format" in delivery and delivery["format"] not in DELIVERY_FORMATS:
        out.append(Finding(f"{path}.format", f"{delivery['format']!r} is not allowed "
                           f"(allowed: {', '.join(DELIVERY_FORMATS)})"))
    for key, positive in (("backoffDelay", False), ("timeout", True), ("retryAfterMax", False)):
        if key in delivery:
            try:
                seconds = parse_iso8601_duration(delivery[key])
            except ValueError as exc:
                out.append(Finding(f"{path}.{key}", str(exc)))
                continue
            if positive and seconds <= 0:
                out.append(Finding(f"{path}.{key}", f"{delivery[key]!r} must be greater than 0"))
    if "deadLetterSink" in delivery:
        out += check_destination(delivery["deadLetterSink"], f"{path}.deadLetterSink")
    return out


#: What ``config-br-defaults`` of a default Knative Eventing install gives a Broker that has no
#: ``spec.delivery`` of its own.
BROKER_DEFAULT_DELIVERY = {"retry": 10, "backoffPolicy": "exponential", "backoffDelay": "PT0.2S"}


def _broker_delivery(broker: dict | None) -> dict:
    if broker is None:
        return {}
    delivery = (broker.get("spec") or {}).get("delivery")
    return delivery if delivery is not None else BROKER_DEFAULT_DELIVERY


def delivery_spec(doc: dict, broker: dict | None = None) -> dict:
    """The delivery rules that apply to a Trigger (with its Broker) or to a Broker, with
    durations in seconds.

    A Trigger's own ``spec.delivery`` replaces the Broker's as a whole, except that the
    Broker's dead-letter sink remains the fallback when the Trigger names none. A Broker
    without ``spec.delivery`` has :data:`BROKER_DEFAULT_DELIVERY`. Returns ``{"retry",
    "backoffPolicy", "backoffDelay", "timeout", "retryAfterMax", "deadLetterSink"}``: retry 0
    and policy ``exponential`` when unset, ``None`` for absent durations and sink. Expects
    documents that passed validation.
    """
    if doc.get("kind") == "Broker":
        doc, broker = {}, doc
    own = (doc.get("spec") or {}).get("delivery")
    fallback = _broker_delivery(broker)
    chosen = own if own is not None else fallback

    def seconds(key: str) -> float | None:
        return parse_iso8601_duration(chosen[key]) if chosen.get(key) is not None else None

    return {
        "retry": int(chosen.get("retry") or 0),
        "backoffPolicy": chosen.get("backoffPolicy") or "exponential",
        "backoffDelay": seconds("backoffDelay"),
        "timeout": seconds("timeout"),
        "retryAfterMax": seconds("retryAfterMax"),
        "deadLetterSink": chosen.get("deadLetterSink") or fallback.get("deadLetterSink"),
    }


# --------------------------------------------------------------------------- triggers
TRIGGER_SPEC_KEYS = ("broker", "filter", "filters", "subscriber", "delivery")
FILTER_OPERATORS = ("exact", "prefix", "suffix", "all", "any", "not", "cesql")
ATTRIBUTE_NAME = re.compile(r"[a-z][a-z0-9]*")


def _check_attribute_map(value: Any, path: str, single: bool) -> list[Finding]:
    if not isinstance(value, dict) or not value:
        return [Finding(path, "must be a non-empty map of attribute name to string, "
                        f"got {value!r}")]
    out = []
    if single and len(value) != 1:
        out.append(Finding(path, f"must hold exactly one attribute, found {len(value)}: "
                           f"{', '.join(map(str, value))} (combine several with 'all')"))
    for name, wanted in value.items():
        if not isinstance(name, str) or not ATTRIBUTE_NAME.fullmatch(name):
            out.append(Finding(key_path(path, str(name)), f"attribute name {name!r} must be "
                               "lowercase letters and digits, starting with a letter"))
        if not isinstance(wanted, str):
            out.append(Finding(key_path(path, str(name)), f"value {wanted!r} must be a string"))
    return out


def check_filter_expression(expr: Any, path: str) -> list[Finding]:
    """One entry of ``spec.filters`` (recursively): exactly one operator."""
    if not isinstance(expr, dict):
        return [Finding(path, f"must be an object with one of {', '.join(FILTER_OPERATORS)}, "
                        f"got {expr!r}")]
    out = [unknown_key(path, k, FILTER_OPERATORS) for k in expr if k not in FILTER_OPERATORS]
    ops = [k for k in expr if k in FILTER_OPERATORS]
    if len(ops) != 1:
        found = ", ".join(ops) if ops else "none"
        out.append(Finding(path, f"must hold exactly one of {', '.join(FILTER_OPERATORS)}; "
                           f"found {found}"))
    for op in ops:
        value, sub = expr[op], f"{path}.{op}"
        if op in ("exact", "prefix", "suffix"):
            out += _check_attribute_map(value, sub, single=True)
        elif op in ("all", "any"):
            if not isinstance(value, list) or not value:
                out.append(Finding(sub, f"must be a non-empty list of filters, got {value!r}"))
            else:
                for i, item in enumerate(value):
                    out += check_filter_expression(item, f"{sub}[{i}]")
        elif op == "not":
            out += check_filter_expression(value, sub)
        elif not isinstance(value, str) or not value.strip():
            out.append(Finding(sub, f"must be a non-empty CESQL expression, got {value!r}"))
    return out


def check_trigger(doc: dict) -> list[Finding]:
    spec = doc.get("spec")
    if not isinstance(spec, dict):
        return [Finding("spec", "is required: a Trigger needs spec.broker and spec.subscriber")]
    out = [unknown_key("spec", k, TRIGGER_SPEC_KEYS) for k in spec if k not in TRIGGER_SPEC_KEYS]
    if not isinstance(spec.get("broker"), str) or not spec.get("broker"):
        out.append(Finding("spec.broker",
                           f"is required (a Broker name), got {spec.get('broker')!r}"))
    if "subscriber" not in spec:
        out.append(Finding("spec.subscriber", "is required (a Destination: ref and/or uri)"))
    else:
        out += check_destination(spec["subscriber"], "spec.subscriber")
    if "filter" in spec:
        flt = spec["filter"]
        if not isinstance(flt, dict):
            out.append(Finding("spec.filter", f"must be an object with 'attributes', got {flt!r}"))
        else:
            out += [unknown_key("spec.filter", k, ("attributes",))
                    for k in flt if k != "attributes"]
            if "attributes" in flt:
                out += _check_attribute_map(flt["attributes"], "spec.filter.attributes",
                                            single=False)
    if "filters" in spec:
        filters = spec["filters"]
        if not isinstance(filters, list):
            out.append(Finding("spec.filters",
                               f"must be a list of filter expressions, got {filters!r}"))
        else:
            for i, expr in enumerate(filters):
                out += check_filter_expression(expr, f"spec.filters[{i}]")
        if "filter" in spec:
            out.append(Finding("spec.filter", "is ignored because spec.filters is set; keep one",
                               "warning"))
    if "delivery" in spec:
        out += check_delivery(spec["delivery"], "spec.delivery")
    return out


def check_broker(doc: dict) -> list[Finding]:
    spec = doc.get("spec") or {}
    return check_delivery(spec["delivery"], "spec.delivery") if "delivery" in spec else []


# --------------------------------------------------------------------------- sources
_CRON_FIELD = re.compile(r"[0-9A-Za-z*?/,\-]+")


def check_pingsource(doc: dict) -> list[Finding]:
    spec = doc.get("spec") or {}
    out = []
    schedule = spec.get("schedule", "* * * * *")
    body = re.sub(r"^(CRON_)?TZ=\S+\s+", "", schedule) if isinstance(schedule, str) else ""
    if not (body.startswith("@") or (len(body.split()) == 5
                                     and all(_CRON_FIELD.fullmatch(f) for f in body.split()))):
        out.append(Finding("spec.schedule", f"{schedule!r} is not a cron schedule "
                           "(five fields such as '* * * * *', or @hourly, @every 5m)"))
    if "data" in spec and "dataBase64" in spec:
        out.append(Finding("spec.dataBase64", "data and dataBase64 are mutually exclusive"))
    if isinstance(spec.get("data"), str) and "json" in str(spec.get("contentType", "")):
        try:
            json.loads(spec["data"])
        except ValueError as exc:
            out.append(Finding("spec.data", f"{spec['data']!r} is not JSON although "
                               f"contentType is {spec['contentType']!r}: {exc}"))
    if "sink" not in spec:
        out.append(Finding("spec.sink", "is required (a Destination: ref and/or uri)"))
    else:
        out += check_destination(spec["sink"], "spec.sink")
    return out


def check_sinkbinding(doc: dict) -> list[Finding]:
    spec = doc.get("spec") or {}
    out = []
    subject = spec.get("subject")
    if not isinstance(subject, dict):
        out.append(Finding("spec.subject", f"is required (apiVersion, kind, name or selector), "
                           f"got {subject!r}"))
    else:
        out += [Finding(f"spec.subject.{k}", "is required") for k in ("apiVersion", "kind")
                if not subject.get(k)]
        if ("name" in subject) == ("selector" in subject):
            out.append(Finding("spec.subject", "needs exactly one of 'name' and 'selector'"))
    if "sink" not in spec:
        out.append(Finding("spec.sink", "is required (a Destination: ref and/or uri)"))
    else:
        out += check_destination(spec["sink"], "spec.sink")
    return out
