"""The ``eas`` command: run the pipeline, feed it, and look at it.

Global options (``--home``, ``--store``, ``--database-url``, ``--broker-url``) override the
``EAS_*`` environment, which overrides the defaults (see eas_runtime.settings).
"""
from __future__ import annotations

import argparse
import json
import logging
import os
import signal
import sys
import threading
import time
import uuid
from pathlib import Path

from eas_runtime import _cli_base, events
from eas_runtime.settings import Settings, SettingsError


# Settings and resources of a command's pipeline live in eas_runtime._cli_base, which every
# command module imports (this module imports them, none imports this one).
_settings = _cli_base.settings
_resources = _cli_base.resources


# ---------------------------------------------------------------------- up / demo
def cmd_up(args) -> int:
    from eas_runtime import discovery
    from eas_runtime.embedded import EmbeddedRuntime
    settings = _settings(args).replace(**{k: v for k, v in (("gateway_port", args.gateway_port),
                                                             ("index_port", args.index_port)) if v is not None})
    if args.detach:
        from eas_runtime.background import start
        return start(settings, argv=_global_flags(args) + ["up", *_port_flags(args)],
                     timeout_s=args.start_timeout)
    runtime = EmbeddedRuntime(settings).start()
    # Other shells' `eas` commands find this pipeline through the record (eas_runtime.discovery).
    found_at = discovery.record(runtime.settings)
    print(f"EAS is up. Broker ingress: {runtime.broker_url}\nIndex site: {runtime.index_url}\n"
          f"Store: {settings.store} ({settings.store_path if settings.store == 'local' else settings.minio_endpoint})"
          "\nCtrl-C stops it.", flush=True)
    # The handler only appends to a list: it runs in the main thread between bytecodes, and a
    # threading.Event set from there deadlocks when the signal lands while the main thread
    # holds the Event's own lock inside wait() (a SIGTERM was lost that way).
    stopping: list[int] = []
    signal.signal(signal.SIGTERM, lambda signum, _: stopping.append(signum))
    try:
        while not stopping:
            time.sleep(0.2)
    except KeyboardInterrupt:
        pass
    finally:
        discovery.forget(found_at)
        runtime.stop()
    return 0


def _global_flags(args) -> list[str]:
    """The global options as given, for a command run again in a child process."""
    flags = []
    for name in ("store", "database_url", "broker_url", "log_level"):
        if getattr(args, name) is not None:
            flags += [f"--{name.replace('_', '-')}", str(getattr(args, name))]
    return flags


def _port_flags(args) -> list[str]:
    return [part for name in ("gateway_port", "index_port") if getattr(args, name) is not None
            for part in (f"--{name.replace('_', '-')}", str(getattr(args, name)))]


def cmd_down(args) -> int:
    from eas_runtime.background import stop
    return stop(home=args.home or os.environ.get("EAS_HOME") or None, timeout_s=args.stop_timeout)


def cmd_demo(args) -> int:
    from eas_runtime.demo import run_demo
    if not args.log_level:          # the demo prints its own progress; keep only warnings
        logging.getLogger().setLevel(logging.WARNING)
    return run_demo(_settings(args), count=args.count, keep=args.keep, timeout_s=args.timeout)


# ---------------------------------------------------------------------- feeding
def cmd_upload(args) -> int:
    """Every file and key is checked before the first upload, so a bad one uploads nothing."""
    from eas_runtime.store import StoreError
    from eas_runtime.store.base import check_key
    if args.key and len(args.files) > 1:
        print(f"eas upload: --key names one object, but {len(args.files)} files were given", file=sys.stderr)
        return 2
    planned = []
    for name in args.files:
        path = Path(name)
        if not path.is_file():
            print(f"eas upload: no such file: {path}", file=sys.stderr)
            return 2
        key = args.key if args.key else args.prefix.rstrip("/") + "/" + path.name
        try:
            check_key(key)
        except ValueError as exc:
            given = f"--key {args.key!r}" if args.key else f"--prefix {args.prefix!r}"
            print(f"eas upload: {given} gives a key the store refuses: {exc}", file=sys.stderr)
            return 2
        planned.append((path, key))
    from eas_runtime.db.models import utcnow
    res = _resources(args)
    started, uploaded = utcnow(), []
    for path, key in planned:
        try:
            info = res.store.put_file(key, path)
        except StoreError as exc:
            print(f"eas upload: {path} -> {key} failed: {exc}", file=sys.stderr)
            return 1
        print(f"uploaded {path} -> {key} ({info.size} bytes, md5 {info.etag})", flush=True)
        uploaded.append((key, info.etag))
    if not args.wait:
        return 0
    from eas_runtime import follow
    jobs = _jobs_of_uploads(res.db, uploaded, started, timeout_s=args.verdict_timeout)
    if not jobs:
        return 0 if jobs is not None else 3
    return follow.run(res.db, jobs, stall_s=res.settings.stall_s, timeout_s=args.wait_timeout, command="eas upload")


