"""Small versions of the prototype's experiments (``examples/jobs/``), for the report tests.

Each is the job file as it is, with fewer loop values (``benchmarks.experiments._subset``, or a
shorter list of values) and shorter light curves, so it runs to the end in a minute or two on
two cores:

- ``earth_vs_size_batman``: TDA {tls, bls_reference} x cadence {900, 300} s (of 900 and 25 s)
  x 3 sizes (Rearth/4, Rearth, 4 Rearth); 60 days, P = 10 d at 0.091 AU instead of 730 days,
  P = 240 d at 1 AU. Rearth/4 (5 ppm) is missed, 4 Rearth (1,300 ppm) found: the PASS
  fraction rises with size; size and cadence make a completeness map.
- ``bls_timing_full_span``: cadence 600 s x lengths 7, 14 and 28 d (of 25/50/600 s x 7 d .. 2 yr),
  transit-free light curves.
- ``bls_timing_long_periods``: cadence 600 s x lengths 3 and 9 months with ``period_min`` 90 d:
  the 3-month search is refused by design (two transits need half the baseline), so the
  report has a missing search to count.
"""
from __future__ import annotations

import copy
import json

from benchmarks.experiments import EXAMPLES, _subset

DETECTION_DAYS, DETECTION_PERIOD_D = 60, 10.0


def _load(name: str) -> dict:
    return json.loads((EXAMPLES / f"{name}.json").read_text())


def _loop_body(spec: dict, depth: int) -> list[dict]:
    node = spec
    for _ in range(depth):
        node = node["task_list"][0]
    return node["task_list"]


def earth_vs_size() -> dict:
    spec = _load("earth_vs_size_batman")
    spec["task_list"][0]["task_list"][0]["values"] = [900, 300]           # 25 s: 3x the samples of 300 s
    spec = _subset(spec, "task_list[0].task_list[0].task_list[0]", 3)      # 3 sizes
    synthesis, _, search = _loop_body(spec, 3)
    synthesis["specs"].update(duration=DETECTION_DAYS, orbital_period=DETECTION_PERIOD_D,
                              semi_major_axis=round((DETECTION_PERIOD_D / 365.25) ** (2 / 3), 4))
    search["lc_duration"] = DETECTION_DAYS
    return spec


def _timing(name: str, lengths: list[str]) -> dict:
    spec = copy.deepcopy(_load(name))
    cadence = spec["task_list"][0]
    cadence["values"] = [600]
    cadence["task_list"][0]["values"] = lengths
    return spec


def bls_timing() -> dict:
    return _timing("bls_timing_full_span", ["(7 * constants.day)", "(14 * constants.day)",
                                            "(28 * constants.day)"])


def bls_long_periods() -> dict:
    return _timing("bls_timing_long_periods", ["(3 * constants.month)", "(9 * constants.month)"])


JOBS = {"earth_vs_size_batman": earth_vs_size, "bls_timing_full_span": bls_timing,
        "bls_timing_long_periods": bls_long_periods}


def run_to_the_end(runtime, jobs: dict | None = None, timeout_s: float = 600.0) -> dict[str, int]:
    """Submit ``jobs`` (name -> description; default: every job of :data:`JOBS`) to a started
    embedded runtime as ``eas submit`` does, wait until every task of each has ended (done,
    failed or cancelled); return name -> job id."""
    import uuid

    from sqlalchemy import func, select

    from eas_runtime import events
    from eas_runtime.db.models import CANCELLED, DONE, FAILED, Job, Task
    from tests.e2e.helpers import wait_for

    jobs = jobs if jobs is not None else {name: make() for name, make in JOBS.items()}
    for spec in jobs.values():
        event = events.make_event(events.JOB_SUBMITTED, events.SOURCE_CLI, spec, id=uuid.uuid4().hex)
        events.send(event, runtime.broker_url, token=runtime.settings.internal_token)

    def ids():
        with runtime.db.read() as s:
            found = dict(s.execute(select(Job.name, Job.id).where(Job.name.in_(list(jobs)))).all())
        return found if len(found) == len(jobs) else None
    job_ids = wait_for(ids, timeout_s=60, what="the jobs to be accepted")

    def ended():
        with runtime.db.read() as s:
            states = dict(s.execute(select(Task.state, func.count()).where(
                Task.job_id.in_(job_ids.values())).group_by(Task.state)).all())
        return sum(states.values()) and sum(states.get(s, 0) for s in (DONE, FAILED, CANCELLED)) \
            == sum(states.values())
    wait_for(ended, timeout_s=timeout_s, interval_s=1.0, what="every task of the small experiments to end")
    return job_ids
