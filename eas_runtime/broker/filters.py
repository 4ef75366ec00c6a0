"""Trigger filters, evaluated the way Knative Eventing's broker evaluates them.

Two forms exist on a Trigger:

- ``spec.filter.attributes`` (the original form): every listed attribute must be present and
  equal the given string exactly. The empty string means "any value": the attribute must then be
  present with a non-empty value (Knative's ``TriggerAnyFilter``, knative/eventing#4847).
- ``spec.filters`` (the Subscriptions API form): a list of expressions that must all hold. Each
  expression uses one dialect: ``exact``, ``prefix``, ``suffix`` (one attribute: value pair, the
  value non-empty), ``all``, ``any`` (lists of expressions) or ``not`` (one expression).
  ``cesql`` is not supported here and is refused when the configuration is loaded.

When a Trigger has a non-empty ``filters`` list, ``filter`` is ignored, as in Knative. With
neither, every event passes.

Attribute lookup follows Knative's ``LookupAttribute``: the context attributes (``specversion``,
``type``, ``source``, ``subject``, ``id``, ``time``, ``dataschema``/``schemaurl``,
``datacontenttype``, ``datamediatype``) always exist, as the empty string when unset; any other
name is an extension and exists only when the event carries it. Values compare as strings.

Results are tri-state like Knative's (``True`` pass, ``False`` fail, ``None`` no filter); only
``False`` stops a delivery.
"""
from __future__ import annotations

import re
from typing import Any, Callable, Mapping, Optional

Attributes = Mapping[str, Any]
Result = Optional[bool]
Predicate = Callable[[Attributes], Result]

#: Knative's rule for attribute names in filters: a lowercase letter, then lowercase letters/digits.
ATTRIBUTE_NAME = re.compile(r"^[a-z][a-z0-9]*$")
_CONTEXT = ("specversion", "type", "source", "subject", "id", "time", "dataschema",
            "datacontenttype")
_DIALECTS = ("exact", "prefix", "suffix", "all", "any", "not", "cesql")


class FilterError(ValueError):
    """A filter that cannot be used; ``field`` is its path below the Trigger, e.g.
    ``spec.filters[0].exact``."""

    def __init__(self, field: str, message: str):
        super().__init__(f"{field}: {message}")
        self.field = field
        self.message = message


def lookup(attributes: Attributes, name: str) -> tuple[bool, str]:
    """``(present, value)`` of a context attribute or extension, as Knative looks it up."""
    if name in _CONTEXT:
        return True, _text(attributes.get(name))
    if name == "schemaurl":
        return True, _text(attributes.get("dataschema"))
    if name == "datamediatype":
        content_type = _text(attributes.get("datacontenttype"))
        return True, content_type.split(";", 1)[0].strip().lower()
    if name == "datacontentencoding":
        return True, ""
    value = attributes.get(name)
    if value is None:
        return False, ""
    return True, _text(value)


def _text(value: Any) -> str:
    if value is None:
        return ""
    if isinstance(value, bool):
        return "true" if value else "false"
    return str(value)


# ---------------------------------------------------------------------------------- compiling
def compile_trigger(spec: Mapping[str, Any]) -> Predicate:
    """The predicate of a Trigger ``spec``; raises :class:`FilterError` for unusable filters."""
    filters = spec.get("filters")
    if filters is not None and not isinstance(filters, list):
        raise FilterError("spec.filters", f"must be a list, got {type(filters).__name__}")
    if filters:
        return _all([compile_expression(f, f"spec.filters[{i}]") for i, f in enumerate(filters)])
    legacy = spec.get("filter")
    if legacy is not None:
        if not isinstance(legacy, Mapping):
            raise FilterError("spec.filter", f"must be a mapping, got {type(legacy).__name__}")
        unknown = set(legacy) - {"attributes"}
        if unknown:
            raise FilterError("spec.filter", f"unknown field(s) {sorted(unknown)}")
        return compile_attributes(legacy.get("attributes") or {}, "spec.filter.attributes")
    return _no_filter


def compile_attributes(attrs: Mapping[str, Any], field: str = "attributes") -> Predicate:
    """The original ``filter.attributes`` form (exact match, ``""`` = any non-empty value)."""
    wanted = _string_map(attrs, field, allow_empty_value=True)

    def predicate(event: Attributes) -> Result:
        for name, expected in wanted.items():
            present, value = lookup(event, name)
            if not present or (expected == "" and value == ""):
                return False
            if expected != "" and expected != value:
                return False
        return True

    return predicate


