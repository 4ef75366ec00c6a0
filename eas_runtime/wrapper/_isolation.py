"""Keep science code's helper processes away from the server's sockets.

A process forked while the replica serves a request inherits every descriptor of the server:
its listening socket and the open client connections. A helper that outlives the task (the
persistent process pool of transitleastsquares stays 300 s) then keeps a connection open after
the server closed it: no FIN reaches the caller, which sends its next request on that
connection, and nobody reads it until the helper exits (issue 11, defect 8). So, once per
process, before the first task:

* the default start method of :mod:`multiprocessing` becomes ``forkserver`` (unless something
  chose one already): pools and ``ProcessPoolExecutor`` workers are forked from a server
  process that was itself started with only the descriptors it needs (``close_fds``), so they
  hold none of the replica's sockets. The cost is paid once per pool: its workers import what
  they run (about 3 s for TLS, whose pool is persistent);
* every child of a plain ``fork`` (``os.fork``, an explicit ``"fork"`` context) gets the
  server's sockets replaced by ``/dev/null`` right after the fork (``os.register_at_fork``):
  the listening sockets and every TCP socket on their ports (accepted connections). The
  descriptor numbers stay valid, so a socket object the child still holds closes a harmless
  descriptor later rather than whatever reused its number. Other sockets (database, object
  store, socketpairs of :mod:`multiprocessing`) are left alone.
"""
from __future__ import annotations

import logging
import multiprocessing
import os
import socket
import stat
import threading

log = logging.getLogger(__name__)
START_METHOD = "forkserver"
_installed = False
_lock = threading.Lock()


def install() -> None:
    """Set the start method and the fork hook (once per process; later calls do nothing)."""
    global _installed
    with _lock:
        if _installed:
            return
        _installed = True
        if multiprocessing.get_start_method(allow_none=True) is None \
                and START_METHOD in multiprocessing.get_all_start_methods():
            multiprocessing.set_start_method(START_METHOD)
        else:
            log.info("multiprocessing start method stays %r",
                     multiprocessing.get_start_method(allow_none=True))
        if hasattr(os, "register_at_fork"):
            os.register_at_fork(after_in_child=drop_server_sockets)


def _inet_sockets() -> list[tuple[int, int, bool]]:
    """(descriptor, local port, listening) of this process's TCP sockets."""
    try:
        names = os.listdir("/proc/self/fd")
    except OSError:
        names = [str(fd) for fd in range(min(os.sysconf("SC_OPEN_MAX"), 4096))]
    found = []
    for name in names:
        fd = int(name)
        try:
            if not stat.S_ISSOCK(os.fstat(fd).st_mode):
                continue
            sock = socket.socket(fileno=fd)
        except OSError:
            continue
        try:
            if sock.family in (socket.AF_INET, socket.AF_INET6) and sock.type == socket.SOCK_STREAM:
                listening = bool(sock.getsockopt(socket.SOL_SOCKET, socket.SO_ACCEPTCONN))
                found.append((fd, sock.getsockname()[1], listening))
        except OSError:
            pass
        finally:
            sock.detach()
    return found


def drop_server_sockets() -> int:
    """In a freshly forked child: point the server's sockets at /dev/null; how many."""
    try:
        sockets = _inet_sockets()
        ports = {port for _fd, port, listening in sockets if listening}
        doomed = [fd for fd, port, _listening in sockets if port in ports]
        if not doomed:
            return 0
        null = os.open(os.devnull, os.O_RDWR | os.O_CLOEXEC)
        try:
            for fd in doomed:
                os.dup2(null, fd, inheritable=False)
        finally:
            os.close(null)
        return len(doomed)
    except Exception:  # noqa: BLE001 - a fork must never fail because of this hook
        return 0
