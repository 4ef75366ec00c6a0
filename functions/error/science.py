"""The ``error`` task: always fails, so that failure handling can be tested end to end."""
from __future__ import annotations

from typing import NoReturn

MESSAGE = "the 'error' task always fails: this failure is deliberate (a test of error handling)"


def error(message: str | None = None) -> NoReturn:
    """Raise :class:`RuntimeError` with ``message`` (a fixed explanation by default)."""
    raise RuntimeError(message or MESSAGE)
