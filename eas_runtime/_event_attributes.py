"""CloudEvents 1.0 context attributes as the specification types them, checked where events
enter (the broker ingress, every receiver through :func:`eas_runtime.events.parse`).

An event that passes is one every later hop can carry: its attribute names fit an HTTP header
(``ce-<name>``), its values are canonical strings (booleans and integers of the JSON format
become ``true``/``false`` and digits), and no value holds a character that cannot be encoded.
An event that does not pass is refused with a message naming the attribute, instead of being
stored and failing in the broker on every delivery attempt.

Spec: https://github.com/cloudevents/spec/blob/v1.0.2/cloudevents/spec.md ("Type System",
"Context Attributes", "Naming Conventions").
"""
from __future__ import annotations

import datetime as dt
import re
from typing import Any, Mapping

from eas_runtime._event_codec import encode_value

REQUIRED = ("specversion", "id", "source", "type")
OPTIONAL = ("datacontenttype", "dataschema", "subject", "time")
#: Attribute names: lowercase ASCII letters and digits. The specification says names SHOULD
#: NOT exceed 20 characters; this contract makes it a rule (every name in use fits).
_NAME = re.compile(r"[a-z0-9]{1,20}")
INT_MIN, INT_MAX = -2 ** 31, 2 ** 31 - 1
#: Every event must be deliverable in binary mode, one ``ce-*`` header per attribute, to any
#: subscriber: common servers take header fields of 8 KiB (gunicorn's limit_request_field_size
#: is 8190 bytes) and 100 header fields (gunicorn, Python's http.server). So an attribute's
#: percent-encoded value is at most 4 KiB (an S3 key, 1024 bytes of UTF-8, needs at most 3 KiB)
#: and an event has at most 64 attributes.
MAX_VALUE_BYTES = 4096
MAX_ATTRIBUTES = 64
#: Characters a CloudEvents String must not hold: controls, surrogates, noncharacters.
_BAD_CHAR = re.compile("[\x00-\x1f\x7f-\x9f\ud800-\udfff\ufdd0-\ufdef"
                       + "".join(f"{chr(p + 0xFFFE)}{chr(p + 0xFFFF)}" for p in range(0, 0x110000, 0x10000))
                       + "]")
_RFC3339 = re.compile(r"\d{4}-\d{2}-\d{2}[Tt]\d{2}:\d{2}:\d{2}(\.\d+)?([Zz]|[+-]\d{2}:\d{2})")
_ABSOLUTE_URI = re.compile(r"[A-Za-z][A-Za-z0-9+.\-]*:[\x21-\x7e]*")
_TOKEN = r"[A-Za-z0-9!#$%&'*+.^_`|~\-]+"
_MEDIA_TYPE = re.compile(rf"{_TOKEN}/{_TOKEN}(\s*;[\x20-\x7e]*)?")


class AttributeProblem(ValueError):
    """An attribute that CloudEvents 1.0 does not allow; the message names it."""


def normalize(attributes: Mapping[str, Any], *, binary: bool = False) -> dict[str, str]:
    """The attributes as canonical strings; :class:`AttributeProblem` naming the first problem.
    ``binary``: the attributes came from ``ce-*`` headers (messages name the header). ``None``
    values (JSON ``null``) are absent attributes."""
    def label(name: str) -> str:
        if binary and name != "datacontenttype":
            return f"CloudEvent attribute {name!r} (header ce-{name})"
        return f"CloudEvent attribute {name!r}"

    for name in REQUIRED:
        if attributes.get(name) is None:
            raise AttributeProblem(f"{label(name)} is missing")
    if len(attributes) > MAX_ATTRIBUTES:
        raise AttributeProblem(f"CloudEvent has {len(attributes)} attributes, more than the limit of {MAX_ATTRIBUTES}")
    out: dict[str, str] = {}
    for name, value in attributes.items():
        if not isinstance(name, str) or not _NAME.fullmatch(name):
            raise AttributeProblem(f"CloudEvent attribute name {name!r} is not allowed: names are 1 to 20 "
                                  "lowercase letters or digits")
        if name == "data":
            raise AttributeProblem(f"{label(name)}: the name 'data' is reserved")
        if value is None:
            continue
        if name in REQUIRED or name in OPTIONAL:
            if not isinstance(value, str):
                raise AttributeProblem(f"{label(name)} must be a string, got {type(value).__name__} {value!r:.80}")
            text = value
        elif isinstance(value, bool):
            text = "true" if value else "false"
        elif isinstance(value, int):
            if not INT_MIN <= value <= INT_MAX:
                raise AttributeProblem(f"{label(name)}: integer {value} is outside the CloudEvents Integer range "
                                      f"({INT_MIN} to {INT_MAX}); send it as a string")
            text = str(value)
        elif isinstance(value, str):
            text = value
        else:
            raise AttributeProblem(f"{label(name)} must be a string, boolean or integer, got "
                                  f"{type(value).__name__} {value!r:.80}")
        bad = _BAD_CHAR.search(text)
        if bad:
            raise AttributeProblem(f"{label(name)} holds the character U+{ord(bad.group()):04X} at "
                                  f"{bad.start()}, which CloudEvents strings do not allow")
        _check_form(name, text, label(name))
        if len(text) * 12 > MAX_VALUE_BYTES and len(encode_value(text)) > MAX_VALUE_BYTES:
            raise AttributeProblem(f"{label(name)} is longer than {MAX_VALUE_BYTES} bytes as an HTTP header "
                                   f"(percent-encoded); put large values in the data")
        out[name] = text
    if out.get("specversion") != "1.0":
        raise AttributeProblem(f"{label('specversion')} is {out.get('specversion')!r}: only '1.0' is supported")
    return out


def _check_form(name: str, text: str, label: str) -> None:
    if name in REQUIRED or name in ("subject", "dataschema", "datacontenttype", "time"):
        if not text:
            raise AttributeProblem(f"{label} is empty; it must be a non-empty string")
    if name == "time":
        if not _RFC3339.fullmatch(text) or not _valid_time(text):
            raise AttributeProblem(f"{label} {text!r:.80} is not an RFC 3339 timestamp "
                                  "(e.g. 2024-05-01T12:00:00Z)")
    elif name == "dataschema":
        if not _ABSOLUTE_URI.fullmatch(text):
            raise AttributeProblem(f"{label} {text!r:.80} is not an absolute URI")
    elif name == "datacontenttype":
        if not _MEDIA_TYPE.fullmatch(text):
            raise AttributeProblem(f"{label} {text!r:.80} is not a media type (RFC 2046, e.g. application/json)")


def _valid_time(text: str) -> bool:
    """Whether the date and time of an RFC 3339 string exist (a leap second is let through)."""
    normal = text.upper().replace("Z", "+00:00")
    normal = normal[:17] + ("59" if normal[17:19] == "60" else normal[17:19]) + normal[19:]
    try:
        dt.datetime.fromisoformat(normal)
    except ValueError:
        return False
    return True
