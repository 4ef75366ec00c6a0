"""What ``just deploy`` / ``undeploy`` / ``logs`` / ``invoke`` do, as plans of commands.

Deploy, in order (each manifest rendered here from its kustomization, with the images of
``--registry`` and ``--tag``):

1. storage: the Namespace (``kubectl apply``); each Secret only when it does not exist yet (an
   operator's real credentials are never overwritten by the placeholders); the previous
   ``eas-storage-init`` Job deleted; MinIO, PostgreSQL and the init Job applied; then a wait
   until the Job has prepared the schema, the bucket and its notification;
2. the Broker: ``kn broker create`` where kn can express it, else ``kubectl apply``;
3. the other Eventing resources (PingSource, SinkBinding): ``kubectl apply``;
4. every Knative Service of the overlay: ``kn service apply NAME -f`` (apply semantics: a new
   revision only when something changed);
5. every Trigger: ``kn trigger create`` where kn can express it (plus ``kubectl label``: kn
   sets no labels), ``kubectl replace`` when it exists already, ``kubectl apply`` otherwise;
6. a wait until the Services, the Broker and the Triggers are Ready.

``--only`` limits steps 4-6 to some Services and their Triggers: one science code is upgraded
without touching the others. ``--no-kn`` uses kubectl for everything.
"""
from __future__ import annotations

import hashlib
import subprocess
import uuid
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Iterable, Sequence

from eas_runtime import events

from eas_runtime.manifests import kustomize

from . import _yaml
from .descriptor import Descriptor, load_all, service_name
from .generate import BROKER_DIR, IMAGE_REGISTRY, KNATIVE_DIR, NAMESPACE
from .steps import Command, Step, cmd

OVERLAYS = ("laptop", "cluster", "base")
DEFAULT_REGISTRY = "dev.local/plato-eas"
PART_OF = "app.kubernetes.io/part-of=plato-eas"
KSVC = "services.serving.knative.dev"
BROKERS = "brokers.eventing.knative.dev"
TRIGGERS = "triggers.eventing.knative.dev"
INIT_JOB = "eas-storage-init"
CURL_IMAGE = "docker.io/curlimages/curl:8.11.1"


class PlanInputError(ValueError):
    """Options that cannot make a plan (unknown overlay or function, ...)."""


@dataclass(frozen=True)
class Options:
    root: Path
    overlay: str = "laptop"
    registry: str = DEFAULT_REGISTRY
    tag: str = ""
    use_kn: bool = True
    only: tuple[str, ...] = ()
    wait_s: int = 600

    def resolved_tag(self) -> str:
        return self.tag or default_tag(self.root)


# --------------------------------------------------------------------------- helpers
def default_tag(root: Path) -> str:
    """The commit (12 hex digits), with ``-dirty-<hash of the changes>`` for a worktree with
    uncommitted changes (so that two different dirty states never share a tag); ``dev``
    outside git."""
    def git(*args: str) -> str:
        return subprocess.run(["git", *args], cwd=root, capture_output=True, text=True,
                              check=True, timeout=30).stdout
    try:
        commit = git("rev-parse", "--short=12", "HEAD").strip()
        status = git("status", "--porcelain")
        diff = git("diff", "HEAD") if status.strip() else ""
    except (OSError, subprocess.SubprocessError):
        return "dev"
    if not status.strip():
        return commit
    return f"{commit}-dirty-{hashlib.sha256((status + diff).encode()).hexdigest()[:8]}"


def retarget(docs: Iterable[dict], registry: str, tag: str) -> None:
    """Images of the project (``registry.invalid/plato-eas/<name>:<tag>``) -> ``registry``/tag."""
    prefix = IMAGE_REGISTRY + "/"

    def change(ref: str) -> str:
        if not ref.startswith(prefix):
            return ref
        name, _, _ = kustomize.split_image(ref[len(prefix):])
        return f"{registry.rstrip('/')}/{name}:{tag}"
    kustomize.set_images(docs, change)


def _name(doc: dict) -> str:
    return str((doc.get("metadata") or {}).get("name"))


def _manifest(*docs: dict) -> str:
    return _yaml.dump_all(docs)


def _apply(title: str, docs: Sequence[dict]) -> Step:
    return Step(title, (cmd("kubectl", "apply", "-f", "-", stdin=_manifest(*docs)),))


