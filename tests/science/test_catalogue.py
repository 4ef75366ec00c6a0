"""The catalogue table: written with the vetting attempt's end, replaced by a newer attempt,
untouched by a stale one; its queries filter, sort and refuse bad filters by name."""
from __future__ import annotations

import pytest

from eas_runtime.db.models import RUNNING, Attempt, Job, Task
from eas_runtime.diagnostics import DiagnosticsError, NotFound
from eas_runtime.planets import catalogue
from eas_runtime.wrapper._attempt import Outcome, TaskSnapshot, finish


def _row(number, period, snr, verdict="planet candidate", kind="periodic"):
    return {"number": number, "kind": kind, "period": period, "epoch": 1.0 + number,
            "duration": 0.1, "depth": 500.0 * number, "snr": snr, "transit_count": 3,
            "verdict": verdict, "reasons": [] if verdict == "planet candidate" else ["odd and even"],
            "flags": [], "notes": [], "odd_even_sigma": 0.5, "star_id": "TIC 7"}


def _task(db, attempts: int) -> tuple[int, list[int]]:
    with db.session() as s:
        job = Job(name="j", spec={})
        s.add(job)
        s.flush()
        task = Task(job_id=job.id, task_type="vetting", state=RUNNING, attempt_count=attempts)
        s.add(task)
        s.flush()
        ids = []
        for n in range(1, attempts + 1):
            a = Attempt(task_id=task.id, number=n, state="running")
            s.add(a)
            s.flush()
            ids.append(a.id)
        return task.id, ids


def _snap(task_id, attempt_id, number):
    return TaskSnapshot(task_id=task_id, attempt_id=attempt_id, attempt_number=number, job_id=1,
                        task_type="vetting", name="vetting", working_directory="w", params={},
                        inputs={"lightcurve": "w/star.flat.fits", "candidates": "w/c.ecsv"},
                        outputs={})


def test_the_newest_attempt_writes_the_catalogue_and_a_stale_one_does_not(resources):
    db = resources.db
    task_id, (first, second) = _task(db, 2)
    # the second (newest) attempt ends first
    finish(db, _snap(task_id, second, 2), Outcome(candidates=[_row(1, 3.7, 30.0),
                                                              _row(2, 11.3, 12.0)]))
    # then the first, given up for lost, ends late: it must not replace the rows
    finish(db, _snap(task_id, first, 1), Outcome(candidates=[_row(1, 99.0, 8.0)]))
    page = catalogue.query(db)
    assert [r["period"] for r in page["items"]] == [3.7, 11.3] and page["total"] == 2
    assert page["items"][0]["lightcurve_key"] == "w/star.flat.fits"
    assert page["items"][0]["star_id"] == "TIC 7"


def test_a_repeated_finish_replaces_the_rows_instead_of_adding_to_them(resources):
    db = resources.db
    task_id, (only,) = _task(db, 1)
    finish(db, _snap(task_id, only, 1), Outcome(candidates=[_row(1, 3.7, 30.0)]))
    with db.session() as s:                   # the same attempt's end recorded again
        s.get(Task, task_id).state = RUNNING
    finish(db, _snap(task_id, only, 1), Outcome(candidates=[_row(1, 3.7, 30.0),
                                                            _row(2, 5.0, 9.0, "false positive")]))
    assert catalogue.query(db)["total"] == 2


def test_a_failed_attempt_writes_nothing(resources):
    db = resources.db
    task_id, (only,) = _task(db, 1)
    finish(db, _snap(task_id, only, 1), Outcome(error_kind="science", error_text="boom",
                                                candidates=[_row(1, 3.7, 30.0)]))
    assert catalogue.query(db)["total"] == 0


def test_queries_filter_sort_and_count(resources):
    db = resources.db
    task_id, (only,) = _task(db, 1)
    finish(db, _snap(task_id, only, 1), Outcome(candidates=[
        _row(1, 3.7, 30.0), _row(2, 11.3, 12.0), _row(3, 1.25, 50.0, "false positive"),
        _row(4, None, 15.0, kind="single")]))
    q = catalogue.query
    assert [r["number"] for r in q(db)["items"]] == [3, 1, 4, 2]                  # S/N, strongest first
    by_period = q(db, catalogue.Filters.of(sort="period"))["items"]
    assert [r["number"] for r in by_period] == [3, 1, 2, 4]                       # singles last
    assert [r["number"] for r in q(db, catalogue.Filters.of(verdict="fp"))["items"]] == [3]
    assert q(db, catalogue.Filters.of(verdict="pc"))["counts"] == {"planet candidate": 3,
                                                                  "false positive": 1}
    assert [r["number"] for r in q(db, catalogue.Filters.of(period_min=3, period_max=12))["items"]] == [1, 2]
    assert [r["number"] for r in q(db, catalogue.Filters.of(star="tic 7", min_snr=20))["items"]] == [3, 1]
    assert q(db, catalogue.Filters.of(star="nobody"))["total"] == 0
    assert q(db, catalogue.Filters.of(star="%"))["total"] == 0            # not a wildcard
    assert q(db, catalogue.Filters.of(star="TIC_7"))["total"] == 0
    assert q(db, catalogue.Filters.of(kind="single"))["items"][0]["period"] is None
    rows = catalogue.export_rows(db, catalogue.Filters.of(verdict="fp"))
    assert rows[0]["odd_even_sigma"] == 0.5 and rows[0]["reasons"] == ["odd and even"]
    with pytest.raises(NotFound, match="no candidate 12345"):
        catalogue.entry(db, 12345)


@pytest.mark.parametrize("filters, named", [
    ({"verdict": "maybe"}, "verdict"), ({"kind": "binary"}, "kind"), ({"sort": "colour"}, "sort"),
    ({"order": "up"}, "order"), ({"min_snr": "nan"}, "min_snr"), ({"period_min": "-1"}, "period_min"),
    ({"period_max": "inf"}, "period_max"), ({"min_snr": "x"}, "min_snr"),
])
def test_bad_filters_are_refused_by_name(filters, named):
    with pytest.raises(DiagnosticsError, match=named):
        catalogue.Filters.of(**filters)


def test_the_command_line_does_not_load_the_science():
    """`eas` builds its parser in every component (eas serve adapter, control, index): the
    candidates command must not pull numpy, numba or astropy into them (the adapter runs under
    a small memory limit, and its connections dropped when numba was loaded)."""
    import subprocess
    import sys
    code = ("import sys, eas_runtime.cli as c; c.build_parser(); "
            "print(sorted(m for m in ('numpy', 'numba', 'astropy') if m in sys.modules))")
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, check=True)
    assert out.stdout.strip() == "[]", out
