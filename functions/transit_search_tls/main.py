"""Entry point of ``transit_search_tls`` (transitleastsquares, threads = the CPU allotment).

Input ``lightcurve``; parameters ``lc_duration`` [d] and ``search_settings`` (``period_min``,
``period_max``... see science.py). Result metadata: period, epoch, duration, depth, power, snr,
sde, transit_count, target_period, outcome; output ``periodogram`` (FITS table).
"""
from eas_runtime.lightcurve import search as common
from eas_runtime.wrapper import cloud_task
from functions.transit_search_tls.science import search


@cloud_task("transit_search_tls")
def handle(ctx):
    result = search(common.read_input(ctx), **common.common_params(ctx), cpus=ctx.cpus)
    return common.task_result(ctx, result)