def _jobs_of_uploads(db, uploaded: list[tuple[str, str]], since, *, timeout_s: float) -> list[int] | None:
    """The jobs eas-control made for these uploads by their watch rules (Job.spec names the
    object and its etag; an earlier job when the same bytes were uploaded before), awaited up
    to ``timeout_s``; [] when no rule covers any of them,
    None (said on stderr) when an expected job did not come."""
    import time

    from sqlalchemy import select

    from eas_runtime.control import watch
    from eas_runtime.db.models import Job
    with db.read() as s:
        expected = {key: len(watch.matching_rules(s, key)) for key, _ in uploaded}
    for key, n in expected.items():
        if not n:
            print(f"no watch rule covers {key}: nothing follows from it (eas watch add --prefix ...)")
    wanted = {(key, etag) for key, etag in uploaded if expected[key]}
    # The same bytes uploaded again make no new job (its source is the rule and the etag): after
    # a moment every job is looked at once, and the earlier job is the one followed.
    began = time.monotonic()
    found: dict[tuple[str, str], set[int]] = {}
    deadline, looked_back = began + timeout_s, False
    while wanted:
        look_back = not looked_back and time.monotonic() - began > 2.0
        looked_back |= look_back
        with db.read() as s:
            query = select(Job.id, Job.spec)
            for job_id, spec in s.execute(query if look_back else query.where(Job.created_at >= since)):
                if isinstance(spec, dict) and (spec.get("object"), spec.get("etag")) in wanted:
                    found.setdefault((spec["object"], spec["etag"]), set()).add(job_id)
        if all(len(found.get(w, ())) >= expected[w[0]] for w in wanted):
            break
        if time.monotonic() >= deadline:
            missing = sorted(key for key, etag in wanted if len(found.get((key, etag), ())) < expected[key])
            print(f"eas upload: no job was made for {', '.join(missing)} within {timeout_s:g} s (is `eas up` "
                  f"running? a refused watch job is a dead letter: eas errors --dead-letters)", file=sys.stderr)
            return None
        time.sleep(0.2)
    return sorted(j for ids in found.values() for j in ids)


