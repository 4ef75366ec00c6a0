"""Lean CloudEvents HTTP codecs for the events the pipeline sends: JSON data, string attributes.

The cloudevents SDK (1.x) converts every event through its generic marshaller objects, which
costs a few hundred microseconds per conversion; an event crosses four to six conversions per
hop. These functions produce what the SDK produces for CloudEvents 1.0 with string attributes
(binary mode, structured JSON) and return ``None`` for anything else, so that the caller falls
back to the SDK. The tests compare both on the same events.

One difference, on purpose: binary-mode ``ce-*`` header values are percent-encoded as the HTTP
protocol binding 1.0.2 requires (section 3.1.3.2: UTF-8, every character outside printable
ASCII U+0021-U+007E, and space, double quote and percent), and percent-decoded when read. The
1.x SDK does neither, so a ``subject`` holding an S3 key such as ``inbox/星.csv`` could not be
put into a header at all (``UnicodeEncodeError`` in ``http.client``); :func:`encode_headers`
fixes the SDK's output where the SDK is still used. An attribute that is not valid UTF-8 after
decoding raises :class:`CodecError` naming it.
"""
from __future__ import annotations

import base64
import binascii
import datetime as dt
import json
import re
from typing import Any, Callable, Mapping
from urllib.parse import unquote_to_bytes

from cloudevents.http import CloudEvent

_REQUIRED = ("ce-specversion", "ce-id", "ce-source", "ce-type")
_BYTES = (bytes, bytearray, memoryview)
#: Characters a header value may carry as they are: printable ASCII but '"' and '%'.
_UNSAFE = re.compile(r'[^\x21\x23\x24\x26-\x7e]+')


class CodecError(ValueError):
    """An HTTP message that is no readable CloudEvent; the message names the attribute."""


# ------------------------------------------------------------------------ header values
def encode_value(value: str) -> str:
    """A ``ce-*`` header value: ``value`` percent-encoded (UTF-8, upper-case hex)."""
    if not _UNSAFE.search(value):
        return value
    return _UNSAFE.sub(lambda m: "".join(f"%{b:02X}" for b in m.group().encode("utf-8")), value)


def decode_value(name: str, value: str) -> str:
    """The attribute value of a received ``ce-*`` header: a double-quoted string unescaped
    (RFC 7230 3.2.6; older senders quote), then one round of percent-decoding, then strict
    UTF-8. A header value arrives as ISO-8859-1 text (http.client, WSGI), so its characters
    are its octets; octets sent without encoding are read as UTF-8 too."""
    if value.isascii() and "%" not in value and '"' not in value:
        return value
    if len(value) >= 2 and value[0] == value[-1] == '"':
        value = re.sub(r"\\(.)", r"\1", value[1:-1])
    try:
        raw = value.encode("latin-1")
    except UnicodeEncodeError:          # text handed over in-process, not from the wire
        raw = value.encode("utf-8", "surrogatepass")
    try:
        return unquote_to_bytes(raw).decode("utf-8")
    except UnicodeDecodeError as exc:
        raise CodecError(f"CloudEvent attribute {name!r} (header ce-{name}) is not valid UTF-8 after "
                         f"percent-decoding (byte {exc.start}: {exc.reason})") from None


def canonical(value: Any) -> str:
    """The canonical string of an attribute value (CloudEvents type system)."""
    if isinstance(value, bool):
        return "true" if value else "false"
    if isinstance(value, dt.datetime):
        return value.isoformat()
    if isinstance(value, _BYTES):
        return base64.b64encode(bytes(value)).decode("ascii")
    return str(value)


def encode_headers(headers: Mapping[str, Any]) -> dict[str, str]:
    """Headers as the SDK's ``to_binary`` gives them, with ``ce-*`` values made canonical
    strings and percent-encoded."""
    return {k: encode_value(canonical(v)) if k.lower().startswith("ce-") else str(v)
            for k, v in headers.items()}


# ------------------------------------------------------------------------ reading
def binary_parts(headers: Mapping[str, str], body: bytes | str | None
                 ) -> tuple[dict[str, str], Any] | None:
    """Attributes (decoded header values) and data of a binary-mode request, or ``None`` when
    a required ``ce-*`` header is missing. Data is JSON when it parses, else the body."""
    lowered = {str(k).lower(): v for k, v in headers.items()}
    if any(name not in lowered for name in _REQUIRED):
        return None
    content_type = lowered.get("content-type")
    attributes = {k[3:]: decode_value(k[3:], str(v)) for k, v in lowered.items() if k.startswith("ce-")}
    if content_type is not None:
        attributes["datacontenttype"] = content_type
    if not body:
        return attributes, None
    try:
        data = json.loads(body)
    except (ValueError, TypeError):     # not JSON, not UTF-8, or an integer past 4300 digits
        data = body
    except RecursionError:
        if _is_json(content_type):
            raise CodecError("CloudEvent data is JSON nested too deeply to be read") from None
        data = body
    return attributes, data


