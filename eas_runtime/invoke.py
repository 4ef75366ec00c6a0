"""``eas invoke``: run one science function on local files, without the pipeline.

    eas invoke transit_search_bls_reference --input lightcurve=star.fits \\
        --param lc_duration=60 --param 'search_settings={"period_min": 1}' --out results/

Without ``--url`` the task runs in this process against a throw-away pipeline (SQLite database
and local store in a temporary folder): a job of one task is created, the input files are put in
the store (with the metadata of a prototype ``<file>.metadata.cfg`` beside one, when present),
the task is claimed and the function's own runner executes the attempt exactly as a
``task.ready`` event would, through the same wrapper (parameter checks, QC, product records).
The result metadata (with units, the error if it failed, and the output products) is printed as
JSON and the output products are copied to ``--out``.

With ``--url`` the same ``task.ready`` CloudEvent is POSTed to a function already running in a
pipeline: the job is then created in *that* pipeline's database and the inputs put in its store,
so the command needs the pipeline's settings (``eas --database-url ... --store ...`` or the
``EAS_*`` environment, as every ``eas`` command); the function answers when the attempt is over
and the results are read back from the database and the store.

``--param KEY=VALUE`` values are parsed as JSON when they can be (numbers, true/false, objects,
lists), else kept as strings; ``--params FILE`` reads a JSON object of parameters first.
Exit status: 0 when the task finished, 1 when it failed, 2 for a usage error.
"""
from __future__ import annotations

import argparse
import json
import sys
import tempfile
import uuid
from pathlib import Path
from typing import Any

FUNCTIONS_DIR = "functions"


class InvokeError(ValueError):
    """A usage problem (unknown task type, missing file, unparsable parameter)."""


# ---------------------------------------------------------------------- arguments
def parse_value(text: str) -> Any:
    """JSON when it parses (``3``, ``2.5``, ``true``, ``{"a": 1}``), else the string itself."""
    try:
        return json.loads(text)
    except ValueError:
        return text


def parse_pairs(pairs: list[str] | None, what: str) -> dict[str, str]:
    out: dict[str, str] = {}
    for pair in pairs or []:
        key, sep, value = pair.partition("=")
        if not sep or not key:
            raise InvokeError(f"{what} {pair!r} must be NAME=VALUE")
        out[key] = value
    return out


def parameters(args) -> dict[str, Any]:
    params: dict[str, Any] = {}
    if args.params:
        try:
            loaded = json.loads(Path(args.params).read_text())
        except (OSError, ValueError) as exc:
            raise InvokeError(f"cannot read parameters from {args.params}: {exc}") from None
        if not isinstance(loaded, dict):
            raise InvokeError(f"{args.params} must hold a JSON object of parameters")
        params.update(loaded)
    params.update({k: parse_value(v) for k, v in parse_pairs(args.param, "--param").items()})
    return params


def function_folder(task_type: str, root: Path | None = None) -> Path:
    """The folder of the function serving ``task_type`` (its name, or a func.yaml listing it)."""
    from eas_runtime.settings import PROJECT_ROOT

    base = (root or PROJECT_ROOT) / FUNCTIONS_DIR
    if (base / task_type / "main.py").is_file():
        return base / task_type
    try:
        from eas_runtime.deploy.descriptor import load_all
        for desc in load_all(root or PROJECT_ROOT):
            if task_type in (desc.task_types or ()) and desc.folder:
                return (root or PROJECT_ROOT) / desc.folder
    except Exception:  # noqa: BLE001 - the error below lists what exists
        pass
    known = sorted(p.name for p in base.iterdir() if (p / "main.py").is_file())
    raise InvokeError(f"no function serves task type {task_type!r}; functions: {known}")


def sample_runs(task_type: str, root: Path | None = None) -> list[dict[str, Any]]:
    """The sample invocations of a function (``functions/<task_type>/sample/invoke.json``): a
    list of ``{"inputs": {name: path}, "params": {...}}``, a run's ``params_file`` read under
    its own ``params``."""
    base = function_folder(task_type, root) / "sample"
    out = []
    for run in json.loads((base / "invoke.json").read_text()):
        params = dict(run.get("params", {}))
        if "params_file" in run:
            params = {**json.loads((base / run["params_file"]).read_text()), **params}
        out.append({"inputs": {k: base / v for k, v in run.get("inputs", {}).items()},
                    "params": params})
    return out


def load_runner(task_type: str, resources):
    """A TaskRunner of the function serving ``task_type``, bound to ``resources``."""
    import importlib

    from eas_runtime.wrapper import TaskRunner

    folder = function_folder(task_type)
    module = importlib.import_module(f"{FUNCTIONS_DIR}.{folder.name}.main")
    handle = getattr(module, "handle")
    runner = handle.runner
    if task_type not in runner.task_types:
        raise InvokeError(f"{folder}/main.py serves {list(runner.task_types)}, not {task_type!r}")
    return TaskRunner(runner.task_types, runner.fn, resources)


