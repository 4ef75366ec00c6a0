"""Imported by a replica's forkserver before the first task (``forkserver_preload`` in
main.py): transitleastsquares and its compiled kernels (loaded from numba's cache, which the
image holds), so that the pool workers TLS forks from it start with them instead of each
importing and loading them during the first search."""
import warnings

from transitleastsquares.warmup import ensure_compiled

with warnings.catch_warnings():     # the tiny search's grid falls back to a solar star
    warnings.simplefilter("ignore")
    ensure_compiled(None, verbose=False)
