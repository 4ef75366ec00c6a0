"""The plot cache: rendered previews on disk, one file per (version, content, kind[, search]).

A name is ``<version id>-<etag>-<kind>`` (``-a<attempt id>`` added for a fold, which depends
on the search); the artefacts are ``<name>.png`` and ``<name>.json``. A product version's
content never changes, so an artefact, once written, is served as it is. A file that cannot
be plotted leaves ``<name>.err`` holding the message, so that it is not read again and the
file page can show the message instead of an image. Files are written under a temporary
name and renamed (atomic on POSIX): a reader never sees half a PNG.
"""
from __future__ import annotations

import os
import re
import tempfile
import threading
from collections.abc import Callable
from pathlib import Path

from eas_runtime.site.plots import PlotError

LOCK_STRIPES = 32


class PlotCache:
    def __init__(self, root: Path):
        self.root = Path(root)
        self._locks = [threading.Lock() for _ in range(LOCK_STRIPES)]

    @staticmethod
    def name(version_id: int, etag: str, kind: str, attempt_id: int | None = None) -> str:
        safe = re.sub(r"[^0-9A-Za-z-]", "", etag)[:64] or "none"
        return f"{version_id}-{safe}-{kind}" + (f"-a{attempt_id}" if attempt_id else "")

    def error(self, name: str) -> str | None:
        """The message cached for a plot that could not be made, or None."""
        try:
            return (self.root / f"{name}.err").read_text()
        except FileNotFoundError:
            return None

    def get(self, name: str, suffix: str, build: Callable[[], bytes]) -> Path:
        """The path of artefact ``name + suffix``, built by ``build`` unless cached.

        Raises the cached :class:`PlotError` for a file known to be unplottable; a new
        PlotError from ``build`` is cached before it is raised (other errors are not: a store
        that is down now may be up on the next request)."""
        path = self.root / f"{name}{suffix}"
        with self._lock(name + suffix):
            cached_error = self.error(name)
            if cached_error is not None:
                raise PlotError(cached_error)
            if path.is_file():
                return path
            try:
                content = build()
            except PlotError as exc:
                self._write(self.root / f"{name}.err", str(exc).encode())
                raise
            self._write(path, content)
        return path

    def _lock(self, key: str) -> threading.Lock:
        """The lock of an artefact (striped): concurrent requests for one plot render it once."""
        return self._locks[hash(key) % LOCK_STRIPES]

    def _write(self, path: Path, content: bytes) -> None:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd, tmp = tempfile.mkstemp(prefix=".tmp-", dir=path.parent)
        try:
            with os.fdopen(fd, "wb") as fh:
                fh.write(content)
            os.replace(tmp, path)
        except BaseException:
            Path(tmp).unlink(missing_ok=True)
            raise
