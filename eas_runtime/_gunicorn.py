"""``eas serve`` on gunicorn: eas-index, eas-control and the storage adapter in the images.

One worker process with threads (``gthread``): the applications keep per-process state (the
database engine's pool, eas-control's caches) and were written for a threaded server, so
threads rather than processes carry the concurrency, as before; gthread keeps connections
alive, which the broker's deliveries reuse. In a cluster Knative's queue-proxy stands in front
of every replica and shields it from slow clients, the deployment gunicorn's documentation
asks for. SIGTERM (Knative scaling a replica down) lets requests in flight finish within
:data:`GRACEFUL_S`.
"""
from __future__ import annotations

from typing import Callable

from gunicorn.app.base import BaseApplication

#: Threads of the one worker (requests served at once).
THREADS = 8
#: Seconds a kept-alive connection may stay idle (the broker's connections are reused).
KEEPALIVE_S = 75
#: Seconds a worker may be silent before gunicorn's arbiter restarts it (a gthread worker's
#: main loop stays responsive while requests run in its threads).
WORKER_TIMEOUT_S = 120
#: Seconds requests in flight get to finish after SIGTERM.
GRACEFUL_S = 25


class _Server(BaseApplication):
    def __init__(self, factory: Callable, options: dict):
        self._factory = factory
        self._options = options
        super().__init__()

    def load_config(self) -> None:
        for key, value in self._options.items():
            self.cfg.set(key, value)

    def load(self):
        return self._factory()


def options(host: str, port: int, name: str) -> dict:
    return {"bind": f"{host}:{port}", "workers": 1, "worker_class": "gthread", "threads": THREADS,
            "keepalive": KEEPALIVE_S, "timeout": WORKER_TIMEOUT_S, "graceful_timeout": GRACEFUL_S,
            "proc_name": name, "accesslog": None, "errorlog": "-", "loglevel": "warning",
            # Control-plane bodies are small; a job description is bounded by the site itself.
            "limit_request_line": 8190, "limit_request_fields": 100}


def serve(factory: Callable, host: str, port: int, name: str) -> None:
    """Run the WSGI application ``factory()`` makes until SIGTERM or SIGINT."""
    _Server(factory, options(host, port, name)).run()
