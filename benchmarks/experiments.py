"""The prototype's experiments (``examples/jobs/``) run to the end on the embedded runtime.

Not part of the default table (the full set takes hours on 2 cores): run as

    python -m benchmarks.experiments earth_vs_snr hot_jupiter_vs_size_batman ...
    python -m benchmarks.experiments --list

Each named job is submitted, as ``eas submit`` does, to a fresh embedded runtime (SQLite,
local store, its own temporary home) and followed until every task has ended. Printed per job:
the wall time from the submission to the last attempt's end, the tasks done and failed (the
failures' kinds, and each failed attempt's cause in one line by task type), the attempts'
CPU time and the throughput in chains per hour. The
machine's load average is printed with it: these machines are shared.

A job may be run on a documented subset with ``--subset NAME=PATH:N``: the for-loop at PATH
(``task_list[0]`` and so on, as ``eas submit --dry-run`` names them) keeps N values spread over
its range, so a large grid runs to the end in part and the full grid's time is projected from
the measured throughput. ``ingest_lcsg`` needs its three uploads: the runner puts the
ingest function's LCSG sample under each of the names it waits for.
"""
from __future__ import annotations

import argparse
import copy
import json
import os
import signal
import sys
import tempfile
import time
import uuid
from collections import Counter

from eas_runtime.settings import PROJECT_ROOT

EXAMPLES = PROJECT_ROOT / "examples" / "jobs"
LCSG_SAMPLE = PROJECT_ROOT / "functions/ingest_external_lcs/sample/lcsg_example.csv"
TEMPLATES = {"standard_search.json", "star_chain.json"}


def _subset(spec: dict, path: str, n: int) -> dict:
    """Keep ``n`` values, evenly spread and ends included, of the for-loop at ``path``
    (``task_list[i].task_list[j]...``); a range becomes the list of its kept values, written as
    expressions of its own ends."""
    import numpy as np

    node = spec
    for part in path.split("."):
        name, _, index = part.partition("[")
        node = node[name][int(index.rstrip("]"))]
    if node.get("task") != "execution_for_loop":
        raise ValueError(f"{path} is not an execution_for_loop")
    if "values" in node:
        count = len(node["values"])
    else:
        count = int((node.get("linear_range") or node.get("log_range"))[2])
    picks = [int(i) for i in np.unique(np.linspace(0, count - 1, n).round())]
    if "values" in node:
        node["values"] = [node["values"][i] for i in picks]
    elif "linear_range" in node:
        a, b, _ = node.pop("linear_range")
        node["values"] = [f"(({a}) + (({b}) - ({a})) * {i} / {max(count - 1, 1)})" for i in picks]
    else:
        a, b, _ = node.pop("log_range")
        node["values"] = [f"(pow(10, math.log10({a}) + (math.log10({b}) - math.log10({a})) * "
                          f"{i} / {max(count - 1, 1)}))" for i in picks]
    return spec


def run_job(name: str, spec: dict, timeout_s: float) -> dict:
    return run_jobs([(name, spec)], timeout_s)[0]


def run_jobs(jobs: list[tuple[str, dict]], timeout_s: float, report: bool = False) -> list[dict]:
    """Submit ``jobs`` (name, description) at once to one fresh embedded runtime and follow them
    until every task of each has ended; one result per job. Together, they share the runtime's
    serving layer and its node CPU budget as jobs of several users would. With ``report``, each
    result holds the job's experiment report (``eas report --json``) under ``report``."""
    from sqlalchemy import func, select

    from eas_runtime import events
    from eas_runtime.db.models import DONE, FAILED, Job, Task
    from eas_runtime.embedded import EmbeddedRuntime
    from eas_runtime.resources import Resources
    from eas_runtime.settings import Settings

    results = []
    with tempfile.TemporaryDirectory(prefix="eas-experiment-") as tmp:
        settings = Settings.load(home=tmp, gateway_port=0, index_port=0, adapter_port=0)
        runtime = EmbeddedRuntime(settings).start()
        try:
            submitted: dict[str, float] = {}
            job_ids: dict[str, int] = {}
            for name, spec in jobs:
                if name == "ingest_lcsg":
                    store = Resources(runtime.settings, db=runtime.db).store
                    for star in ("plato_bright_0001", "plato_bright_0002", "plato_bright_0003"):
                        store.put_file(f"inbox/lcsg/{star}.csv", LCSG_SAMPLE)
                event = events.make_event(events.JOB_SUBMITTED, events.SOURCE_CLI, spec, id=uuid.uuid4().hex)
                submitted[name] = time.time()
                events.send(event, runtime.broker_url, token=runtime.settings.internal_token)
                deadline = time.monotonic() + 60.0
                while name not in job_ids:       # the job row is made as the event is handled
                    with runtime.db.read() as s:
                        job_id = s.scalar(select(func.max(Job.id)).where(Job.id.not_in(job_ids.values() or [0])))
                    if job_id:
                        job_ids[name] = job_id
                    elif time.monotonic() > deadline:
                        raise RuntimeError(f"{name}: no job row 60 s after its submission")
                    else:
                        time.sleep(0.2)
            deadline = time.monotonic() + timeout_s
            while True:
                time.sleep(2.0)
                with runtime.db.read() as s:
                    states = Counter(dict(s.execute(select(Task.state, func.count()).where(
                        Task.job_id.in_(job_ids.values())).group_by(Task.state)).all()))
                if states[DONE] + states[FAILED] == sum(states.values()):
                    break
                if time.monotonic() > deadline:
                    raise RuntimeError(f"{', '.join(job_ids)}: not finished after {timeout_s:.0f} s: "
                                       f"{dict(states)}")
            for name, job_id in job_ids.items():
                results.append(_job_result(runtime, name, job_id, submitted[name]))
                if report:
                    from eas_runtime.diagnostics.experiments import report as experiment_report
                    results[-1]["report"] = experiment_report(runtime.db, job_id)
        finally:
            runtime.stop()
    return results