def _kind(doc: dict) -> str:
    return f"{doc.get('kind')} {_name(doc)}"


def _labels_command(resource: str, doc: dict) -> Command | None:
    labels = (doc.get("metadata") or {}).get("labels") or {}
    if not labels:
        return None
    return cmd("kubectl", "label", resource, _name(doc), "--namespace", NAMESPACE, "--overwrite",
               *(f"{k}={v}" for k, v in labels.items()))


def _get(resource: str, name: str) -> Command:
    return cmd("kubectl", "get", resource, name, "--namespace", NAMESPACE)


def _sink(dest: Any) -> tuple[str | None, str]:
    """The ``--sink``/``--dl-sink`` value kn needs for a Destination, or (None, why not)."""
    if not isinstance(dest, dict):
        return None, "no destination"
    ref, uri = dest.get("ref"), dest.get("uri")
    if ref and uri:
        return None, f"kn cannot give a sink both a reference and a path ({uri})"
    if uri:
        return str(uri), ""
    if not isinstance(ref, dict) or ref.get("namespace") not in (None, NAMESPACE):
        return None, "kn sinks in other namespaces need ksvc:name:namespace"
    prefixes: dict[tuple[Any, Any], str] = {("serving.knative.dev/v1", "Service"): "ksvc",
                                             ("eventing.knative.dev/v1", "Broker"): "broker"}
    prefix = prefixes.get((ref.get("apiVersion"), ref.get("kind")))
    if prefix is None:
        return None, f"kn has no sink prefix for {ref.get('kind')}"
    return f"{prefix}:{ref.get('name')}", ""


# --------------------------------------------------------------------------- kn forms
def kn_trigger(doc: dict) -> tuple[tuple[str, ...] | None, str]:
    """``kn trigger create`` arguments for a Trigger, or (None, why kn cannot express it)."""
    spec = doc.get("spec") or {}
    extra = sorted(set(spec) - {"broker", "filter", "subscriber"})
    if extra:
        reason = {"delivery": "its own delivery (kn trigger create has no delivery flags)",
                  "filters": "filter expressions (kn sets only exact attribute filters)"}
        return None, "; ".join(reason.get(k, f"spec.{k}") for k in extra)
    if set((doc.get("metadata") or {}).get("annotations") or {}):
        return None, "annotations (kn trigger create sets none)"
    sink, why = _sink(spec.get("subscriber"))
    if sink is None:
        return None, why
    argv = ["kn", "trigger", "create", _name(doc), "--namespace", NAMESPACE,
            "--broker", str(spec.get("broker", "default"))]
    for key, value in ((spec.get("filter") or {}).get("attributes") or {}).items():
        argv += ["--filter", f"{key}={value}"]
    return tuple(argv + ["--sink", sink]), ""


def kn_broker(doc: dict) -> tuple[tuple[str, ...] | None, str]:
    """``kn broker create`` arguments for a Broker, or (None, why kn cannot express it)."""
    spec = doc.get("spec") or {}
    annotations = dict((doc.get("metadata") or {}).get("annotations") or {})
    broker_class = annotations.pop("eventing.knative.dev/broker.class", None)
    if annotations or set(spec) - {"delivery"}:
        return None, "annotations or a broker config kn cannot set"
    argv = ["kn", "broker", "create", _name(doc), "--namespace", NAMESPACE]
    if broker_class:
        argv += ["--class", broker_class]
    delivery = spec.get("delivery") or {}
    flags = {"retry": "--retry", "backoffPolicy": "--backoff-policy",
             "backoffDelay": "--backoff-delay", "retryAfterMax": "--retry-after-max",
             "timeout": "--timeout"}
    for key, value in delivery.items():
        if key == "deadLetterSink":
            sink, why = _sink(value)
            if sink is None:
                return None, why
            argv += ["--dl-sink", sink]
        elif key in flags:
            argv += [flags[key], str(value)]
        else:
            return None, f"delivery.{key} (no kn flag)"
    return tuple(argv), ""


