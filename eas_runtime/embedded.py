"""The embedded single-machine runtime behind ``eas up`` and ``eas demo``.

One process hosts the broker (ingress on ``gateway_port``, durable delivery queue in the task
database, the same Trigger and delivery YAML as the cluster) and local serving (each Knative
Service of ``knative/base`` as its own processes, started on demand). eas-control, the index
site and the storage adapter are Services like any other; the reconcile tick comes from the
PingSource of ``broker_config``, at ``reconcile_s`` instead of its cron schedule. With SQLite,
a thread checkpoints the WAL so that no commit on the pipeline's path has to
(:mod:`eas_runtime.db.checkpoint`).
"""
from __future__ import annotations

import logging
from typing import TYPE_CHECKING

from eas_runtime import internal_auth
from eas_runtime.broker import Broker, PingEmitter, serve
from eas_runtime.db.checkpoint import Checkpointer
from eas_runtime.db.session import Database
from eas_runtime.serving import LocalServing
from eas_runtime.settings import Settings

if TYPE_CHECKING:
    from eas_runtime.broker.ingress import ServerThread
    from eas_runtime.site.serving_status import StatusWriter

log = logging.getLogger("eas.embedded")
# One line per broker request would drown the progress of a run; errors still show.
logging.getLogger("werkzeug").setLevel(logging.WARNING)


def _free_port() -> int:
    from eas_runtime._ports import free_port
    return free_port()


def resolve_ports(settings: Settings) -> Settings:
    """Replace port 0 (any free port) by a concrete one, so every process agrees on it."""
    changes = {}
    for name in ("gateway_port", "index_port", "adapter_port"):
        if getattr(settings, name) == 0:
            changes[name] = _free_port()
    return settings.replace(**changes) if changes else settings


class EmbeddedRuntime:
    def __init__(self, settings: Settings):
        # The embedded runtime always demands the internal token (eas_runtime.internal_auth).
        self.settings = internal_auth.with_token(resolve_ports(settings))
        self.db = Database(self.settings.db_url)
        self.serving: LocalServing | None = None
        self.broker: Broker | None = None
        self._server: ServerThread | None = None
        self._ping: PingEmitter | None = None
        self._status: StatusWriter | None = None
        self._checkpointer: Checkpointer | None = None

    @property
    def index_url(self) -> str:
        return f"http://127.0.0.1:{self.settings.index_port}/"

    @property
    def broker_url(self) -> str:
        return self.settings.sink_url

    def start(self) -> "EmbeddedRuntime":
        st = self.settings
        st.home_path.mkdir(parents=True, exist_ok=True)
        self.db.create_schema()
        if self.db.sqlite_path:
            self._checkpointer = Checkpointer(self.db).start()
        if st.store == "minio":
            # The bucket and its webhook notification (to the storage adapter, which local
            # serving runs on adapter_port); in a cluster a Job in storage/ does this.
            from eas_runtime.store.minio_store import MinioStore
            store = MinioStore.from_settings(st)
            store.ensure_bucket()
            store.enable_notifications()
        ports = {"eas-index": st.index_port, "eas-storage-adapter": st.adapter_port}
        self.serving = LocalServing(st, broker_url=self.broker_url, ports=ports)
        self.broker = Broker(st, self.db, dispatcher=internal_auth.SignedDispatcher(
            self.serving, st.internal_token))
        self.broker.start()
        self._server = serve(self.broker, "127.0.0.1", st.gateway_port)
        self.serving.start()
        # The index site runs in a process of its own: it reads the serving status from a file.
        from eas_runtime.site.serving_status import StatusWriter
        self._status = StatusWriter(self.serving, st.home_path).start()
        if st.reconcile_s > 0:
            self._ping = PingEmitter(self.broker, interval_s=st.reconcile_s)
            self._ping.start()
        log.info("embedded runtime up: broker %s, index site %s", self.broker_url, self.index_url)
        return self

    def stop(self) -> None:
        if self._ping is not None:
            self._ping.stop()
        if self._status is not None:
            self._status.stop()
        if self._server is not None:
            self._server.shutdown()
        if self.broker is not None:
            self.broker.stop()
        if self.serving is not None:
            self.serving.stop()
        if self._checkpointer is not None:
            self._checkpointer.stop()
        self.db.dispose()

    def __enter__(self) -> "EmbeddedRuntime":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()

    def wait_idle(self, timeout_s: float = 60.0) -> bool:
        """True once the broker has nothing left to deliver (used by tests and the demo); waits
        on the broker's condition variable, False after ``timeout_s`` seconds."""
        assert self.broker is not None, "wait_idle: the runtime is not started"
        return self.broker.wait_idle(timeout_s)
