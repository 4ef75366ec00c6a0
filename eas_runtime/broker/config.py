"""The embedded broker's configuration: Broker, Trigger and PingSource documents from YAML.

The same files configure Knative Eventing in a cluster (``broker_config/``); other kinds in the
folder (SinkBinding, ...) are ignored here.

Delivery resolution follows Knative's multi-tenant channel-based broker and the Broker spec
(knative/specs ``specs/eventing/broker.md``, "Delivery Spec"): a Trigger's ``spec.delivery``, when
present, replaces the Broker's **as a whole** (``retry``, ``backoffPolicy``, ``backoffDelay``,
``timeout``, ``format``); only the dead-letter sink falls back to the Broker's when the Trigger's
delivery names none (the trigger reconciler's ``resolveDeadLetterSink``). A Broker without
``spec.delivery`` gets the delivery that a default Knative installation's ``config-br-defaults``
gives it: ``retry: 10``, ``exponential``, ``PT0.2S`` (:data:`KNATIVE_DEFAULT_DELIVERY`).
Unset fields of a chosen delivery mean: no retries, exponential policy, zero delay, no
per-request timeout (the broker's default timeout applies), binary format.

Documents without ``metadata.namespace`` belong to ``default_namespace`` (``eas``, the namespace
the kustomization applies). Trigger names must be unique across namespaces, because a delivery
row names its trigger by name.
"""
from __future__ import annotations

import logging
import re
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping, Sequence

from eas_runtime.manifests import ManifestError, load_documents, parse_iso8601_duration

from . import filters as _filters

log = logging.getLogger(__name__)

EVENTING = "eventing.knative.dev"
SOURCES = "sources.knative.dev"
DEFAULT_NAMESPACE = "eas"
#: ``config-br-defaults`` of a default Knative Eventing installation (knative/eventing#6011).
KNATIVE_DEFAULT_DELIVERY = {"retry": 10, "backoffPolicy": "exponential", "backoffDelay": "PT0.2S"}
_DELIVERY_KEYS = ("retry", "backoffPolicy", "backoffDelay", "deadLetterSink", "timeout",
                  "retryAfterMax", "format")
_NAME = re.compile(r"^[a-z0-9]([-a-z0-9]*[a-z0-9])?$")


class ConfigError(ValueError):
    """A Broker, Trigger or PingSource the embedded broker cannot use; the message names the
    resource (``Trigger eas/name``) and the field."""


@dataclass(frozen=True)
class DeliverySpec:
    """The effective delivery rules of one Trigger, durations in seconds."""

    retry: int = 0
    backoff_policy: str = "exponential"
    backoff_delay_s: float = 0.0
    #: Per-attempt timeout from ``spec.delivery.timeout``; ``None``: the broker's default.
    timeout_s: float | None = None
    dead_letter_sink: Mapping[str, Any] | None = None
    #: ``binary`` or ``json`` (structured); unset means binary.
    format: str = "binary"

    @property
    def attempts(self) -> int:
        """Attempts to the subscriber before the event is dead-lettered (1 + retries)."""
        return self.retry + 1

    def backoff_s(self, retries_made: int) -> float:
        """Seconds to wait before the next retry, after ``retries_made`` retries (0 before the
        first retry): linear ``delay * n``, exponential ``delay * 2**n``, with n =
        ``retries_made``. This is Knative's formula as its dispatcher applies it: go-retryablehttp
        hands the 0-based retry index to ``Backoff``, so the first retry waits ``delay``
        (exponential) or nothing (linear)."""
        if self.backoff_policy == "linear":
            return self.backoff_delay_s * retries_made
        return self.backoff_delay_s * (2 ** retries_made)


@dataclass(frozen=True)
class BrokerConfig:
    name: str
    namespace: str
    #: ``spec.delivery`` as written, or :data:`KNATIVE_DEFAULT_DELIVERY` when absent.
    delivery: Mapping[str, Any]

    @property
    def key(self) -> str:
        return f"{self.namespace}/{self.name}"


