"""Local serving admits requests by node CPU, as a Kubernetes node of the machine's size would
schedule them: the ``requests.cpu`` of busy function replicas adds up to the cores at most,
unless nothing else is busy, and requests waiting for CPU go first come, first served.

Real replica processes (functions-framework running the echo function); orderings are read from
the replicas' own clocks (when each request's handler began and ended), never from durations.
"""
from __future__ import annotations

import pytest

from eas_runtime.serving import NoCapacity
from tests.serving.serving_helpers import call, echo_service, wait_for
from tests.serving.test_serving_local import in_background


def _serving(make_serving, *services: tuple[str, str], node_cpu: float = 2.0):
    serving = make_serving(*(echo_service(name, cpu=cpu, max_scale=1) for name, cpu in services),
                           max_replicas=0)
    serving.node_cpu = node_cpu          # the machine's cores, fixed for the test
    for name, _ in services:             # warm: a cold start does not blur the order
        call(serving, name)
    return serving


def _inflight(serving, name: str) -> bool:
    return any(r["inflight"] for r in next(s for s in serving.status() if s["name"] == name)["replicas"])


def _result(background):
    thread, outcome = background
    thread.join(120)
    assert "result" in outcome, outcome
    return outcome["result"]


def test_a_second_search_that_requests_the_whole_node_waits_for_the_first(make_serving):
    serving = _serving(make_serving, ("tls", "2"), ("qats", "2"))
    first = in_background(call, serving, "tls", sleep=1.5)
    wait_for(lambda: _inflight(serving, "tls"), what="the first search in flight")
    with pytest.raises(NoCapacity, match=r"qats: waited 0.2 s for node CPU: 2 of 2 cores"):
        call(serving, "qats", timeout=0.2)
    second = call(serving, "qats")
    assert second["started"] >= _result(first)["ended"]


def test_requests_that_fit_the_cores_run_side_by_side(make_serving):
    serving = _serving(make_serving, ("bls", "1"), ("detrend", "500m"))
    long = in_background(call, serving, "bls", sleep=4)
    wait_for(lambda: _inflight(serving, "bls"), what="the long request in flight")
    short = call(serving, "detrend")
    assert short["ended"] < _result(long)["ended"]


def test_waiting_requests_are_admitted_in_order_so_a_large_one_is_not_overtaken(make_serving):
    """``small-b`` would fit beside ``small-a`` (1 + 1 of 2 cores), but ``big`` (2 cores) asked
    first: it goes when ``small-a`` ends, and ``small-b`` after it."""
    serving = _serving(make_serving, ("small-a", "1"), ("big", "2"), ("small-b", "1"))
    first = in_background(call, serving, "small-a", sleep=2)
    wait_for(lambda: _inflight(serving, "small-a"), what="small-a in flight")
    big = in_background(call, serving, "big", sleep=1)
    wait_for(lambda: len(serving._cpu_queue) == 1, what="big waiting for CPU")
    late = in_background(call, serving, "small-b")
    wait_for(lambda: len(serving._cpu_queue) == 2, what="small-b waiting behind big")
    a, b, c = _result(first), _result(big), _result(late)
    assert b["started"] >= a["ended"]
    assert c["started"] >= b["ended"]
    assert not serving._cpu_queue


def test_without_a_budget_nothing_waits_for_cpu(make_serving):
    """An explicit ``max_replicas`` is taken as given: no node budget."""
    serving = make_serving(echo_service("tls", cpu="2", max_scale=1), echo_service("qats", cpu="2", max_scale=1))
    assert serving.node_cpu == 0
    first = in_background(call, serving, "tls", sleep=4)
    wait_for(lambda: _inflight(serving, "tls"), what="the first search in flight")
    assert call(serving, "qats")["ended"] < _result(first)["ended"]
