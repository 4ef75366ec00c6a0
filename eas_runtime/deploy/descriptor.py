"""Service descriptors: the single source of truth of every Knative Service and task Trigger.

A science function describes itself in ``functions/<task_type>/func.yaml``::

    name: eas-verify                       # Knative Service: eas- + folder name, '-' for '_'
    description: range and sampling checks of a light curve
    task_types: [verify]                   # one Trigger per task type, all to this Service
    source: functions/verify/main.py       # functions-framework --source
    target: handle                         # functions-framework --target
    resources:
      requests: {cpu: "250m", memory: 512Mi}
      limits: {cpu: "1", memory: 1Gi}
      gpu: 0                               # > 0: limits nvidia.com/gpu
    scale: {min: 0, max: 10}               # science codes scale to zero
    concurrency: 1                         # containerConcurrency: one task per replica
    timeout_s: 300                         # timeoutSeconds [s], at most 86400; above 600 the
                                           # cluster needs docs/cluster.md's settings
    delivery: {retry: 3, backoffDelay: PT2S}   # optional: the Trigger's own spec.delivery

The always-on platform services (eas-control, eas-index, eas-storage-adapter) are described the
same way in ``eas_runtime/deploy/platform.yaml``, with ``component`` and ``command`` instead of
``task_types``/``source``/``target``, ``secret_env`` (variable -> ``secret/key``) for the secrets
only they read, and ``visibility: public`` for the one users open in a browser.

Descriptors are read without YAML's implicit booleans and nulls, so ``task_types: [null]`` names
the task type ``null`` and ``on``/``no`` stay strings; numbers are still numbers. Every problem
is reported at once, as ``<file>: <field>: <what is wrong>`` (:class:`DescriptorError`).
"""
from __future__ import annotations

import ast
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, ClassVar, Mapping

import yaml

from eas_runtime.manifests.admission import check_delivery, unknown_key
from eas_runtime.manifests.serving_rules import TIMEOUT_SECONDS_DEFAULT, TIMEOUT_SECONDS_LONGEST
from eas_runtime.manifests import DNS1035_LABEL, QUANTITY_PATTERN, _StrictLoader
from eas_runtime.settings import PROJECT_ROOT

FUNCTIONS_DIR = "functions"
DESCRIPTOR_NAME = "func.yaml"
PLATFORM_FILE = Path(__file__).resolve().parent / "platform.yaml"
COMPONENTS = ("function", "control", "index", "adapter")
VISIBILITIES = ("cluster-local", "public")
TASK_TYPE = re.compile(r"[a-z][a-z0-9_]*")
ENV_NAME = re.compile(r"[A-Z_][A-Z0-9_]*")
SECRET_REF = re.compile(r"([a-z0-9]([-a-z0-9]*[a-z0-9])?)/([-._a-zA-Z0-9]+)")
#: A function answering later than this (Knative's default request timeout) is long-running:
#: its Trigger gets a delivery of its own (see :func:`derived_delivery`).
LONG_RUNNING_S = TIMEOUT_SECONDS_DEFAULT
#: The delivery of a long-running function's Trigger: a failed attempt costs minutes, so fewer
#: retries, a slower backoff, and a per-request timeout equal to the Service's timeout.
LONG_RUNNING_DELIVERY = {"retry": 3, "backoffPolicy": "exponential", "backoffDelay": "PT2S"}
_QUANTITY = re.compile(QUANTITY_PATTERN)
_SUFFIX = {"": 1.0, "m": 1e-3, "u": 1e-6, "n": 1e-9, "k": 1e3, "M": 1e6, "G": 1e9, "T": 1e12,
           "P": 1e15, "E": 1e18, "Ki": 2.0 ** 10, "Mi": 2.0 ** 20, "Gi": 2.0 ** 30,
           "Ti": 2.0 ** 40, "Pi": 2.0 ** 50, "Ei": 2.0 ** 60}

DNS_1123 = re.compile(r"[a-z0-9]([-a-z0-9]{0,61}[a-z0-9])?")
_FUNCTION_KEYS = ("name", "description", "task_types", "source", "target", "resources", "scale",
                  "concurrency", "timeout_s", "delivery")
_PLATFORM_KEYS = ("name", "description", "component", "command", "resources", "scale",
                  "concurrency", "timeout_s", "secret_env", "visibility", "service_account")
