"""Subcommands ``eas deploy ...``, ``eas cluster status`` and ``eas storage init``.

The justfile recipes (``generate``, ``images``, ``deploy``, ``deploy-dry-run``, ``undeploy``,
``logs``, ``invoke``) call these; ``--dry-run`` prints the plan as a shell script and needs no
kn, kubectl or container engine.
"""
from __future__ import annotations

import argparse
import json
import shutil
import sys
from pathlib import Path

from .steps import PlanError, Step, missing_tools, run, script, subprocess_runner


def _root(args) -> Path:
    root = Path(args.root).resolve()
    if not (root / "functions").is_dir() or not (root / "knative").is_dir():
        raise SystemExit(f"eas deploy: {root} is not the repository (no functions/ and "
                         "knative/ folders): run it from the repository root or give --root")
    return root


def _fail(message: str) -> int:
    print(f"eas: {message}", file=sys.stderr)
    return 2


def _execute(steps: list[Step], args, header: str = "") -> int:
    """Print the plan (``--dry-run``) or run it."""
    if args.dry_run:
        sys.stdout.write(script(steps, header))
        return 0
    missing = missing_tools(steps)
    if missing:
        return _fail(f"{', '.join(missing)} not found on PATH; install it (kn: "
                     "https://knative.dev/docs/client/install-kn/), use --no-kn for kubectl "
                     "only, or look at the plan with --dry-run")
    try:
        run(steps, subprocess_runner(str(_root(args))))
    except PlanError as exc:
        return _fail(str(exc))
    return 0


# ---------------------------------------------------------------------- deploy
def cmd_generate(args) -> int:
    from . import generate
    from .descriptor import DescriptorError
    root = _root(args)
    try:
        if args.check:
            stale = generate.stale(root)
            for line in stale:
                print(line)
            if stale:
                print("generated files are stale: run `just generate` and commit the result",
                      file=sys.stderr)
            return 1 if stale else 0
        report = generate.write(root)
    except (DescriptorError, generate.GenerateError) as exc:
        return _fail(f"deploy generate:\n{exc}")
    for rel in report.written:
        print(f"wrote   {rel}")
    for rel in report.removed:
        print(f"removed {rel}")
    for warning in report.warnings:
        print(f"note    {warning}")
    print(f"{len(report.written)} written, {len(report.removed)} removed, "
          f"{len(report.unchanged)} unchanged")
    return 0


def cmd_images(args) -> int:
    from . import images
    from .plan import Options
    root = _root(args)
    tag = Options(root, tag=args.tag).resolved_tag()
    if args.dry_run:      # no engine needed: name the one that would be tried first
        engine = args.engine or next((e for e in images.ENGINES if shutil.which(e)), "docker")
    else:
        try:
            engine = images.find_engine(args.engine)
        except images.EngineError as exc:
            return _fail(str(exc))
    try:
        steps = images.images_plan(root, args.registry, tag, engine, args.only, args.push,
                                   args.kind_load)
    except ValueError as exc:
        return _fail(str(exc))
    return _execute(steps, args, f"EAS images: {args.registry}/<name>:{tag}, built with "
                                 f"{engine}")


def _options(args):
    from .plan import Options
    return Options(_root(args), overlay=args.overlay, registry=args.registry, tag=args.tag,
                   use_kn=not args.no_kn, only=tuple(args.only), wait_s=args.wait_s)


def cmd_apply(args) -> int:
    from .plan import PlanInputError, deploy_plan, header
    from .routing import check_routing
    opts = _options(args)
    try:
        steps = deploy_plan(opts)
    except (PlanInputError, ValueError) as exc:
        return _fail(str(exc))
    from eas_runtime.manifests import load_documents
    docs = [d for _, _, d in load_documents([opts.root / "knative/base",
                                             opts.root / "broker_config"])]
    problems = check_routing(docs)
    if problems:
        return _fail("the manifests route task types wrongly (run `just generate`):\n"
                     + "\n".join(problems))
    return _execute(steps, args, header(opts))


