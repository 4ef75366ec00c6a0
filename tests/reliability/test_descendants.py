"""The wrapper's accounting of helper processes (``eas_runtime.wrapper._descendants``): the
children-file walk finds the same tree as a scan of all of ``/proc``, the scan stands in where
the kernel has no children files, and CPU spent by a grandchild is counted."""
from __future__ import annotations

import os
import subprocess
import sys
import time

import pytest

from eas_runtime.wrapper import _descendants

pytestmark = pytest.mark.skipif(not os.path.isdir("/proc/self/task"), reason="Linux /proc only")

# a child that starts a grandchild which burns CPU until the child's stdin closes
_TREE = r"""
import subprocess, sys
g = subprocess.Popen([sys.executable, "-c", "import sys, time\nt = time.process_time()\nwhile time.process_time() - t < 1.2: pass\nsys.stdin.read()"], stdin=subprocess.PIPE)
print(g.pid, flush=True)
sys.stdin.read()
g.stdin.close(); g.wait()
"""


@pytest.fixture
def tree():
    child = subprocess.Popen([sys.executable, "-c", _TREE], stdin=subprocess.PIPE, stdout=subprocess.PIPE, text=True)
    grandchild = int(child.stdout.readline())
    yield child, grandchild
    child.stdin.close()
    child.wait(timeout=30)


def test_the_walk_finds_the_tree_a_scan_finds(tree):
    child, grandchild = tree
    walked = _descendants._walk(os.getpid())
    if walked is None:
        pytest.skip("this kernel has no /proc/<pid>/task/<tid>/children files")
    pids = {pid for pid, _start in walked}
    assert {child.pid, grandchild} <= pids
    assert pids == {pid for pid, _start in _descendants._scan(os.getpid())}
    assert _descendants._children(child.pid) == [grandchild]
    assert _descendants._children(2 ** 22 + 7) == []          # no such process: no children


def test_without_children_files_the_scan_is_used(tree, monkeypatch):
    child, grandchild = tree
    monkeypatch.setattr(_descendants, "_children", lambda pid: None)
    assert {child.pid, grandchild} <= {pid for pid, _start in _descendants.snapshot()}


def test_a_grandchilds_cpu_is_counted(tree):
    before = _descendants.snapshot()
    deadline = time.monotonic() + 30
    spent = 0.0
    while time.monotonic() < deadline and spent < 0.5:
        time.sleep(0.1)
        spent = _descendants.spent(before, _descendants.snapshot())
    assert spent >= 0.5, f"the grandchild's CPU was not seen: {spent:.2f} s"