_RESOURCE_KEYS = ("requests", "limits", "gpu")
_SCALE_KEYS = ("min", "max")


class DescriptorError(ValueError):
    """One or more descriptors are invalid; ``problems`` holds one line per problem."""

    def __init__(self, problems: list[str]):
        super().__init__("\n".join(problems))
        self.problems = problems


class _DescriptorLoader(_StrictLoader):
    """Duplicate keys are errors; ``null``, ``~``, ``yes``/``no``, ``on``/``off`` stay strings."""

    yaml_implicit_resolvers: ClassVar[dict] = {
        first: [(tag, rx) for tag, rx in resolvers
                if tag not in ("tag:yaml.org,2002:bool", "tag:yaml.org,2002:null")]
        for first, resolvers in _StrictLoader.yaml_implicit_resolvers.items()}


@dataclass(frozen=True)
class Descriptor:
    """One Knative Service as the generator makes it (field names are the manifest's meaning)."""

    name: str
    description: str
    component: str
    #: Task types served (one Trigger each); empty for platform services.
    task_types: tuple[str, ...]
    command: tuple[str, ...]
    args: tuple[str, ...]
    cpu_request: str
    memory_request: str
    cpu_limit: str
    memory_limit: str
    gpu: int
    min_scale: int
    #: 0 means unlimited (Knative's meaning of max-scale 0).
    max_scale: int
    concurrency: int
    timeout_s: int | None
    #: The Trigger's own ``spec.delivery`` (Knative keys, no dead-letter sink), or None for the
    #: Broker's.
    delivery: Mapping[str, Any] | None
    #: (variable, secret, key) read from Secrets besides the common ones.
    secret_env: tuple[tuple[str, str, str], ...]
    visibility: str
    #: The descriptor file, relative to the repository root.
    path: str
    #: ``functions/<task_type>`` for science functions, None for platform services.
    folder: str | None = None
    #: The ServiceAccount its pods run as (storage/rbac.yaml grants it what it reads of the
    #: cluster); empty: the namespace's default, which may read nothing.
    service_account: str = ""

    @property
    def is_function(self) -> bool:
        return self.component == "function"

    @property
    def task_type(self) -> str | None:
        """The task type a function's folder is named after (its Service's label), else None."""
        return Path(self.folder).name if self.folder else None

    @property
    def container(self) -> str:
        return "function" if self.is_function else self.component

    @property
    def image(self) -> str:
        """Image name without registry or tag (the platform services run the base image)."""
        return self.name if self.is_function else "eas-base"


def service_name(task_type: str) -> str:
    """The project's naming rule: ``eas-`` plus the task type with ``-`` for ``_``."""
    return "eas-" + task_type.replace("_", "-")


def parse_quantity(text: object) -> float:
    """A Kubernetes quantity (``500m``, ``1``, ``2Gi``, ``1e3``) as a number (``text`` read as
    its ``str``: a manifest's value may be anything YAML gives)."""
    text = str(text)
    if not _QUANTITY.match(text):
        raise ValueError(f"{text!r} is not a Kubernetes quantity (examples: 500m, 1, 2Gi, 512Mi)")
    number = re.match(r"[+-]?(\d+(\.\d*)?|\.\d+)([eE][+-]?\d+)?", text)
    assert number is not None
    suffix = text[number.end():]
    return float(number.group(0)) * _SUFFIX[suffix]


def iso_duration(seconds: int) -> str:
    """``600`` -> ``PT10M``, ``90`` -> ``PT1M30S``: the ISO-8601 form Knative's delivery uses."""
    hours, rest = divmod(int(seconds), 3600)
    minutes, secs = divmod(rest, 60)
    parts = "".join(f"{v}{u}" for v, u in ((hours, "H"), (minutes, "M"), (secs, "S")) if v)
    return "PT" + (parts or "0S")


def derived_delivery(desc: Descriptor) -> dict[str, Any] | None:
    """The ``spec.delivery`` of a task Trigger without its dead-letter sink: the descriptor's own,
    else :data:`LONG_RUNNING_DELIVERY` with ``timeout`` = the Service's timeout for a function that
    runs longer than :data:`LONG_RUNNING_S`, else None (the Broker's delivery applies)."""
    if desc.delivery is not None:
        return dict(desc.delivery)
    if desc.timeout_s is not None and desc.timeout_s > LONG_RUNNING_S:
        return {**LONG_RUNNING_DELIVERY, "timeout": iso_duration(desc.timeout_s)}
    return None


