"""Entry point of the ``null`` task: does nothing for ``duration`` seconds (default 0)."""
from eas_runtime.wrapper import TaskResult, cloud_task
from functions.null.science import null


@cloud_task("null")
def handle(ctx):
    result = null(ctx.param("duration", 0.0, float))
    return TaskResult(metadata=result.to_dict())
