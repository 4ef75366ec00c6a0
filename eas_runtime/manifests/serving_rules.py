"""Admission rules for Knative Serving Services that the CRD schema cannot express.

Mirrors Knative Serving's webhook: the ``autoscaling.knative.dev/*`` annotations on
``spec.template.metadata.annotations`` (string values, bounds, known keys), the per-revision
concurrency and timeout limits of a default install, and this project's rule that event
handlers get no HTTP probe on ``/``.
"""
from __future__ import annotations

from typing import Any, Callable

from .admission import Finding, key_path, parse_go_duration

PREFIX = "autoscaling.knative.dev/"
KPA = "kpa.autoscaling.knative.dev"
HPA = "hpa.autoscaling.knative.dev"
CLASSES = (KPA, HPA)
METRICS = ("concurrency", "rps", "cpu", "memory")
KPA_METRICS = ("concurrency", "rps")
AGGREGATION = ("linear", "weightedExponential", "weighted-exponential")
#: Defaults of a stock install (config-defaults); larger values need cluster configuration.
CONTAINER_CONCURRENCY_MAX = 1000
TIMEOUT_SECONDS_MAX = 600
TIMEOUT_SECONDS_DEFAULT = 300
#: The longest request a descriptor may ask for (24 h): Knative itself has no bound beyond its
#: config-defaults, but a task that needs more is a job to split. Above TIMEOUT_SECONDS_MAX the
#: cluster needs the settings of docs/cluster.md ("Tasks longer than 10 minutes").
TIMEOUT_SECONDS_LONGEST = 86400

#: Deprecated spellings Knative still accepts, and the key to use instead.
ALIASES = {
    "minScale": "min-scale", "maxScale": "max-scale", "initialScale": "initial-scale",
    "scaleDownDelay": "scale-down-delay",
    "targetUtilizationPercentage": "target-utilization-percentage",
    "targetBurstCapacity": "target-burst-capacity",
    "panicWindowPercentage": "panic-window-percentage",
    "panicThresholdPercentage": "panic-threshold-percentage",
    "metricAggregationAlgorithm": "metric-aggregation-algorithm",
}
#: Settings of the cluster-wide ConfigMap config-autoscaler that people put on revisions.
CLUSTER_ONLY = ("max-scale-limit", "scale-to-zero-grace-period", "enable-scale-to-zero",
                "stable-window", "container-concurrency-target-default",
                "allow-zero-initial-scale", "max-scale-up-rate", "max-scale-down-rate")


def _integer(low: int, high: int | None = None) -> Callable[[str], str | None]:
    def check(value: str) -> str | None:
        try:
            number = int(value, 10)
        except ValueError:
            return f"{value!r} is not an integer"
        if number < low or (high is not None and number > high):
            return f"{value!r} is out of range: must be >= {low}" + (
                f" and <= {high}" if high is not None else "")
        return None
    return check


def _number(low: float, high: float | None = None, *extra: float) -> Callable[[str], str | None]:
    def check(value: str) -> str | None:
        try:
            number = float(value)
        except ValueError:
            return f"{value!r} is not a number"
        if number in extra:
            return None
        if number < low or (high is not None and number > high):
            return f"{value!r} is out of range: must be >= {low:g}" + (
                f" and <= {high:g}" if high is not None else "")
        return None
    return check


def _duration(low: float, high: float, whole_seconds: bool) -> Callable[[str], str | None]:
    def check(value: str) -> str | None:
        try:
            seconds = parse_go_duration(value)
        except ValueError as exc:
            return str(exc)
        if seconds < low or seconds > high:
            return f"{value!r} is out of range: must be between {low:g}s and {high / 3600:g}h"
        if whole_seconds and seconds != int(seconds):
            return f"{value!r} must be a whole number of seconds"
        return None
    return check


def _choice(allowed: tuple[str, ...]) -> Callable[[str], str | None]:
    def check(value: str) -> str | None:
        return None if value in allowed else (
            f"{value!r} is not allowed (allowed: {', '.join(allowed)})")
    return check


#: Every per-revision autoscaling annotation Knative knows, with its value rule.
KNOWN: dict[str, Callable[[str], str | None]] = {
    "min-scale": _integer(0),
    "max-scale": _integer(0),
    "initial-scale": _integer(0),
    "activation-scale": _integer(2),
    "scale-down-delay": _duration(0, 3600, True),
    "scale-to-zero-pod-retention-period": _duration(0, 3600, False),
    "window": _duration(6, 3600, True),
    "target": _number(0.01),
    "target-utilization-percentage": _number(1, 100),
    "target-burst-capacity": _number(0, None, -1),
    "panic-window-percentage": _number(1, 100),
    "panic-threshold-percentage": _number(110, 1000),
    "metric": _choice(METRICS),
    "class": _choice(CLASSES),
    "metric-aggregation-algorithm": _choice(AGGREGATION),
}


