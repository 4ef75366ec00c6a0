"""Run time of each transit search, side by side with astropy's BLS on the same period grid.

Two light curves (white noise, 300 ppm per sample, and a 1,000 ppm transit every 7.3 d):
two years at a 10-minute cadence (105,120 samples) and 90 days at 2 minutes (64,800
samples). Each search runs as its function runs it (``search()`` of its science module, the
input already read) over periods of 1-20 d (QATS: from its default 4 d); the reference is
``astropy.timeseries.BoxLeastSquares.power`` (ten durations 0.05-0.2 d, the prototype's
``transit_search_bls_reference`` settings) on exactly the periods the search tried, so the
ratio compares the cost of the algorithms at equal grids:

* ``transit_search_bls_reference`` and ``transit_search_bls_kovacs``: a frequency step giving
  ``n`` periods (20,000; 2,000 with ``quick``); the Kovacs code with the prototype's settings
  (10 bins, qmi 0.05, qma 0.2), its vectorised numpy kernel;
* ``transit_search_tls``: TLS's own grid (oversampling factor 3; 1 with ``quick``), 2 threads;
* ``transit_search_qats``: its spans (max_ttv_mag 0.0005; 0.005 with ``quick``).

Without ``quick`` a last pair of rows times the prototype's full grid on its demo light curve
(``demo_superearth``: 240 d at 900 s, 1.15 million periods from 0.5 d): astropy BLS
(``transit_search_bls_reference``) against the Kovacs code.
"""
from __future__ import annotations

import time

import numpy as np

from eas_runtime.lightcurve import LightCurve, read_lightcurve, read_metadata_cfg
from eas_runtime.settings import PROJECT_ROOT

CASES = {"2 yr @ 10 min": (730.0, 600.0), "90 d @ 2 min": (90.0, 120.0)}
DURATIONS = np.linspace(0.05, 0.2, 10)
DEMO = PROJECT_ROOT.parent / "shared" / "prototype" / "data" / "demo_superearth.gz"


def light_curve(days: float, cadence_s: float, seed: int = 1) -> LightCurve:
    time_d = np.arange(0.0, days, cadence_s / 86400)
    rng = np.random.default_rng(seed)
    flux = 1 + rng.normal(0, 3e-4, time_d.size)
    phase = (time_d - 2.0) % 7.3
    flux[phase < 0.12] -= 1e-3
    return LightCurve(time_d, flux, meta={"orbital_period": 7.3})


def astropy_bls_s(lc: LightCurve, periods: np.ndarray) -> float:
    """Seconds astropy's BLS takes over ``periods`` (the reference)."""
    from astropy.timeseries import BoxLeastSquares
    flux = lc.flux / np.median(lc.flux)
    sigma = 1.4826 * np.median(np.abs(flux - np.median(flux)))
    model = BoxLeastSquares(lc.time, flux, np.full(flux.size, sigma))
    start = time.perf_counter()
    model.power(np.sort(periods), DURATIONS, objective="likelihood", oversample=10)
    return time.perf_counter() - start


def _timed(fn):
    start = time.perf_counter()
    value = fn()
    return time.perf_counter() - start, value


def _factor(n_periods: int, baseline: float, q: float) -> float:
    """frequency_factor that gives ``n_periods`` periods from 1 to 20 d (step factor q / T^2)."""
    return (1.0 - 1 / 20) / n_periods * baseline ** 2 / q


def searches(lc: LightCurve, quick: bool):
    """(task type, callable returning a SearchResult) for each search."""
    from functions.transit_search_bls_kovacs.science import search as kovacs
    from functions.transit_search_bls_reference.science import search as bls
    from functions.transit_search_qats.science import search as qats
    from functions.transit_search_tls.science import search as tls

    n = 2_000 if quick else 20_000
    baseline = lc.duration
    window = {"period_min": 1.0, "period_max": 20.0}
    return [
        ("transit_search_bls_reference", lambda: bls(lc, search_settings={
            **window, "frequency_factor": _factor(n, baseline, 0.05)})),
        ("transit_search_bls_kovacs", lambda: kovacs(lc, search_settings={
            **window, "frequency_factor": _factor(n, baseline, 0.05)})),
        ("transit_search_tls", lambda: tls(lc, search_settings={
            **window, "oversampling_factor": 1 if quick else 3}, cpus=2)),
        ("transit_search_qats", lambda: qats(lc, search_settings={
            "period_max": 20.0, "max_ttv_mag": 0.005 if quick else 0.0005}, cpus=1).result),
    ]


def _row(label: str, seconds: float, reference_s: float, periods: int, found: float):
    return (f"{label}: {periods:,} periods, best P {found:.3f} d [s]", f"{seconds:.1f}",
            f"astropy BLS {reference_s:.1f}", f"{seconds / reference_s:.2f}")


def run(quick: bool = False) -> list[tuple[str, str, str, str]]:
    """Rows (figure, measured, reference, ratio) for the benchmark table."""
    rows = []
    for name, (days, cadence) in CASES.items():
        lc = light_curve(days, cadence)
        for task_type, fn in searches(lc, quick):
            seconds, result = _timed(fn)
            periods = np.asarray(result.periodogram["period"])
            reference = astropy_bls_s(lc, periods)
            rows.append(_row(f"{name} ({len(lc):,} samples), {task_type}", seconds, reference,
                             periods.size, result.period))
    if not quick and DEMO.exists():
        from functions.transit_search_bls_kovacs.science import search as kovacs
        from functions.transit_search_bls_reference.science import search as bls
        demo = read_lightcurve(DEMO, metadata=read_metadata_cfg(f"{DEMO}.metadata.cfg"))
        ref_s, ref = _timed(lambda: bls(demo, lc_duration=240))
        kov_s, kov = _timed(lambda: kovacs(demo, lc_duration=240))
        rows.append((f"demo_superearth, prototype grid ({ref.periodogram['period'].size:,} "
                     f"periods): transit_search_bls_kovacs [s]", f"{kov_s:.1f}",
                     f"transit_search_bls_reference {ref_s:.1f}", f"{kov_s / ref_s:.2f}"))
    return rows