def _create_or_replace(title: str, resource: str, doc: dict, kn_argv: tuple[str, ...]) -> Step:
    commands = [Command(kn_argv)]
    label = _labels_command(resource, doc)
    if label is not None:
        commands.append(label)
    replace = cmd("kubectl", "replace", "--save-config", "-f", "-", stdin=_manifest(doc))
    return Step(title + "\n(kn sets no labels: kubectl labels it; when it exists, the manifest "
                "replaces it)", tuple(commands), probe=_get(resource, _name(doc)),
                if_exists=(replace,))


# --------------------------------------------------------------------------- the plans
def _selected(opts: Options, services: list[dict]) -> list[dict]:
    if not opts.only:
        return services
    names = {_name(s) for s in services}
    wanted = set()
    for item in opts.only:
        name = item if item in names else service_name(item)
        if name not in names:
            raise PlanInputError(f"--only {item!r}: no such Service (known: "
                                 f"{', '.join(sorted(names))})")
        wanted.add(name)
    return [s for s in services if _name(s) in wanted]


def overlay_services(opts: Options) -> list[dict]:
    if opts.overlay not in OVERLAYS:
        raise PlanInputError(f"overlay {opts.overlay!r} is not one of {', '.join(OVERLAYS)}")
    folder = opts.root / (KNATIVE_DIR if opts.overlay == "base"
                          else f"knative/overlays/{opts.overlay}")
    docs = kustomize.build(folder)
    retarget(docs, opts.registry, opts.resolved_tag())
    return docs


def storage_steps(opts: Options) -> list[Step]:
    docs = kustomize.build(opts.root / "storage")
    retarget(docs, opts.registry, opts.resolved_tag())
    steps = [_apply(_kind(d), [d]) for d in docs if d.get("kind") == "Namespace"]
    for secret in (d for d in docs if d.get("kind") == "Secret"):
        steps.append(Step(f"Secret {_name(secret)}: created only when missing (an existing "
                          "Secret keeps its values)",
                          (cmd("kubectl", "create", "-f", "-", stdin=_manifest(secret)),),
                          probe=_get("secret", _name(secret))))
    rest = [d for d in docs if d.get("kind") not in ("Namespace", "Secret")]
    steps.append(Step(f"Job {INIT_JOB}: the previous run's Job goes (a Job cannot be changed)",
                      (cmd("kubectl", "delete", "job", INIT_JOB, "--namespace", NAMESPACE,
                           "--ignore-not-found"),)))
    steps.append(_apply("storage: " + ", ".join(_kind(d) for d in rest), rest))
    steps.append(Step(f"wait for Job {INIT_JOB}: task database schema, bucket, notification "
                      "(a failed Job stops the deployment with its logs)", (job_wait(INIT_JOB, opts.wait_s),)))
    return steps


def job_wait(job: str, wait_s: int, poll_s: int = 5) -> Command:
    """Wait until the Job completes (exit 0) or fails (its logs, exit 1), at most ``wait_s``.
    ``kubectl wait --for=condition=complete`` alone waits out its whole timeout when the Job
    has already failed (it reached its backoffLimit or its activeDeadlineSeconds)."""
    state = (f"kubectl get job {job} --namespace {NAMESPACE} -o "
             "jsonpath='{range .status.conditions[?(@.status==\"True\")]}{.type} {end}'")
    logs = f"kubectl logs job/{job} --namespace {NAMESPACE} --all-containers --tail=100"
    script = (f"end=$(( $(date +%s) + {int(wait_s)} )); "
              f"while :; do s=$({state}) || exit 1; "
              f"case \"$s\" in *Complete*) exit 0;; "
              f"*Failed*) echo \"Job {job} failed: $s\" >&2; {logs} >&2; exit 1;; esac; "
              f"if [ $(date +%s) -ge $end ]; then echo \"Job {job} did not complete within {int(wait_s)} s\" >&2; "
              f"{logs} >&2; exit 1; fi; sleep {int(poll_s)}; done")
    return cmd("sh", "-c", script)


def eventing_folder(opts: Options) -> Path:
    """broker_config/, or the overlay's own Broker configuration when it has one
    (``knative/overlays/<overlay>/broker``; ``cluster``: the Kafka broker)."""
    overlay = opts.root / "knative" / "overlays" / opts.overlay / "broker"
    return overlay if overlay.is_dir() else opts.root / BROKER_DIR


