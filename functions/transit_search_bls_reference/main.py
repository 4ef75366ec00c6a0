"""Entry point of ``transit_search_bls_reference`` (astropy BoxLeastSquares)."""
from astropy.table import Table

from eas_runtime.lightcurve import read_lightcurve
from eas_runtime.wrapper import TaskResult, cloud_task
from functions.transit_search_bls_reference.science import UNITS, search


@cloud_task("transit_search_bls_reference")
def handle(ctx):
    lc = read_lightcurve(ctx.input("lightcurve"))
    result = search(lc, lc_duration=ctx.param("lc_duration", None, float),
                    search_settings=ctx.param("search_settings", None, dict))
    periodogram = ctx.output_path("periodogram", ".fits")
    Table({"period": result.periodogram_period, "power": result.periodogram_power},
          units={"period": "d"}).write(periodogram, format="fits", overwrite=True)
    return TaskResult(outputs={"periodogram": periodogram}, output_types={"periodogram": "periodogram"},
                      metadata=result.to_dict(), units=UNITS)
