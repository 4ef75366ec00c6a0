"""Ports for the embedded runtime's servers: free, and outside the kernel's ephemeral range."""
from __future__ import annotations

import socket

from eas_runtime import _ports


def test_free_port_is_bindable_and_below_the_ephemeral_range():
    low = _ports._ephemeral_low()
    for _ in range(20):
        port = _ports.free_port()
        assert _ports.LOW <= port < low
        with socket.socket() as s:
            s.bind(("127.0.0.1", port))     # raises if somebody holds it


def test_a_port_in_use_is_not_handed_out(monkeypatch):
    with socket.socket() as held:
        held.bind(("127.0.0.1", 0))
        held.listen()
        taken = held.getsockname()[1]
        monkeypatch.setattr(_ports.random, "randrange", lambda a, b: taken)
        # every draw is the taken port: the fallback asks the kernel for one
        port = _ports.free_port(attempts=3)
        assert port != taken


def test_regression_a_narrow_range_falls_back_to_the_kernel(monkeypatch):
    monkeypatch.setattr(_ports, "_ephemeral_low", lambda: _ports.LOW + 10)
    port = _ports.free_port()
    with socket.socket() as s:
        s.bind(("127.0.0.1", port))