def cmd_submit(args) -> int:
    """Check a job file as eas-control will, post it to the broker as ``job.submitted`` and wait
    for eas-control's verdict.

    The checks are :func:`eas_runtime.jobs.admit`: the description compiles, every task type is
    served, and, when the task database is reachable (its SQLite file exists or PostgreSQL
    answers; ``--check``: always, creating the schema if need be), no output clashes with
    another job's or an existing object and every input exists. ``--dry-run`` stops after them
    and prints the tree and counts. After posting, the job row eas-control makes (or its
    rejection) is awaited for ``--verdict-timeout`` seconds; ``--wait`` then follows the job to
    its end (:func:`_follow`). Exit 0: accepted (or sent, when no database can be watched); 2:
    refused; 1: not sent; 3: sent, no verdict in time."""
    from eas_runtime.db.session import DatabaseUnavailable
    from eas_runtime.jobs import JobError, admit, served_task_types, tree
    from eas_runtime.store import StoreError
    path = Path(args.file)
    try:
        spec = json.loads(path.read_text())
    except (OSError, ValueError, RecursionError) as exc:
        print(f"eas submit: cannot read {path}: {exc}", file=sys.stderr)
        return 2
    # A dry run compiles and checks: it needs no pipeline, but checks against one it finds.
    settings = _settings(args, mode="optional" if args.dry_run else None)
    served = served_task_types(settings.broker_config_dir)
    try:
        db, unchecked = _live_database(settings, create=args.check)
        if db is None:
            compiled = admit(spec, served=served)
        else:
            from eas_runtime.resources import Resources
            with db.read() as session:
                compiled = admit(spec, served=served, session=session, stat=Resources(settings, db=db).store.stat)
    except JobError as exc:
        print(f"eas submit: {path}: {exc}", file=sys.stderr)
        return 2
    except RecursionError:
        print(f"eas submit: {path}: the job description is nested too deeply", file=sys.stderr)
        return 2
    except (DatabaseUnavailable, StoreError) as exc:
        print(f"eas submit: {path}: cannot check the job: {exc}", file=sys.stderr)
        return 1
    summary = tree.summary(compiled)
    if args.dry_run:
        return _print_dry_run(args, compiled, summary, unchecked)
    event = events.make_event(events.JOB_SUBMITTED, events.SOURCE_CLI, spec, id=uuid.uuid4().hex,
                              subject=compiled.job_name)
    try:
        events.send(event, settings.sink_url, token=settings.internal_token)
    except events.DeliveryError as exc:
        print(f"eas submit: {exc}", file=sys.stderr)
        return 1
    what = (f"submitted {compiled.job_name!r} ({summary['rows']} task rows, {summary['tasks']} tasks to run)")
    if args.wait and db is None:
        print(f"{what} as event {event['id']}")
        print(f"eas submit: cannot follow the job: {unchecked}", file=sys.stderr)
        return 3
    if db is None or (args.verdict_timeout <= 0 and not args.wait):
        note = f"; {unchecked}, eas-control checks it" if unchecked else ""
        print(f"{what} as event {event['id']}{note}")
        return 0
    try:
        verdict = _await_job(db, f"{events.SOURCE_CLI} {event['id']}", args.verdict_timeout or 60.0)
    except DatabaseUnavailable as exc:
        verdict, unchecked = None, str(exc)
    if verdict is None:
        print(f"{what} as event {event['id']}")
        print(f"eas submit: {path}: eas-control recorded no verdict within {args.verdict_timeout:g} s"
              f"{f' ({unchecked})' if unchecked else ''}; `eas jobs` will show it", file=sys.stderr)
        return 3
    job_id, rejection = verdict
    if rejection is not None:
        print(f"eas submit: {path}: refused by eas-control (job {job_id}): {rejection}", file=sys.stderr)
        return 2
    print(f"{what} as job {job_id} (event {event['id']})", flush=True)
    if not args.wait:
        return 0
    from eas_runtime import follow
    return follow.run(db, [job_id], stall_s=settings.stall_s, timeout_s=args.wait_timeout, command="eas submit")


def _live_database(settings: Settings, *, create: bool):
    """(the task database, "") when it can be reached, else (None, why not). A SQLite file that
    does not exist is not created (the runtime is not running here), unless ``create``."""
    from eas_runtime.db.session import DatabaseUnavailable, database
    if settings.db_url.startswith("sqlite") and not create:
        file = settings.db_url.split("///", 1)[1] if "///" in settings.db_url else ""
        if not file or file == ":memory:" or not Path(file).is_file():
            return None, f"not checked against a task database (none at {file or settings.db_url})"
    db = database(settings.db_url)
    if create:
        db.create_schema()
        return db, ""
    try:
        db.ping()
    except DatabaseUnavailable as exc:
        return None, f"not checked against the task database ({exc})"
    return db, ""


def _await_job(db, source_event: str, wait_s: float):
    """(job id, rejection or None) once eas-control recorded the submission; None after
    ``wait_s`` seconds."""
    import time

    from sqlalchemy import select

    from eas_runtime.db.models import Job
    deadline, pause = time.monotonic() + wait_s, 0.05
    while True:
        with db.read() as s:
            row = s.execute(select(Job.id, Job.rejection).where(Job.source_event == source_event)).first()
        if row is not None:
            return row.id, row.rejection
        if time.monotonic() >= deadline:
            return None
        time.sleep(min(pause, max(0.0, deadline - time.monotonic())))
        pause = min(pause * 2, 0.5)


def _print_dry_run(args, compiled, summary: dict, unchecked: str) -> int:
    from eas_runtime.jobs import tree
    summary["checked_against_database"] = not unchecked
    if args.json:
        print(json.dumps(summary))
        return 0
    for line in tree.render(compiled, full=args.full):
        print(line)
    print(f"\n{summary['rows']} task rows at submission; tasks per type (certain to run):")
    for task_type, n in {**summary["task_counts"], **summary["control_counts"]}.items():
        print(f"{n:8d}  {task_type}")
    for part in summary["deferred"]:
        times = f" (x{part['count']})" if part["count"] > 1 else ""
        print(f"evaluated at run time{times}: {part['path']} {part['task_type']} {part['note']}".rstrip())
        for label, counts in part["branches"].items():
            listed = ", ".join(f"{n} {t}" for t, n in {**counts["task_counts"], **counts["control_counts"]}.items())
            print(f"    {label}: {listed or 'nothing'}")
    for key in summary["external_inputs"]:
        print(f"reads {key} (made by no task of this job)")
    print(unchecked or "checked against the task database: no clash")
    return 0


