"""``eas`` diagnostics subcommands: tree, progress, errors, timings, passfail, report, inflight,
logs, task, jobs; and the ``backup``/``restore`` actions of ``eas db``.

Every subcommand prints a readable text form, or with ``--json`` the query layer's answer
(the same structure the index site's ``/api/`` serves). Exit status: 0 done, 1 the thing asked
for does not exist or the database cannot be used, 2 a bad argument.
"""
from __future__ import annotations

import functools
import json
import sys
from pathlib import Path

from sqlalchemy.engine import make_url
from sqlalchemy.exc import OperationalError, ProgrammingError

from eas_runtime import diagnostics as diag
from eas_runtime._cli_base import resources as _resources
from eas_runtime._cli_base import row_id, seconds, whole  # noqa: F401 - the subcommands' types, used by others
from eas_runtime.diagnostics import _text
from eas_runtime.diagnostics._common import MAX_PAGE
from eas_runtime.db.session import DatabaseUnavailable


class _NoDatabase(RuntimeError):
    pass


def _context(args):
    """(database, stall_s) from the global options; a missing SQLite file is an error, not a
    new empty database."""
    res = _resources(args)
    url = res.settings.db_url
    if url.startswith("sqlite"):
        path = make_url(url).database
        if path and path != ":memory:" and not Path(path).exists():
            raise _NoDatabase(f"no task database at {path} (start the pipeline with `eas up`, "
                              "or pass --home / --database-url)")
    return res.db, res.settings.stall_s


def _command(fn):
    """Map the query layer's exceptions to messages and exit statuses."""
    @functools.wraps(fn)
    def run(args) -> int:
        name = f"eas {args.command}"
        try:
            return fn(args)
        except diag.DiagnosticsError as exc:
            print(f"{name}: {exc}", file=sys.stderr)
            return 2
        except (diag.NotFound, diag.BackupError, _NoDatabase, DatabaseUnavailable) as exc:
            print(f"{name}: {exc.args[0] if exc.args else exc}", file=sys.stderr)
            return 1
        except (OperationalError, ProgrammingError) as exc:
            text = str(exc.orig).lower()
            if "no such table" in text or "does not exist" in text:
                print(f"{name}: the database has no pipeline schema yet (run `eas db upgrade`)",
                      file=sys.stderr)
                return 1
            raise
    return run


def _emit(args, data, render) -> int:
    if args.json:
        print(json.dumps(data, indent=2))
    else:
        for line in render(data):
            print(line)
    return 0


def _paging(args) -> dict:
    return {"page": args.page, "page_size": args.page_size}


# ---------------------------------------------------------------------- handlers
@_command
def cmd_tree(args) -> int:
    db, stall_s = _context(args)
    data = diag.tree(db, job_id=args.job, subtree=args.subtree, depth=args.depth,
                     running_only=args.running, stall_s=stall_s, **_paging(args))
    return _emit(args, data, _text.tree)


@_command
def cmd_progress(args) -> int:
    db, stall_s = _context(args)
    return _emit(args, diag.progress(db, job_id=args.job, stall_s=stall_s), _text.progress)


@_command
def cmd_errors(args) -> int:
    db, _ = _context(args)
    if args.dead_letters:
        data = diag.dead_letters(db, since=args.since, **_paging(args))
        return _emit(args, data, _text.dead_letters)
    data = diag.errors(db, job_id=args.job, task_type=args.type, since=args.since, kind=args.kind,
                       **_paging(args))
    return _emit(args, data, _text.errors)


def _write_csv(args, db, stall_s, kind: str) -> int:
    if args.job is None or not args.type:
        raise diag.DiagnosticsError("--csv needs --job and --type (one table per job and task type)")
    if args.csv == "-":
        n = diag.export_csv(db, args.job, args.type, sys.stdout, kind=kind, stall_s=stall_s)
    else:
        target = Path(args.csv)
        tmp = target.with_name(f".{target.name}.partial")
        try:
            with open(tmp, "w", newline="", encoding="utf-8") as f:
                n = diag.export_csv(db, args.job, args.type, f, kind=kind, stall_s=stall_s)
            tmp.replace(target)
        finally:
            tmp.unlink(missing_ok=True)
        print(json.dumps({"file": str(target), "rows": n}) if args.json else f"wrote {n} rows to {target}")
    return 0