def eventing_steps(opts: Options, services: list[dict]) -> tuple[list[Step], list[Step]]:
    """(the Broker's ConfigMaps, the Broker and sources; Triggers of the selected Services)."""
    docs = kustomize.build(eventing_folder(opts))
    head: list[Step] = []
    configs = [d for d in docs if d.get("kind") == "ConfigMap"]
    if configs and not opts.only:
        head.append(_apply(", ".join(_kind(d) for d in configs) + " (the Broker reads it)", configs))
    triggers: list[Step] = []
    chosen = {_name(s) for s in services}
    for doc in docs:
        kind = doc.get("kind")
        if kind == "Broker" and not opts.only:
            argv, why = kn_broker(doc) if opts.use_kn else (None, "--no-kn")
            head.append(_create_or_replace(f"Broker {_name(doc)}", BROKERS, doc, argv) if argv
                        else _apply(f"Broker {_name(doc)}: kubectl apply ({why})", [doc]))
        elif kind == "Trigger":
            ref = ((doc.get("spec") or {}).get("subscriber") or {}).get("ref") or {}
            if ref.get("name") not in chosen:
                continue
            argv, why = kn_trigger(doc) if opts.use_kn else (None, "--no-kn")
            title = f"Trigger {_name(doc)} -> {ref.get('name')}"
            triggers.append(_create_or_replace(title, TRIGGERS, doc, argv) if argv
                            else _apply(f"{title}: kubectl apply ({why})", [doc]))
    sources = [d for d in docs if d.get("kind") not in ("Broker", "Trigger", "ConfigMap")]
    if sources and not opts.only:
        head.append(_apply(", ".join(_kind(d) for d in sources), sources))
    return head, triggers


def deploy_plan(opts: Options) -> list[Step]:
    services = _selected(opts, overlay_services(opts))
    eventing, triggers = eventing_steps(opts, services)
    steps = [] if opts.only else storage_steps(opts)
    steps += eventing
    for svc in services:
        if opts.use_kn:
            steps.append(Step(f"Knative Service {_name(svc)}", (cmd(
                "kn", "service", "apply", _name(svc), "--namespace", NAMESPACE,
                "--filename", "/dev/stdin", "--no-wait", stdin=_manifest(svc)),)))
        else:
            steps.append(_apply(f"Knative Service {_name(svc)}", [svc]))
    steps += triggers
    if opts.only:
        targets = [f"ksvc/{_name(s)}" for s in services]
        waits = cmd("kubectl", "wait", "--for=condition=Ready", *targets, "--namespace",
                    NAMESPACE, f"--timeout={opts.wait_s}s")
    else:
        waits = cmd("kubectl", "wait", "--for=condition=Ready", f"{KSVC},{BROKERS},{TRIGGERS}",
                    "-l", PART_OF, "--namespace", NAMESPACE, f"--timeout={opts.wait_s}s")
    steps.append(Step("wait until the Services, the Broker and the Triggers are Ready",
                      (waits,)))
    return steps


def undeploy_plan(opts: Options, purge: bool = False) -> list[Step]:
    """Triggers, Services and Eventing resources go; storage (MinIO, PostgreSQL, their volumes,
    the Secrets) stays unless ``purge``, which deletes the namespace with everything in it."""
    services = overlay_services(opts)
    eventing = kustomize.build(eventing_folder(opts))

    def delete(title: str, docs: list[dict]) -> Step:
        return Step(title, (cmd("kubectl", "delete", "--ignore-not-found", "-f", "-",
                                stdin=_manifest(*docs)),))
    triggers = [d for d in eventing if d.get("kind") == "Trigger"]
    others = [d for d in eventing if d.get("kind") != "Trigger"]
    steps = [delete(f"{len(triggers)} Triggers", triggers),
             delete(f"{len(services)} Knative Services", services),
             delete(", ".join(_kind(d) for d in others), others)]
    if purge:
        storage = kustomize.build(opts.root / "storage")
        steps.append(delete("storage and the namespace (data volumes included)", storage))
    return steps


# --------------------------------------------------------------------------- logs and invoke
def repository_services(root: Path) -> dict[str, dict]:
    """The Knative Services of ``knative/base`` by name."""
    from eas_runtime.manifests import load_documents
    return {_name(d): d for _, _, d in load_documents([root / KNATIVE_DIR])
            if d.get("kind") == "Service" and str(d.get("apiVersion")).startswith("serving.")}