# ---------------------------------------------------------------------- the task
def _register_input(resources, key: str, path: Path, metadata: dict[str, Any]) -> None:
    """Put ``path`` in the store as ``key`` and record a QC-passed version with metadata."""
    from sqlalchemy import select

    from eas_runtime.db import metadata as md
    from eas_runtime.db.models import ProductVersion
    from eas_runtime.db.products import ensure_product

    info = resources.store.put_file(key, path)
    with resources.db.session() as s:
        product = ensure_product(s, key, semantic_type="input")
        version = s.scalar(select(ProductVersion).where(ProductVersion.product_id == product.id,
                                                        ProductVersion.etag == info.etag))
        if version is None:
            version = ProductVersion(product_id=product.id, etag=info.etag, size=info.size,
                                     object_version=info.version_id, passed_qc=True)
            s.add(version)
            s.flush()
        if metadata:
            md.set_metadata(s, "version", version.id, metadata)


def _input_metadata(path: Path) -> dict[str, Any]:
    cfg = Path(f"{path}.metadata.cfg")
    if not cfg.is_file():
        return {}
    from eas_runtime.lightcurve import read_metadata_cfg
    return read_metadata_cfg(cfg)


def create_task(resources, task_type: str, inputs: dict[str, Path], params: dict[str, Any],
                outputs: dict[str, str], prefix: str):
    """Job of one task in ``resources``' pipeline, inputs stored under ``prefix``; claimed."""
    from sqlalchemy import select

    from eas_runtime.control import scheduler
    from eas_runtime.db.models import Task
    from eas_runtime.jobs import JobError, compile_job, insert_job

    files = {}
    for name, path in inputs.items():
        files[name] = f"inputs/{name}/{path.name}"
        _register_input(resources, f"{prefix}/{files[name]}", path, _input_metadata(path))
    reserved = sorted(set(params) & {"task", "name", "inputs", "outputs", "job_name",
                                     "working_directory", "task_list", "requires_metadata_from"})
    if reserved:
        raise InvokeError(f"{reserved} are not task parameters (they are job keywords)")
    spec = {"job_name": f"eas invoke {task_type}", "working_directory": prefix,
            "task_list": [{"task": task_type, "name": task_type, "inputs": files,
                           "outputs": dict(outputs), **params}]}
    try:
        compiled = compile_job(spec)
        with resources.db.session() as s:
            job, _ = insert_job(s, compiled, source_event=None, spec=spec,
                                stat=resources.store.stat)
            s.flush()
            task_id = s.scalar(select(Task.id).where(Task.job_id == job.id,
                                                     Task.task_type == task_type))
    except JobError as exc:
        raise InvokeError(str(exc)) from None
    ready = scheduler.claim(resources.db, task_id)
    if ready is None:
        raise InvokeError(f"task {task_id} could not be claimed")
    return ready


def report(resources, ready, out_dir: Path | None) -> dict[str, Any]:
    """What the attempt recorded, as JSON-ready data; output products copied to ``out_dir``."""
    from sqlalchemy import select

    from eas_runtime.db import metadata as md
    from eas_runtime.db.models import (Attempt, LogMessage, MetadataItem, Product,
                                       ProductVersion, Task)

    with resources.db.read() as s:
        attempt = s.get(Attempt, ready.attempt_id)
        task = s.get(Task, ready.task_id)
        meta = md.get_metadata(s, "attempt", attempt.id)
        units = {k: u for k, u in s.execute(select(MetadataItem.key, MetadataItem.unit).where(
            MetadataItem.owner_kind == "attempt", MetadataItem.owner_id == attempt.id)) if u}
        rows = s.execute(select(Product.key, Product.semantic_type, ProductVersion.passed_qc,
                                ProductVersion.id)
                         .join(ProductVersion, ProductVersion.product_id == Product.id)
                         .where(ProductVersion.attempt_id == attempt.id)
                         .order_by(Product.key)).all()
        outputs = [{"key": key, "semantic_type": kind, "passed_qc": bool(passed),
                    "metadata": md.get_metadata(s, "version", vid)}
                   for key, kind, passed, vid in rows]
        logs = [f"{m.severity} {m.text}" for m in s.scalars(
            select(LogMessage).where(LogMessage.attempt_id == attempt.id).order_by(LogMessage.id))]
        result = {"task_type": task.task_type, "task_id": task.id, "attempt_id": attempt.id,
                  "state": task.state, "error_kind": attempt.error_kind or None,
                  "error": (attempt.error_text or "").strip() or None,
                  "metadata": meta, "units": units, "outputs": outputs, "log": logs,
                  "wall_s": attempt.wall_s}
    if out_dir is not None:
        out_dir.mkdir(parents=True, exist_ok=True)
        for item in outputs:
            dest = out_dir / Path(item["key"]).name
            resources.store.get_file(item["key"], dest)
            item["file"] = str(dest)
    return result


