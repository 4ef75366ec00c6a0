"""Functions: every Knative Service the repository describes, and what runs of it now.

The state comes from where the site runs:

* the embedded runtime: its local serving's processes, read from the status file it writes
  (:mod:`eas_runtime.site.serving_status` explains why a file);
* a cluster: the Knative Services through the ``kubernetes`` client
  (:func:`eas_runtime.deploy.status.knative_service_status`: Ready condition, latest ready
  revision, replicas, scale bounds);
* neither: the page lists the descriptors and says why no state is shown.
"""
from __future__ import annotations

from pathlib import Path

from flask import Blueprint, jsonify, render_template

from eas_runtime.settings import PROJECT_ROOT
from eas_runtime.site._request import install, resources
from eas_runtime.site.serving_status import ServingStatusUnavailable, read_status

bp = install(Blueprint("functions", __name__))
#: The namespace the manifests of knative/base deploy to.
NAMESPACE = "eas"
#: Seconds a page waits for the cluster's API server.
CLUSTER_TIMEOUT_S = 3.0
_cache: dict[tuple, tuple[list[dict], str | None]] = {}


def _descriptor_dict(d) -> dict:
    return {"name": d.name, "component": d.component, "description": d.description,
            "task_types": list(d.task_types), "path": d.path,
            "cpu_request": d.cpu_request, "cpu_limit": d.cpu_limit,
            "memory_request": d.memory_request, "memory_limit": d.memory_limit, "gpu": d.gpu,
            "min_scale": d.min_scale, "max_scale": d.max_scale, "concurrency": d.concurrency,
            "timeout_s": d.timeout_s}


def descriptors(root: Path = PROJECT_ROOT) -> tuple[list[dict], str | None]:
    """The platform services and every ``functions/*/func.yaml``, as dicts, and the problem
    if they cannot be read. Read again only when a descriptor file changes."""
    from eas_runtime.deploy.descriptor import (
        PLATFORM_FILE,
        DescriptorError,
        function_descriptor_paths,
        load_all,
    )
    paths = [PLATFORM_FILE, *function_descriptor_paths(root)]
    stamp = tuple((str(p), p.stat().st_mtime_ns) for p in paths if p.exists())
    if stamp not in _cache:
        try:
            _cache.clear()
            _cache[stamp] = ([_descriptor_dict(d) for d in load_all(root)], None)
        except DescriptorError as exc:
            _cache[stamp] = ([], f"the function descriptors cannot be read: {exc}")
    return _cache[stamp]


def _cluster(expected: list[str]) -> list[dict]:
    from eas_runtime.deploy.status import api_client_from_config, knative_service_status
    return knative_service_status(api_client_from_config(), NAMESPACE, expected=expected,
                                  timeout_s=CLUSTER_TIMEOUT_S)


def functions_data() -> dict:
    """``mode`` (embedded, cluster or null), ``runtime`` (the embedded runtime's pid and
    report time), ``unavailable`` (why each source gave nothing), and ``functions``: one entry
    per Service with its ``descriptor`` and its ``embedded`` or ``cluster`` state."""
    from eas_runtime.deploy.status import ClusterUnavailable
    known, problem = descriptors()
    out: dict = {"mode": None, "runtime": None, "unavailable": {}, "descriptor_error": problem}
    rows = {d["name"]: {"name": d["name"], "descriptor": d, "embedded": None, "cluster": None}
            for d in known}
    try:
        status = read_status(resources().settings.home_path)
        out["mode"] = "embedded"
        out["runtime"] = {k: status[k] for k in ("pid", "written_at", "age_s")}
        for service in status["services"]:
            rows.setdefault(service["name"], {"name": service["name"], "descriptor": None,
                                              "cluster": None})["embedded"] = service
    except ServingStatusUnavailable as exc:
        out["unavailable"]["embedded"] = str(exc)
        try:
            for service in _cluster(sorted(rows)):
                rows.setdefault(service["name"], {"name": service["name"], "descriptor": None,
                                                  "embedded": None})["cluster"] = service
            out["mode"] = "cluster"
        except ClusterUnavailable as exc2:
            out["unavailable"]["cluster"] = str(exc2)
    out["functions"] = [rows[name] for name in sorted(rows)]
    return out


@bp.get("/functions")
def functions():
    return render_template("functions.html", data=functions_data())


@bp.get("/api/functions")
def api_functions():
    return jsonify(functions_data())