def _cause(text: str | None) -> str:
    """An error's one-line cause: its first line, or a traceback's last (the exception)."""
    lines = [line.strip() for line in (text or "").strip().splitlines() if line.strip()]
    if not lines:
        return ""
    return (lines[-1] if lines[0].startswith("Traceback") else lines[0])[:200]


def _job_result(runtime, name: str, job_id: int, submitted: float) -> dict:
    from sqlalchemy import func, select

    from eas_runtime.db.models import DONE, FAILED, Attempt, Task
    with runtime.db.read() as s:
        states = Counter(dict(s.execute(select(Task.state, func.count()).where(
            Task.job_id == job_id).group_by(Task.state)).all()))
        last, cpu = s.execute(select(func.max(Attempt.ended_at), func.sum(Attempt.cpu_children_s))
                              .join(Task, Task.id == Attempt.task_id)
                              .where(Task.job_id == job_id)).one()
        kinds = Counter(dict(s.execute(
            select(Attempt.error_kind, func.count()).join(Task, Task.id == Attempt.task_id)
            .where(Task.job_id == job_id, Task.state == FAILED, Attempt.error_kind != "")
            .group_by(Attempt.error_kind)).all()))
        # each failed attempt's cause in one line, per task type: what to look at
        causes = Counter(f"{t}: {_cause(text) or kind}"
                         for t, kind, text in s.execute(
                             select(Task.task_type, Attempt.error_kind, Attempt.error_text)
                             .join(Task, Task.id == Attempt.task_id)
                             .where(Task.job_id == job_id, Attempt.error.is_(True))).all())
        types = Counter(dict(s.execute(select(Task.task_type, func.count()).where(
            Task.job_id == job_id).group_by(Task.task_type)).all()))
        # per science task type: attempts, CPU and wall time (sum, mean, longest)
        by_type = {t: {"attempts": n, "cpu_s": round(c or 0.0, 1), "wall_s_mean": round(w or 0.0, 2),
                       "wall_s_max": round(m or 0.0, 1)}
                   for t, n, c, w, m in s.execute(
                       select(Task.task_type, func.count(), func.sum(Attempt.cpu_children_s),
                              func.avg(Attempt.wall_s), func.max(Attempt.wall_s))
                       .join(Task, Task.id == Attempt.task_id)
                       .where(Task.job_id == job_id, Attempt.wall_s.is_not(None))
                       .group_by(Task.task_type)).all()}
    wall = (last.timestamp() if last else time.time()) - submitted
    return {"job": name, "wall_s": round(wall, 1), "tasks": sum(states.values()),
            "done": states[DONE], "failed": states[FAILED], "failure_kinds": dict(kinds),
            "failure_causes": dict(causes), "cpu_s": round(cpu or 0.0, 1), "task_types": dict(types),
            "by_type": by_type, "load_average": os.getloadavg()}


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.experiments")
    parser.add_argument("jobs", nargs="*", help="file stems under examples/jobs/")
    parser.add_argument("--list", action="store_true")
    parser.add_argument("--subset", action="append", default=[], metavar="NAME=PATH:N")
    parser.add_argument("--timeout", type=float, default=6 * 3600.0, help="per run [s]")
    parser.add_argument("--report", action="store_true",
                        help="add each job's experiment report to its JSON line (\"report\") and print "
                             "it as text on stderr, as `eas report` does")
    parser.add_argument("--together", action="store_true",
                        help="submit the jobs at once to one runtime (sharing its CPU budget), "
                             "not one after the other to a fresh runtime each")
    args = parser.parse_args(argv)
    # SIGTERM ends the run as Ctrl-C does: the runtime's replicas are stopped on the way out
    signal.signal(signal.SIGTERM, lambda *_: sys.exit(128 + signal.SIGTERM))
    names = sorted(p.stem for p in EXAMPLES.glob("*.json") if p.name not in TEMPLATES)
    subsets: dict[str, list[tuple[str, int]]] = {}
    for item in args.subset:
        job, _, rest = item.partition("=")
        path, _, n = rest.rpartition(":")
        if not (job and path and n.isdigit() and int(n) > 0):
            parser.error(f"--subset {item!r} must be JOB=PATH:N, e.g. "
                         f"'earth_vs_snr=task_list[0]:3' (N > 0)")
        subsets.setdefault(job, []).append((path, int(n)))
    if args.list or not args.jobs:
        print("\n".join(names))
        return 0
    jobs: list[tuple[str, dict]] = []
    for name in args.jobs:
        if name not in names:
            print(f"unknown job {name!r}; see --list", file=sys.stderr)
            return 2
        spec = json.loads((EXAMPLES / f"{name}.json").read_text())
        for path, n in subsets.get(name, []):
            try:
                spec = _subset(copy.deepcopy(spec), path, n)
            except (KeyError, IndexError, TypeError, ValueError) as exc:
                parser.error(f"--subset {name}={path}:{n}: no for-loop there ({exc!r})")
        jobs.append((name, spec))
    runs = [jobs] if args.together else [[job] for job in jobs]
    for run in runs:
        for result in run_jobs(run, args.timeout, report=args.report):
            result["subset"] = subsets.get(result["job"], [])
            result["together_with"] = [n for n, _ in run if n != result["job"]]
            print(json.dumps(result), flush=True)
            if args.report:
                from eas_runtime.diagnostics._text import experiment_report
                print("\n".join([f"{result['job']}:"] + experiment_report(result["report"])), file=sys.stderr,
                      flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
