"""Entry point of the ``error`` task, which always fails (a test of failure handling)."""
from eas_runtime.wrapper import cloud_task
from functions.error.science import error


@cloud_task("error")
def handle(ctx):
    error()
