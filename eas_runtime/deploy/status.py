"""Knative Service status from a cluster, through the ``kubernetes`` client.

:func:`knative_service_status` lists the ``serving.knative.dev/v1`` Services of a namespace
(``CustomObjectsApi``) and their pods (``CoreV1Api``, label ``serving.knative.dev/service``) and
returns one plain dict per Service: Ready condition, latest ready revision, URL, current replicas
and the scale bounds of its template. ``eas cluster status`` prints them; the index site can
call the same function. Every way of not reaching the cluster (no kubeconfig, nothing listening,
credentials refused, Knative Serving not installed) is a :class:`ClusterUnavailable` whose
message says which.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Iterable, cast

SERVING = ("serving.knative.dev", "v1", "services")
SERVICE_LABEL = "serving.knative.dev/service"
MIN_SCALE = "autoscaling.knative.dev/min-scale"
MAX_SCALE = "autoscaling.knative.dev/max-scale"
TASK_LABEL = "eas.plato/task-type"


class ClusterUnavailable(RuntimeError):
    """No cluster could be asked; the message says why and what to check."""


def api_client_from_config(kubeconfig: str | None = None, context: str | None = None):
    """An ``ApiClient`` from the in-cluster service account (inside a pod) or a kubeconfig
    (``kubeconfig``, else ``$KUBECONFIG``, else ``~/.kube/config``)."""
    from kubernetes import client, config

    if kubeconfig is None and os.environ.get("KUBERNETES_SERVICE_HOST"):
        try:
            config.load_incluster_config()
            return client.ApiClient()
        except config.ConfigException:
            pass
    path = kubeconfig or os.environ.get("KUBECONFIG", "").split(os.pathsep)[0] \
        or str(Path.home() / ".kube" / "config")
    if not Path(path).expanduser().is_file():
        raise ClusterUnavailable(f"no kubeconfig at {path}: create a cluster (kind create "
                                 "cluster, minikube start, kn quickstart) or point KUBECONFIG "
                                 "at one")
    try:
        return config.new_client_from_config(config_file=path, context=context)
    except (config.ConfigException, ValueError, OSError) as exc:
        raise ClusterUnavailable(f"kubeconfig {path} is not usable: {exc}") from None


def _scale(annotations: dict, key: str) -> int | None:
    try:
        return int(annotations[key])
    except (KeyError, TypeError, ValueError):
        return None


_READY: dict[Any, bool] = {"True": True, "False": False}


def _condition(status: dict, kind: str) -> dict:
    return next((c for c in status.get("conditions") or [] if c.get("type") == kind), {})


def _pod_counts(pods: Iterable[Any]) -> dict[str, tuple[int, int]]:
    """service -> (running pods, ready pods); terminating pods do not count."""
    counts: dict[str, list[int]] = {}
    for pod in pods:
        meta, status = pod.metadata, pod.status
        service = (meta.labels or {}).get(SERVICE_LABEL)
        if not service or meta.deletion_timestamp is not None or status is None \
                or status.phase != "Running":
            continue
        entry = counts.setdefault(service, [0, 0])
        entry[0] += 1
        if any(c.type == "Ready" and c.status == "True" for c in status.conditions or []):
            entry[1] += 1
    return {k: (v[0], v[1]) for k, v in counts.items()}


def _row(item: dict, namespace: str, counts: dict[str, tuple[int, int]]) -> dict:
    meta, status = item.get("metadata") or {}, item.get("status") or {}
    template = (item.get("spec") or {}).get("template") or {}
    annotations = (template.get("metadata") or {}).get("annotations") or {}
    ready = _condition(status, "Ready")
    states: dict[Any, str] = {"True": "Ready", "False": "NotReady"}
    state = states.get(ready.get("status"), "Unknown")
    name = meta.get("name")
    running, ready_pods = counts.get(name, (0, 0)) if isinstance(name, str) else (0, 0)
    return {
        "name": name, "namespace": meta.get("namespace", namespace), "present": True,
        "ready": _READY.get(ready.get("status")), "state": state,
        "reason": ready.get("reason", ""), "message": ready.get("message", ""),
        "url": status.get("url", ""),
        "latest_ready_revision": status.get("latestReadyRevisionName", ""),
        "latest_created_revision": status.get("latestCreatedRevisionName", ""),
        "replicas": running, "ready_replicas": ready_pods,
        "min_scale": _scale(annotations, MIN_SCALE), "max_scale": _scale(annotations, MAX_SCALE),
        "task_type": (meta.get("labels") or {}).get(TASK_LABEL, ""),
        "generation": meta.get("generation"), "observed_generation": status.get(
            "observedGeneration"),
    }


def _missing(name: str, namespace: str) -> dict:
    return {"name": name, "namespace": namespace, "present": False, "ready": None,
            "state": "Missing", "reason": "NotDeployed",
            "message": f"no Knative Service {name} in namespace {namespace}", "url": "",
            "latest_ready_revision": "", "latest_created_revision": "", "replicas": 0,
            "ready_replicas": 0, "min_scale": None, "max_scale": None, "task_type": "",
            "generation": None, "observed_generation": None}


def knative_service_status(api_client=None, namespace: str = "eas",
                           expected: Iterable[str] | None = None,
                           timeout_s: float = 10.0) -> list[dict]:
    """One dict per Knative Service of ``namespace`` (sorted by name): ``name``, ``ready``
    (True/False/None), ``state`` (Ready, NotReady, Unknown, Missing), ``reason``, ``message``,
    ``url``, ``latest_ready_revision``, ``latest_created_revision``, ``replicas`` (running
    pods), ``ready_replicas``, ``min_scale``/``max_scale`` (None when unset), ``task_type``.
    Names in ``expected`` that the cluster lacks come back with ``state`` Missing. Raises
    :class:`ClusterUnavailable` when the cluster cannot be asked."""
    import urllib3
    from kubernetes import client
    from kubernetes.client.exceptions import ApiException

    api = api_client if api_client is not None else api_client_from_config()
    host = getattr(api.configuration, "host", "?")
    try:
        # The client annotates a custom object listing as object; it is the decoded JSON.
        listing = cast(dict[str, Any], client.CustomObjectsApi(api).list_namespaced_custom_object(
            *SERVING[:2], namespace, SERVING[2], _request_timeout=timeout_s))
        pods = client.CoreV1Api(api).list_namespaced_pod(
            namespace, label_selector=SERVICE_LABEL, _request_timeout=timeout_s)
    except ApiException as exc:
        if exc.status == 404:
            raise ClusterUnavailable(f"the cluster at {host} has no serving.knative.dev/v1 "
                                     "Services: is Knative Serving installed (kn quickstart)?"
                                     ) from None
        if exc.status in (401, 403):
            raise ClusterUnavailable(f"the cluster at {host} refused the request "
                                     f"({exc.status} {exc.reason}): check the kubeconfig's "
                                     "credentials and RBAC") from None
        raise ClusterUnavailable(f"the cluster at {host} answered {exc.status} "
                                 f"{exc.reason}") from None
    except (urllib3.exceptions.HTTPError, OSError) as exc:
        raise ClusterUnavailable(f"no cluster reachable at {host}: {exc}") from None
    counts = _pod_counts(pods.items or [])
    rows = {r["name"]: r for r in (_row(i, namespace, counts) for i in listing.get("items") or [])}
    for name in expected or ():
        rows.setdefault(name, _missing(name, namespace))
    return [rows[name] for name in sorted(rows)]


def format_status(rows: list[dict]) -> str:
    """A table: one line per Service, then the reason of every Service that is not Ready."""
    header = ("SERVICE", "READY", "REVISION", "REPLICAS", "SCALE", "URL")
    lines = []
    for r in rows:
        scale = ("" if r["min_scale"] is None and r["max_scale"] is None else
                 f"{r['min_scale'] or 0}..{r['max_scale'] or 'inf'}")
        lines.append((r["name"], {"Ready": "True", "NotReady": "False"}.get(r["state"],
                                                                             r["state"]),
                      r["latest_ready_revision"] or "-",
                      f"{r['replicas']}" + (f" ({r['ready_replicas']} ready)"
                                            if r["ready_replicas"] != r["replicas"] else ""),
                      scale or "-", r["url"] or "-"))
    widths = [max(len(str(x)) for x in col) for col in zip(header, *lines)]
    text = "\n".join("  ".join(str(x).ljust(w) for x, w in zip(row, widths)).rstrip()
                     for row in [header, *lines])
    problems = [f"{r['name']}: {r['reason'] or r['state']}: {r['message']}".rstrip(": ")
                for r in rows if r["state"] != "Ready"]
    return text + ("\n\n" + "\n".join(problems) if problems else "") + "\n"
