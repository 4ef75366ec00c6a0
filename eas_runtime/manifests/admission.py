"""Eventing rules that neither the CRD schemas nor Knative's admission webhooks apply.

What Knative's own ``Validate`` refuses (delivery values, destinations, a Trigger without broker
or subscriber, upper-case attribute names, two dialects in one filter, PingSource schedules and
data, SinkBinding subjects) is checked by running it: knative/validate, with those negative cases
in knative/validate/knative_rules_test.go. Left here is what Knative admits and Eventing's filter
code then reads as "every event" (:func:`check_trigger`), and :func:`check_delivery` for a
function descriptor's delivery, checked before any Trigger exists.

Each ``check_*`` function returns :class:`Finding` tuples with a dotted path inside the document.
The duration parsers and :func:`delivery_spec` are also used by the embedded runtime's local
broker, so the same YAML means the same thing in both runtimes.
"""
from __future__ import annotations

import difflib
import re
from typing import Any, NamedTuple


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


def did_you_mean(word: str, choices, prefix: str = "") -> str:
    """``"; did you mean '<prefix><choice>'?"`` for the choice closest to ``word``, or ``""``."""
    close = difflib.get_close_matches(word, sorted(choices), n=1, cutoff=0.6)
    return f"; did you mean {prefix + close[0]!r}?" if close else ""


def unknown_key(path: str, key: str, allowed) -> Finding:
    """A finding for a misspelt or unsupported field, with a guess and the allowed names."""
    allowed = sorted(allowed)
    return Finding(key_path(path, str(key)), f"unknown field {key!r}{did_you_mean(str(key), allowed)} "
                   f"(allowed: {', '.join(allowed)})")


def unknown_keys(path: str, mapping: dict, allowed) -> list[Finding]:
    """:func:`unknown_key` for each key of ``mapping`` not in ``allowed``."""
    return [unknown_key(path, k, allowed) for k in mapping if k not in allowed]


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


# --------------------------------------------------------------------------- delivery
DELIVERY_KEYS = ("retry", "backoffPolicy", "backoffDelay", "deadLetterSink", "timeout",
                 "retryAfterMax", "format")
BACKOFF_POLICIES = ("linear", "exponential")
DELIVERY_FORMATS = ("json", "binary")


def check_delivery(delivery: Any, path: str) -> list[Finding]:
    """A function descriptor's ``delivery`` (func.yaml), before it becomes a Trigger's: the keys
    and values Knative's webhook accepts, so that ``eas deploy generate`` names a bad one where it
    was written (a Trigger's or Broker's own delivery is left to Knative's Validate)."""
    if not isinstance(delivery, dict):
        return [Finding(path, f"must be an object, got {delivery!r}")]
    out = unknown_keys(path, delivery, DELIVERY_KEYS)
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
TRIGGER_SPEC_KEYS = ("broker", "brokerRef", "filter", "filters", "subscriber", "delivery")
ATTRIBUTE_DIALECTS = ("exact", "prefix", "suffix")


def _check_attribute_map(value: Any, path: str, single: bool) -> list[Finding]:
    if not isinstance(value, dict) or not value:
        return [Finding(path, "must be a non-empty map of attribute name to string (an empty "
                        f"one matches every event), got {value!r}")]
    out = []
    if single and len(value) != 1:
        out.append(Finding(path, f"must hold exactly one attribute, found {len(value)}: "
                           f"{', '.join(map(str, value))} (combine several with 'all')"))
    for name, wanted in value.items():
        if not isinstance(wanted, str):
            out.append(Finding(key_path(path, str(name)), f"value {wanted!r} must be a string "
                               "(null reads as \"\", which matches any value)"))
    return out


def check_filter_expression(expr: Any, path: str) -> list[Finding]:
    """One entry of ``spec.filters`` (recursively): the empty or ambiguous dialects that Knative
    admits and Eventing's filter code then skips or reads as "everything"."""
    if not isinstance(expr, dict):
        return []           # the schema's
    out: list[Finding] = []
    for op, value in expr.items():
        sub = f"{path}.{op}"
        if op in ATTRIBUTE_DIALECTS:
            out += _check_attribute_map(value, sub, single=True)
        elif op in ("all", "any"):
            if not isinstance(value, list) or not value:
                out.append(Finding(sub, f"must be a non-empty list of filters (an empty one is "
                                   f"skipped), got {value!r}"))
            else:
                for i, item in enumerate(value):
                    out += check_filter_expression(item, f"{sub}[{i}]")
        elif op == "not":
            out += check_filter_expression(value, sub)
        elif op == "cesql" and (not isinstance(value, str) or not value.strip()):
            out.append(Finding(sub, f"must be a non-empty CESQL expression, got {value!r}"))
    return out


def check_trigger(doc: dict) -> list[Finding]:
    """What Knative admits in a Trigger's filters and this project refuses (see TestKnativeAdmits
    in knative/validate/knative_rules_test.go); the rest is Knative's Validate."""
    spec = doc.get("spec")
    if not isinstance(spec, dict):
        return []           # the schema's, and Knative's (a Trigger needs broker and subscriber)
    # The Trigger CRD's spec is open too: misspelt keys are named here, with a suggestion.
    out = unknown_keys("spec", spec, TRIGGER_SPEC_KEYS) + _delivery_keys(spec)
    flt = spec.get("filter")
    if isinstance(flt, dict) and "attributes" in flt:
        out += _check_attribute_map(flt["attributes"], "spec.filter.attributes", single=False)
    filters = spec.get("filters")
    if isinstance(filters, list):
        for i, expr in enumerate(filters):
            out += check_filter_expression(expr, f"spec.filters[{i}]")
        if "filter" in spec:
            out.append(Finding("spec.filter", "is ignored because spec.filters is set; keep one",
                               "warning"))
    return out


def _delivery_keys(spec: dict) -> list[Finding]:
    """Misspelt keys of a spec's ``delivery``: the CRD copies leave that object open, so the
    schema check cannot name them (Knative's strict decoding does, without a suggestion)."""
    delivery = spec.get("delivery")
    return unknown_keys("spec.delivery", delivery, DELIVERY_KEYS) if isinstance(delivery, dict) else []


def check_broker(doc: dict) -> list[Finding]:
    """Misspelt keys of a Broker's delivery; its values are Knative's Validate's."""
    spec = doc.get("spec")
    return _delivery_keys(spec) if isinstance(spec, dict) else []
