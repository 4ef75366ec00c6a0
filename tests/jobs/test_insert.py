"""Inserting a job: a duplicate delivery of the same event gets the job recorded first; any
other integrity error is raised, not answered with no job."""
from __future__ import annotations

import pytest
from sqlalchemy.exc import IntegrityError

from eas_runtime.db.models import Job
from eas_runtime.jobs.insert import _add_job


def test_a_duplicate_source_event_gets_the_first_job(resources):
    with resources.db.session() as s:
        first, created = _add_job(s, Job(name="a", working_directory="", source_event="ev-1", spec={}))
        assert created
        again, created = _add_job(s, Job(name="b", working_directory="", source_event="ev-1", spec={}))
        assert not created and again.id == first.id


def test_an_integrity_error_that_is_no_duplicate_is_raised(resources):
    with resources.db.session() as s:
        _add_job(s, Job(id=7, name="a", working_directory="", source_event=None, spec={}))
    with pytest.raises(IntegrityError):         # the same id again, no source event to look up
        with resources.db.session() as s:
            _add_job(s, Job(id=7, name="b", working_directory="", source_event=None, spec={}))
