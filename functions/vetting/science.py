"""The ``vetting`` task: a verdict, planet candidate or false positive, for each candidate.

Inputs: the ``lightcurve`` that was searched (detrended) and its ``candidates`` table (from
``planet_search``). :mod:`eas_runtime.planets.vetting` documents each test, its threshold and
its source (the Kepler pipeline's data validation and Robovetter).

With ``tls`` (default true) each periodic candidate is also fitted by Transit Least Squares
(Hippke & Heller 2019; the ``transitleastsquares`` package, binned as the ``transit_search_tls``
function bins) over periods within 1 % of its own, the other candidates' transits masked: the
``tls_period``, ``tls_epoch``, ``tls_duration``, ``tls_depth`` [ppm], ``tls_snr`` and
``tls_transit_count`` join the metrics, and a note says when TLS fits no transit there or a
weak one (S/N < 7.1). It decides nothing: the box tests above give the verdict.

Parameters: ``stellar_density`` [solar], or ``stellar_mass`` and ``stellar_radius`` [solar]:
the star's, when known (the duration test is judged only then; the Sun's density is assumed
for the metrics otherwise). Without them, the candidates table's ``stellar_density`` (the
search's setting) is not used: a default is not knowledge of the star.

Output ``vetted``: the candidates table with ``verdict``, ``reasons``, ``flags``, ``notes`` and
the metrics as columns (ECSV). Result metadata: ``n_candidates``, ``n_planet_candidates``,
``n_false_positives`` and one line per candidate in ``verdicts``.
"""
from __future__ import annotations

import math
from typing import Any, Mapping

from eas_runtime.bls.grid import stellar_density
from eas_runtime.lightcurve import LightCurve
from eas_runtime.lightcurve.search import number, prepare
from eas_runtime.planets.vetting import PLANET, vet
from eas_runtime.task_api import InputError, ParameterError

TASK = "vetting"
#: Most candidates of one light curve (planet_search makes at most 20 periodic ones).
MAX_CANDIDATES = 100
#: Shortest period of a periodic candidate [d].
MIN_PERIOD = 0.05


def density_from(params: Mapping[str, Any]) -> float | None:
    """The star's density [solar] from the task's parameters, or None when none is given."""
    values = [number(params, k, positive=True, optional=True)
              for k in ("stellar_density", "stellar_mass", "stellar_radius")]
    if all(v is None for v in values):
        return None
    try:
        return stellar_density(*values)
    except ValueError as exc:
        raise ParameterError(f"task {TASK}: {exc}") from None


#: Half width of TLS's period window around a candidate, relative.
TLS_WINDOW = 0.01


def confirm_with_tls(lc: LightCurve, cand: dict[str, Any], others: list[dict[str, Any]], *,
                     cpus: int = 1) -> dict[str, Any]:
    """TLS (a limb-darkened transit model; Hippke & Heller 2019) over periods within
    :data:`TLS_WINDOW` of a periodic candidate's, the other candidates' transits masked: its
    period, epoch, duration, depth [ppm], S/N and transit count as ``tls_*`` metrics, and notes
    when it finds no transit there or a weak one. Nothing for a single event."""
    import numpy as np

    from eas_runtime import tls
    from eas_runtime.planets.search import MASK_FACTOR, transit_mask

    if cand.get("kind") != "periodic":
        return {}
    mask = np.zeros(len(lc.time), dtype=bool)
    for other in others:
        if other is not cand:
            mask |= transit_mask(lc.time, other.get("period"), float(other["epoch"]),
                                 float(other["duration"]), MASK_FACTOR)
    data = prepare(lc.select(~mask) if mask.any() else lc)
    period = float(cand["period"])
    try:
        found = tls.run(data, {"period_min": period * (1 - TLS_WINDOW),
                               "period_max": period * (1 + TLS_WINDOW)}, cpus=cpus)
    except ParameterError as exc:
        return {"tls_note": f"TLS not run: {exc}"}
    r = found.r
    if not found.fitted:
        return {"tls_note": "TLS fitted no transit within 1 % of the period"}
    out = {"tls_period": float(r.period), "tls_epoch": float(r.T0),
           "tls_duration": float(r.duration),
           "tls_depth": (1.0 - float(r.depth)) * 1e6 if math.isfinite(r.depth) else None,
           "tls_snr": float(r.snr) if math.isfinite(r.snr) else None,
           "tls_transit_count": int(r.distinct_transit_count)
           if math.isfinite(r.distinct_transit_count) else None}
    if out["tls_snr"] is not None and out["tls_snr"] < TLS_SNR_MIN:
        out["tls_note"] = (f"TLS's S/N within 1 % of the period is {out['tls_snr']:.3g} "
                           f"(< {TLS_SNR_MIN:g}): a transit model fits it weakly")
    return out


