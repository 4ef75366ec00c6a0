"""The BLS search of issue 7: its kernel beside astropy's BoxLeastSquares on the same grids.

Kernel rows (:func:`kernel_rows`): :func:`eas_runtime.bls.methods.bls` (``method="fast"``, the
compiled kernel) against ``astropy.timeseries.BoxLeastSquares.power(method="fast")`` on exactly
the same light curve, periods and durations, in the same run, each timed ``repeats`` times
(interleaved, so both see the same load) and reported by the median:

* two years at 10 minutes (105,120 samples), 20,000 periods of 1-20 d uniform in frequency,
  three durations (0.05, 0.1, 0.2 d), oversample 10: ns per sample x period, on 2 threads and
  on 1 (astropy's wheel runs on one thread);
* whether the best period, duration, depth and power are astropy's, and how many periods
  differ at all (a sample on a bin edge; see :mod:`eas_runtime.bls._kernel`);
* two years at 25 s (2.5 million samples), 300 periods of 1-40 d: ns per sample x period, and
  the peak memory each adds to a fresh process (``ru_maxrss`` after minus before the call);
* the first call's compile time with an empty numba cache, against a first call that loads the
  cached machine code.

``quick``: 2,000 periods, one repetition, no 2.5-million-sample rows.
"""
from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time

import numpy as np

from eas_runtime.settings import PROJECT_ROOT

DURATIONS = np.array([0.05, 0.1, 0.2])


def _light_curve(days: float, cadence_s: float, seed: int = 1):
    """White noise (300 ppm per sample) and a 1,000 ppm, 0.12 d transit every 7.3 d."""
    t = np.arange(0.0, days, cadence_s / 86400)
    rng = np.random.default_rng(seed)
    y = 1 + rng.normal(0, 3e-4, t.size)
    y[((t - 2.0) % 7.3) < 0.12] -= 1e-3
    return t, y, np.full(t.size, 3e-4)


def _astropy(t, y, dy, periods, durations):
    from astropy.timeseries import BoxLeastSquares
    return BoxLeastSquares(t, y, dy).power(periods, durations, objective="likelihood",
                                           oversample=10)


def _medians(calls: dict, repeats: int) -> tuple[dict, dict]:
    """Median seconds of each callable, run in turn ``repeats`` times; and their results."""
    times = {name: [] for name in calls}
    results = {}
    for _ in range(repeats):
        for name, call in calls.items():
            start = time.perf_counter()
            results[name] = call()
            times[name].append(time.perf_counter() - start)
    return {name: float(np.median(v)) for name, v in times.items()}, results


def _ns(seconds: float, points: int, periods: int) -> float:
    return seconds / (points * periods) * 1e9


def _agreement(ours, theirs, periods) -> tuple[str, str, str, str]:
    best, best_a = int(np.argmax(ours.power)), int(np.argmax(theirs.power))
    same = best == best_a and all(
        getattr(ours, c)[best] == np.asarray(getattr(theirs, c))[best_a]
        for c in ("power", "depth", "duration", "transit_time"))
    differ = int(np.sum(ours.power != np.asarray(theirs.power)))
    return (f"  same best box as astropy (P, duration, depth, power); periods differing "
            f"anywhere: {differ:,} of {periods.size:,}",
            f"{'yes' if same else 'NO'}: P {periods[best]:.4f} d, {ours.duration[best]:.3f} d, "
            f"{ours.depth[best] * 1e6:.0f} ppm", f"P {periods[best_a]:.4f} d", "")


def _memory_probe(kind: str, n: int, n_periods: int) -> dict:
    """Peak memory added by one search in a fresh process (``kind``: 'eas' or 'astropy')."""
    code = f"""
import json, resource, time
import numpy as np
from benchmarks.search import _light_curve, _astropy
from eas_runtime.bls import bls
t, y, dy = _light_curve(730.0, 25.0)
t, y, dy = t[:{n}], y[:{n}], dy[:{n}]
periods = 1 / np.linspace(1 / 40, 1.0, {n_periods})
durations = np.array([0.04, 0.08, 0.16])
run = (lambda p: bls(t, y, dy, p, durations)) if {kind!r} == "eas" else \\
      (lambda p: _astropy(t, y, dy, p, durations))
run(periods[:3])
before = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
start = time.perf_counter()
result = run(periods)
seconds = time.perf_counter() - start
after = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss * 1024
print(json.dumps({{"added": after - before, "peak": after, "seconds": seconds,
                  "best": float(periods[np.argmax(np.asarray(result.power))])}}))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=PROJECT_ROOT)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _compile_seconds() -> tuple[float, float]:
    """First call of the kernel in a fresh process: with an empty numba cache, and cached."""
    code = """
