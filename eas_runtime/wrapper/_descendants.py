"""CPU time of the processes below this one, read from ``/proc``.

``getrusage(RUSAGE_CHILDREN)`` counts a child only once it has been waited for; helpers that
outlive the task (persistent pool workers, a forkserver and the workers it forks) are never
waited for during it, so their CPU time went unrecorded (issue 11, defect 12: 0.1 s for a
multi-second TLS search on two threads). :func:`snapshot` reads, for every living descendant,
its own CPU time plus that of the children it has waited for (``utime + stime + cutime +
cstime`` of ``/proc/<pid>/stat``), keyed by pid and start time (a reused pid is another
process). The tree is followed through the kernel's children files
(``/proc/<pid>/task/<tid>/children``: a few reads per process of the tree); on a kernel without
them every process of ``/proc`` is read (2.6 ms with 80 processes, and a node runs hundreds).
The CPU a task's helpers spent is the growth between a snapshot before and one after the task
(:func:`spent`).
"""
from __future__ import annotations

import os

_TICK_S = 1.0 / os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 0.01
Key = tuple[int, int]                # (pid, start time in clock ticks since boot)


def _stat(pid: str) -> tuple[int, Key, float] | None:
    """(parent pid, key, CPU seconds) of one process, or None when it is gone."""
    try:
        with open(f"/proc/{pid}/stat", "rb") as fh:
            raw = fh.read()
    except OSError:
        return None
    fields = raw[raw.rfind(b")") + 2:].split()      # after "pid (comm) "; comm may hold spaces
    try:
        ppid, start = int(fields[1]), int(fields[19])
        ticks = int(fields[11]) + int(fields[12]) + int(fields[13]) + int(fields[14])
    except (IndexError, ValueError):
        return None
    return ppid, (int(pid), start), ticks * _TICK_S


def _has_children() -> bool:
    """Whether this process has any child at all (one cheap system call, nothing reaped)."""
    try:
        os.waitid(os.P_ALL, 0, os.WEXITED | os.WNOHANG | os.WNOWAIT)
    except ChildProcessError:
        return False
    except (OSError, AttributeError):
        return True
    return True


def _children(pid: int) -> list[int] | None:
    """Pids of the direct children of ``pid`` (``/proc/<pid>/task/*/children``: each thread
    lists the children it made); [] when ``pid`` is gone, None when the kernel has no such
    files (built without ``CONFIG_PROC_CHILDREN``)."""
    try:
        tids = os.listdir(f"/proc/{pid}/task")
    except OSError:
        return []
    out: list[int] = []
    for tid in tids:
        try:
            with open(f"/proc/{pid}/task/{tid}/children", "rb") as fh:
                out.extend(int(c) for c in fh.read().split())
        except FileNotFoundError:
            if os.path.isdir(f"/proc/{pid}/task/{tid}"):
                return None                 # the thread is there, its children file is not
        except OSError:                     # the thread ended while being read
            pass
    return out


def _walk(root: int) -> dict[Key, float] | None:
    """:func:`snapshot` by following the children files from ``root``: a few reads per
    process of the tree instead of one per process of the machine. None when the kernel lacks
    them. A listed child whose parent is no longer the process it was listed under has been
    reparented or its pid reused: it is left out, as a scan of ``/proc`` would."""
    out: dict[Key, float] = {}
    todo = [root]
    while todo:
        parent = todo.pop()
        kids = _children(parent)
        if kids is None:
            return None
        for pid in kids:
            info = _stat(str(pid))
            if info is None or info[0] != parent or info[1] in out:
                continue
            out[info[1]] = info[2]
            todo.append(pid)
    return out


def snapshot(root: int | None = None, *, with_root: bool = False) -> dict[Key, float]:
    """CPU seconds of every living descendant of ``root`` (this process by default), and of
    ``root`` itself with ``with_root`` (a process tree measured from outside)."""
    root = os.getpid() if root is None else root
    if with_root:
        own = _stat(str(root))
        tree = {} if own is None else {own[1]: own[2]}
        return {**tree, **snapshot(root)}
    if root == os.getpid() and not _has_children():
        return {}                       # the common case costs no scan of /proc
    walked = _walk(root)
    return walked if walked is not None else _scan(root)


def _scan(root: int) -> dict[Key, float]:
    """:func:`snapshot` by reading every process of ``/proc`` (kernels without children files)."""
    try:
        names = [n for n in os.listdir("/proc") if n.isdigit()]
    except OSError:
        return {}
    children: dict[int, list[tuple[Key, float]]] = {}
    for name in names:
        info = _stat(name)
        if info is not None:
            ppid, key, cpu = info
            children.setdefault(ppid, []).append((key, cpu))
    out: dict[Key, float] = {}
    todo = [root]
    while todo:
        for key, cpu in children.get(todo.pop(), ()):
            if key not in out:
                out[key] = cpu
                todo.append(key[0])
    return out


def spent(before: dict[Key, float], after: dict[Key, float]) -> float:
    """CPU seconds the descendants spent between two snapshots.

    A process alive in both counts its growth; a new one counts in full; one that ended in
    between had its whole time added to its parent's waited-for children (this process's, read
    through ``RUSAGE_CHILDREN``, or a descendant's, counted here), so the part it had spent
    before the first snapshot is taken off again.
    """
    total = 0.0
    for key, cpu in after.items():
        total += cpu - before.get(key, 0.0)
    for key, cpu in before.items():
        if key not in after:
            total -= cpu
    return total