#: TLS's S/N below which the confirmation is noted as weak.
TLS_SNR_MIN = 7.1


def vet_candidates(lc: LightCurve, candidates: list[dict[str, Any]], *,
                   density: float | None = None, tls_confirm: bool = False,
                   cpus: int = 1) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """(vetted rows, result metadata) of ``candidates`` on ``lc``; with ``tls_confirm`` each
    periodic candidate is also fitted by TLS (:func:`confirm_with_tls`)."""
    if len(candidates) > MAX_CANDIDATES:
        raise InputError(f"{len(candidates)} candidates to vet; at most {MAX_CANDIDATES} per "
                         f"light curve")
    for i, cand in enumerate(candidates):
        for key in ("period", "epoch", "duration", "depth", "snr"):
            value = cand.get(key)
            if value is not None and not (isinstance(value, (int, float))
                                          and math.isfinite(value)):
                raise InputError(f"candidate row {i + 1}: {key} must be a finite number, "
                                 f"got {value!r}")
        if cand.get("kind") not in ("periodic", "single"):
            raise InputError(f"candidate row {i + 1} has kind {cand.get('kind')!r}; "
                             f"expected 'periodic' or 'single'")
        for key in ("epoch", "duration", "depth"):
            if cand.get(key) is None:
                raise InputError(f"candidate {cand.get('number')} has no {key}")
        if cand["kind"] == "periodic" and not (cand.get("period") or 0) > 0:
            raise InputError(f"periodic candidate {cand.get('number')} has no positive period")
        if not cand["duration"] > 0:
            raise InputError(f"candidate {cand.get('number')} has a duration of "
                             f"{cand['duration']!r} d")
        if cand["kind"] == "periodic" and not (
                cand["period"] >= MIN_PERIOD and cand["duration"] < 0.5 * cand["period"]):
            raise InputError(f"periodic candidate {cand.get('number')}: period "
                             f"{cand['period']!r} d and duration {cand['duration']!r} d are no "
                             f"transit (a period of at least {MIN_PERIOD:g} d, a duration under "
                             f"half of it)")
        if not isinstance(cand.get("number"), int):
            raise InputError(f"candidate row {i + 1} has no whole number 'number'")
    if len({c["number"] for c in candidates}) < len(candidates):
        raise InputError("two candidate rows have the same number")
    rows: list[dict[str, Any]] = []
    if candidates:
        data = prepare(lc)
        for cand, result in zip(candidates, vet(data.time, data.flux, candidates,
                                                density=density)):
            row = dict(cand)
            v = result.to_dict()
            row.update(verdict=v["verdict"], reasons=v["reasons"], flags=v["flags"],
                       notes=v["notes"])
            row.update({k: val for k, val in v["metrics"].items() if k != "red_noise"
                        or row.get("red_noise") is None})
            if tls_confirm:
                confirmed = confirm_with_tls(lc, cand, candidates, cpus=cpus)
                note = confirmed.pop("tls_note", None)
                if note:
                    row["notes"] = [*row["notes"], note]
                row.update(confirmed)
            rows.append(row)
    planets = sum(r["verdict"] == PLANET for r in rows)
    meta = {"n_candidates": len(rows), "n_planet_candidates": planets,
            "n_false_positives": len(rows) - planets,
            "stellar_density": density,
            "verdicts": [f"{r['number']}: {r['kind']} "
                         + (f"P={r['period']:.6g} d " if r.get("period") else
                            f"at {r['epoch']:.6g} d ")
                         + f"S/N {r['snr']:.3g}: {r['verdict']}"
                         + (f" ({'; '.join(r['reasons'])})" if r["reasons"] else "")
                         for r in rows]}
    return rows, meta
