"""A function whose package is not installed fails as an environment error that names the
package and the command that installs it (issue 14: detrend failed with a bare
``ModuleNotFoundError: No module named 'wotan'``, recorded as a science error)."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from eas_runtime.db.models import Attempt
from eas_runtime.invoke import create_task
from eas_runtime.wrapper import TaskRunner, missing_package_hint


def _fails_with(resources, exc: Exception) -> Attempt:
    def fn(ctx):
        raise exc
    ready = create_task(resources, "null", {}, {}, {}, "env-test")
    TaskRunner(("null",), fn, resources).run(ready.task_id, ready.attempt_id)
    with resources.db.read() as s:
        return s.scalars(select(Attempt).where(Attempt.id == ready.attempt_id)).one()


def test_a_missing_science_package_is_an_environment_error_naming_the_install(resources):
    attempt = _fails_with(resources, ModuleNotFoundError("No module named 'wotan'", name="wotan"))
    assert attempt.error and attempt.error_kind == "environment"
    first = attempt.error_text.splitlines()[0]
    assert "'wotan'" in first and "`pip install wotan`" in first and "default install" in first and "eas retry" in first
    assert "Traceback" in attempt.error_text


def test_a_missing_module_of_the_project_itself_is_a_science_error(resources):
    attempt = _fails_with(resources, ModuleNotFoundError("No module named 'functions.x'",
                                                         name="functions.x"))
    assert attempt.error_kind == "science"


@pytest.mark.parametrize("name, command", [
    ("transitleastsquares", "pip install transitleastsquares"),
    ("batman", "pip install batman-package"),
    ("psycopg2.extras", "pip install 'plato-eas[postgres]'"),
    ("lightkurve", "pip install lightkurve"),
])
def test_the_hint_names_the_extra_that_installs_the_package(name, command):
    assert command in missing_package_hint(ModuleNotFoundError(name=name))
