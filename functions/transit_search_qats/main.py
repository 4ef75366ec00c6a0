"""Entry point of ``transit_search_qats`` (Carter & Agol 2013 QATS, written here).

Input ``lightcurve``; parameters ``lc_duration`` [d] and ``search_settings`` (see science.py).
Result metadata: period, transit_count, period_span, first_transit, last_transit, epoch,
duration, depth, power, snr, sde, target_period, outcome; outputs ``periodogram`` (FITS table)
and ``debugging`` (tar.gz of the grid and the best sequence).
"""
from eas_runtime.lightcurve import search as common
from eas_runtime.wrapper import cloud_task
from functions.transit_search_qats.science import search


@cloud_task("transit_search_qats")
def handle(ctx):
    found = search(common.read_input(ctx), **common.common_params(ctx), cpus=ctx.cpus)
    debugging = found.write_debugging(ctx.output_path("debugging", ".tar.gz"))
    return common.task_result(ctx, found.result, outputs={"debugging": debugging})
