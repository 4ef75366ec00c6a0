"""The ``null`` task: wait for a while and do nothing else (a test of the machinery)."""
from __future__ import annotations

import time
from dataclasses import asdict, dataclass


@dataclass(frozen=True)
class NullResult:
    """How long the task slept [s]."""

    slept_s: float

    def to_dict(self) -> dict:
        return asdict(self)


def null(duration_s: float = 0) -> NullResult:
    """Sleep ``duration_s`` seconds (0 by default) and report the time actually slept."""
    duration_s = float(duration_s)
    if not duration_s >= 0:
        raise ValueError(f"duration_s must be a number of seconds >= 0, got {duration_s!r}")
    start = time.monotonic()
    if duration_s:
        time.sleep(duration_s)
    return NullResult(slept_s=time.monotonic() - start)
