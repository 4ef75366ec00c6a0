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
* for context, how much faster two threads run two small loops than one in this run, one
  latency-bound, one throughput-bound as the fold is (both 2 on two free cores; the second
  about 1 when the two cores are hardware threads of one core, or shared);
* two years at 25 s (2.5 million samples), 300 periods of 1-40 d: ns per sample x period, and
  in a fresh process the peak of the memory the call allocates (tracemalloc) and the process's
  peak resident memory;
* the first call's compile time with an empty numba cache, against a first call that loads the
  cached machine code.

``quick``: 2,000 periods, one repetition, no 2.5-million-sample rows.

Search rows (:func:`search_rows`): :func:`eas_runtime.bls.search.search_lightcurve` on two years
at 25 s (2,522,880 samples; white noise of 600 ppm per sample, 50 ppm in an hour) holding one
Earth-sized planet (batman, 1 Earth radius around the Sun, P = 45.3 d, b = 0, MES 17.6), over
its default grid (Ofir, 0.60-365 d, 90,722 periods), each method (BLS kernel, FFA) in a fresh
process on 2 threads: wall and CPU time, the search's tracemalloc peak and the peak RSS (VmHWM) it
adds, the period found. Beside it, astropy's BoxLeastSquares on the same binned points, periods
and durations (timed on every 40th period and the 40 nearest the true one, extrapolated) and on
its own default grid over the unbinned samples (autoperiod with frequency factor 1, durations
0.05-0.2 d, timed on 100 periods spread over the grid, extrapolated); and the same noise without
the planet (best S/N against the 7.1 threshold). ``quick``: BLS only, fewer periods timed.
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
    return ((f"  same best box as astropy (P, duration, depth, power); periods differing "
             f"anywhere: {differ:,} of {periods.size:,}"),
            (f"{'yes' if same else 'NO'}: P {periods[best]:.4f} d, "
             f"{ours.duration[best]:.3f} d, {ours.depth[best] * 1e6:.0f} ppm"),
            f"P {periods[best_a]:.4f} d", "")


def _memory_probe(kind: str, n: int, n_periods: int) -> dict:
    """Time and memory of one search in a fresh process (``kind``: 'eas' or 'astropy'): the
    peak of the memory the call allocates (tracemalloc: numpy arrays, which hold all the work
    arrays of both), and the process's peak resident memory."""
    code = f"""
import json, resource, time, tracemalloc
import numpy as np
from benchmarks.search import _light_curve, _astropy
from eas_runtime.memory import peak_rss
from eas_runtime.bls import bls
t, y, dy = _light_curve(730.0, 25.0)
t, y, dy = t[:{n}], y[:{n}], dy[:{n}]
periods = 1 / np.linspace(1 / 40, 1.0, {n_periods})
durations = np.array([0.04, 0.08, 0.16])
run = (lambda t, y, dy, p: bls(t, y, dy, p, durations)) if {kind!r} == "eas" else \\
      (lambda t, y, dy, p: _astropy(t, y, dy, p, durations))
run(t[:5000], y[:5000], dy[:5000], periods[:3])            # loads the compiled code
tracemalloc.start()
start = time.perf_counter()
result = run(t, y, dy, periods)
seconds = time.perf_counter() - start
added = tracemalloc.get_traced_memory()[1]
tracemalloc.stop()
print(json.dumps({{"added": added, "seconds": seconds,
                  "peak": peak_rss(),
                  "best": float(periods[np.argmax(np.asarray(result.power))])}}))
"""
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         check=True, cwd=PROJECT_ROOT)
    return json.loads(out.stdout.strip().splitlines()[-1])