@dataclass(frozen=True)
class TriggerConfig:
    name: str
    namespace: str
    #: Key (``namespace/name``) of the Broker the Trigger subscribes to.
    broker: str
    subscriber: Mapping[str, Any]
    delivery: DeliverySpec
    spec: Mapping[str, Any] = field(repr=False)
    predicate: _filters.Predicate = field(repr=False, compare=False)

    def matches(self, attributes: Mapping[str, Any]) -> bool:
        """Whether an event with these attributes (context attributes and extensions) passes."""
        return _filters.passes(self.predicate, attributes)


@dataclass(frozen=True)
class PingSourceConfig:
    name: str
    namespace: str
    sink: Mapping[str, Any]
    schedule: str = "* * * * *"
    content_type: str = ""
    data: str | None = None
    data_base64: str | None = None

    @property
    def source(self) -> str:
        """The ``source`` attribute Knative gives this PingSource's events."""
        return f"/apis/v1/namespaces/{self.namespace}/pingsources/{self.name}"

    def sink_broker(self) -> str | None:
        """Key of the Broker the sink refers to, or ``None`` when the sink is something else."""
        ref = self.sink.get("ref") if isinstance(self.sink, Mapping) else None
        if not isinstance(ref, Mapping) or ref.get("kind") != "Broker" or self.sink.get("uri"):
            return None
        if str(ref.get("apiVersion", EVENTING + "/v1")).split("/")[0] != EVENTING:
            return None
        return f"{ref.get('namespace') or self.namespace}/{ref.get('name')}"


@dataclass
class Config:
    brokers: dict[str, BrokerConfig] = field(default_factory=dict)
    #: By trigger name.
    triggers: dict[str, TriggerConfig] = field(default_factory=dict)
    pingsources: list[PingSourceConfig] = field(default_factory=list)

    def triggers_of(self, broker_key: str) -> list[TriggerConfig]:
        return [t for t in self.triggers.values() if t.broker == broker_key]

    def matching(self, broker_key: str, attributes: Mapping[str, Any]) -> list[TriggerConfig]:
        """Triggers of a Broker whose filters pass an event with these attributes."""
        return [t for t in self.triggers_of(broker_key) if t.matches(attributes)]


# ------------------------------------------------------------------------------- loading
def load_config(paths: str | Path | Sequence[str | Path],
                default_namespace: str = DEFAULT_NAMESPACE) -> Config:
    """Read every Broker, Trigger and PingSource under ``paths`` (files or folders)."""
    if isinstance(paths, (str, Path)):
        paths = [paths]
    try:
        entries = load_documents(paths)
    except ManifestError as exc:
        raise ConfigError(f"cannot read broker configuration: {exc}") from None
    return build_config([doc for _, _, doc in entries], default_namespace)


def build_config(documents: Iterable[Mapping[str, Any]],
                 default_namespace: str = DEFAULT_NAMESPACE) -> Config:
    """A :class:`Config` from parsed documents; raises :class:`ConfigError`."""
    docs = list(documents)
    config = Config()
    for doc in docs:
        if _is(doc, EVENTING, "Broker"):
            broker = _broker(doc, default_namespace)
            if broker.key in config.brokers:
                raise ConfigError(f"Broker {broker.key} is defined twice")
            config.brokers[broker.key] = broker
    for doc in docs:
        if _is(doc, EVENTING, "Trigger"):
            trigger = _trigger(doc, default_namespace, config.brokers)
            other = config.triggers.get(trigger.name)
            if other is not None:
                raise ConfigError(f"Trigger {trigger.namespace}/{trigger.name}: the name is already "
                                  f"used by Trigger {other.namespace}/{other.name}")
            config.triggers[trigger.name] = trigger
        elif _is(doc, SOURCES, "PingSource"):
            config.pingsources.append(_pingsource(doc, default_namespace))
    return config


