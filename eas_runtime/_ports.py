"""Free TCP ports on loopback for servers that other processes must know before they start.

A port handed out by ``bind(port 0)`` comes from the kernel's ephemeral range, the same range
every outgoing connection takes its local port from; on a busy machine such a connection can take
the port between the moment it is chosen and the moment the server binds it ("Address already in
use"). So ports are chosen below the ephemeral range (``/proc/sys/net/ipv4/ip_local_port_range``),
where only servers that ask for a port by number go, and checked by binding them once.
"""
from __future__ import annotations

import random
import socket

LOOPBACK = "127.0.0.1"
#: Lowest port handed out (above the registered well-known services most machines run).
LOW = 20000


def _ephemeral_low(default: int = 32768) -> int:
    try:
        with open("/proc/sys/net/ipv4/ip_local_port_range") as fh:
            return int(fh.read().split()[0])
    except (OSError, ValueError, IndexError):
        return default


def _bindable(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind((LOOPBACK, port))
        except OSError:
            return False
        return True


def free_port(attempts: int = 200) -> int:
    """A port on 127.0.0.1 nobody listens on now, outside the ephemeral range when it can be."""
    high = _ephemeral_low()
    if high - LOW > 1000:
        for _ in range(attempts):
            port = random.randrange(LOW, high)
            if _bindable(port):
                return port
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:   # a narrow or odd range
        s.bind((LOOPBACK, 0))
        return s.getsockname()[1]
