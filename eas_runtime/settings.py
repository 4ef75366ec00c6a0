"""Settings, read once into a frozen object.

Precedence, highest first: keyword arguments to :meth:`Settings.load` (command-line flags),
then environment variables with the ``EAS_`` prefix, then the defaults below. Nothing else in
the project reads ``os.environ`` for its configuration; science code never does.

Knative's own variables are honoured where Knative sets them: ``K_SINK`` (where to send events,
injected by a SinkBinding) falls back to ``EAS_BROKER_URL``.

The internal token (:mod:`eas_runtime.internal_auth`) has one more source below the environment:
keyword argument > ``EAS_INTERNAL_TOKEN`` > the file ``$EAS_HOME/internal-token`` when it exists
> none (nothing demanded, nothing sent: a cluster). A token file group or others can read is
refused with :class:`SettingsError`.
"""
from __future__ import annotations

import dataclasses
import os
from dataclasses import dataclass, field, fields
from pathlib import Path
from typing import Any, Mapping

PROJECT_ROOT = Path(__file__).resolve().parent.parent


class SettingsError(ValueError):
    """A setting has a value that cannot be used; the message names it."""


def _default_home() -> str:
    return str(Path.cwd() / ".eas")


@dataclass(frozen=True)
class Settings:
    """Every knob of the runtime, with the unit in the name where there is one."""

    #: Folder for the embedded default: database, local store, logs, MinIO queue.
    home: str = field(default_factory=_default_home)
    #: SQLAlchemy URL; empty means ``sqlite:///<home>/eas.db``.
    database_url: str = ""
    #: ``local`` (a directory) or ``minio``.
    store: str = "local"
    #: Root folder of the local store; empty means ``<home>/store``.
    store_root: str = ""
    #: Bucket (MinIO) or top folder (local store) that holds every object.
    bucket: str = "eas"
    minio_endpoint: str = "127.0.0.1:9000"
    minio_access_key: str = "eas-admin"
    minio_secret_key: str = "eas-secret-key"
    minio_secure: bool = False
    #: Where events go: the broker ingress. ``K_SINK`` wins when Knative injects it; empty
    #: means the embedded broker on ``gateway_port`` (see :attr:`sink_url`).
    broker_url: str = ""
    #: Port of the embedded runtime's gateway (broker ingress, storage adapter, services).
    gateway_port: int = 8470
    #: Port of the index site and of the storage adapter in the embedded runtime.
    index_port: int = 8471
    adapter_port: int = 8472
    #: Shared secret MinIO sends in ``Authorization: Bearer ...`` to the storage adapter.
    adapter_token: str = "eas-adapter-token"
    #: Token that the index site demands for every state-changing request.
    api_token: str = ""
    #: Secret that the broker ingress, eas-control and the function replicas demand, and that
    #: everything internal sends; empty: nothing is demanded (see eas_runtime.internal_auth).
    internal_token: str = field(default="", repr=False)
    #: Folders holding the Knative manifests the embedded runtime reads.
    knative_dir: str = str(PROJECT_ROOT / "knative" / "base")
    broker_config_dir: str = str(PROJECT_ROOT / "broker_config")
    #: Heartbeat interval of a running attempt, and the age after which it counts as stalled.
    heartbeat_s: float = 30.0
    stall_s: float = 300.0
    #: An attempt whose ``task.ready`` was sent but which has not started after this long
    #: has its event sent again by the reconcile tick.
    redeliver_s: float = 120.0
    #: An unstarted attempt is given up (as an infrastructure failure, then retried like a lost
    #: one) after this many sends of its ``task.ready`` after which no attempt at all started or
    #: ran: its function takes nothing. 0 = resend without bound.
    max_unanswered_sends: int = 5
    #: How many attempts a task gets when attempts are lost to infrastructure failures, and
    #: the backoff before retry n (``retry_backoff_s * 2**(n-1)``).
    max_attempts: int = 3
    retry_backoff_s: float = 30.0
    #: The request limit of the function's Knative Service (``timeoutSeconds``; local serving
    #: and the generated Services set ``EAS_TIMEOUT_S`` to it): the wrapper ends a science run
    #: before it and records a timeout. 0 = no limit known (a function run outside a Service).
    #: eas-control judges an attempt that ran past it as timed out, not stalled; there 0 means
    #: Knative's largest default limit (600 s) for task types whose descriptor it cannot read.
    timeout_s: float = 0.0
    #: Reconcile tick of the embedded runtime (a PingSource does it in a cluster; 0 = off).
    reconcile_s: float = 60.0
    #: Embedded serving: replicas per service at most (0 = as many as the cores fit by each
    #: Service's ``resources.requests.cpu``, at least one), idle time after which a replica of
    #: a scale-to-zero service is stopped.
    max_replicas: int = 0
    idle_s: float = 60.0
    #: Seconds a function process may take to start listening.
    cold_start_timeout_s: float = 60.0
    #: Log level of the runtime's own loggers.
    log_level: str = "INFO"
    #: HTTP server of ``eas serve`` (eas-index, eas-control, the storage adapter): ``gunicorn``
    #: (threaded workers), as in the images, behind Knative's queue-proxy; ``builtin``, the
    #: runtime's own threaded server, which bounds slow request bodies itself (no proxy in
    #: front); empty: gunicorn, except in the embedded runtime, which starts them builtin.
    http_server: str = ""

    # ------------------------------------------------------------------ derived values
    @property
    def home_path(self) -> Path:
        return Path(self.home)

    @property
    def db_url(self) -> str:
        return self.database_url or f"sqlite:///{self.home_path / 'eas.db'}"

    @property
    def store_path(self) -> Path:
        return Path(self.store_root) if self.store_root else self.home_path / "store"

    @property
    def sink_url(self) -> str:
        """The broker ingress every event is posted to."""
        return self.broker_url or f"http://127.0.0.1:{self.gateway_port}/eas/default"

    @property
    def replica_limit(self) -> int:
        return self.max_replicas or (os.cpu_count() or 1)

    # ------------------------------------------------------------------ loading
    @classmethod
    def load(cls, environ: Mapping[str, str] | None = None, **overrides: Any) -> "Settings":
        """Build settings from ``overrides`` > ``EAS_*`` environment > defaults."""
        env = os.environ if environ is None else environ
        values: dict[str, Any] = {}
        for f in fields(cls):
            raw = env.get("EAS_" + f.name.upper())
            if raw is not None and raw != "":
                values[f.name] = _convert(f, raw)
        if "broker_url" not in overrides and env.get("K_SINK"):
            values["broker_url"] = env["K_SINK"]
        for name, value in overrides.items():
            if value is None:
                continue
            if name not in {f.name for f in fields(cls)}:
                raise SettingsError(f"unknown setting {name!r}")
            values[name] = value
        if not values.get("internal_token"):
            from eas_runtime.internal_auth import read_token_file   # raises SettingsError
            values["internal_token"] = read_token_file(values.get("home") or _default_home())
        settings = cls(**values)
        settings.validate()
        return settings

    def validate(self) -> None:
        if self.store not in ("local", "minio"):
            raise SettingsError(f"EAS_STORE={self.store!r}: allowed values are 'local', 'minio'")
        if self.http_server not in ("", "gunicorn", "builtin"):
            raise SettingsError(f"EAS_HTTP_SERVER={self.http_server!r}: allowed values are 'gunicorn', 'builtin' "
                                "(or empty)")
        for name in ("heartbeat_s", "stall_s", "idle_s"):
            if getattr(self, name) <= 0:
                raise SettingsError(f"EAS_{name.upper()} must be positive, got {getattr(self, name)!r}")
        if self.stall_s <= self.heartbeat_s:
            raise SettingsError(
                f"EAS_STALL_S ({self.stall_s}) must exceed EAS_HEARTBEAT_S ({self.heartbeat_s})")
        if self.timeout_s < 0:
            raise SettingsError(f"EAS_TIMEOUT_S must be 0 (no limit) or positive, got {self.timeout_s!r}")
        if self.max_unanswered_sends < 0:
            raise SettingsError("EAS_MAX_UNANSWERED_SENDS must be 0 (no bound) or positive, "
                                f"got {self.max_unanswered_sends}")
        if self.max_attempts < 1:
            raise SettingsError(f"EAS_MAX_ATTEMPTS must be at least 1, got {self.max_attempts}")

    def replace(self, **changes: Any) -> "Settings":
        return dataclasses.replace(self, **changes)

    def to_env(self) -> dict[str, str]:
        """The ``EAS_*`` variables that reproduce these settings in a child process."""
        out = {}
        for f in fields(self):
            value = getattr(self, f.name)
            out["EAS_" + f.name.upper()] = ("true" if value else "false") if isinstance(value, bool) else str(value)
        return out


def _convert(f: dataclasses.Field, raw: str) -> Any:
    names = {"str": str, "int": int, "float": float, "bool": bool}
    kind = f.type if isinstance(f.type, type) else names.get(str(f.type), str)
    try:
        if kind is bool:
            lowered = raw.strip().lower()
            if lowered in ("1", "true", "yes", "on"):
                return True
            if lowered in ("0", "false", "no", "off"):
                return False
            raise ValueError(raw)
        return kind(raw)
    except ValueError:
        raise SettingsError(
            f"EAS_{f.name.upper()}={raw!r} is not a valid {kind.__name__}") from None
