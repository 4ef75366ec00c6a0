"""Rules for Knative Serving Services that neither the CRD schema nor Knative's webhook apply.

What Knative's own ``Validate`` refuses (autoscaling values and their bounds, min-scale above
max-scale, containerConcurrency and timeoutSeconds out of range) is checked by running it:
knative/validate, with those negative cases in knative/validate/knative_rules_test.go. Left here
is what Knative admits and this project does not want: a misspelt or cluster-level
``autoscaling.knative.dev/*`` key (Knative ignores it), an autoscaler class or aggregation
algorithm this project does not run, an initial scale above the maximum, autoscaling annotations
on the Service's own metadata (no effect), a timeout above a default install's maximum (a warning:
a cluster may allow it, docs/cluster.md), and event handlers probed with HTTP GET on ``/``.
"""
from __future__ import annotations

from typing import Any

from .admission import Finding, did_you_mean, key_path

PREFIX = "autoscaling.knative.dev/"
KPA = "kpa.autoscaling.knative.dev"
HPA = "hpa.autoscaling.knative.dev"
CLASSES = (KPA, HPA)
AGGREGATION = ("linear", "weightedExponential", "weighted-exponential")
#: Defaults of a stock install (config-defaults); larger values need cluster configuration.
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


#: Every per-revision autoscaling annotation Knative knows. Their values are Knative's to check
#: (knative/validate runs its Validate; negative cases in knative_rules_test.go): here only the
#: keys are, since Knative ignores an unknown one and a typo then goes unnoticed.
KNOWN = frozenset({"min-scale", "max-scale", "initial-scale", "activation-scale",
                   "scale-down-delay", "scale-to-zero-pod-retention-period", "window", "target",
                   "target-utilization-percentage", "target-burst-capacity",
                   "panic-window-percentage", "panic-threshold-percentage", "metric", "class",
                   "metric-aggregation-algorithm"})
#: Values Knative admits whatever they are (a custom autoscaler may have its own class; an unknown
#: algorithm falls back to the default silently), limited to what this project runs.
CHOICES = {"class": CLASSES, "metric-aggregation-algorithm": AGGREGATION}


def _whole(value: str | None) -> int | None:
    try:
        return int(value, 10) if value is not None else None
    except ValueError:
        return None     # Knative's Validate reports it


def check_autoscaling(annotations: Any, path: str) -> list[Finding]:
    """The ``autoscaling.knative.dev/*`` keys of a revision template's annotations, and the
    rules Knative's webhook does not apply (see TestKnativeAdmits in knative/validate)."""
    if not isinstance(annotations, dict):
        return []
    out: list[Finding] = []
    values: dict[str, str] = {}
    for key, value in annotations.items():
        if not isinstance(key, str) or not key.startswith(PREFIX) or not isinstance(value, str):
            continue        # a value that is no string is the schema's (annotations are strings)
        name, where = key[len(PREFIX):], key_path(path, key)
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
            known = ", ".join(PREFIX + k for k in sorted(KNOWN))
            out.append(Finding(where, f"unknown autoscaling annotation {key!r}"
                               f"{did_you_mean(name, KNOWN, PREFIX)} (known: {known})"))
            continue
        if name in CHOICES and value not in CHOICES[name]:
            out.append(Finding(where, f"{key}: {value!r} is not allowed (allowed: "
                               f"{', '.join(CHOICES[name])})"))
            continue
        values[name] = value
    initial, high = _whole(values.get("initial-scale")), _whole(values.get("max-scale"))
    if initial is not None and high and initial > high:      # max-scale 0 means unlimited
        out.append(Finding(key_path(path, PREFIX + "initial-scale"), f"initial-scale={initial} "
                           f"is more than max-scale={high}: the revision never becomes ready"))
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
    timeout = spec.get("timeoutSeconds")
    if isinstance(timeout, int) and not isinstance(timeout, bool):
        if timeout > TIMEOUT_SECONDS_MAX:
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