def _is(doc: Mapping[str, Any], group: str, kind: str) -> bool:
    return doc.get("kind") == kind and str(doc.get("apiVersion", "")).split("/")[0] == group


def _identity(doc: Mapping[str, Any], kind: str, default_namespace: str) -> tuple[str, str]:
    raw_meta = doc.get("metadata")
    meta = raw_meta if isinstance(raw_meta, Mapping) else {}
    name, namespace = meta.get("name"), meta.get("namespace") or default_namespace
    if not isinstance(name, str) or not _NAME.match(name):
        raise ConfigError(f"{kind} in namespace {namespace}: metadata.name {name!r} is not a "
                          "valid name (lowercase letters, digits and '-')")
    return name, str(namespace)


def _spec(doc: Mapping[str, Any], what: str) -> Mapping[str, Any]:
    spec = doc.get("spec")
    if spec is None:
        return {}
    if not isinstance(spec, Mapping):
        raise ConfigError(f"{what}: spec must be a mapping, got {type(spec).__name__}")
    return spec


def _broker(doc: Mapping[str, Any], default_namespace: str) -> BrokerConfig:
    name, namespace = _identity(doc, "Broker", default_namespace)
    what = f"Broker {namespace}/{name}"
    delivery = _spec(doc, what).get("delivery")
    if delivery is None:
        delivery = dict(KNATIVE_DEFAULT_DELIVERY)
    _check_delivery(delivery, what, "spec.delivery")
    return BrokerConfig(name=name, namespace=namespace, delivery=delivery)


def _trigger(doc: Mapping[str, Any], default_namespace: str,
             brokers: Mapping[str, BrokerConfig]) -> TriggerConfig:
    name, namespace = _identity(doc, "Trigger", default_namespace)
    what = f"Trigger {namespace}/{name}"
    spec = _spec(doc, what)
    broker_name = spec.get("broker")
    if spec.get("brokerRef") is not None:
        raise ConfigError(f"{what}: spec.brokerRef (cross-namespace brokers) is not supported; "
                          "use spec.broker")
    if not isinstance(broker_name, str) or not broker_name:
        raise ConfigError(f"{what}: spec.broker is required (the name of a Broker)")
    broker = brokers.get(f"{namespace}/{broker_name}")
    if broker is None:
        known = ", ".join(sorted(brokers)) or "none"
        raise ConfigError(f"{what}: spec.broker: Broker {broker_name!r} is not defined in namespace "
                          f"{namespace!r} (known: {known})")
    subscriber = spec.get("subscriber")
    _check_destination(subscriber, what, "spec.subscriber")
    assert subscriber is not None   # _check_destination refused anything but a Mapping
    try:
        predicate = _filters.compile_trigger(spec)
    except _filters.FilterError as exc:
        raise ConfigError(f"{what}: {exc}") from None
    own = spec.get("delivery")
    if own is not None:
        _check_delivery(own, what, "spec.delivery")
        chosen, origin = dict(own), "spec.delivery"
        if chosen.get("deadLetterSink") is None and broker.delivery.get("deadLetterSink") is not None:
            chosen["deadLetterSink"] = broker.delivery["deadLetterSink"]
    else:
        chosen, origin = dict(broker.delivery), f"Broker {broker.key} spec.delivery"
    return TriggerConfig(name=name, namespace=namespace, broker=broker.key,
                         subscriber=dict(subscriber), delivery=_delivery(chosen, what, origin),
                         spec=spec, predicate=predicate)