def cmd_delete(args) -> int:
    from .plan import PlanInputError, undeploy_plan
    opts = _options(args)
    try:
        steps = undeploy_plan(opts, purge=args.purge)
    except (PlanInputError, ValueError) as exc:
        return _fail(str(exc))
    what = "everything, storage and data included" if args.purge else \
        "Triggers, Services, Broker and sources (storage and data stay; --purge removes them)"
    return _execute(steps, args, f"EAS undeploy: {what}")


def cmd_logs(args) -> int:
    from .plan import PlanInputError, logs_step
    try:
        step = logs_step(_root(args), args.function, args.follow, args.tail)
    except PlanInputError as exc:
        return _fail(str(exc))
    return _execute([step], args)


def cmd_invoke(args) -> int:
    from .plan import PlanInputError, invoke_step, sample_event
    root = _root(args)
    try:
        if args.url and not args.dry_run:
            import requests
            _name, headers, body = sample_event(root, args.function, args.task_id,
                                                args.attempt_id)
            response = requests.post(args.url, headers=headers, data=body, timeout=60)
            print(f"HTTP {response.status_code}\n{response.text}", end="")
            return 0 if response.status_code < 500 else 1
        step = invoke_step(root, args.function, args.task_id, args.attempt_id)
    except PlanInputError as exc:
        return _fail(str(exc))
    return _execute([step], args)


# ---------------------------------------------------------------------- cluster, storage
def cmd_cluster_status(args) -> int:
    from .status import (
        ClusterUnavailable,
        api_client_from_config,
        format_status,
        knative_service_status,
    )
    expected = None
    if not args.no_expected:
        from eas_runtime.manifests import ManifestError

        from .plan import repository_services
        try:
            expected = sorted(repository_services(Path(args.root)))
        except ManifestError:   # outside the repository: list what the cluster has
            expected = None
    try:
        client = api_client_from_config(args.kubeconfig, args.context)
        rows = knative_service_status(client, args.namespace, expected=expected)
    except ClusterUnavailable as exc:
        return _fail(f"cluster status: {exc}")
    if args.json:
        print(json.dumps(rows, indent=2))
    elif not rows:
        print(f"no Knative Services in namespace {args.namespace}")
    else:
        sys.stdout.write(format_status(rows))
    return 0 if rows and all(r["state"] == "Ready" for r in rows) else 1


def cmd_storage_init(args) -> int:
    from eas_runtime._cli_base import settings as _settings

    from .storage_init import StorageInitError, init_storage
    try:
        init_storage(_settings(args), wait_s=args.wait_s, database=not args.no_database,
                     store=not args.no_store, say=lambda line: print(line, flush=True))
    except StorageInitError as exc:
        return _fail(f"storage init: {exc}")
    return 0


# ---------------------------------------------------------------------- parser
def _common(p: argparse.ArgumentParser, dry_run: bool = True) -> None:
    p.add_argument("--root", default=".", help="the repository (default: the current folder)")
    if dry_run:
        p.add_argument("--dry-run", action="store_true",
                       help="print the commands and manifests as a shell script; run nothing")


def _target(p: argparse.ArgumentParser) -> None:
    from .plan import DEFAULT_REGISTRY, OVERLAYS
    p.add_argument("--overlay", choices=OVERLAYS, default="laptop",
                   help="kustomize overlay of knative/ (default: laptop)")
    p.add_argument("--registry", default=DEFAULT_REGISTRY,
                   help=f"image registry and prefix (default: {DEFAULT_REGISTRY})")
    p.add_argument("--tag", default="", help="image tag (default: the git commit, with a "
                   "hash of uncommitted changes)")
    p.add_argument("--only", action="append", default=[], metavar="SERVICE",
                   help="only this Service and its Triggers (name or task type; repeatable)")
    p.add_argument("--no-kn", action="store_true", help="kubectl for everything")
    p.add_argument("--wait-s", type=int, default=600, help="how long to wait for readiness")


