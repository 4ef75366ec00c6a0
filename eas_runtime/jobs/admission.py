"""Admitting a job: the checks every front runs before a job exists, in one place.

eas-control runs them on ``job.submitted`` before inserting the job; ``eas submit`` (dry run
too) and ``POST /api/jobs`` run the same ones before posting the event, so that the person
submitting hears the refusal at once instead of finding a dead letter later:

1. the description compiles (:func:`compile_job`; :class:`JobError` naming the path);
2. every task type is served (:func:`check_served`; :class:`UnservedTaskType`);
3. with a database session: no output is planned by another job or exists already
   (:class:`JobConflict`), and every input is made, uploaded or may be waited for
   (:class:`JobError`).

Passing here does not reserve anything: another job may claim an output between this check and
eas-control's insert, and eas-control then records the job as rejected (``jobs.rejection``).
"""
from __future__ import annotations

from typing import Any

from sqlalchemy.orm import Session

from eas_runtime.jobs.compiler import compile_job
from eas_runtime.jobs.insert import Stat, check_compiled
from eas_runtime.jobs.plan import CompiledJob
from eas_runtime.jobs.served import check_served


def admit(spec: Any, *, served: frozenset[str] | None, session: Session | None = None,
          stat: Stat | None = None) -> CompiledJob:
    """The compiled job, or the first refusal raised (a :class:`JobError` subclass)."""
    compiled = compile_job(spec)
    check_served(compiled, served)
    if session is not None:
        check_compiled(session, compiled, stat)
    return compiled