@_command
def cmd_timings(args) -> int:
    db, stall_s = _context(args)
    if args.csv:
        return _write_csv(args, db, stall_s, "timings")
    if args.job is None or not args.type:
        data = diag.timing_groups(db, job_id=args.job, task_type=args.type, **_paging(args))
        return _emit(args, data, _text.timing_groups)
    data = diag.timings(db, args.job, args.type, stall_s=stall_s, **_paging(args))
    return _emit(args, data, lambda d: _text.rows_table(d, "tasks"))


@_command
def cmd_passfail(args) -> int:
    db, stall_s = _context(args)
    if args.csv:
        return _write_csv(args, db, stall_s, "passfail")
    data = diag.passfail(db, args.job, args.type, stall_s=stall_s, **_paging(args))
    return _emit(args, data, lambda d: _text.rows_table(d, "tasks") + [
        "outcomes: " + ", ".join(f"{k} {v}" for k, v in d["summary"].items())])


@_command
def cmd_report(args) -> int:
    from eas_runtime.diagnostics import experiments
    db, _ = _context(args)
    choices = {k: getattr(args, k) for k in ("x", "by", "map_x", "map_y", "length", "time")}
    return _emit(args, experiments.report(db, args.job_id, **choices), _text.experiment_report)


@_command
def cmd_inflight(args) -> int:
    db, stall_s = _context(args)
    data = diag.inflight(db, newest_dead_letters=args.dead_letters, stall_s=stall_s, **_paging(args))
    return _emit(args, data, _text.inflight)


@_command
def cmd_logs(args) -> int:
    db, _ = _context(args)
    data = diag.logs(db, attempt_id=args.attempt, task_id=args.task, job_id=args.job,
                     severity=args.severity, newest_first=args.newest_first, **_paging(args))
    return _emit(args, data, _text.logs)


@_command
def cmd_task(args) -> int:
    db, stall_s = _context(args)
    return _emit(args, diag.task_detail(db, args.task_id, stall_s=stall_s), _text.task)


@_command
def cmd_jobs(args) -> int:
    db, stall_s = _context(args)
    return _emit(args, diag.jobs(db, stall_s=stall_s, **_paging(args)), _text.jobs)


@_command
def cmd_db_file(args) -> int:
    """``eas db backup FILE`` and ``eas db restore FILE [--force]``."""
    if not args.file:
        raise diag.DiagnosticsError(f"`eas db {args.action}` needs a FILE")
    db = _resources(args).db
    if args.action == "backup":
        out = diag.backup(db, args.file)
        text = f"backed up the task database to {out['file']} ({out['format']}, {out['bytes']} bytes)"
    else:
        out = diag.restore(db, args.file, force=args.force)
        text = (f"restored {out['file']}: {sum(out['rows'].values())} rows"
                + (f" (replaced {out['replaced_rows']} rows)" if out["replaced_rows"] else ""))
    print(json.dumps(out) if getattr(args, "json", False) else text)
    return 0


# ---------------------------------------------------------------------- parsers


def _paged(p, default: int = diag.DEFAULT_PAGE_SIZE) -> None:
    p.add_argument("--page", type=whole(0, MAX_PAGE), default=0, help="page number, from 0")
    p.add_argument("--page-size", type=whole(1, diag.MAX_PAGE_SIZE), default=default,
                   help=f"rows per page (at most {diag.MAX_PAGE_SIZE})")
    p.add_argument("--json", action="store_true", help="print the answer as JSON")


