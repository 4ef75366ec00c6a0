"""Entry point of ``synthesis_batman``: parameter ``specs`` (see science.py) and optional
``seed`` of the noise; output ``lightcurve``. Result metadata: the settings and the signal
bookkeeping (integrated_transit_power, pixels_in_transit, mes...), as in the prototype."""
from eas_runtime.lightcurve import write_lightcurve
from eas_runtime.wrapper import TaskResult, cloud_task
from functions.synthesis_batman.science import synthesize


@cloud_task("synthesis_batman")
def handle(ctx):
    lc = synthesize(ctx.param("specs", {}, dict), seed=ctx.param("seed", None, int))
    out = write_lightcurve(lc, ctx.output_path("lightcurve", ".fits"))
    meta = dict(lc.meta)
    return TaskResult(outputs={"lightcurve": out}, output_metadata={"lightcurve": meta},
                      metadata=meta, units={"duration": "d", "t0": "d", "orbital_period": "d",
                                            "semi_major_axis": "AU", "sampling_cadence": "s",
                                            "inclination": "deg", "orbital_angle": "deg"})
