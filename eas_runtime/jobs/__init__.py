"""Jobs: task-chain JSON (PARITY.md section 1) compiled into task rows.

* :mod:`.expressions`: the safe evaluator of the expressions in job descriptions;
* :mod:`.plan`: the planned-task tree a job compiles to, and the format's constants;
* :mod:`.compiler`: a job description -> a tree of planned tasks, checked, with the parts that
  depend on run-time results deferred;
* :mod:`.runtime`: those deferred parts evaluated at run time (:func:`expand`);
* :mod:`.insert`: checks against the database and the store, and bulk insertion;
* :mod:`.served`: the task types this installation serves (its ``task.ready`` Triggers);
* :mod:`.admission`: every check a job passes before it exists, shared by all fronts;
* :mod:`.tree`: the dry run's task tree and counts.

Where things are kept, for readers of the task table: every task row's ``params`` holds its
function's parameters (expressions already evaluated) and, under the reserved key
``metadata``, the metadata it inherits (job metadata and loop parameters with their
``<name>_index``); a control-flow row's ``params["spec"]`` holds its description. ``Task.path``
is the task's position in the job (``task_list[0]@3.task_list[1]``: iteration 3 of the loop
at ``task_list[0]``), ``Task.parent_id`` its control-flow parent.
"""
from __future__ import annotations

from eas_runtime.jobs.admission import admit
from eas_runtime.jobs.compiler import compile_job
from eas_runtime.jobs.expressions import ExpressionError
from eas_runtime.jobs.insert import insert_job, insert_tree, reject_job
from eas_runtime.jobs.plan import (
    CONTROL_FLOW,
    CompiledJob,
    JobConflict,
    JobError,
    PlannedTask,
    UnservedTaskType,
    object_key,
)
from eas_runtime.jobs.runtime import Expansion, bind_parameters, expand
from eas_runtime.jobs.served import check_served, served_task_types

__all__ = ["CONTROL_FLOW", "CompiledJob", "Expansion", "ExpressionError", "JobConflict", "JobError", "PlannedTask",
           "UnservedTaskType", "admit", "bind_parameters", "check_served", "compile_job", "expand", "insert_job",
           "insert_tree", "object_key", "reject_job", "served_task_types"]