import time
import numpy as np
start = time.perf_counter()
from eas_runtime.bls import bls
t = np.linspace(0, 10, 500)
bls(t, np.sin(t), None, [1.0, 2.0], [0.1])
print(time.perf_counter() - start)
"""
    seconds = []
    with tempfile.TemporaryDirectory() as cache:
        for _ in range(2):                  # 1st: compiles into the empty cache, 2nd: loads it
            env = {**os.environ, "NUMBA_CACHE_DIR": cache}
            out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                                 check=True, cwd=PROJECT_ROOT, env=env)
            seconds.append(float(out.stdout.strip().splitlines()[-1]))
    return seconds[0], seconds[1]


def kernel_rows(quick: bool = False) -> list[tuple[str, str, str, str]]:
    """Rows (figure, measured, reference, ratio) of the BLS kernel against astropy."""
    from eas_runtime.bls import bls
    rows = []
    t, y, dy = _light_curve(730.0, 600.0)
    n_periods = 2_000 if quick else 20_000
    repeats = 1 if quick else 3
    periods = 1 / np.linspace(1 / 20, 1.0, n_periods)
    bls(t[:2000], y[:2000], dy[:2000], periods[:20], DURATIONS)         # warm (loads the cache)
    seconds, results = _medians({
        "2 threads": lambda: bls(t, y, dy, periods, DURATIONS, threads=2),
        "1 thread": lambda: bls(t, y, dy, periods, DURATIONS, threads=1),
        "astropy": lambda: _astropy(t, y, dy, periods, DURATIONS)}, repeats)
    ref = _ns(seconds["astropy"], t.size, n_periods)
    for name in ("2 threads", "1 thread"):
        ns = _ns(seconds[name], t.size, n_periods)
        rows.append((f"BLS kernel, {t.size:,} samples x {n_periods:,} periods x 3 durations, "
                     f"{name} [ns per sample x period]", f"{ns:.3f}",
                     f"astropy BLS fast {ref:.3f}", f"{ns / ref:.3f}"))
    rows.append(_agreement(results["2 threads"], results["astropy"], periods))
    if not quick:
        n, n_long = 2_522_880, 300
        ours, theirs = _memory_probe("eas", n, n_long), _memory_probe("astropy", n, n_long)
        rows.append((f"BLS kernel, {n:,} samples (2 yr at 25 s) x {n_long} periods, 2 threads "
                     f"[ns per sample x period]; best P {ours['best']:.3f} d "
                     f"(astropy {theirs['best']:.3f} d)",
                     f"{_ns(ours['seconds'], n, n_long):.3f}",
                     f"astropy BLS fast {_ns(theirs['seconds'], n, n_long):.3f}",
                     f"{ours['seconds'] / theirs['seconds']:.3f}"))
        rows.append((f"  peak memory added by that search [MiB] (process peak "
                     f"{ours['peak'] / 2 ** 20:.0f} MiB)", f"{ours['added'] / 2 ** 20:.0f}",
                     f"astropy {theirs['added'] / 2 ** 20:.0f}",
                     f"{ours['added'] / max(theirs['added'], 1):.2f}"))
    first, cached = _compile_seconds()
    rows.append(("BLS kernel, first call in a new process, empty numba cache (compiles) [s]",
                 f"{first:.1f}", f"cached machine code {cached:.1f}", f"{first / cached:.1f}"))
    return rows


def run(quick: bool = False) -> list[tuple[str, str, str, str]]:
    """Rows (figure, measured, reference, ratio) for the benchmark table."""
    return kernel_rows(quick)