def check_autoscaling(annotations: Any, path: str) -> list[Finding]:
    """The ``autoscaling.knative.dev/*`` entries of a revision template's annotations."""
    if not isinstance(annotations, dict):
        return []
    out: list[Finding] = []
    values: dict[str, str] = {}
    for key, value in annotations.items():
        if not isinstance(key, str) or not key.startswith(PREFIX):
            continue
        name, where = key[len(PREFIX):], key_path(path, key)
        if not isinstance(value, str):
            out.append(Finding(where, f"value {value!r} is a {type(value).__name__}; annotation "
                               f"values must be strings: write {key}: \"{value}\""))
            continue
        if name in ALIASES:
            canonical = ALIASES[name]
            if PREFIX + canonical in annotations:
                out.append(Finding(where, f"duplicates {PREFIX}{canonical}; keep only that one"))
                continue
            out.append(Finding(where, f"deprecated spelling; use {PREFIX}{canonical}", "warning"))
            name = canonical
        if name in CLUSTER_ONLY:
            out.append(Finding(where, f"{name!r} is cluster configuration (ConfigMap "
                               "config-autoscaler in namespace knative-serving), "
                               "not an annotation"))
            continue
        if name not in KNOWN:
            known = ", ".join(PREFIX + k for k in KNOWN)
            out.append(Finding(where, f"unknown autoscaling annotation {key!r} (known: {known})"))
            continue
        error = KNOWN[name](value)
        if error:
            out.append(Finding(where, f"{key}: {error}"))
        else:
            values[name] = value
    out += _check_combinations(values, path)
    return out


def _check_combinations(values: dict[str, str], path: str) -> list[Finding]:
    out = []
    low = int(values.get("min-scale", "0"))
    high = int(values.get("max-scale", "0"))  # 0 means unlimited
    where = key_path(path, PREFIX + "max-scale")
    if high and high < low:
        out.append(Finding(where, f"max-scale={high} is less than min-scale={low}"))
    if "activation-scale" in values:
        act = int(values["activation-scale"])
        if act < low or (high and act > high):
            out.append(Finding(key_path(path, PREFIX + "activation-scale"),
                               f"activation-scale={act} must lie between min-scale={low} and "
                               f"max-scale={high or 'unlimited'}"))
    if "initial-scale" in values and high and int(values["initial-scale"]) > high:
        out.append(Finding(key_path(path, PREFIX + "initial-scale"), f"initial-scale="
                           f"{values['initial-scale']} is more than max-scale={high}"))
    klass = values.get("class", KPA)
    if klass == KPA and values.get("metric", "concurrency") not in KPA_METRICS:
        out.append(Finding(key_path(path, PREFIX + "metric"), f"metric {values['metric']!r} needs "
                           f"class {HPA}; with {KPA} allowed: {', '.join(KPA_METRICS)}"))
    return out


def check_service(doc: dict) -> list[Finding]:
    out: list[Finding] = []
    metadata = doc.get("metadata") or {}
    top = metadata.get("annotations") or {}
    for key in top if isinstance(top, dict) else ():
        if isinstance(key, str) and key.startswith(PREFIX):
            out.append(Finding(key_path("metadata.annotations", key), "autoscaling annotations on "
                               "the Service's own metadata have no effect; move them to "
                               "spec.template.metadata.annotations", "warning"))
    template = (doc.get("spec") or {}).get("template") or {}
    if not isinstance(template, dict):
        return out
    out += check_autoscaling((template.get("metadata") or {}).get("annotations"),
                             "spec.template.metadata.annotations")
    spec = template.get("spec") or {}
    cc = spec.get("containerConcurrency")
    if isinstance(cc, int) and not isinstance(cc, bool) \
            and not 0 <= cc <= CONTAINER_CONCURRENCY_MAX:
        out.append(Finding("spec.template.spec.containerConcurrency", f"{cc} is out of range: "
                           f"must be between 0 (unlimited) and {CONTAINER_CONCURRENCY_MAX}"))
    timeout = spec.get("timeoutSeconds")
    if isinstance(timeout, int) and not isinstance(timeout, bool):
        if timeout < 0:
            out.append(Finding("spec.template.spec.timeoutSeconds", f"{timeout} must be >= 0"))
        elif timeout > TIMEOUT_SECONDS_MAX:
            out.append(Finding("spec.template.spec.timeoutSeconds", f"{timeout} exceeds "
                               f"{TIMEOUT_SECONDS_MAX}, the max-revision-timeout-seconds of a "
                               "default install: raise it in config-defaults (docs/cluster.md, "
                               "'Tasks longer than 10 minutes')", "warning"))
    is_function = "eas.plato/task-type" in ((doc.get("metadata") or {}).get("labels") or {})
    for i, container in enumerate(spec.get("containers") or []):
        for probe in ("readinessProbe", "livenessProbe", "startupProbe"):
            http = ((container or {}).get(probe) or {}).get("httpGet") if isinstance(
                container, dict) else None
            if is_function and isinstance(http, dict) and http.get("path", "/") == "/":
                out.append(Finding(f"spec.template.spec.containers[{i}].{probe}.httpGet",
                                   "an event handler answers only POST: an HTTP GET probe on / "
                                   "never succeeds; use tcpSocket or no probe"))
    return out


def timeout_seconds(doc: dict) -> int:
    """The request timeout of a Knative Service (the install default when unset)."""
    spec = ((doc.get("spec") or {}).get("template") or {}).get("spec") or {}
    value = spec.get("timeoutSeconds")
    return value if isinstance(value, int) and value > 0 else TIMEOUT_SECONDS_DEFAULT