def run_local(task_type: str, inputs: dict[str, Path], params: dict[str, Any],
              outputs: dict[str, str], out_dir: Path | None) -> dict[str, Any]:
    """Run the task in this process against a throw-away pipeline in a temporary folder."""
    from eas_runtime.resources import Resources
    from eas_runtime.settings import Settings

    with tempfile.TemporaryDirectory(prefix="eas-invoke-") as tmp:
        settings = Settings.load(environ={}, home=tmp, store="local")
        resources = Resources(settings, send=lambda event: None)
        resources.db.create_schema()
        runner = load_runner(task_type, resources)
        ready = create_task(resources, task_type, inputs, params, outputs, "invoke")
        runner.run(ready.task_id, ready.attempt_id)
        result = report(resources, ready, out_dir)
        resources.db.dispose()
        return result


def run_remote(url: str, settings, task_type: str, inputs: dict[str, Path],
               params: dict[str, Any], outputs: dict[str, str],
               out_dir: Path | None, mode: str = "binary") -> dict[str, Any]:
    """POST the task's ``task.ready`` event to the function at ``url`` of a running pipeline
    whose database and store ``settings`` name."""
    import requests

    from eas_runtime import events, internal_auth
    from eas_runtime.resources import Resources

    resources = Resources(settings, send=lambda event: None)
    ready = create_task(resources, task_type, inputs, params, outputs,
                        f"invoke/{uuid.uuid4().hex[:12]}")
    headers, body = events.to_http(ready.event(), mode)
    headers.update(internal_auth.bearer(settings.internal_token))
    try:
        answer = requests.post(url, headers=headers, data=body, timeout=3600)
    except requests.RequestException as exc:
        raise InvokeError(f"cannot reach the function at {url}: {exc}") from None
    result = report(resources, ready, out_dir)
    result["http_status"] = answer.status_code
    return result


# ---------------------------------------------------------------------- command line
def cmd_invoke(args) -> int:
    try:
        params = parameters(args)
        inputs = {name: Path(value) for name, value in parse_pairs(args.input, "--input").items()}
        for name, path in inputs.items():
            if not path.is_file():
                raise InvokeError(f"input {name!r}: no such file: {path}")
        outputs = parse_pairs(args.output, "--output")
        out_dir = Path(args.out) if args.out else None
        if args.url:
            from eas_runtime._cli_base import settings as _settings
            result = run_remote(args.url, _settings(args), args.task_type, inputs, params,
                                outputs, out_dir)
        else:
            result = run_local(args.task_type, inputs, params, outputs, out_dir)
    except InvokeError as exc:
        print(f"eas invoke: {exc}", file=sys.stderr)
        return 2
    print(json.dumps(result, indent=2, default=str))
    if result["state"] != "done":
        print(f"eas invoke: {args.task_type} failed ({result.get('error_kind') or 'error'}): "
              f"{cause(result.get('error') or '')}", file=sys.stderr)
    return 0 if result["state"] == "done" else 1


def cause(error_text: str) -> str:
    """The one line that says why (as the site shows it: diagnostics.errors.error_cause)."""
    from eas_runtime.diagnostics.errors import error_cause
    return error_cause(error_text) or "(no error text)"


def add_commands(subparsers) -> None:
    s = subparsers.add_parser(
        "invoke", help="run one science function on local files (throw-away pipeline)",
        description=__doc__.split("\n\n")[1], formatter_class=argparse.RawDescriptionHelpFormatter)
    s.add_argument("task_type", help="task type, e.g. transit_search_tls")
    s.add_argument("--input", action="append", metavar="NAME=FILE",
                   help="an input file under its semantic name (repeatable)")
    s.add_argument("--param", action="append", metavar="KEY=VALUE",
                   help="a parameter; the value is JSON when it parses (repeatable)")
    s.add_argument("--params", metavar="FILE", help="a JSON object of parameters")
    s.add_argument("--output", action="append", metavar="NAME=FILENAME",
                   help="file name of an output (default: chosen by the function)")
    s.add_argument("--out", metavar="DIR", help="copy the output products to this folder")
    s.add_argument("--url", help="POST the event to this running function instead (uses the "
                                 "pipeline's database and store: --database-url, --store...)")
    s.set_defaults(fn=cmd_invoke)
