"""Knative Serving ``Service`` documents, reduced to what the embedded runtime needs."""
from __future__ import annotations

import dataclasses
import math
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Callable, Iterable, Mapping

from eas_runtime.settings import Settings

API_VERSION = "serving.knative.dev/v1"
MIN_SCALE = "autoscaling.knative.dev/min-scale"
MAX_SCALE = "autoscaling.knative.dev/max-scale"
#: Deprecated spellings that Knative still accepts.
_ALIASES = {MIN_SCALE: "autoscaling.knative.dev/minScale",
            MAX_SCALE: "autoscaling.knative.dev/maxScale"}


class ServiceSpecError(ValueError):
    """A Service document cannot be run locally; the message names the service and field."""


@dataclass(frozen=True)
class ServiceSpec:
    """One Knative Service as the local activator runs it.

    ``max_scale`` is the effective bound: the manifest's ``max-scale`` (0 = unlimited) capped by
    ``settings.replica_limit``, and by 1 when the service has a fixed port. Without an explicit
    ``max_replicas`` the limit is the replicas whose ``resources.requests.cpu`` fit this
    machine's cores (at least one), as a node of its size would schedule them: two replicas of
    a search that requests 2 CPUs on 2 cores would each get half of what it was sized for.
    """

    name: str
    command: tuple[str, ...]
    args: tuple[str, ...] = ()
    env: Mapping[str, str] = field(default_factory=dict)
    #: Requests a replica serves at once; 0 = unlimited (Knative's default).
    container_concurrency: int = 0
    min_scale: int = 0
    max_scale: int = 1
    #: ``spec.template.spec.timeoutSeconds``; None when the manifest does not set it.
    timeout_s: float | None = None
    #: Fixed loopback port (one replica only), or None for a free port per replica.
    port: int | None = None
    #: The container's ``resources.limits.memory`` in bytes; None when the manifest sets none.
    memory_limit_bytes: int | None = None
    #: The container's ``resources.requests.cpu`` [cores]; 0 when the manifest sets none.
    cpu_request: float = 0.0

    @property
    def argv(self) -> list[str]:
        return [*self.command, *self.args]


def is_service(doc: Any) -> bool:
    return (isinstance(doc, Mapping) and doc.get("kind") == "Service"
            and doc.get("apiVersion") == API_VERSION)


def _scale(name: str, annotations: Mapping[str, Any], key: str) -> int:
    raw = annotations.get(key, annotations.get(_ALIASES[key]))
    if raw is None or raw == "":
        return 0
    try:
        value = int(str(raw))
    except ValueError:
        raise ServiceSpecError(f"Service {name}: annotation {key}={raw!r} is not an integer") from None
    if value < 0:
        raise ServiceSpecError(f"Service {name}: annotation {key}={raw!r} is negative")
    return value


def _quantity(name: str, container: Mapping[str, Any], part: str, resource: str,
              convert: Callable[[float], float] = float) -> float | None:
    """The container's ``resources.<part>.<resource>`` (``limits.memory``, ``requests.cpu``) as
    ``convert`` of its Kubernetes quantity; None when the manifest sets none."""
    raw = ((container.get("resources") or {}).get(part) or {}).get(resource)
    if raw is None or raw == "":
        return None
    from eas_runtime.deploy.descriptor import parse_quantity
    try:
        number = parse_quantity(str(raw))
    except ValueError as exc:
        raise ServiceSpecError(f"Service {name}: resources.{part}.{resource}: {exc}") from None
    if not math.isfinite(number):
        raise ServiceSpecError(f"Service {name}: resources.{part}.{resource}={raw!r} is not a finite quantity")
    value = convert(number)
    if value <= 0:
        raise ServiceSpecError(f"Service {name}: resources.{part}.{resource}={raw!r} is not positive")
    return value


def spec_from_document(doc: Mapping[str, Any], settings: Settings,
                       port: int | None = None) -> ServiceSpec:
    """Reduce a ``serving.knative.dev/v1`` Service document to a :class:`ServiceSpec`."""
    name = (doc.get("metadata") or {}).get("name")
    if not name:
        raise ServiceSpecError("Service document without metadata.name")
    template = (doc.get("spec") or {}).get("template") or {}
    annotations = (template.get("metadata") or {}).get("annotations") or {}
    pod = template.get("spec") or {}
    containers = pod.get("containers") or []
    if not containers:
        raise ServiceSpecError(f"Service {name}: spec.template.spec.containers is empty")
    # With sidecars, the serving container is the one that declares a port.
    container = next((c for c in containers if c.get("ports")), containers[0])
    command = [str(c) for c in container.get("command") or []]
    if not command:
        raise ServiceSpecError(
            f"Service {name}: the container has no command; the embedded runtime cannot run "
            "an image's entrypoint")
    env = {}
    for entry in container.get("env") or []:
        # Only literal values: valueFrom (secrets, config maps, field refs) exists only in a cluster.
        if "valueFrom" in entry or "name" not in entry:
            continue
        env[str(entry["name"])] = str(entry.get("value", ""))
    concurrency = int(pod.get("containerConcurrency") or 0)
    if concurrency < 0:
        raise ServiceSpecError(f"Service {name}: containerConcurrency {concurrency} is negative")
    min_scale = _scale(name, annotations, MIN_SCALE)
    max_scale = _scale(name, annotations, MAX_SCALE) or math.inf
    limit = max(1, settings.replica_limit)
    cpu = _quantity(str(name), container, "requests", "cpu")
    if cpu is not None and not settings.max_replicas:
        limit = max(1, min(limit, int(settings.replica_limit // cpu)))
    cap = min(max_scale, limit, 1 if port else math.inf)
    timeout = pod.get("timeoutSeconds")
    memory = _quantity(str(name), container, "limits", "memory", int)
    return ServiceSpec(
        name=str(name), command=tuple(command),
        args=tuple(str(a) for a in container.get("args") or []), env=env,
        container_concurrency=concurrency, min_scale=int(min(min_scale, cap)),
        max_scale=int(cap), timeout_s=float(timeout) if timeout else None, port=port,
        memory_limit_bytes=None if memory is None else int(memory),
        cpu_request=float(cpu or 0.0))


def load_specs(source: str | Path | Iterable[Any], settings: Settings,
               ports: Mapping[str, int] | None = None) -> dict[str, ServiceSpec]:
    """Service specs by name from a folder or file of manifests, or from documents/specs."""
    ports = dict(ports or {})
    if isinstance(source, (str, Path)):
        from eas_runtime.manifests import load_documents
        docs: Iterable[Any] = [doc for _path, _index, doc in load_documents([Path(source)])]
    else:
        docs = source
    specs: dict[str, ServiceSpec] = {}
    for doc in docs:
        if isinstance(doc, ServiceSpec):
            spec = doc
            if doc.name in ports and doc.port != ports[doc.name]:
                spec = dataclasses.replace(doc, port=ports[doc.name], max_scale=1,
                                           min_scale=min(doc.min_scale, 1))
        elif is_service(doc):
            name = (doc.get("metadata") or {}).get("name")
            spec = spec_from_document(doc, settings, ports.get(name) if isinstance(name, str) else None)
        else:
            continue
        if spec.name in specs:
            raise ServiceSpecError(f"Service {spec.name} is defined twice")
        specs[spec.name] = spec
    return specs