def parse_binary(headers: Mapping[str, str], body: bytes | str | None) -> CloudEvent | None:
    """A binary-mode CloudEvent 1.0 as ``from_http`` reads it (values percent-decoded), or
    ``None`` (not binary mode, another specversion, a structured content type)."""
    lowered = {str(k).lower(): v for k, v in headers.items()}
    if lowered.get("ce-specversion") != "1.0":
        return None
    content_type = lowered.get("content-type")
    if content_type is not None and str(content_type).lower().startswith("application/cloudevents"):
        return None
    parts = binary_parts(lowered, body)
    return None if parts is None else CloudEvent(*parts)


def structured_parts(body: bytes | str | None) -> tuple[dict[str, Any], Any]:
    """Attributes (as the JSON gives them, not yet checked) and data of a structured-mode JSON
    event, read as the SDK reads it: ``data`` as it is, ``data_base64`` decoded (and parsed
    when it is JSON, as the SDK does), ``""`` data as none."""
    try:
        document = json.loads(body or b"")
    except RecursionError:
        raise CodecError("structured CloudEvent: the JSON is nested too deeply to be read") from None
    except (ValueError, TypeError) as exc:     # JSONDecodeError, UnicodeDecodeError, 4300 digits
        raise CodecError(f"not a CloudEvent: the structured-mode body is not JSON ({exc})") from None
    if not isinstance(document, dict):
        raise CodecError(f"structured CloudEvent: the body must be a JSON object, got {type(document).__name__}")
    attributes = {k: v for k, v in document.items() if k not in ("data", "data_base64")}
    if "data" in document and "data_base64" in document:
        raise CodecError("structured CloudEvent has both 'data' and 'data_base64'")
    data = document.get("data")
    if "data_base64" in document:
        encoded = document["data_base64"]
        if not isinstance(encoded, str):
            raise CodecError(f"CloudEvent 'data_base64' must be a base64 string, got {type(encoded).__name__}")
        try:
            data = base64.b64decode(encoded, validate=True)
        except (binascii.Error, ValueError) as exc:
            raise CodecError(f"CloudEvent 'data_base64' is not base64: {exc}") from None
        try:
            data = json.loads(data)
        except (ValueError, RecursionError):
            pass
    return attributes, (None if data == "" else data)


def _is_json(content_type: str | None) -> bool:
    media = (content_type or "application/json").split(";", 1)[0].strip().lower()
    return media in ("application/json", "text/json") or media.endswith("+json")


# ------------------------------------------------------------------------ writing
def best_effort_json(value: Any) -> Any:
    """The SDK's default binary marshaller: ``None`` stays ``None``, JSON when it can, else the
    value as it is."""
    if value is None:
        return None
    try:
        return json.dumps(value)
    except TypeError:
        return value


def binary(event: CloudEvent, marshal: Callable[[Any], Any] = best_effort_json
           ) -> tuple[dict[str, str], bytes | None] | None:
    """``to_binary(event, marshal)`` with header values percent-encoded: headers and body, or
    ``None`` when an attribute is not a string (left to the SDK)."""
    attributes = event.get_attributes()
    if attributes.get("specversion") != "1.0":
        return None
    headers: dict[str, str] = {}
    content_type = attributes.get("datacontenttype")
    if content_type:
        headers["content-type"] = content_type
    for name, value in attributes.items():
        if name == "datacontenttype" or value is None:
            continue
        if not isinstance(value, str):
            return None
        headers["ce-" + name] = encode_value(value)
    body = marshal(event.get_data())
    if isinstance(body, str):
        body = body.encode("utf-8")
    return headers, body


def structured(event: CloudEvent, marshal: Callable[[Any], Any] | None = None) -> bytes | None:
    """The body of ``to_structured(event, marshal)`` (JSON), or ``None`` when an attribute is
    not a string."""
    attributes = event.get_attributes()
    if attributes.get("specversion") != "1.0":
        return None
    document: dict[str, Any] = {}
    for name, value in attributes.items():
        if value is None:
            continue
        if not isinstance(value, str):
            return None
        document[name] = value
    data = event.get_data()
    if data is not None:
        if marshal is not None:
            data = marshal(data)
        if isinstance(data, _BYTES):
            document["data_base64"] = base64.b64encode(data).decode("ascii")
        else:
            document["data"] = data
    return json.dumps(document).encode("utf-8")