def _pingsource(doc: Mapping[str, Any], default_namespace: str) -> PingSourceConfig:
    name, namespace = _identity(doc, "PingSource", default_namespace)
    what = f"PingSource {namespace}/{name}"
    spec = _spec(doc, what)
    _check_destination(spec.get("sink"), what, "spec.sink")
    data, data_base64 = spec.get("data"), spec.get("dataBase64")
    for key, value in (("data", data), ("dataBase64", data_base64)):
        if value is not None and not isinstance(value, str):
            raise ConfigError(f"{what}: spec.{key} must be a string, got {type(value).__name__}")
    if data is not None and data_base64 is not None:
        raise ConfigError(f"{what}: spec.data and spec.dataBase64 are mutually exclusive")
    return PingSourceConfig(name=name, namespace=namespace, sink=dict(spec["sink"]),
                            schedule=str(spec.get("schedule", "* * * * *")),
                            content_type=str(spec.get("contentType") or ""),
                            data=data, data_base64=data_base64)


def _check_destination(dest: Any, what: str, where: str) -> None:
    if not isinstance(dest, Mapping):
        raise ConfigError(f"{what}: {where} is required (a Destination with ref and/or uri)")
    ref, uri = dest.get("ref"), dest.get("uri")
    if ref is None and not uri:
        raise ConfigError(f"{what}: {where} needs a ref or a uri")
    if ref is not None and (not isinstance(ref, Mapping) or not ref.get("name") or not ref.get("kind")):
        raise ConfigError(f"{what}: {where}.ref needs kind and name, got {ref!r}")
    if uri is not None and not isinstance(uri, str):
        raise ConfigError(f"{what}: {where}.uri must be a string, got {uri!r}")
    if ref is None and not re.match(r"^https?://[^/]+", uri or ""):   # uri is a non-empty str here
        raise ConfigError(f"{what}: {where}.uri {uri!r} must be an absolute http(s) URL when "
                          "there is no ref")


def _check_delivery(delivery: Any, what: str, where: str) -> None:
    if not isinstance(delivery, Mapping):
        raise ConfigError(f"{what}: {where} must be a mapping, got {type(delivery).__name__}")
    for key in delivery:
        if key not in _DELIVERY_KEYS:
            raise ConfigError(f"{what}: {where}.{key} is not a delivery field "
                              f"(allowed: {', '.join(_DELIVERY_KEYS)})")
    if delivery.get("deadLetterSink") is not None:
        _check_destination(delivery["deadLetterSink"], what, f"{where}.deadLetterSink")


def _delivery(raw: Mapping[str, Any], what: str, origin: str) -> DeliverySpec:
    retry = raw.get("retry")
    if retry is None:
        retry = 0
    if isinstance(retry, bool) or not isinstance(retry, int) or retry < 0:
        raise ConfigError(f"{what}: {origin}.retry must be an integer >= 0, got {retry!r}")
    policy = raw.get("backoffPolicy") or "exponential"
    if policy not in ("linear", "exponential"):
        raise ConfigError(f"{what}: {origin}.backoffPolicy {policy!r} is not allowed "
                          "(allowed: linear, exponential)")
    fmt = raw.get("format") or "binary"
    if fmt not in ("binary", "json"):
        raise ConfigError(f"{what}: {origin}.format {fmt!r} is not allowed (allowed: json, binary)")
    if raw.get("retryAfterMax") is not None:
        log.info("%s: %s.retryAfterMax is accepted but Retry-After headers are not honoured",
                 what, origin)
    return DeliverySpec(retry=retry, backoff_policy=policy,
                        backoff_delay_s=_duration(raw, "backoffDelay", what, origin) or 0.0,
                        timeout_s=_duration(raw, "timeout", what, origin, positive=True),
                        dead_letter_sink=raw.get("deadLetterSink"), format=fmt)


def _duration(raw: Mapping[str, Any], key: str, what: str, origin: str,
              positive: bool = False) -> float | None:
    text = raw.get(key)
    if text is None:
        return None
    try:
        seconds = parse_iso8601_duration(text)
    except ValueError as exc:
        raise ConfigError(f"{what}: {origin}.{key}: {exc}") from None
    if positive and seconds <= 0:
        raise ConfigError(f"{what}: {origin}.{key} {text!r} must be greater than zero")
    return seconds
