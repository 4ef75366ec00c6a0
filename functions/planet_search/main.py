"""Entry point of ``planet_search``: single events, then periodic signals in turn.

Input ``lightcurve`` (detrended); parameters ``lc_duration`` [d] and ``search_settings`` (see
science.py). Result metadata: n_candidates, n_periodic, n_single, rounds, stopped_because, the
strongest candidate's period, epoch, duration, depth, snr; outputs ``candidates`` (ECSV table)
and ``periodogram`` (FITS, one extension per round).
"""
from eas_runtime.lightcurve import search as common
from eas_runtime.planets.search import CANDIDATE_UNITS
from eas_runtime.planets.table import write_ecsv
from eas_runtime.task_api import TaskResult
from eas_runtime.wrapper import cloud_task
from functions.planet_search.science import TASK, UNITS, search, write_periodograms


@cloud_task(TASK)
def handle(ctx):
    lc = common.read_input(ctx)
    found, meta = search(lc, **common.common_params(ctx), cpus=ctx.cpus)
    table_meta = {"task_type": TASK, "units": CANDIDATE_UNITS, "stopped_because":
                  found.stopped_because, "search_settings": ctx.params.get("search_settings")}
    table_meta.update({k: lc.meta[k] for k in ("star_id", "mission", "segment", "object")
                       if k in lc.meta})
    candidates = write_ecsv([c.to_dict() for c in found.candidates],
                            ctx.output_path("candidates", ".ecsv"), table_meta)
    periodogram = write_periodograms(found, ctx.output_path("periodogram", ".fits"))
    return TaskResult(outputs={"candidates": candidates, "periodogram": periodogram},
                      metadata=meta, units={k: v for k, v in UNITS.items() if k in meta},
                      output_types={"candidates": "candidates", "periodogram": "periodogram"})