def add_commands(sub) -> None:
    deploy = sub.add_parser("deploy", help="Knative: generate manifests, build images, deploy")
    dsub = deploy.add_subparsers(dest="deploy_command", required=True)

    s = dsub.add_parser("generate", help="write knative/base, broker_config/triggers and the "
                        "Containerfiles from the descriptors")
    _common(s, dry_run=False)
    s.add_argument("--check", action="store_true", help="exit 1 when a generated file is "
                   "stale; write nothing")
    s.set_defaults(fn=cmd_generate)

    from .plan import DEFAULT_REGISTRY
    s = dsub.add_parser("images", help="build the base image and every function's image")
    _common(s)
    s.add_argument("--registry", default=DEFAULT_REGISTRY)
    s.add_argument("--tag", default="")
    s.add_argument("--engine", choices=["docker", "podman"], help="default: the first that works")
    s.add_argument("--only", action="append", default=[], metavar="FUNCTION")
    s.add_argument("--push", action="store_true", help="push the images to the registry")
    s.add_argument("--kind-load", metavar="CLUSTER", help="load the images into a kind cluster")
    s.set_defaults(fn=cmd_images)

    s = dsub.add_parser("apply", help="deploy storage, eventing and services to the cluster")
    _common(s)
    _target(s)
    s.set_defaults(fn=cmd_apply)

    s = dsub.add_parser("delete", help="undeploy (storage stays unless --purge)")
    _common(s)
    _target(s)
    s.add_argument("--purge", action="store_true", help="also delete storage, data and the "
                   "namespace")
    s.set_defaults(fn=cmd_delete)

    s = dsub.add_parser("logs", help="logs of a deployed Service's replicas")
    _common(s)
    s.add_argument("function", help="Service, task type or component (verify, eas-verify, "
                   "control)")
    s.add_argument("-f", "--follow", action="store_true")
    s.add_argument("--tail", type=int, default=200)
    s.set_defaults(fn=cmd_logs)

    s = dsub.add_parser("invoke", help="POST a sample CloudEvent to a deployed Service")
    _common(s)
    s.add_argument("function")
    s.add_argument("--url", help="POST from here to this URL instead of from a pod in the "
                   "cluster")
    from .plan import SAMPLE_ID
    s.add_argument("--task-id", type=int, default=SAMPLE_ID,
                   help="task of the sample task.ready (default: an id no database has issued)")
    s.add_argument("--attempt-id", type=int, default=SAMPLE_ID)
    s.set_defaults(fn=cmd_invoke)

    cluster = sub.add_parser("cluster", help="the Knative deployment in a cluster")
    csub = cluster.add_subparsers(dest="cluster_command", required=True)
    s = csub.add_parser("status", help="Ready, revision, URL, replicas and scale bounds of "
                        "every Knative Service")
    _common(s, dry_run=False)
    s.add_argument("--namespace", default="eas")
    s.add_argument("--kubeconfig", help="default: $KUBECONFIG, else ~/.kube/config")
    s.add_argument("--context")
    s.add_argument("--json", action="store_true")
    s.add_argument("--no-expected", action="store_true",
                   help="do not report the repository's Services that the cluster lacks")
    s.set_defaults(fn=cmd_cluster_status)

    storage = sub.add_parser("storage", help="object store and task database set-up")
    ssub = storage.add_subparsers(dest="storage_command", required=True)
    s = ssub.add_parser("init", help="schema, bucket and bucket notification (idempotent)")
    s.add_argument("--wait-s", type=float, default=300.0,
                   help="how long to wait for PostgreSQL and MinIO")
    s.add_argument("--no-database", action="store_true")
    s.add_argument("--no-store", action="store_true")
    s.set_defaults(fn=cmd_storage_init)
