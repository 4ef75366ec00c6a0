"""Entry point of the ``null`` task: does nothing for ``duration`` seconds (default 0).

When the job declares outputs for it, each gets a small JSON receipt (attempt, time slept):
this makes ``null`` a cheap stand-in for a science code in tests of the product plumbing.
"""
import json

from eas_runtime.wrapper import TaskResult, cloud_task
from functions.null.science import null


@cloud_task("null")
def handle(ctx):
    result = null(ctx.param("duration", 0.0, float))
    outputs = {}
    for name in ctx.output_names:
        path = ctx.output_path(name, ".json")
        path.write_text(json.dumps({"task_type": ctx.task_type, **result.to_dict()}))
        outputs[name] = path
    return TaskResult(outputs=outputs, metadata=result.to_dict(), units={"slept_s": "s"})
