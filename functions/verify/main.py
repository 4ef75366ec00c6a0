"""Entry point of ``verify``: range and sampling checks of one light curve."""
from eas_runtime.lightcurve import read_lightcurve
from eas_runtime.wrapper import TaskResult, cloud_task
from functions.verify.science import VerifyResult, verify


@cloud_task("verify")
def handle(ctx):
    result = verify(read_lightcurve(ctx.input("lightcurve")))
    return TaskResult(metadata=result.to_dict(), units=VerifyResult.UNITS)