def cmd_watch(args) -> int:
    from sqlalchemy import delete, select

    from eas_runtime.control import watch
    from eas_runtime.db.models import WatchRule
    from eas_runtime.jobs import JobError
    template = None
    if args.action == "add" and args.per_star:
        if args.job or args.tasks:
            print("eas watch add: --per-star is its own job; leave out --job and --tasks",
                  file=sys.stderr)
            return 2
        args.job = str(STAR_SEARCH)
    if args.action == "add" and not args.job and not args.tasks:
        args.job = str(STANDARD_SEARCH)           # the standard path (README "The standard path")
    if args.action == "add" and args.job:
        try:
            template = json.loads(Path(args.job).read_text())
            checked = watch.check_template(template, args.prefix)
        except (OSError, json.JSONDecodeError) as exc:
            print(f"eas watch add: cannot read {args.job}: {exc}", file=sys.stderr)
            return 2
        except JobError as exc:
            print(f"eas watch add: {args.job}: {exc}", file=sys.stderr)
            return 2
    res = _resources(args)
    res.db.create_schema()
    with res.db.session() as s:
        if args.action == "add":
            tasks = [] if template is not None else [
                t.strip() for t in (args.tasks or DEFAULT_WATCH_TASKS).split(",") if t.strip()]
            if template is None and not tasks:
                print("eas watch add: --tasks needs at least one task type", file=sys.stderr)
                return 2
            # A rule whose jobs name a type no function serves would make jobs that never end.
            from eas_runtime.jobs.plan import UnservedTaskType
            from eas_runtime.jobs.served import check_served, served_task_types, unserved_message
            served = served_task_types(res.settings.broker_config_dir)
            unserved = [t for t in tasks if served is not None and t not in served]
            try:
                if unserved:
                    assert served is not None   # unserved is empty without a served set
                    raise UnservedTaskType(unserved_message("--tasks", unserved[0], served)
                                           .replace("--tasks.task:", "--tasks:", 1))
                if template is not None:
                    check_served(checked, served)
            except UnservedTaskType as exc:
                print(f"eas watch add: {exc}", file=sys.stderr)
                return 2
            rule = s.scalar(select(WatchRule).where(WatchRule.prefix == args.prefix))
            if rule is None:
                rule = WatchRule(prefix=args.prefix)
                s.add(rule)
            rule.task_types, rule.job_template, rule.enabled = tasks, template, True
            if template is not None:
                print(f"watching {args.prefix!r}: job {args.job} "
                      f"({len(checked.tasks)} tasks per object, e.g. in {checked.working_directory}/)")
            else:
                print(f"watching {args.prefix!r}: {' -> '.join(tasks)}")
        elif args.action == "remove":
            gone = s.execute(delete(WatchRule).where(WatchRule.prefix == args.prefix)).rowcount
            print(f"removed {gone} rule(s)")
        else:
            rules = s.scalars(select(WatchRule).order_by(WatchRule.prefix)).all()
            if args.json:
                print(json.dumps([{"prefix": r.prefix, "task_types": r.task_types, "enabled": r.enabled,
                                   "job_template": r.job_template} for r in rules]))
            for r in rules if not args.json else ():
                what = (f"job {(r.job_template or {}).get('job_name', '(template)')}" if r.job_template
                        else " -> ".join(r.task_types))
                print(f"{r.prefix}\t{what}")
    return 0


DEFAULT_WATCH_TASKS = "ingest_external_lcs,verify,transit_search_bls_reference"
#: The job an upload gets from `eas watch add` without --job or --tasks: ingest, detrend,
#: multi-planet search, vetting (examples/jobs/standard_search.json is a copy).
STANDARD_SEARCH = Path(__file__).parent / "jobs" / "templates" / "standard_search.json"
#: With --per-star: the star's segments stitched before the search, so that every new segment
#: searches the whole star again (examples/jobs/star_search.json is a copy).
STAR_SEARCH = Path(__file__).parent / "jobs" / "templates" / "star_search.json"


