"""The multi-planet search and vetting (issue 13) beside one search, on the same light curve
in the same run, per star:

* a TESS-like star (one sector, 27.4 d at 2 min: 19,728 samples) and a PLATO star (two years at
  25 s: 2,522,880 samples; ``quick``: 90 days), each with two planets (1,000 and 650 ppm at
  3.7 and 11.3 d) and one lone transit (2,500 ppm), white noise (600 ppm per 2 min, scaled to
  the cadence);
* the reference: one BLS search of the light curve as ``transit_search_bls_reference`` runs it
  with ``method = "fast"`` (the same kernel and period grid, one round, no single events);
* ``planet_search`` (single events, then rounds until the S/N falls below 7.1, each peak
  refined) and ``vetting`` of its candidates, as the functions run them (science only);
  wall and CPU seconds (both cores), the median of ``repeats`` interleaved runs.
"""
from __future__ import annotations

import numpy as np

from benchmarks.detrend import _timed


def _star(days: float, cadence_s: float, seed: int = 3):
    from eas_runtime.lightcurve import LightCurve
    rng = np.random.default_rng(seed)
    t = np.arange(0.0, days, cadence_s / 86400)
    f = np.ones(t.size)
    for period, t0, depth, width in ((3.7, 1.1, 1e-3, 0.12), (11.3, 4.0, 6.5e-4, 0.2)):
        f[np.abs((t - t0 + 0.5 * period) % period - 0.5 * period) < 0.5 * width] -= depth
    f[np.abs(t - 0.55 * days) < 0.15] -= 2.5e-3
    sigma = 6e-4 * np.sqrt(120.0 / cadence_s)
    f += rng.normal(0, sigma, t.size)
    return LightCurve(t, f, np.full(t.size, sigma), meta={"star_id": "benchmark"})


def run(quick: bool = False) -> list[tuple[str, str, str, str]]:
    """Rows (figure, measured, reference, ratio) for the benchmark table."""
    from functions.planet_search.science import search as planet_search
    from functions.transit_search_bls_reference.science import search as one_search
    from functions.vetting.science import vet_candidates

    stars = [("TESS-like star (27.4 d, 2 min)", 27.4, 120.0, 3),
             ("PLATO star (90 d, 25 s)" if quick else "PLATO star (2 yr, 25 s)",
              90.0 if quick else 730.0, 25.0, 1 if quick else 2)]
    rows = []
    one_search(_star(10.0, 600.0), search_settings={"method": "fast"}, cpus=2)   # warm numba
    for label, days, cadence, repeats in stars:
        lc = _star(days, cadence)
        single = {}
        multi = {}

        def reference():
            return one_search(lc, search_settings={"method": "fast", "period_min": 0.5},
                              cpus=2)

        def planets():
            found, meta = planet_search(lc, cpus=2, search_settings={"period_min": 0.5})
            return found, meta

        for _ in range(repeats):            # interleaved: the machine's load hits both
            w, c, _ = _timed(reference, 1)
            single.setdefault("wall", []).append(w)
            single.setdefault("cpu", []).append(c)
            w, c, (found, meta) = _timed(planets, 1)
            multi.setdefault("wall", []).append(w)
            multi.setdefault("cpu", []).append(c)
        rows_in = [c.to_dict() for c in found.candidates]
        vw, vc, (vetted, vmeta) = _timed(lambda: vet_candidates(lc, rows_in), repeats)
        sw, sc = float(np.median(single["wall"])), float(np.median(single["cpu"]))
        mw, mc = float(np.median(multi["wall"])), float(np.median(multi["cpu"]))
        what = (f"{meta['n_periodic']} periodic + {meta['n_single']} single, "
                f"{meta['rounds']} BLS rounds")
        rows += [
            (f"planets: {label}, one BLS search wall / CPU", f"{sw:.2f} s / {sc:.2f} s", "-", "-"),
            (f"planets: {label}, planet_search wall ({what})", f"{mw:.2f} s",
             f"{sw:.2f} s (one search)", f"{mw / sw:.2f}x"),
            (f"planets: {label}, planet_search CPU", f"{mc:.2f} s", f"{sc:.2f} s (one search)",
             f"{mc / sc:.2f}x"),
            (f"planets: {label}, vetting wall ({vmeta['n_planet_candidates']} PC, "
             f"{vmeta['n_false_positives']} FP)", f"{vw:.2f} s", f"{sw:.2f} s (one search)",
             f"{vw / sw:.2f}x"),
            (f"planets: {label}, search + vetting wall", f"{mw + vw:.2f} s",
             f"{sw:.2f} s (one search)", f"{(mw + vw) / sw:.2f}x"),
        ]
    return rows
