"""The memory this process may use, and how much of it one input file may take once decompressed.

A function declares its memory in ``func.yaml`` (``resources.limits.memory``). The process learns
it from, smallest first:

- ``EAS_MEMORY_LIMIT_BYTES``: set by the embedded runtime for every replica to its Service's
  ``limits.memory`` (:mod:`eas_runtime.serving.process`);
- the soft ``RLIMIT_DATA`` and ``RLIMIT_AS`` of the process (the embedded runtime sets
  ``RLIMIT_DATA`` on each replica);
- the cgroup limit: ``memory.max`` (cgroup v2) or ``memory.limit_in_bytes`` (v1). In a cluster
  this is the container's ``limits.memory``, so the generated Knative Services need no variable:
  the Downward API (``resourceFieldRef``) would say the same, and Knative refuses it unless
  the ``kubernetes.podspec-fieldref`` feature flag is enabled;

and :data:`DEFAULT_LIMIT_BYTES` when none is set (a science module used as a library on a
workstation). The variable is platform-provided, like ``K_SERVICE``, not a setting of
:class:`~eas_runtime.settings.Settings`; this module is the only reader and reads it once.

Readers of uploaded files allow one input at most :attr:`MemoryLimit.input_bytes`
(1/:data:`INPUT_FRACTION` of the limit) once decompressed: reading it makes copies (bytes, text,
columns, the light curve), and a compressed file must be refused before it can take the rest.
"""
from __future__ import annotations

import functools
import os
import resource
from dataclasses import dataclass
from pathlib import Path
from typing import Callable, Mapping

ENV_VAR = "EAS_MEMORY_LIMIT_BYTES"
#: The limit when nothing else sets one: the memory most function descriptors declare.
DEFAULT_LIMIT_BYTES = 2 * 1024 ** 3
#: One decompressed input may take at most this fraction (1/n) of the memory limit. A 2-year
#: PLATO light curve at 25 s (2.5 million rows, TIME/FLUX/FLUX_ERR/FLAG = 25 bytes a row) is a
#: 63 MB FITS table: far below a quarter of the smallest limit of a reading function (2 GiB).
INPUT_FRACTION = 4
#: cgroup and rlimit values at or above this mean "no limit" (v1 reports 2**63 rounded to pages).
_UNLIMITED = 2 ** 60
_CGROUP_FILES = ("memory.max", "memory/memory.limit_in_bytes")


@dataclass(frozen=True)
class MemoryLimit:
    """A memory limit in bytes and where it comes from (for messages)."""

    bytes: int
    source: str

    @property
    def input_bytes(self) -> int:
        """The most one input file may take once decompressed."""
        return self.bytes // INPUT_FRACTION


def format_bytes(n: int) -> str:
    """``n`` bytes in binary units, e.g. ``'512 MiB'``, ``'388 KiB'``, ``'7 bytes'``."""
    value = float(n)
    for unit in ("bytes", "KiB", "MiB", "GiB", "TiB"):
        if value < 1024 or unit == "TiB":
            return f"{int(value)} bytes" if unit == "bytes" else f"{value:.4g} {unit}"
        value /= 1024
    raise AssertionError("unreachable")


def _cgroup_limit(root: Path) -> int | None:
    for name in _CGROUP_FILES:
        try:
            text = (root / name).read_text().strip()
        except OSError:
            continue
        if text.isdigit() and int(text) < _UNLIMITED:
            return int(text)
    return None


def read_memory_limit(environ: Mapping[str, str], *, cgroup_root: Path = Path("/sys/fs/cgroup"),
                      getrlimit: Callable[[int], tuple[int, int]] = resource.getrlimit) -> MemoryLimit:
    """The smallest of the limits listed in the module docstring; raises ValueError for an
    ``EAS_MEMORY_LIMIT_BYTES`` that is not a positive number of bytes."""
    found: list[MemoryLimit] = []
    raw = environ.get(ENV_VAR, "").strip()
    if raw:
        if not raw.isdigit() or int(raw) <= 0:
            raise ValueError(f"{ENV_VAR}={raw!r} is not a positive number of bytes")
        found.append(MemoryLimit(int(raw), ENV_VAR))
    for name in ("RLIMIT_DATA", "RLIMIT_AS"):
        soft, _hard = getrlimit(getattr(resource, name))
        if soft != resource.RLIM_INFINITY and 0 < soft < _UNLIMITED:
            found.append(MemoryLimit(int(soft), name))
    cgroup = _cgroup_limit(cgroup_root)
    if cgroup is not None:
        found.append(MemoryLimit(cgroup, "cgroup memory limit"))
    if not found:
        return MemoryLimit(DEFAULT_LIMIT_BYTES, "default, no limit set")
    return min(found, key=lambda limit: limit.bytes)


@functools.lru_cache(maxsize=1)
def memory_limit() -> MemoryLimit:
    """This process's limit, read once (``memory_limit.cache_clear()`` to read it again)."""
    return read_memory_limit(os.environ)


def peak_rss(pid: int | None = None) -> int:
    """Peak resident memory [bytes] of this process (or of ``pid``) since it started its
    program: ``VmHWM`` of ``/proc/<pid>/status``. Unlike ``ru_maxrss``, which Linux carries
    across ``execve`` (a program started from a 1 GiB parent begins with a 1 GiB
    ``ru_maxrss``), it counts only this program's own pages. OSError when the process is gone."""
    path = f"/proc/{'self' if pid is None else int(pid)}/status"
    with open(path) as status:
        for line in status:
            if line.startswith("VmHWM:"):
                return int(line.split()[1]) * 1024
    raise OSError(f"{path} has no VmHWM line")