def cmd_cancel(args) -> int:
    from eas_runtime.lifecycle import LifecycleError, cancel_job
    try:
        out = cancel_job(_resources(args).db, args.job)
    except LifecycleError as exc:
        print(f"eas cancel: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(out) if args.json else f"job {args.job} cancelled: {out['cancelled_tasks']} tasks will not run")
    return 0


def cmd_retry(args) -> int:
    from eas_runtime.lifecycle import LifecycleError, retry_failed
    from eas_runtime.control import Control
    res = _resources(args)
    try:
        # Control's send runs control-flow tasks in place and posts the others to the broker.
        out = retry_failed(res.db, Control(res).send, args.job, args.task or None)
    except LifecycleError as exc:
        print(f"eas retry: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(out) if args.json else
          f"job {args.job}: {out['retried_tasks']} failed tasks back to waiting, {out['claimed']} started")
    return 0


# ---------------------------------------------------------------------- looking
def cmd_status(args) -> int:
    from eas_runtime.status import status_summary
    res = _resources(args)
    summary = status_summary(res.db)
    if args.json:
        print(json.dumps(summary, indent=2))
        return 0
    states = list(summary["tasks"])
    print(f"jobs {summary['jobs']}  products {summary['products']}  failed attempts "
          f"{summary['failed_attempts']}  dead letters {summary['dead_letters']}  "
          f"deliveries pending {summary['deliveries_pending']}")
    print(f"{'task type':32s}" + "".join(f"{s:>10s}" for s in states))
    for task_type, counts in summary["by_type"].items():
        print(f"{task_type:32s}" + "".join(f"{counts.get(s, 0):10d}" for s in states))
    return 0


def cmd_serve(args) -> int:
    """One component's HTTP server: gunicorn (eas_runtime._gunicorn) unless ``EAS_HTTP_SERVER``
    is ``builtin`` (the embedded runtime's replicas, which have no proxy in front)."""
    settings = _settings(args)
    port = args.port or int(os.environ.get("PORT", "8080"))
    host = args.host or os.environ.get("HOST", "0.0.0.0")   # the embedded runtime sets HOST=127.0.0.1

    def make_app():
        from eas_runtime.resources import Resources
        res = Resources(settings)
        if args.component == "control":
            from eas_runtime.control.app import create_app
            return create_app(res)
        if args.component == "index":
            from eas_runtime.site import create_app as create_site
            return create_site(res)
        from eas_runtime.adapter import create_app as create_adapter
        return create_adapter(settings, db=res.db)
    name = f"eas-{args.component}"
    server_kind = settings.http_server or "gunicorn"
    logging.getLogger("eas").info("%s listening on %s:%s (%s)", name, host, port, server_kind)
    if server_kind == "gunicorn":
        from eas_runtime._gunicorn import serve
        serve(make_app, host, port, name)
        return 0
    app = make_app()
    from socketserver import BaseServer
    server: BaseServer
    if args.component == "index":
        from werkzeug.serving import make_server
        server = make_server(host, port, app, threaded=True)
    else:   # event receivers: keep the broker's connections alive
        from eas_runtime.serving.http import make_server as make_keepalive_server
        server = make_keepalive_server(host, port, app)
    signal.signal(signal.SIGTERM, lambda *_: threading.Thread(target=server.shutdown).start())
    server.serve_forever()
    return 0


def cmd_db(args) -> int:
    if args.action in ("backup", "restore"):
        from eas_runtime.diagnostics.cli import cmd_db_file
        return cmd_db_file(args)
    res = _resources(args)
    res.db.create_schema()
    print(f"database {res.settings.db_url.split('@')[-1]} is at the newest schema")
    return 0


def cmd_validate(args) -> int:
    from eas_runtime import manifests
    return manifests.main(args.paths or ["knative", "broker_config", "storage"])


# ---------------------------------------------------------------------- parser
#: Modules that add subcommands: each has ``add_commands(subparsers)``; a subcommand's handler
#: is set with ``set_defaults(fn=...)`` and receives the parsed arguments.
COMMAND_MODULES: tuple[str, ...] = ("eas_runtime.diagnostics.cli", "eas_runtime.deploy.cli",
                                     "eas_runtime.invoke", "eas_runtime.planets.cli")


def build_parser() -> argparse.ArgumentParser:
    from eas_runtime._cli_base import row_id, seconds, whole   # bounded: refused, not overflowed
    p = argparse.ArgumentParser(prog="eas", description="PLATO exoplanet analysis pipeline")
    p.add_argument("--home", help="folder for the embedded database, store and logs (EAS_HOME)")
    p.add_argument("--store", choices=["local", "minio"], help="object store (EAS_STORE)")
    p.add_argument("--database-url", help="SQLAlchemy URL of the task database (EAS_DATABASE_URL)")
    p.add_argument("--broker-url", help="broker ingress URL (EAS_BROKER_URL, K_SINK)")
    p.add_argument("--log-level", help="log level (EAS_LOG_LEVEL)")
    sub = p.add_subparsers(dest="command", required=True)

    s = sub.add_parser("up", help="run the embedded pipeline until Ctrl-C")
    s.add_argument("--gateway-port", type=whole(1, 65535, "a port"))
    s.add_argument("--index-port", type=whole(1, 65535, "a port"))
    s.add_argument("-d", "--detach", action="store_true",
                   help="run in the background and return once it answers (stop it with `eas down`)")
    s.add_argument("--start-timeout", type=seconds, default=120.0, metavar="SECONDS",
                   help="with --detach: give up when it does not answer within this long")
    s.set_defaults(fn=cmd_up)

    s = sub.add_parser("down", help="stop the running `eas up` (of --home, else the one `eas status` finds)")
    s.add_argument("--stop-timeout", type=seconds, default=60.0, metavar="SECONDS",
                   help="wait this long for it to stop")
    s.set_defaults(fn=cmd_down)

    s = sub.add_parser("demo", help="synthetic light curves through ingest -> verify -> BLS")
    s.add_argument("--count", type=int, default=12)
    s.add_argument("--keep", action="store_true", help="keep the pipeline running afterwards")
    s.add_argument("--timeout", type=float, default=900.0, help="give up after this many seconds")
    s.set_defaults(fn=cmd_demo)

    s = sub.add_parser("upload", help="put files into the object store (triggers watch rules)")
    s.add_argument("files", nargs="+")
    s.add_argument("--prefix", default="inbox/")
    s.add_argument("--key", help="object key (one file only)")
    s.add_argument("--wait", action="store_true",
                   help="follow the jobs the watch rules make for the uploads to their end, then print their results")
    s.add_argument("--verdict-timeout", type=seconds, default=60.0, metavar="SECONDS",
                   help="with --wait: how long the jobs may take to appear")
    s.add_argument("--wait-timeout", type=seconds, default=0.0, metavar="SECONDS",
                   help="with --wait: stop following after this long (0: until the jobs end)")
    s.set_defaults(fn=cmd_upload)

    s = sub.add_parser("submit", help="submit a job (task-chain JSON)")
    s.add_argument("file")
    s.add_argument("--dry-run", action="store_true", help="compile and print the task tree and counts only")
    s.add_argument("--full", action="store_true", help="dry run: every loop iteration, not the first two")
    s.add_argument("--check", action="store_true",
                   help="check outputs and inputs against the task database and store even when it does not "
                        "exist yet (it is checked whenever it is reachable)")
    s.add_argument("--verdict-timeout", type=seconds, default=60.0, metavar="SECONDS",
                   help="wait this long for eas-control to accept or refuse the job (0: do not wait)")
    s.add_argument("--wait", action="store_true",
                   help="follow the job to its end (done, failed, running, time left), then print its results")
    s.add_argument("--wait-timeout", type=seconds, default=0.0, metavar="SECONDS",
                   help="with --wait: stop following after this long (0: until the job ends)")
    s.add_argument("--json", action="store_true")
    s.set_defaults(fn=cmd_submit)

    s = sub.add_parser("watch", help="manage watch rules (key prefix -> job template or task chain)")
    s.add_argument("action", choices=["add", "list", "remove"])
    s.add_argument("--prefix", default="inbox/")
    what = s.add_mutually_exclusive_group()
    what.add_argument("--job", help="job template (task-chain JSON) run for every object under the prefix "
                                    "(default: the standard path, ingest -> detrend -> planet_search -> vetting)")
    what.add_argument("--tasks", help=f"chain of task types, one input each (e.g. {DEFAULT_WATCH_TASKS})")
    s.add_argument("--per-star", action="store_true",
                   help="search each upload's star as a whole: ingest -> stitch (every segment of the star "
                        "ingested so far) -> detrend -> planet_search -> vetting")
    s.add_argument("--json", action="store_true")
    s.set_defaults(fn=cmd_watch)

    s = sub.add_parser("cancel", help="cancel a job: no new work starts, finished products stay")
    s.add_argument("job", type=row_id)
    s.add_argument("--json", action="store_true")
    s.set_defaults(fn=cmd_cancel)

    s = sub.add_parser("retry", help="retry the failed tasks of a job")
    s.add_argument("job", type=row_id)
    s.add_argument("--task", type=row_id, action="append", help="only this task (repeatable)")
    s.add_argument("--json", action="store_true")
    s.set_defaults(fn=cmd_retry)

    s = sub.add_parser("status", help="task counts per type and state")
    s.add_argument("--json", action="store_true")
    s.set_defaults(fn=cmd_status)

    s = sub.add_parser("serve", help="run one component's HTTP server (container entry point)")
    s.add_argument("component", choices=["control", "index", "adapter"])
    s.add_argument("--host", help="address to listen on (HOST, else 0.0.0.0)")
    s.add_argument("--port", type=whole(1, 65535, "a port"))
    s.set_defaults(fn=cmd_serve)

    s = sub.add_parser("db", help="upgrade the task database schema; back it up or restore it")
    s.add_argument("action", choices=["upgrade", "backup", "restore"])
    s.add_argument("file", nargs="?", help="backup file (backup, restore)")
    s.add_argument("--force", action="store_true", help="restore over a database that holds data")
    s.add_argument("--json", action="store_true")
    s.set_defaults(fn=cmd_db)

    s = sub.add_parser("validate", help="validate Knative manifests offline")
    s.add_argument("paths", nargs="*")
    s.set_defaults(fn=cmd_validate)

    import importlib
    for name in COMMAND_MODULES:
        importlib.import_module(name).add_commands(sub)
    return p


def main(argv: list[str] | None = None) -> int:
    """The ``eas`` command. Output into a closed pipe (``eas jobs | head``) ends it quietly
    with status 141 (128 + SIGPIPE, as a shell reports a tool the signal stopped), the way
    the Python documentation recommends (the "Note on SIGPIPE" of the signal module): the
    rest of stdout goes to /dev/null, so the flush at exit cannot fail again."""
    try:
        status = _main(argv)
        sys.stdout.flush()      # inside the try: buffered output meets the closed pipe here
        return status
    except BrokenPipeError:
        devnull = os.open(os.devnull, os.O_WRONLY)
        os.dup2(devnull, sys.stdout.fileno())
        return 141


def _main(argv: list[str] | None) -> int:
    from eas_runtime.discovery import NoPipeline
    args = build_parser().parse_args(argv)
    try:
        level = (args.log_level or Settings.load().log_level).upper()
    except SettingsError as exc:
        print(f"eas: {exc}", file=sys.stderr)
        return 2
    logging.basicConfig(level=level, format="%(asctime)s %(levelname)s %(name)s: %(message)s")
    logging.getLogger("alembic").setLevel(logging.WARNING)   # one line per migration step is noise
    try:
        return args.fn(args)
    except NoPipeline as exc:       # nothing to work on: like a database that is down, status 1
        print(f"eas {args.command}: {exc}", file=sys.stderr)
        return 1
    except SettingsError as exc:
        print(f"eas {args.command}: {exc}", file=sys.stderr)
        return 2
    except Exception as exc:
        problem = _database_problem(exc)
        if problem is None:
            raise
        print(f"eas {args.command}: {problem}", file=sys.stderr)
        return 1


def _database_problem(exc: Exception) -> str | None:
    """What to tell the user when a command found no usable task database (the runtime never
    ran on this home, or the database is down), else None: those are not bugs to trace back."""
    from sqlalchemy.exc import OperationalError, ProgrammingError

    from eas_runtime.db.session import DatabaseUnavailable
    if isinstance(exc, DatabaseUnavailable):
        return str(exc)
    if isinstance(exc, (OperationalError, ProgrammingError)):
        text = str(exc.orig).lower()
        if "no such table" in text or "does not exist" in text:
            return "the database has no pipeline schema yet (start the pipeline with `eas up`, or run `eas db upgrade`)"
    return None


if __name__ == "__main__":
    sys.exit(main())