def compile_expression(expr: Any, field: str) -> Predicate:
    """One Subscriptions API filter expression."""
    if not isinstance(expr, Mapping):
        raise FilterError(field, f"must be a mapping, got {type(expr).__name__}")
    unknown = set(expr) - set(_DIALECTS)
    if unknown:
        raise FilterError(field, f"unknown dialect(s) {sorted(unknown)}; allowed: {', '.join(_DIALECTS)}")
    present = [d for d in _DIALECTS if _is_set(d, expr.get(d))]
    if len(present) > 1:
        raise FilterError(field, f"multiple dialects {present}: an expression can have only one")
    if not present:
        # Knative skips an expression that sets no dialect (and an empty all/any list).
        return _no_filter
    dialect = present[0]
    value = expr[dialect]
    where = f"{field}.{dialect}"
    if dialect == "cesql":
        raise FilterError(where, "CloudEvents SQL filters are not supported by the embedded broker")
    if dialect in ("exact", "prefix", "suffix"):
        pairs = _string_map(value, where, allow_empty_value=False)
        if len(pairs) != 1:
            raise FilterError(where, "must hold exactly one attribute: value pair")
        (name, wanted), = pairs.items()
        return _comparison(dialect, name, wanted)
    if dialect in ("all", "any"):
        if not isinstance(value, list):
            raise FilterError(where, f"must be a list, got {type(value).__name__}")
        parts = [compile_expression(e, f"{where}[{i}]") for i, e in enumerate(value)]
        return _all(parts) if dialect == "all" else _any(parts)
    return _not(compile_expression(value, where))


def _is_set(dialect: str, value: Any) -> bool:
    if dialect == "not":
        return value is not None
    if dialect == "cesql":
        return bool(value)
    return value is not None and len(value) > 0


def _string_map(value: Any, field: str, *, allow_empty_value: bool) -> dict[str, str]:
    if not isinstance(value, Mapping):
        raise FilterError(field, f"must be a mapping of attribute names to strings, got {type(value).__name__}")
    out: dict[str, str] = {}
    for name, wanted in value.items():
        if not isinstance(name, str) or not ATTRIBUTE_NAME.match(name):
            raise FilterError(f"{field}.{name}", "attribute names start with a lowercase letter and "
                                                 "hold only lowercase letters and digits")
        if not isinstance(wanted, str):
            shown = "null" if wanted is None else repr(wanted)
            raise FilterError(f"{field}.{name}", f"value must be a string, got {shown} "
                                                 "(quote it in the YAML)")
        if wanted == "" and not allow_empty_value:
            raise FilterError(f"{field}.{name}", "value must not be empty")
        out[name] = wanted
    return out


# ---------------------------------------------------------------------------------- predicates
def _no_filter(event: Attributes) -> Result:
    return None


def _comparison(dialect: str, name: str, wanted: str) -> Predicate:
    if dialect == "exact":
        def test(value: str) -> bool:
            return value == wanted
    elif dialect == "prefix":
        def test(value: str) -> bool:
            return value.startswith(wanted)
    else:
        def test(value: str) -> bool:
            return value.endswith(wanted)

    def predicate(event: Attributes) -> Result:
        present, value = lookup(event, name)
        return present and test(value)

    return predicate


def _all(parts: list[Predicate]) -> Predicate:
    if len(parts) == 1:
        return parts[0]

    def predicate(event: Attributes) -> Result:
        result: Result = None
        for part in parts:
            result = part(event)
            if result is False:
                return False
        return result

    return predicate


def _any(parts: list[Predicate]) -> Predicate:
    def predicate(event: Attributes) -> Result:
        result: Result = None
        for part in parts:
            result = _or(result, part(event))
            if result is True:
                return True
        return result

    return predicate


def _or(x: Result, y: Result) -> Result:
    if x is None:
        return y
    if y is None:
        return x
    return x or y


def _not(inner: Predicate) -> Predicate:
    def predicate(event: Attributes) -> Result:
        result = inner(event)
        return None if result is None else not result

    return predicate


def passes(predicate: Predicate, event: Attributes) -> bool:
    """True unless the predicate fails (Knative delivers on pass and on "no filter")."""
    return predicate(event) is not False
