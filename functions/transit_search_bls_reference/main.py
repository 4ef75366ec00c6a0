"""Entry point of ``transit_search_bls_reference`` (astropy BoxLeastSquares).

Input ``lightcurve``; parameters ``lc_duration`` [d] and ``search_settings`` (see science.py;
``method`` "fast" or "ffa" runs eas_runtime.bls on the Ofir grid with the CPU allotment).
Result metadata: period, epoch, duration, depth, power, snr, sde, transit_count, target_period,
outcome (+ the input's signal metadata); output ``periodogram`` (FITS table).
"""
from eas_runtime.lightcurve import search as common
from eas_runtime.wrapper import cloud_task
from functions.transit_search_bls_reference.science import search


@cloud_task("transit_search_bls_reference")
def handle(ctx):
    lc = common.read_input(ctx)
    result = search(lc, **common.common_params(ctx), cpus=ctx.cpus)
    return common.task_result(ctx, result)
