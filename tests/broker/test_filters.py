"""Trigger filter semantics: the original attributes filter and the Subscriptions API filters."""
from __future__ import annotations

import pytest
from hypothesis import given
from hypothesis import strategies as st

from eas_runtime.broker import ConfigError, build_config
from eas_runtime.broker.filters import FilterError, compile_expression, compile_trigger, lookup, passes

EVENT = {"specversion": "1.0", "id": "abc-1", "source": "/eas/store", "type": "org.plato.eas.task.ready",
         "datacontenttype": "application/json; charset=utf-8", "tasktype": "transit_search_tls",
         "jobid": "42"}


def matches(spec: dict, event: dict = EVENT) -> bool:
    return passes(compile_trigger(spec), event)


# ------------------------------------------------------------------ attributes filter
def test_attributes_filter_needs_every_attribute_to_equal_exactly():
    assert matches({"filter": {"attributes": {"type": "org.plato.eas.task.ready",
                                              "tasktype": "transit_search_tls"}}})
    assert not matches({"filter": {"attributes": {"type": "org.plato.eas.task.ready",
                                                  "tasktype": "transit_search_bls"}}})
    assert not matches({"filter": {"attributes": {"type": "org.plato.eas.task"}}})
    assert not matches({"filter": {"attributes": {"type": "ORG.plato.eas.task.ready"}}})


def test_attributes_filter_on_a_missing_extension_fails():
    assert not matches({"filter": {"attributes": {"attemptid": "1"}}})


def test_empty_string_means_any_non_empty_value():
    # Knative's TriggerAnyFilter: "" matches any value, but the attribute must be set.
    assert matches({"filter": {"attributes": {"tasktype": ""}}})
    assert not matches({"filter": {"attributes": {"attemptid": ""}}})
    assert not matches({"filter": {"attributes": {"subject": ""}}})  # optional, unset


def test_context_attributes_always_exist_as_empty_strings():
    assert not matches({"filter": {"attributes": {"subject": "x"}}})
    assert matches({"filters": [{"not": {"exact": {"subject": "x"}}}]})
    assert matches({"filters": [{"exact": {"datamediatype": "application/json"}}]})
    assert matches({"filters": [{"exact": {"schemaurl": "x"}}]}) is False


def test_no_filter_passes_everything():
    assert matches({})
    assert matches({"filter": {}})
    assert matches({"filter": {"attributes": {}}})
    assert matches({"filters": []})


# ------------------------------------------------------------------ new filters
@pytest.mark.parametrize("expr, expected", [
    ({"exact": {"type": "org.plato.eas.task.ready"}}, True),
    ({"exact": {"type": "org.plato.eas.task"}}, False),
    ({"exact": {"jobid": "42"}}, True),
    ({"exact": {"attemptid": "1"}}, False),
    ({"prefix": {"type": "org.plato.eas."}}, True),
    ({"prefix": {"type": "org.plato.eas.product"}}, False),
    ({"prefix": {"attemptid": "a"}}, False),
    ({"suffix": {"type": ".ready"}}, True),
    ({"suffix": {"type": ".finished"}}, False),
    ({"suffix": {"tasktype": "_tls"}}, True),
    ({"all": [{"prefix": {"type": "org.plato."}}, {"exact": {"tasktype": "transit_search_tls"}}]}, True),
    ({"all": [{"prefix": {"type": "org.plato."}}, {"exact": {"tasktype": "x"}}]}, False),
    ({"any": [{"exact": {"type": "x"}}, {"suffix": {"type": "ready"}}]}, True),
    ({"any": [{"exact": {"type": "x"}}, {"exact": {"type": "y"}}]}, False),
    ({"not": {"exact": {"type": "org.plato.eas.task.ready"}}}, False),
    ({"not": {"exact": {"type": "x"}}}, True),
    ({"not": {"any": [{"exact": {"type": "x"}}, {"exact": {"jobid": "42"}}]}}, False),
])
def test_each_dialect(expr, expected):
    assert matches({"filters": [expr]}) is expected


def test_filters_list_means_all():
    assert matches({"filters": [{"prefix": {"type": "org."}}, {"exact": {"jobid": "42"}}]})
    assert not matches({"filters": [{"prefix": {"type": "org."}}, {"exact": {"jobid": "43"}}]})


def test_filters_win_over_filter_when_both_are_present():
    spec = {"filter": {"attributes": {"type": "something.else"}},
            "filters": [{"exact": {"type": "org.plato.eas.task.ready"}}]}
    assert matches(spec)
    spec = {"filter": {"attributes": {"type": "org.plato.eas.task.ready"}},
            "filters": [{"exact": {"type": "something.else"}}]}
    assert not matches(spec)


