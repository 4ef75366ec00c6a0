"""Pipeline QC: checks on each output file and on each task's result metadata.

A product version that fails its checks is kept and shown, but it does not count as an input
for later tasks (PARITY.md section 4: a task waits for QC-passed versions of its inputs).
"""
from __future__ import annotations

import math
from pathlib import Path
from typing import Any, Callable, Mapping

#: Result fields every transit search must report.
SEARCH_FIELDS = ("period", "power")
_result_checks: dict[str, Callable[[Mapping[str, Any]], list[str]]] = {}
_output_checks: dict[str, Callable[[Path], list[str]]] = {}


def output_check(semantic_type: str):
    def register(fn: Callable[[Path], list[str]]):
        _output_checks[semantic_type] = fn
        return fn
    return register


def result_check(prefix: str):
    def register(fn: Callable[[Mapping[str, Any]], list[str]]):
        _result_checks[prefix] = fn
        return fn
    return register


def check_output(semantic_type: str, path: Path) -> list[str]:
    """Problems found in one output file (empty list: passed)."""
    if not path.is_file():
        return [f"output {semantic_type!r} was not written"]
    if path.stat().st_size == 0:
        return [f"output {semantic_type!r} is empty"]
    check = _output_checks.get(semantic_type)
    return check(path) if check else []


def check_result(task_type: str, metadata: Mapping[str, Any]) -> list[str]:
    """Problems found in a task's result metadata."""
    problems = []
    for prefix, check in _result_checks.items():
        if task_type.startswith(prefix):
            problems.extend(check(metadata))
    return problems


@output_check("lightcurve")
def _lightcurve(path: Path) -> list[str]:
    import numpy as np

    from eas_runtime.lightcurve import FormatError, read_lightcurve
    try:
        lc = read_lightcurve(path)
    except FormatError as exc:
        return [f"light curve unreadable: {exc}"]
    problems = []
    if len(lc.time) == 0:
        problems.append("light curve has no samples")
        return problems
    if not np.all(np.isfinite(lc.time)):
        problems.append("light curve has non-finite times")
    elif np.any(np.diff(lc.time) <= 0):
        problems.append("light curve times are not strictly increasing")
    good = np.isfinite(lc.flux)
    if not good.any():
        problems.append("light curve has no finite flux")
    else:
        median = float(np.median(lc.flux[good]))
        # Pipeline light curves are normalised to about 1; a median far from it means a unit
        # or normalisation error upstream.
        if not 0.5 < median < 1.5:
            problems.append(f"median flux {median:.4g} outside the plausible range 0.5-1.5 (normalised)")
    return problems


@result_check("transit_search_")
def _search(metadata: Mapping[str, Any]) -> list[str]:
    problems = []
    if isinstance(metadata.get("no_signal"), str) and metadata["no_signal"] and metadata.get("period") is None:
        # a search that says why it found nothing (TLS fitting no transit at any period) has no
        # best period to report: a result, not a defect
        return [] if metadata.get("power") is not None else ["search result lacks 'power'"]
    for name in SEARCH_FIELDS:
        value = metadata.get(name)
        if value is None:
            problems.append(f"search result lacks {name!r}")
        elif isinstance(value, float) and not math.isfinite(value):
            problems.append(f"search result {name!r} is not finite")
    period = metadata.get("period")
    if isinstance(period, (int, float)) and period <= 0:
        problems.append(f"search result period {period!r} is not positive")
    return problems


@output_check("candidates")
def _candidates(path: Path) -> list[str]:
    """A candidates table (planet_search, vetting) must read back as one."""
    from eas_runtime.planets.table import read_rows
    from eas_runtime.task_api import InputError
    try:
        read_rows(path)
    except InputError as exc:
        return [str(exc)]
    return []