# --------------------------------------------------------------------------- reading
def read_yaml(path: Path) -> Any:
    try:
        return yaml.load(path.read_text(), _DescriptorLoader)
    except (OSError, UnicodeDecodeError, yaml.YAMLError) as exc:
        raise DescriptorError([f"{path}: cannot read: {exc}"]) from None


def function_descriptor_paths(root: Path) -> list[Path]:
    return sorted((root / FUNCTIONS_DIR).glob(f"*/{DESCRIPTOR_NAME}"))


def load_function(path: Path, root: Path) -> Descriptor:
    """One science function's descriptor; ``root`` is the repository (paths are relative to it)."""
    rel = path.resolve().relative_to(root.resolve()).as_posix()
    doc = read_yaml(path)
    return _Checker(rel, root).function(doc, path.parent.name)


def load_platform(path: Path = PLATFORM_FILE, root: Path | None = None) -> list[Descriptor]:
    """The platform services' descriptors (a YAML list)."""
    doc = read_yaml(path)
    rel = _relative(path, PROJECT_ROOT if root is None else root)
    if not isinstance(doc, list) or not doc:
        raise DescriptorError([f"{rel}: must be a non-empty list of service descriptors"])
    problems: list[str] = []
    out = []
    for i, entry in enumerate(doc):
        try:
            out.append(_Checker(f"{rel}[{i}]", root).platform(entry))
        except DescriptorError as exc:
            problems += exc.problems
    if problems:
        raise DescriptorError(problems)
    return out


def load_all(root: Path, platform: Path = PLATFORM_FILE) -> list[Descriptor]:
    """Platform services, then every function with a ``func.yaml``, sorted by folder. Also
    checks what only the set can show: unique Service names and task types."""
    problems: list[str] = []
    out: list[Descriptor] = []
    try:
        out += load_platform(platform, root)
    except DescriptorError as exc:
        problems += exc.problems
    for path in function_descriptor_paths(root):
        try:
            out.append(load_function(path, root))
        except DescriptorError as exc:
            problems += exc.problems
    seen_names: dict[str, str] = {}
    seen_types: dict[str, str] = {}
    for desc in out:
        if desc.name in seen_names:
            problems.append(f"{desc.path}: name: {desc.name!r} is also the name in "
                            f"{seen_names[desc.name]}")
        seen_names.setdefault(desc.name, desc.path)
        for task_type in desc.task_types:
            if task_type in seen_types:
                problems.append(f"{desc.path}: task_types: {task_type!r} is also served by "
                                f"{seen_types[task_type]}: each task type has exactly one "
                                "Service")
            seen_types.setdefault(task_type, desc.path)
    if problems:
        raise DescriptorError(problems)
    return out


def _relative(path: Path, root: Path) -> str:
    """``path`` relative to ``root``, else to the project (the packaged platform.yaml)."""
    for base in (root, PROJECT_ROOT):
        try:
            return path.resolve().relative_to(base.resolve()).as_posix()
        except ValueError:
            continue
    return str(path)