def resolve_service(root: Path, function: str) -> dict:
    """A Knative Service by name (``eas-verify``), task type (``verify``) or component
    (``control``)."""
    services = repository_services(root)
    for name in (function, service_name(function), f"eas-{function}"):
        if name in services:
            return services[name]
    raise PlanInputError(f"{function!r} is no Service, task type or component (Services: "
                         f"{', '.join(sorted(services))})")


def logs_step(root: Path, function: str, follow: bool = False, tail: int = 200) -> Step:
    svc = resolve_service(root, function)
    container = svc["spec"]["template"]["spec"]["containers"][0]["name"]
    argv = ["kubectl", "logs", "--namespace", NAMESPACE, "-l",
            f"serving.knative.dev/service={_name(svc)}", "-c", container, "--prefix",
            f"--tail={tail}", "--max-log-requests=20"]
    if follow:
        argv.append("--follow")
    return Step(f"logs of {_name(svc)} (no output: scaled to zero, no replica running)",
                (Command(tuple(argv)),))


#: Ids of the sample event: the largest id an event may carry, which no database has issued.
SAMPLE_ID = events.MAX_ID


def sample_event(root: Path, function: str, task_id: int = SAMPLE_ID, attempt_id: int = SAMPLE_ID,
                 descriptors: list[Descriptor] | None = None) -> tuple[str, dict[str, str], bytes]:
    """(Service name, HTTP headers, body) of a sample CloudEvent for a deployed Service.

    A science function gets ``task.ready`` for its first task type. With the default ids
    (:data:`SAMPLE_ID`, valid but never issued) no attempt exists, so a healthy function
    answers 400 naming the unknown attempt (and records the event as a dead letter): it is
    deployed, reachable and talking to its database. The ids of a real attempt redeliver that
    attempt (a finished one is a no-op). eas-control gets
    a reconcile request, which it runs."""
    svc = resolve_service(root, function)
    name = _name(svc)
    descs = {d.name: d for d in (descriptors if descriptors is not None else load_all(root))}
    desc = descs.get(name)
    event_id = uuid.uuid4().hex
    if desc is not None and desc.is_function:
        event = events.make_event(events.TASK_READY, "/eas/invoke", {}, id=event_id,
                                  tasktype=desc.task_types[0], taskid=task_id,
                                  attemptid=attempt_id)
    elif name == "eas-control":
        event = events.make_event(events.RECONCILE, "/eas/invoke", {"reason": "invoke"},
                                  id=event_id)
    else:
        raise PlanInputError(f"{name} does not receive CloudEvents (only the science "
                             "functions and eas-control do)")
    headers, body = events.to_http(event)
    return name, headers, body


def invoke_step(root: Path, function: str, task_id: int = SAMPLE_ID, attempt_id: int = SAMPLE_ID) -> Step:
    """POST the sample event from a short-lived curl pod in the namespace: the Services are
    cluster-local, so this works without ingress or DNS set-up on the laptop."""
    name, headers, body = sample_event(root, function, task_id, attempt_id)
    argv = ["kubectl", "run", f"eas-invoke-{uuid.uuid4().hex[:8]}", "--namespace", NAMESPACE,
            "--rm", "-i", "--quiet", "--restart=Never", f"--image={CURL_IMAGE}", "--",
            "curl", "-sS", "-i", "-X", "POST", f"http://{name}.{NAMESPACE}.svc.cluster.local/"]
    for key, value in headers.items():
        argv += ["-H", f"{key}: {value}"]
    argv += ["--data-binary", body.decode()]
    return Step(f"POST a sample CloudEvent to {name} (prints the HTTP answer)",
                (Command(tuple(argv)),))


# --------------------------------------------------------------------------- overview
def header(opts: Options) -> str:
    tools = ("kn service apply for Services, kn broker/trigger create where kn can express "
             "the resource, kubectl for the rest" if opts.use_kn else "kubectl only (--no-kn)")
    only = f"; only {', '.join(opts.only)}" if opts.only else ""
    return (f"EAS deploy plan: overlay {opts.overlay}, images {opts.registry}/<name>:"
            f"{opts.resolved_tag()}, namespace {NAMESPACE}{only}\n{tools}.")

