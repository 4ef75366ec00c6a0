"""The ``vetting`` task: a verdict, planet candidate or false positive, for each candidate.

Inputs: the ``lightcurve`` that was searched (detrended) and its ``candidates`` table (from
``planet_search``). :mod:`eas_runtime.planets.vetting` documents each test, its threshold and
its source (the Kepler pipeline's data validation and Robovetter).

Parameters: ``stellar_density`` [solar], or ``stellar_mass`` and ``stellar_radius`` [solar]:
the star's, when known (the duration test is judged only then; the Sun's density is assumed
for the metrics otherwise). Without them, the candidates table's ``stellar_density`` (the
search's setting) is not used: a default is not knowledge of the star.

Output ``vetted``: the candidates table with ``verdict``, ``reasons``, ``flags``, ``notes`` and
the metrics as columns (ECSV). Result metadata: ``n_candidates``, ``n_planet_candidates``,
``n_false_positives`` and one line per candidate in ``verdicts``.
"""
from __future__ import annotations

from typing import Any, Mapping

from eas_runtime.bls.grid import stellar_density
from eas_runtime.lightcurve import LightCurve
from eas_runtime.lightcurve.search import number, prepare
from eas_runtime.planets.vetting import PLANET, vet
from eas_runtime.task_api import InputError, ParameterError

TASK = "vetting"


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


def vet_candidates(lc: LightCurve, candidates: list[dict[str, Any]], *,
                   density: float | None = None) -> tuple[list[dict[str, Any]], dict[str, Any]]:
    """(vetted rows, result metadata) of ``candidates`` on ``lc``."""
    for i, cand in enumerate(candidates):
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