def _parallel_speedups(repeats: int) -> dict[str, float]:
    """How much faster two threads run two small loops than one thread, in this run: one bound
    by the latency of its additions (2 on two cores, even on two hardware threads of one core),
    one by the throughput of the execution units, as the fold is (2 on two cores, about 1 on
    two hardware threads of one core). The context of the 2-thread rows."""
    import numba

    @numba.njit(parallel=True)
    def latency_bound(n_tasks, steps, a):
        out = np.zeros(n_tasks)
        for task in numba.prange(n_tasks):
            s = 0.0
            for k in range(steps):
                s += np.sqrt(k * 1e-9 + task)
            out[task] = s
        return out

    @numba.njit(parallel=True, fastmath=True)
    def throughput_bound(n_tasks, steps, a):
        out = np.zeros(n_tasks)
        for task in numba.prange(n_tasks):
            acc = np.zeros(64)
            for _ in range(steps):
                for i in range(64):
                    acc[i] = acc[i] * 0.999999 + a[i]
            out[task] = acc.sum()
        return out

    a = np.full(64, 1e-9)
    loops = {"latency-bound": (latency_bound, 20_000_000),
             "throughput-bound": (throughput_bound, 2_000_000)}
    previous = numba.get_num_threads()
    speedups = {}
    try:
        for name, (loop, steps) in loops.items():
            loop(2, 10, a)
            times = {1: [], 2: []}
            for _ in range(repeats):
                for threads in (1, 2):
                    numba.set_num_threads(threads)
                    start = time.perf_counter()
                    loop(2, steps, a)
                    times[threads].append(time.perf_counter() - start)
            speedups[name] = float(np.median(times[1]) / np.median(times[2]))
    finally:
        numba.set_num_threads(previous)
    return speedups


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
        rows.append(((f"BLS kernel, {t.size:,} samples x {n_periods:,} periods x 3 durations, "
                      f"{name} [ns per sample x period]"), f"{ns:.3f}",
                     f"astropy BLS fast {ref:.3f}", f"{ns / ref:.3f}"))
    rows.append(_agreement(results["2 threads"], results["astropy"], periods))
    for name, speedup in _parallel_speedups(repeats + 2).items():
        rows.append((f"  context: 2-thread speed-up of a {name} loop in this run",
                     f"{speedup:.2f}", "2.00 on two free cores", f"{speedup / 2:.2f}"))
    if not quick:
        n, n_long = 2_522_880, 300
        ours, theirs = _memory_probe("eas", n, n_long), _memory_probe("astropy", n, n_long)
        rows.append(((f"BLS kernel, {n:,} samples (2 yr at 25 s) x {n_long} periods, "
                      f"2 threads [ns per sample x period]; best P {ours['best']:.3f} d "
                      f"(astropy {theirs['best']:.3f} d)"),
                     f"{_ns(ours['seconds'], n, n_long):.3f}",
                     f"astropy BLS fast {_ns(theirs['seconds'], n, n_long):.3f}",
                     f"{ours['seconds'] / theirs['seconds']:.3f}"))
        rows.append(((f"  peak memory the call allocates [MiB] (input "
                      f"{3 * n * 8 / 2 ** 20:.0f} MiB; process peak "
                      f"{ours['peak'] / 2 ** 20:.0f} MiB, astropy's "
                      f"{theirs['peak'] / 2 ** 20:.0f} MiB)"), f"{ours['added'] / 2 ** 20:.0f}",
                     f"astropy {theirs['added'] / 2 ** 20:.0f}",
                     f"{ours['added'] / theirs['added']:.2f}"))
    first, cached = _compile_seconds()
    rows.append(("BLS kernel, first call in a new process, empty numba cache (compiles) [s]",
                 f"{first:.1f}", f"cached machine code {cached:.1f}", f"{first / cached:.1f}"))
    return rows


# ---------------------------------------------------------------- the full search (goals 2, 4)
#: The PLATO case: 2 years at 25 s, white noise of 600 ppm per sample (50 ppm in an hour), an
#: Earth (1 Earth radius, batman, limb darkening 0.1/0.3) around the Sun at 45.3 d, b = 0.
PLATO = {"duration": 730.0, "sampling_cadence": 25.0, "orbital_period": 45.3,
         "semi_major_axis": (45.3 / 365.25) ** (2 / 3), "planet_radius": 6371.0 / 71492.0,
         "noise": 600e-6, "t0": 7.1}


def _plato(path, transit: bool = True) -> dict:
    """Write the PLATO light curve (t, y, dy) to ``path`` (.npz); its MES and size."""
    from functions.synthesis_batman.science import synthesize
    specs = PLATO if transit else {**PLATO, "planet_radius": 0.0}
    lc = synthesize(specs, seed=3)
    np.savez(path, t=lc.time, y=lc.flux, dy=lc.flux_err)
    return {"mes": float(lc.meta["mes"]), "n": int(lc.time.size)}


