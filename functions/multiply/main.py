"""Entry point of ``multiply``: inputs ``lightcurve_1`` and ``lightcurve_2``; output
``lightcurve`` = LC1 x LC2 on LC1's raster (uncertainties in quadrature, LC2's metadata win)."""
from eas_runtime.lightcurve import read_lightcurve, write_lightcurve
from eas_runtime.wrapper import TaskResult, cloud_task
from functions.multiply.science import multiply


@cloud_task("multiply")
def handle(ctx):
    lc = multiply(read_lightcurve(ctx.input("lightcurve_1")),
                  read_lightcurve(ctx.input("lightcurve_2")))
    out = write_lightcurve(lc, ctx.output_path("lightcurve", ".fits"))
    return TaskResult(outputs={"lightcurve": out}, output_metadata={"lightcurve": dict(lc.meta)},
                      metadata={"n_samples": len(lc), "n_bad_samples": int((~lc.good_mask()).sum())})
