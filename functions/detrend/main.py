"""Entry point of ``detrend`` (wotan): input/output ``lightcurve``; parameters ``method``
(biweight), ``window_length`` [d] (1.0, or "auto" with ``period_max`` [d] and
``stellar_density`` [solar]), ``edge_cutoff`` [d] (0), ``break_tolerance`` [d] (0.5),
``kernel`` ("fast"; "wotan" for wotan's own biweight)."""
from eas_runtime.lightcurve import read_lightcurve, write_lightcurve
from eas_runtime.wrapper import TaskResult, cloud_task
from functions.detrend.science import DetrendResult, detrend


@cloud_task("detrend")
def handle(ctx):
    options = {k: ctx.params[k] for k in ("method", "window_length", "edge_cutoff",
                                          "break_tolerance", "kernel", "period_max",
                                          "stellar_density") if ctx.params.get(k) is not None}
    lc, summary = detrend(read_lightcurve(ctx.input("lightcurve")), **options)
    out = write_lightcurve(lc, ctx.output_path("lightcurve", ".fits"))
    return TaskResult(outputs={"lightcurve": out}, output_metadata={"lightcurve": dict(lc.meta)},
                      metadata=summary.to_dict(), units=DetrendResult.UNITS)