def _search_probe(path: str, method: str) -> None:
    """In a fresh process: search the light curve of ``path``; print wall and CPU seconds,
    the tracemalloc peak of the search, the peak resident memory (``VmHWM``) it adds and the
    process peak."""
    import tracemalloc

    from eas_runtime.bls.search import search_lightcurve
    from eas_runtime.memory import peak_rss
    data = np.load(path)
    t, y, dy = data["t"], data["y"], data["dy"]
    search_lightcurve(t[:20000], y[:20000], dy[:20000], method=method,
                      period_max=2.0)                       # loads the compiled code
    before = peak_rss()
    tracemalloc.start()
    cpu, start = time.process_time(), time.perf_counter()
    result = search_lightcurve(t, y, dy, method=method, threads=2)
    seconds, cpu = time.perf_counter() - start, time.process_time() - cpu
    traced = tracemalloc.get_traced_memory()[1]
    tracemalloc.stop()
    after = peak_rss()
    print(json.dumps({"seconds": seconds, "cpu": cpu, "traced": traced, "added": after - before,
                      "peak": after, **result.to_dict()}))


def _probe(path: str, method: str) -> dict:
    code = ("import sys; from benchmarks.search import _search_probe; "
            "_search_probe(sys.argv[1], sys.argv[2])")
    out = subprocess.run([sys.executable, "-c", code, path, method], capture_output=True,
                         text=True, cwd=PROJECT_ROOT, check=False)
    if out.returncode:
        raise RuntimeError(f"the {method} search probe failed:\n{out.stderr[-3000:]}")
    return json.loads(out.stdout.strip().splitlines()[-1])


def _astropy_same_grid(path: str, stride: int, true_period: float) -> dict:
    """astropy BLS on the blocks of the search (the same binned data, periods and durations,
    oversample 5), timed on every ``stride``-th period plus the 40 nearest the true period,
    extrapolated to the whole grid; its best period among those it ran."""
    from astropy.timeseries import BoxLeastSquares

    from eas_runtime.bls import grid
    from eas_runtime.bls.prebin import prebin, rebin
    from eas_runtime.bls.search import BLOCK_RATIO, OVERSAMPLE, PREBIN_FRACTION, _blocks
    data = np.load(path)
    t, y, dy = data["t"], data["y"], data["dy"]
    periods = grid.ofir_periods(float(t[-1] - t[0]))
    shortest, longest = grid.duration_limits(periods)
    finest = prebin(t, y, dy, PREBIN_FRACTION * shortest[0])
    near = set(np.argsort(np.abs(periods - true_period))[:40].tolist())
    seconds, timed, best = 0.0, 0, (-np.inf, np.nan)
    for block in _blocks(periods, BLOCK_RATIO):
        durations = grid.duration_grid(shortest[block.start], longest[block].max())
        binned = rebin(finest, max(PREBIN_FRACTION * durations[0], finest.width))
        index = np.arange(block.start, block.stop)
        subset = np.array(sorted(set(index[::stride].tolist()) | (near & set(index.tolist()))))
        model = BoxLeastSquares(binned.t, binned.y, binned.dy)
        start = time.perf_counter()
        power = model.power(periods[subset], durations, objective="likelihood",
                            oversample=OVERSAMPLE)
        elapsed = time.perf_counter() - start
        seconds += elapsed * index.size / subset.size
        timed += subset.size
        k = int(np.argmax(power.power))
        if power.power[k] > best[0]:
            best = (float(power.power[k]), float(periods[subset][k]))
    return {"seconds": seconds, "timed": timed, "n_periods": periods.size, "best": best[1]}


