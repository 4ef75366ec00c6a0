"""Entry point of ``binning``: input/output ``lightcurve``, parameter ``cadence`` [s]
(flux-conserving rebinning)."""
from eas_runtime.lightcurve import read_lightcurve, write_lightcurve
from eas_runtime.wrapper import ParameterError, TaskResult, cloud_task
from functions.binning.science import bin_lightcurve


@cloud_task("binning")
def handle(ctx):
    if ctx.params.get("cadence") is None:
        raise ParameterError("task 'binning' needs the parameter 'cadence' (seconds)")
    lc = bin_lightcurve(read_lightcurve(ctx.input("lightcurve")), ctx.params["cadence"])
    out = write_lightcurve(lc, ctx.output_path("lightcurve", ".fits"))
    return TaskResult(outputs={"lightcurve": out}, output_metadata={"lightcurve": dict(lc.meta)},
                      metadata={"n_samples": len(lc), "cadence": float(ctx.params["cadence"])},
                      units={"cadence": "s"})
