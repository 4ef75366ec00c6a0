"""The embedded broker: a small Knative Broker for the single-machine runtime.

It reads the same Broker, Trigger and PingSource YAML as Knative Eventing (``broker_config/``)
and delivers with the same filter, retry, reply and dead-letter rules; see the modules:

- :mod:`.config`: documents -> :class:`Config` (effective delivery spec per Trigger).
- :mod:`.filters`: Trigger filters (``filter.attributes`` and ``filters``).
- :mod:`.delivery`: :class:`Broker`, the durable queue and its worker threads.
- :mod:`.dispatch`: the dispatcher contract, :class:`HttpDispatcher`, judging answers.
- :mod:`.ingress`: the HTTP ingress (:func:`create_app`, :func:`serve`).
- :mod:`.ping`: :class:`PingEmitter`.

Typical use::

    broker = Broker(settings, db, dispatcher=serving).start()
    server = serve(broker, "127.0.0.1", settings.gateway_port)
    ping = PingEmitter(broker, settings.reconcile_s); ping.start()
    ...
    ping.stop(); server.shutdown(); broker.stop()
"""
from .config import (BrokerConfig, Config, ConfigError, DeliverySpec, PingSourceConfig,
                     TriggerConfig, build_config, load_config)
from .delivery import DEFAULT_TIMEOUT_S, Attempt, Broker
from .dispatch import HttpDispatcher, UnresolvableDestination
from .ingress import create_app, serve
from .ping import PingEmitter, ping_event

__all__ = ["Attempt", "Broker", "BrokerConfig", "Config", "ConfigError", "DEFAULT_TIMEOUT_S",
           "DeliverySpec", "HttpDispatcher", "PingEmitter", "PingSourceConfig", "TriggerConfig",
           "UnresolvableDestination", "build_config", "create_app", "load_config", "ping_event",
           "serve"]