def _astropy_default_grid(path: str, n_timed: int) -> dict:
    """astropy BLS on its default autoperiod grid (frequency factor 1, 0.60 d to half the
    baseline, the project's reference durations 0.05-0.2 d) over the unbinned samples: seconds
    for ``n_timed`` periods spread over the grid, extrapolated."""
    from astropy.timeseries import BoxLeastSquares

    from eas_runtime.bls import grid
    data = np.load(path)
    t, y, dy = data["t"], data["y"], data["dy"]
    durations = np.linspace(0.05, 0.2, 10)
    model = BoxLeastSquares(t, y, dy)
    periods = model.autoperiod(durations, minimum_period=grid.roche_period(),
                               maximum_period=float(t[-1] - t[0]) / 2)
    subset = periods[np.linspace(0, periods.size - 1, n_timed).astype(int)]
    start = time.perf_counter()
    model.power(subset, durations, objective="likelihood", oversample=10)
    seconds = (time.perf_counter() - start) * periods.size / n_timed
    return {"seconds": seconds, "n_periods": periods.size, "timed": n_timed}


def _mib(value: float) -> str:
    return f"{value / 2 ** 20:.0f}"


def search_rows(quick: bool = False) -> list[tuple[str, str, str, str]]:
    """Rows of the full search of a PLATO-length light curve (see :data:`PLATO`): wall time of
    each method beside astropy on the same binned data and grid and on its default grid, peak
    memory, recovered period; and a noise-only light curve. ``quick``: BLS kernel only, astropy
    timed on fewer periods, no noise-only run."""
    rows = []
    with tempfile.TemporaryDirectory() as folder:
        path = os.path.join(folder, "plato.npz")
        info = _plato(path)
        truth = PLATO["orbital_period"]
        methods = ("bls",) if quick else ("bls", "ffa")
        runs = {method: _probe(path, method) for method in methods}
        same = _astropy_same_grid(path, 200 if quick else 40, truth)
        default = _astropy_default_grid(path, 10 if quick else 100)
        first = runs["bls"]
        head = (f"full search, 2 yr at 25 s ({info['n']:,} samples, white noise 50 ppm/h), Earth "
                f"at {truth} d around the Sun (MES {info['mes']:.1f}); Ofir grid "
                f"{first['n_periods']:,} periods 0.60-365 d, {first['n_blocks']} blocks, "
                f"binned to {first['n_points']:,} points at the shortest periods")
        rows.append((head, "", "", ""))
        for method, r in runs.items():
            recovered = abs(r["period"] / truth - 1) < 0.01 and r["snr"] >= 7.1
            rows.append((f"  {method.upper()}, 2 threads [s] (CPU s); found P {r['period']:.4f} d,"
                         f" S/N {r['snr']:.1f}, {'recovered' if recovered else 'NOT recovered'}",
                         f"{r['seconds']:.1f} ({r['cpu']:.0f})",
                         f"astropy, same bins and grid, {same['seconds']:.0f}",
                         f"{r['seconds'] / same['seconds']:.3f}"))
            rows.append((f"  {method.upper()}: peak memory [MiB]: the search's tracemalloc peak / "
                         f"the whole process's peak RSS (the search raised it by "
                         f"{_mib(r['added'])})", f"{_mib(r['traced'])} / {_mib(r['peak'])}",
                         "limit 1024", f"{max(r['traced'], r['peak']) / 2 ** 30:.3f}"))
        rows.append((f"  astropy on the same bins and grid: timed on {same['timed']:,} of "
                     f"{same['n_periods']:,} periods, extrapolated [s]; best P of those "
                     f"{same['best']:.4f} d", f"{same['seconds']:.0f}", "", ""))
        fastest = min(r["seconds"] for r in runs.values())
        rows.append((f"  astropy on its default autoperiod grid ({default['n_periods']:,} periods, "
                     f"durations 0.05-0.2 d), unbinned, extrapolated from {default['timed']} "
                     f"periods [s]",
                     f"{default['seconds']:,.0f}", f"fast search {fastest:.1f}",
                     f"{fastest / default['seconds']:.2g}"))
        if not quick:
            _plato(path, transit=False)
            noise = _probe(path, "ffa")
            rows.append(("  noise only (same noise, no planet), FFA: best S/N (threshold 7.1) "
                         f"at P {noise['period']:.3f} d", f"{noise['snr']:.2f}",
                         "7.1", f"{noise['snr'] / 7.1:.2f}"))
    return rows


def run(quick: bool = False) -> list[tuple[str, str, str, str]]:
    """Rows (figure, measured, reference, ratio) for the benchmark table."""
    return kernel_rows(quick) + search_rows(quick)
