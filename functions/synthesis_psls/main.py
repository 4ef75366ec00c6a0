"""Entry point of ``synthesis_psls``: parameter ``specs`` (see science.py), optional input
``systematics`` (PSLS's systematics table, needed by ``enable_systematics``); output
``lightcurve``. Result metadata: the settings, the seed and the MES bookkeeping."""
from eas_runtime.lightcurve import write_lightcurve
from eas_runtime.wrapper import TaskResult, cloud_task
from functions.synthesis_psls.science import synthesize


@cloud_task("synthesis_psls")
def handle(ctx):
    systematics = ctx.inputs.get("systematics")
    lc = synthesize(ctx.param("specs", {}, dict), systematics=systematics)
    out = write_lightcurve(lc, ctx.output_path("lightcurve", ".fits"))
    meta = dict(lc.meta)
    return TaskResult(outputs={"lightcurve": out}, output_metadata={"lightcurve": meta},
                      metadata=meta, units={"duration": "d", "t0": "d", "orbital_period": "d",
                                            "semi_major_axis": "AU", "sampling_cadence": "s",
                                            "nsr": "ppm hr^0.5", "numax": "uHz",
                                            "delta_nu": "uHz", "star_mass": "M_sun"})
