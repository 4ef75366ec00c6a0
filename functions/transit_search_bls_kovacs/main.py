"""Entry point of ``transit_search_bls_kovacs`` (Kovacs et al. 2002 BLS, written here).

Input ``lightcurve``; parameters ``lc_duration`` [d] and ``search_settings`` (see science.py).
Result metadata: period, epoch, duration, depth, power, snr, sde, transit_count, target_period,
outcome (+ the input's signal metadata); output ``periodogram`` (FITS table).
"""
from eas_runtime.lightcurve import search as common
from eas_runtime.wrapper import cloud_task
from functions.transit_search_bls_kovacs.science import search


@cloud_task("transit_search_bls_kovacs")
def handle(ctx):
    result = search(common.read_input(ctx), **common.common_params(ctx))
    return common.task_result(ctx, result)