# --------------------------------------------------------------------------- checking
class _Checker:
    """Collects every problem of one descriptor, then raises them together."""

    def __init__(self, where: str, root: Path | None):
        self.where = where
        self.root = root
        self.problems: list[str] = []

    def bad(self, field: str, message: str) -> None:
        self.problems.append(f"{self.where}: {field}: {message}")

    def finish(self) -> None:
        if self.problems:
            raise DescriptorError(self.problems)

    def keys(self, doc: Mapping, allowed: tuple[str, ...], base: str = "") -> None:
        for key in doc:
            if key not in allowed:
                finding = unknown_key(base, str(key), allowed)
                self.bad(finding.path, finding.message)

    def integer(self, value: Any, field: str, low: int, high: int | None = None) -> int:
        if not isinstance(value, int) or isinstance(value, bool) or value < low \
                or (high is not None and value > high):
            rule = f">= {low}" + (f" and <= {high}" if high is not None else "")
            self.bad(field, f"{value!r} must be an integer {rule}")
            return low
        return value

    def text(self, doc: Mapping, field: str, required: bool = True) -> str:
        value = doc.get(field)
        if value is None and not required:
            return ""
        if not isinstance(value, str) or (required and not value.strip()):
            self.bad(field, f"must be a non-empty string, got {value!r}")
            return ""
        return value

    # ------------------------------------------------------------------ shared parts
    def common(self, doc: Any, allowed: tuple[str, ...]) -> dict:
        if not isinstance(doc, dict):
            self.bad("(top)", f"must be a mapping of fields, got {doc!r}")
            self.finish()
        self.keys(doc, allowed)
        name = self.text(doc, "name")
        if name and (not DNS1035_LABEL.fullmatch(name) or len(name) > 63
                     or not name.startswith("eas-")):
            self.bad("name", f"{name!r} must start with 'eas-' and be a DNS-1035 label "
                     "(lowercase letters, digits, '-'; at most 63 characters)")
        self.text(doc, "description", required=False)
        res = self.resources(doc.get("resources"))
        scale = doc.get("scale")
        if not isinstance(scale, dict):
            self.bad("scale", f"must be a mapping with min and max, got {scale!r}")
            scale = {"min": 0, "max": 1}
        self.keys(scale, _SCALE_KEYS, "scale")
        low = self.integer(scale.get("min"), "scale.min", 0)
        high = self.integer(scale.get("max"), "scale.max", 0)
        if high and high < low:
            self.bad("scale.max", f"{high} is less than scale.min ({low}); 0 means unlimited")
        timeout = doc.get("timeout_s")
        if timeout is not None:
            timeout = self.integer(timeout, "timeout_s", 1, TIMEOUT_SECONDS_LONGEST)
        return {"name": name, "description": str(doc.get("description") or "").strip(),
                **res, "min_scale": low, "max_scale": high, "timeout_s": timeout}

    def resources(self, res: Any) -> dict:
        if not isinstance(res, dict):
            self.bad("resources", f"must be a mapping with requests and limits, got {res!r}")
            res = {}
        self.keys(res, _RESOURCE_KEYS, "resources")
        out: dict[str, Any] = {}
        for part in ("requests", "limits"):
            values = res.get(part)
            if not isinstance(values, dict):
                self.bad(f"resources.{part}", f"must be a mapping with cpu and memory, got "
                         f"{values!r}")
                values = {}
            self.keys(values, ("cpu", "memory"), f"resources.{part}")
            for kind in ("cpu", "memory"):
                value = values.get(kind)
                field = f"resources.{part}.{kind}"
                if isinstance(value, int) and not isinstance(value, bool):
                    value = str(value)
                try:
                    parse_quantity(value)
                except (ValueError, TypeError):
                    self.bad(field, f"{value!r} is not a Kubernetes quantity "
                             "(examples: 500m, 1, 2Gi, 512Mi)")
                    value = "0"
                out[f"{kind}_{part[:-1]}"] = str(value)
        for kind in ("cpu", "memory"):
            request, limit = out[f"{kind}_request"], out[f"{kind}_limit"]
            if parse_quantity(request) > parse_quantity(limit):
                self.bad(f"resources.requests.{kind}", f"{request} exceeds the limit {limit}")
        out["gpu"] = self.integer(res.get("gpu", 0), "resources.gpu", 0)
        return out

    # ------------------------------------------------------------------ kinds
    def function(self, doc: Any, folder: str) -> Descriptor:
        base = self.common(doc, _FUNCTION_KEYS)
        types = doc.get("task_types")
        if not isinstance(types, list) or not types:
            self.bad("task_types", f"must be a non-empty list of task types, got {types!r}")
            types = []
        for i, task_type in enumerate(types):
            if not isinstance(task_type, str) or not TASK_TYPE.fullmatch(task_type) \
                    or len(task_type) > 63:
                self.bad(f"task_types[{i}]", f"{task_type!r} must be lowercase letters, digits "
                         "and '_', starting with a letter, at most 63 characters")
        if len(set(map(str, types))) != len(types):
            self.bad("task_types", f"{types} names a task type twice")
        if folder not in types:
            self.bad("task_types", f"must include {folder!r}, the task type the folder "
                     f"functions/{folder}/ is named after")
        if base["name"] and base["name"] != service_name(folder):
            self.bad("name", f"{base['name']!r} must be {service_name(folder)!r} "
                     "('eas-' + the folder name with '-' for '_')")
        source, target = self.text(doc, "source"), self.text(doc, "target")
        wanted = f"{FUNCTIONS_DIR}/{folder}/main.py"
        if source and source != wanted:
            self.bad("source", f"{source!r} must be {wanted!r} (each image ships only its "
                     "own folder)")
        elif source and target and self.root is not None:
            self.entry_point(self.root / source, target)
        if target and not target.isidentifier():
            self.bad("target", f"{target!r} is not a Python identifier")
        if base["min_scale"] != 0:
            self.bad("scale.min", f"{base['min_scale']}: science codes scale to zero "
                     "(min 0); keep a warm replica with an overlay instead")
        if base["max_scale"] == 0:
            self.bad("scale.max", "0 (unlimited) is not allowed for a science code: give the "
                     "largest number of replicas the cluster can afford")
        concurrency = doc.get("concurrency")
        if concurrency != 1 or isinstance(concurrency, bool):
            self.bad("concurrency", f"{concurrency!r}: science codes are CPU-bound and take one "
                     "task per replica (concurrency: 1)")
        delivery = doc.get("delivery")
        if delivery is not None:
            for finding in check_delivery(delivery, "delivery"):
                self.bad(finding.path, finding.message)
            if isinstance(delivery, dict) and "deadLetterSink" in delivery:
                self.bad("delivery.deadLetterSink", "is always eas-control's /dead-letter; "
                         "leave it out")
        self.finish()
        return Descriptor(
            component="function", task_types=tuple(types), command=("functions-framework",),
            args=("--target", target, "--source", source, "--signature-type", "http"),
            concurrency=1, delivery=dict(delivery) if isinstance(delivery, dict) else None,
            secret_env=(), visibility="cluster-local", path=self.where,
            folder=f"{FUNCTIONS_DIR}/{folder}", **base)

    def entry_point(self, source: Path, target: str) -> None:
        """``source`` must define ``target`` at top level (a def, or a decorated assignment)."""
        try:
            tree = ast.parse(source.read_text(), str(source))
        except (OSError, SyntaxError, UnicodeDecodeError) as exc:
            self.bad("source", f"cannot read {source}: {exc}")
            return
        names = {n.name for n in tree.body if isinstance(n, (ast.FunctionDef,
                                                               ast.AsyncFunctionDef))}
        names |= {t.id for n in tree.body if isinstance(n, ast.Assign)
                  for t in n.targets if isinstance(t, ast.Name)}
        if target not in names:
            self.bad("target", f"{source.name} defines no top-level {target!r} "
                     f"(found: {', '.join(sorted(names)) or 'nothing'})")

    def platform(self, doc: Any) -> Descriptor:
        base = self.common(doc, _PLATFORM_KEYS)
        component = doc.get("component")
        if component not in COMPONENTS[1:]:
            self.bad("component", f"{component!r} is not allowed (allowed: "
                     f"{', '.join(COMPONENTS[1:])})")
        command = doc.get("command")
        if not isinstance(command, list) or not command \
                or not all(isinstance(c, str) and c for c in command):
            self.bad("command", f"must be a non-empty list of strings, got {command!r}")
            command = []
        if component in ("control", "index") and base["min_scale"] < 1:
            self.bad("scale.min", f"{base['min_scale']}: eas-{component} is always on (min 1)")
        concurrency = self.integer(doc.get("concurrency", 0), "concurrency", 0, 1000)
        secret_env = []
        raw = doc.get("secret_env") or {}
        if not isinstance(raw, dict):
            self.bad("secret_env", f"must map variables to 'secret/key', got {raw!r}")
            raw = {}
        for var, ref in raw.items():
            match = SECRET_REF.fullmatch(str(ref))
            if not ENV_NAME.fullmatch(str(var)):
                self.bad(f"secret_env.{var}", "is not an environment variable name")
            if not match:
                self.bad(f"secret_env.{var}", f"{ref!r} must be 'secret-name/key'")
            else:
                secret_env.append((str(var), match.group(1), match.group(3)))
        visibility = doc.get("visibility", "cluster-local")
        if visibility not in VISIBILITIES:
            self.bad("visibility", f"{visibility!r} is not allowed (allowed: "
                     f"{', '.join(VISIBILITIES)})")
        account = doc.get("service_account", "")
        if account and not (isinstance(account, str) and DNS_1123.fullmatch(account)):
            self.bad("service_account", f"{account!r} is not a DNS-1123 name")
            account = ""
        self.finish()
        return Descriptor(component=component, task_types=(), command=tuple(command), args=(),
                          concurrency=concurrency, delivery=None, secret_env=tuple(secret_env),
                          visibility=visibility, path=self.where, service_account=account, **base)