def add_commands(sub) -> None:
    s = sub.add_parser("tree", help="job tree: tasks with display state, attempts and path")
    s.add_argument("--job", type=row_id, help="only this job")
    s.add_argument("--depth", type=int, choices=range(diag.MAX_DEPTH + 1), metavar="N",
                   help=f"at most N levels below the top-level tasks (0-{diag.MAX_DEPTH})")
    s.add_argument("--subtree", type=row_id, metavar="TASK_ID", help="only this task and its descendants")
    s.add_argument("--running", action="store_true", help="only tasks with a running attempt")
    _paged(s)
    s.set_defaults(fn=cmd_tree)

    s = sub.add_parser("progress", help="tasks per type in each display state (counts and %%)")
    s.add_argument("--job", type=row_id, help="only this job")
    s.add_argument("--json", action="store_true", help="print the answer as JSON")
    s.set_defaults(fn=cmd_progress)

    s = sub.add_parser("errors", help="failed attempts with full tracebacks, newest first; dead letters")
    s.add_argument("--job", type=row_id)
    s.add_argument("--type", help="task type")
    s.add_argument("--since", help="ISO time (UTC unless a zone is given) or an age: 90s, 30m, 2h, 1d, 1w")
    s.add_argument("--kind", help="error kind: science, input, qc, parameters, timeout, environment, "
                                          "infrastructure, cancelled")
    s.add_argument("--dead-letters", action="store_true", help="list dead letters instead")
    _paged(s, 20)
    s.set_defaults(fn=cmd_errors)

    s = sub.add_parser("timings", help="run times per (job, task type); with --job and --type one row "
                                       "per task with its loop parameters and results")
    s.add_argument("--job", type=row_id)
    s.add_argument("--type", help="task type")
    s.add_argument("--csv", metavar="FILE", help="write the whole table as CSV (- for stdout)")
    _paged(s)
    s.set_defaults(fn=cmd_timings)

    s = sub.add_parser("passfail", help="outcome of each task of a (job, task type) by loop parameters")
    s.add_argument("--job", type=row_id, required=True)
    s.add_argument("--type", required=True, help="task type")
    s.add_argument("--csv", metavar="FILE", help="write the whole table as CSV (- for stdout)")
    _paged(s)
    s.set_defaults(fn=cmd_passfail)

    s = sub.add_parser("report", help="experiment report of a job: per TDA the searches, detections, false "
                                      "alarms and CPU; PASS fraction, completeness and search time by loop "
                                      "parameter (as /jobs/<id>/report)")
    s.add_argument("job_id", type=row_id)
    s.add_argument("--x", help="loop parameter of the PASS fraction")
    s.add_argument("--map-x", dest="map_x", help="first loop parameter of the completeness map")
    s.add_argument("--map-y", dest="map_y", help="second loop parameter of the completeness map")
    s.add_argument("--length", help="loop parameter holding the light-curve length [d]")
    s.add_argument("--by", help="loop parameter splitting the series")
    s.add_argument("--time", choices=("cpu", "wall"), help="search time: CPU (default) or wall")
    s.add_argument("--json", action="store_true", help="print the answer as JSON")
    s.set_defaults(fn=cmd_report)

    s = sub.add_parser("inflight", help="claimed attempts, events awaiting delivery, dead letters")
    s.add_argument("--dead-letters", type=whole(0, diag.MAX_PAGE_SIZE), default=5, metavar="N",
                   help="show the newest N dead letters")
    _paged(s, 50)
    s.set_defaults(fn=cmd_inflight)

    s = sub.add_parser("logs", help="log messages of an attempt, a task or a job")
    which = s.add_mutually_exclusive_group()
    which.add_argument("--attempt", type=row_id)
    which.add_argument("--task", type=row_id)
    which.add_argument("--job", type=row_id)
    s.add_argument("--severity", help="this level and above: DEBUG, INFO, WARNING, ERROR, CRITICAL")
    s.add_argument("--newest-first", action="store_true")
    _paged(s)
    s.set_defaults(fn=cmd_logs)

    s = sub.add_parser("task", help="one task in full: every attempt, inputs, outputs, metadata")
    s.add_argument("task_id", type=row_id)
    s.add_argument("--json", action="store_true", help="print the answer as JSON")
    s.set_defaults(fn=cmd_task)

    s = sub.add_parser("jobs", help="jobs, newest first, with task counts per display state")
    _paged(s)
    s.set_defaults(fn=cmd_jobs)