def test_empty_filters_list_falls_back_to_filter():
    assert not matches({"filter": {"attributes": {"type": "other"}}, "filters": []})


@pytest.mark.parametrize("expr, field", [
    ({"cesql": "type = 'x'"}, "spec.filters[0].cesql"),
    ({"exact": {"type": "a", "source": "b"}}, "spec.filters[0].exact"),
    ({"exact": {"type": ""}}, "spec.filters[0].exact.type"),
    ({"prefix": {"Type": "a"}}, "spec.filters[0].prefix.Type"),
    ({"exact": {"tasktype": None}}, "spec.filters[0].exact.tasktype"),
    ({"exact": {"type": "a"}, "prefix": {"type": "a"}}, "spec.filters[0]"),
    ({"exakt": {"type": "a"}}, "spec.filters[0]"),
    ({"any": [{"not": {"cesql": "true"}}]}, "spec.filters[0].any[0].not.cesql"),
])
def test_unusable_filters_are_refused_with_their_field(expr, field):
    with pytest.raises(FilterError) as info:
        compile_trigger({"filters": [expr]})
    assert info.value.field == field


def test_config_error_names_the_trigger_and_the_field():
    docs = [{"apiVersion": "eventing.knative.dev/v1", "kind": "Broker",
             "metadata": {"name": "default", "namespace": "eas"}},
            {"apiVersion": "eventing.knative.dev/v1", "kind": "Trigger",
             "metadata": {"name": "sql-trigger", "namespace": "eas"},
             "spec": {"broker": "default", "subscriber": {"uri": "http://x/"},
                      "filters": [{"cesql": "type = 'a'"}]}}]
    with pytest.raises(ConfigError, match=r"Trigger eas/sql-trigger: spec\.filters\[0\]\.cesql"):
        build_config(docs)


def test_null_attribute_value_is_refused():
    with pytest.raises(FilterError, match="tasktype.*null"):
        compile_trigger({"filter": {"attributes": {"tasktype": None}}})


def test_lookup():
    assert lookup(EVENT, "type") == (True, "org.plato.eas.task.ready")
    assert lookup(EVENT, "subject") == (True, "")
    assert lookup(EVENT, "datamediatype") == (True, "application/json")
    assert lookup(EVENT, "tasktype") == (True, "transit_search_tls")
    assert lookup(EVENT, "attemptid") == (False, "")


# ------------------------------------------------------------------ properties
names = st.sampled_from(["type", "source", "subject", "tasktype", "jobid"])
values = st.text(alphabet="abc.", min_size=1, max_size=4)
events = st.dictionaries(st.sampled_from(["type", "source", "subject", "tasktype", "jobid"]), values)


def leaf():
    return st.builds(lambda d, n, v: {d: {n: v}}, st.sampled_from(["exact", "prefix", "suffix"]),
                     names, values)


expressions = st.recursive(leaf(), lambda inner: st.one_of(
    st.builds(lambda xs: {"all": xs}, st.lists(inner, min_size=1, max_size=3)),
    st.builds(lambda xs: {"any": xs}, st.lists(inner, min_size=1, max_size=3)),
    st.builds(lambda x: {"not": x}, inner)), max_leaves=8)


def reference(expr: dict, event: dict) -> bool:
    """A direct reading of the Knative documentation."""
    (dialect, value), = expr.items()
    if dialect in ("exact", "prefix", "suffix"):
        (name, wanted), = value.items()
        present, actual = lookup(event, name)
        if not present:
            return False
        return {"exact": actual == wanted, "prefix": actual.startswith(wanted),
                "suffix": actual.endswith(wanted)}[dialect]
    if dialect == "all":
        return all(reference(e, event) for e in value)
    if dialect == "any":
        return any(reference(e, event) for e in value)
    return not reference(value, event)


@given(expressions, events)
def test_expressions_agree_with_the_documented_semantics(expr, event):
    assert passes(compile_expression(expr, "f"), event) is reference(expr, event)


@given(st.dictionaries(names, values, min_size=1, max_size=3), events)
def test_attributes_filter_is_a_conjunction_of_exact_filters(attrs, event):
    legacy = matches({"filter": {"attributes": attrs}}, event)
    new = matches({"filters": [{"exact": {k: v}} for k, v in attrs.items()]}, event)
    assert legacy is new


@given(expressions, events)
def test_not_inverts(expr, event):
    assert passes(compile_expression({"not": expr}, "f"), event) is not passes(compile_expression(expr, "f"), event)


@given(names, values, events)
def test_exact_implies_prefix_and_suffix(name, value, event):
    if matches({"filters": [{"exact": {name: value}}]}, event):
        assert matches({"filters": [{"prefix": {name: value}}]}, event)
        assert matches({"filters": [{"suffix": {name: value}}]}, event)
