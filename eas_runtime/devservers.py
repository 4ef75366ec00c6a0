"""Real MinIO and PostgreSQL servers on loopback, for tests, ``just`` recipes and the embedded
runtime.

Nothing here is a mock: :class:`MinioServer` runs the MinIO binary built from the pinned commit
(:data:`MINIO_VERSION`), :class:`PostgresServer` runs the PostgreSQL server binaries of the
Debian packages. Both listen on 127.0.0.1 only and keep everything (data, logs, sockets) under
the folder they are given.

``python -m eas_runtime.devservers minio|postgres [--dir D] [--port P]`` runs one in the
foreground until Ctrl-C.

pytest is imported lazily (only by :func:`require`): this module is also used outside tests.
"""
from __future__ import annotations

import argparse
import contextlib
import os
import pwd
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

#: The MinIO server release the project is tested with, as a pseudo-version because the Go
#: module proxy does not resolve the full hash form.
#: Commit 7aac2a2c5b7c882e68c1ce017d8256be2feea27f.
MINIO_VERSION = "v0.0.0-20260212201848-7aac2a2c5b7c"
MINIO_MODULE = "github.com/minio/minio"
#: Name of the webhook notification target; its ARN is ``arn:minio:sqs::EAS:webhook``.
MINIO_WEBHOOK_ID = "EAS"
MINIO_WEBHOOK_ARN = f"arn:minio:sqs::{MINIO_WEBHOOK_ID}:webhook"

DEFAULT_ACCESS_KEY = "eas-admin"
DEFAULT_SECRET_KEY = "eas-secret-key"
LOOPBACK = "127.0.0.1"

INSTALL_HINTS = {
    "minio": (f"build the MinIO server with `go install {MINIO_MODULE}@{MINIO_VERSION}` "
              "(or `python -c 'from eas_runtime.devservers import build_minio; build_minio()'`); "
              "the binary is looked for on PATH, in ~/go/bin and in $GOPATH/bin"),
    "postgres": ("install the PostgreSQL server, e.g. `apt-get install postgresql` "
                 "(binaries are looked for in /usr/lib/postgresql/<version>/bin and on PATH)"),
}


#: Loopback probes never go through an HTTP proxy from the environment.
_NO_PROXY = urllib.request.build_opener(urllib.request.ProxyHandler({}))


class DevServerError(RuntimeError):
    """A development server could not be started; the message holds the end of its log."""


# --------------------------------------------------------------------------- helpers
def free_port() -> int:
    """A TCP port on 127.0.0.1 that nobody listens on right now (see :mod:`eas_runtime._ports`)."""
    from eas_runtime._ports import free_port as _free
    return _free()


def _port_open(port: int) -> bool:
    with socket.socket(socket.AF_INET, socket.SOCK_STREAM) as s:
        s.settimeout(0.2)
        return s.connect_ex((LOOPBACK, port)) == 0


def _tail(path: Path, lines: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-lines:])
    except OSError:
        return "(no log)"


def _stop_process(proc: subprocess.Popen | None, sig: int = signal.SIGTERM,
                  timeout_s: float = 15.0) -> None:
    if proc is None or proc.poll() is not None:
        return
    with contextlib.suppress(ProcessLookupError):
        proc.send_signal(sig)
    try:
        proc.wait(timeout_s)
    except subprocess.TimeoutExpired:
        with contextlib.suppress(ProcessLookupError):
            proc.kill()
        proc.wait(10)


# --------------------------------------------------------------------------- MinIO
def find_minio() -> Path | None:
    """The MinIO server binary: on PATH, then ``~/go/bin``, then ``$GOPATH/bin``."""
    found = shutil.which("minio")
    candidates = [Path(found)] if found else []
    candidates.append(Path.home() / "go" / "bin" / "minio")
    for gopath in filter(None, os.environ.get("GOPATH", "").split(os.pathsep)):
        candidates.append(Path(gopath) / "bin" / "minio")
    for candidate in candidates:
        if candidate.is_file() and os.access(candidate, os.X_OK):
            return candidate
    return None


def build_minio() -> Path:
    """Build the pinned MinIO server with ``go install`` and return the binary (takes minutes)."""
    go = shutil.which("go")
    if go is None and Path("/usr/local/go/bin/go").exists():
        go = "/usr/local/go/bin/go"
    if go is None:
        raise DevServerError("cannot build MinIO: the Go toolchain (`go`) is not installed")
    subprocess.run([go, "install", f"{MINIO_MODULE}@{MINIO_VERSION}"], check=True)
    gobin = subprocess.run([go, "env", "GOBIN", "GOPATH"], check=True, capture_output=True,
                           text=True).stdout.splitlines()
    bin_dir = Path(gobin[0]) if gobin and gobin[0] else Path(gobin[1].split(os.pathsep)[0]) / "bin"
    binary = bin_dir / "minio"
    if not binary.is_file():
        raise DevServerError(f"go install succeeded but {binary} does not exist")
    return binary


class MinioServer:
    """One MinIO server (single drive) on 127.0.0.1.

    Layout of ``data_dir``: ``data/`` (the drive), ``queue/`` (the webhook queue_dir unless
    another is given), ``minio.log``. With ``webhook_endpoint`` the server gets a webhook target
    named ``EAS`` (ARN :data:`MINIO_WEBHOOK_ARN`) with ``queue_dir`` on, so notifications that
    cannot be delivered are kept on disk and sent again (every 3 s) until the endpoint answers 2xx.

    ``reliable_notifications`` (on by default) sets two variables without which acknowledged
    uploads can go unannounced (a cluster deployment of MinIO needs them too):

    - ``MINIO_API_SYNC_EVENTS=on``: each notification is written to the queue before the upload
      is acknowledged. Otherwise it passes through an in-memory queue first: a crash loses it,
      and a burst beyond 50 000 pending notifications is dropped.
    - ``MINIO_SYNC_BOOT=on``: after a (re)start, S3 calls wait until the bucket notification
      rules are loaded. Otherwise the server accepts uploads a moment before it knows the
      bucket's notification rules, and sends no notification for them.
    """

    def __init__(self, data_dir: Path | str, port: int | None = None, *,
                 webhook_endpoint: str | None = None, webhook_token: str | None = None,
                 queue_dir: Path | str | None = None, access_key: str = DEFAULT_ACCESS_KEY,
                 secret_key: str = DEFAULT_SECRET_KEY, binary: Path | None = None,
                 reliable_notifications: bool = True, start_timeout_s: float = 60.0):
        self.data_dir = Path(data_dir).resolve()
        self.port = port
        self.console_port: int | None = None
        self.webhook_endpoint = webhook_endpoint
        self.webhook_token = webhook_token
        self.queue_dir = Path(queue_dir) if queue_dir else self.data_dir / "queue"
        self.access_key = access_key
        self.secret_key = secret_key
        self.binary = binary
        self.reliable_notifications = reliable_notifications
        self.start_timeout_s = start_timeout_s
        self.log_path = self.data_dir / "minio.log"
        self.process: subprocess.Popen | None = None
        #: Seconds the last start took until the server was live and initialised.
        self.start_seconds: float | None = None

    @property
    def endpoint(self) -> str:
        """``host:port`` of the S3 API, as the ``minio`` client wants it."""
        if self.port is None:
            raise DevServerError("MinIO server not started")
        return f"{LOOPBACK}:{self.port}"

    @property
    def url(self) -> str:
        return f"http://{self.endpoint}"

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def _env(self) -> dict[str, str]:
        env = {k: v for k, v in os.environ.items() if not k.startswith("MINIO_")}
        env.update(MINIO_ROOT_USER=self.access_key, MINIO_ROOT_PASSWORD=self.secret_key,
                   MINIO_UPDATE="off")
        if self.webhook_endpoint:
            suffix = "_" + MINIO_WEBHOOK_ID
            env["MINIO_NOTIFY_WEBHOOK_ENABLE" + suffix] = "on"
            env["MINIO_NOTIFY_WEBHOOK_ENDPOINT" + suffix] = self.webhook_endpoint
            env["MINIO_NOTIFY_WEBHOOK_QUEUE_DIR" + suffix] = str(self.queue_dir)
            if self.webhook_token:
                env["MINIO_NOTIFY_WEBHOOK_AUTH_TOKEN" + suffix] = self.webhook_token
        if self.reliable_notifications:
            env["MINIO_API_SYNC_EVENTS"] = "on"
            env["MINIO_SYNC_BOOT"] = "on"
        return env

    def start(self) -> "MinioServer":
        if self.running:
            return self
        binary = self.binary or find_minio()
        if binary is None:
            raise DevServerError("MinIO server binary not found: " + INSTALL_HINTS["minio"])
        (self.data_dir / "data").mkdir(parents=True, exist_ok=True)
        if self.webhook_endpoint:
            self.queue_dir.mkdir(parents=True, exist_ok=True)
        pick_ports = self.port is None
        for attempt in range(3):
            if pick_ports or self.port is None:
                self.port = free_port()
            if pick_ports or self.console_port is None:
                self.console_port = free_port()
            try:
                self._launch(binary)
                return self
            except DevServerError:
                # Another process may have taken a port we picked; pick new ones and retry.
                if not pick_ports or attempt == 2:
                    raise
        return self

    def _launch(self, binary: Path) -> None:
        t0 = time.monotonic()
        with open(self.log_path, "ab") as log:
            log.write(f"\n--- starting {binary} on {self.endpoint} ---\n".encode())
            log.flush()
            self.process = subprocess.Popen(
                [str(binary), "server", str(self.data_dir / "data"), "--address", self.endpoint,
                 "--console-address", f"{LOOPBACK}:{self.console_port}"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, env=self._env())
        deadline = t0 + self.start_timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise DevServerError(f"MinIO exited with {self.process.returncode} while starting;"
                                     f" log {self.log_path}:\n{_tail(self.log_path)}")
            # live: the HTTP server answers; cluster: object layer, IAM and bucket metadata are
            # initialised (before that S3 calls get 503 XMinioServerNotInitialized).
            if self.live() and self.live("cluster"):
                self.start_seconds = time.monotonic() - t0
                return
            time.sleep(0.05)
        _stop_process(self.process, signal.SIGKILL)
        raise DevServerError(f"MinIO did not become live within {self.start_timeout_s} s; "
                             f"log {self.log_path}:\n{_tail(self.log_path)}")

    def live(self, probe: str = "live") -> bool:
        """True when the health probe ``/minio/health/<probe>`` answers 200."""
        try:
            with _NO_PROXY.open(f"{self.url}/minio/health/{probe}", timeout=1) as resp:
                return resp.status == 200
        except (urllib.error.URLError, OSError):
            return False

    def stop(self) -> None:
        """Graceful shutdown (SIGTERM), killing it if it takes longer than 15 s."""
        _stop_process(self.process)
        self._wait_port_free()

    def kill(self) -> None:
        """Crash the server (SIGKILL): no graceful shutdown, as when the process dies."""
        _stop_process(self.process, signal.SIGKILL)
        self._wait_port_free()

    def restart(self) -> "MinioServer":
        """Stop and start again with the same data folder, ports and settings."""
        self.stop()
        binary = self.binary or find_minio()
        if binary is None:                  # removed since start(): say so, as start() does
            raise DevServerError("MinIO server binary not found: " + INSTALL_HINTS["minio"])
        self._launch(binary)
        return self

    def _wait_port_free(self, timeout_s: float = 10.0) -> None:
        deadline = time.monotonic() + timeout_s
        while self.port and _port_open(self.port) and time.monotonic() < deadline:
            time.sleep(0.05)

    def client(self):
        """A ``minio.Minio`` client for this server."""
        from minio import Minio
        return Minio(self.endpoint, access_key=self.access_key, secret_key=self.secret_key,
                     secure=False, region="us-east-1")

    def settings_overrides(self, bucket: str = "eas") -> dict:
        """Keyword arguments for :meth:`Settings.load` that point the runtime at this server."""
        return {"store": "minio", "minio_endpoint": self.endpoint, "bucket": bucket,
                "minio_access_key": self.access_key, "minio_secret_key": self.secret_key,
                "minio_secure": False}

    def __enter__(self) -> "MinioServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


# --------------------------------------------------------------------------- PostgreSQL
def find_postgres() -> Path | None:
    """The folder holding ``initdb`` and ``postgres``: the newest Debian install, else PATH."""
    def version(initdb: Path) -> int:
        name = initdb.parent.parent.name
        return int(name) if name.isdigit() else 0

    debian = sorted(Path("/usr/lib/postgresql").glob("*/bin/initdb"), key=version)
    if debian:
        return debian[-1].parent
    found = shutil.which("initdb")
    if found and shutil.which("postgres"):
        return Path(found).parent
    return None


def _as_postgres_user() -> dict:
    """``subprocess`` arguments that run a child as the ``postgres`` user when we are root
    (initdb and the server refuse to run as root)."""
    if os.geteuid() != 0:
        return {}
    try:
        pw = pwd.getpwnam("postgres")
    except KeyError:
        raise DevServerError("running as root, but there is no `postgres` user to run the "
                             "PostgreSQL server as") from None
    return {"user": pw.pw_uid, "group": pw.pw_gid, "extra_groups": []}


class PostgresServer:
    """One PostgreSQL cluster on 127.0.0.1 with trust authentication, user ``postgres``.

    The cluster lives in ``data_dir/pgdata`` (unix sockets in ``data_dir/pgdata/sock``, log in
    ``data_dir/postgres.log``). As root the server runs as the ``postgres`` user; if that user
    cannot reach ``data_dir`` (pytest's temporary folders are private to root) the cluster is put
    in a private temporary folder instead and removed by :meth:`stop`.
    """

    def __init__(self, data_dir: Path | str, port: int | None = None, *,
                 bin_dir: Path | None = None, start_timeout_s: float = 60.0):
        self.data_dir = Path(data_dir).resolve()
        self.port = port
        self.bin_dir = bin_dir
        self.start_timeout_s = start_timeout_s
        self.log_path = self.data_dir / "postgres.log"
        self.cluster_dir: Path | None = None
        self._temporary_cluster = False
        self.process: subprocess.Popen | None = None
        self.start_seconds: float | None = None

    @property
    def running(self) -> bool:
        return self.process is not None and self.process.poll() is None

    def url(self, database: str = "postgres") -> str:
        if self.port is None:
            raise DevServerError("PostgreSQL server not started")
        return f"postgresql+psycopg2://postgres@{LOOPBACK}:{self.port}/{database}"

    def _choose_cluster_dir(self, as_user: dict) -> Path:
        wanted = self.data_dir / "pgdata"
        if not as_user:
            return wanted
        wanted.mkdir(parents=True, exist_ok=True)
        os.chown(wanted, as_user["user"], as_user["group"])
        reachable = subprocess.run(["test", "-w", str(wanted), "-a", "-x", str(wanted)],
                                   **as_user).returncode == 0
        if reachable:
            return wanted
        self._temporary_cluster = True
        tmp = Path(tempfile.mkdtemp(prefix="eas-pg-"))
        os.chown(tmp, as_user["user"], as_user["group"])
        return tmp

    def start(self) -> "PostgresServer":
        if self.running:
            return self
        bin_dir = self.bin_dir or find_postgres()
        if bin_dir is None:
            raise DevServerError("PostgreSQL not found: " + INSTALL_HINTS["postgres"])
        as_user = _as_postgres_user()
        self.data_dir.mkdir(parents=True, exist_ok=True)
        if self.cluster_dir is None:
            self.cluster_dir = self._choose_cluster_dir(as_user)
        socket_dir = self.cluster_dir / "sock"
        if not (self.cluster_dir / "PG_VERSION").exists():
            result = subprocess.run(
                [str(bin_dir / "initdb"), "-D", str(self.cluster_dir), "-U", "postgres",
                 "--auth=trust", "--encoding=UTF8", "--locale=C", "--no-sync"],
                capture_output=True, text=True, cwd="/", **as_user)
            if result.returncode != 0:
                raise DevServerError(f"initdb failed:\n{result.stdout}\n{result.stderr}")
        socket_dir.mkdir(exist_ok=True)
        if as_user:
            os.chown(socket_dir, as_user["user"], as_user["group"])
        if len(str(socket_dir / ".s.PGSQL.65535")) > 100:  # unix socket paths are short
            raise DevServerError(f"socket folder {socket_dir} is too long a path for a unix "
                                 "socket: use a shorter data folder")
        if self.port is None:
            self.port = free_port()
        t0 = time.monotonic()
        with open(self.log_path, "ab") as log:
            self.process = subprocess.Popen(
                [str(bin_dir / "postgres"), "-D", str(self.cluster_dir), "-p", str(self.port),
                 "-k", str(socket_dir), "-c", f"listen_addresses={LOOPBACK}",
                 "-c", "fsync=off", "-c", "synchronous_commit=off", "-c", "full_page_writes=off",
                 "-c", "max_connections=200"],
                stdin=subprocess.DEVNULL, stdout=log, stderr=subprocess.STDOUT, cwd="/", **as_user)
        deadline = t0 + self.start_timeout_s
        while time.monotonic() < deadline:
            if self.process.poll() is not None:
                raise DevServerError(f"PostgreSQL exited with {self.process.returncode} while "
                                     f"starting; log {self.log_path}:\n{_tail(self.log_path)}")
            if self._accepts_connections():
                self.start_seconds = time.monotonic() - t0
                return self
            time.sleep(0.1)
        _stop_process(self.process, signal.SIGKILL)
        raise DevServerError(f"PostgreSQL did not accept connections within "
                             f"{self.start_timeout_s} s; log {self.log_path}:\n"
                             f"{_tail(self.log_path)}")

    def _connect(self, database: str = "postgres"):
        import psycopg2
        return psycopg2.connect(host=LOOPBACK, port=self.port, user="postgres", dbname=database,
                                connect_timeout=2)

    def _accepts_connections(self) -> bool:
        import psycopg2
        try:
            self._connect().close()
            return True
        except psycopg2.OperationalError:
            return False

    def create_database(self, name: str) -> str:
        """Create an empty database and return its SQLAlchemy URL."""
        if not name.replace("_", "").isalnum() or not name[0].isalpha() or len(name) > 63:
            raise ValueError(f"database name {name!r}: use letters, digits and '_' (max 63)")
        conn = self._connect()
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute(f'CREATE DATABASE "{name}"')
        finally:
            conn.close()
        return self.url(name)

    def drop_database(self, name: str) -> None:
        conn = self._connect()
        try:
            conn.autocommit = True
            with conn.cursor() as cur:
                cur.execute(f'DROP DATABASE IF EXISTS "{name}" WITH (FORCE)')
        finally:
            conn.close()

    def stop(self) -> None:
        """Fast shutdown (SIGINT: roll back open transactions, then exit)."""
        _stop_process(self.process, signal.SIGINT)
        if self._temporary_cluster and self.cluster_dir is not None:
            shutil.rmtree(self.cluster_dir, ignore_errors=True)
            self.cluster_dir = None
            self._temporary_cluster = False

    def __enter__(self) -> "PostgresServer":
        return self.start()

    def __exit__(self, *exc) -> None:
        self.stop()


# --------------------------------------------------------------------------- tests
def require(component: str):
    """Locate ``component`` (``minio`` or ``postgres``) for a test, or skip the test.

    With ``CI=true`` a missing component is a hard failure (:class:`RuntimeError` naming what
    is missing and how to install it): CI must never pass by skipping. Returns the binary
    (MinIO) or the folder of binaries (PostgreSQL).
    """
    finders = {"minio": find_minio, "postgres": find_postgres}
    if component not in finders:
        raise ValueError(f"unknown component {component!r}; known: {sorted(finders)}")
    found = finders[component]()
    if found is not None:
        return found
    message = f"{component} is not installed: {INSTALL_HINTS[component]}"
    if os.environ.get("CI", "").strip().lower() == "true":
        raise RuntimeError(message)
    import pytest
    pytest.skip(message)


# --------------------------------------------------------------------------- installing
#: Debian packages the test suite needs, by the command that shows they are there.
DEBIAN_PACKAGES = {"postgres": ["postgresql"], "chromium": ["chromium", "chromium-driver"]}


def find_chromium() -> Path | None:
    for name in ("chromium", "chromium-browser"):
        found = shutil.which(name)
        if found and shutil.which("chromedriver"):
            return Path(found)
    return None


def install() -> int:
    """Install what the tests need and is missing: MinIO (built from the pinned commit with
    Go), PostgreSQL and Chromium with its driver (Debian packages, when run as root with
    apt-get). Returns 0 when everything is there afterwards."""
    missing = []
    if find_minio() is None:
        print(f"building MinIO {MINIO_VERSION} with go install ...", flush=True)
        try:
            build_minio()
        except (DevServerError, OSError, subprocess.CalledProcessError) as exc:
            missing.append(f"minio ({exc})")
    packages = []
    if find_postgres() is None:
        packages += DEBIAN_PACKAGES["postgres"]
    if find_chromium() is None:
        packages += DEBIAN_PACKAGES["chromium"]
    if packages:
        apt = shutil.which("apt-get")
        if apt is None or os.geteuid() != 0:
            missing.append(f"Debian packages {packages} (need root and apt-get)")
        else:
            print(f"installing Debian packages {packages} ...", flush=True)
            env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
            ok = subprocess.run([apt, "update", "-qq"], env=env).returncode == 0 and \
                subprocess.run([apt, "install", "-y", "-qq", *packages], env=env).returncode == 0
            if not ok:
                missing.append(f"Debian packages {packages} (apt-get failed)")
    for name, finder in (("minio", find_minio), ("postgres", find_postgres), ("chromium", find_chromium)):
        print(f"{name:9s} {finder() or 'MISSING'}")
    if missing:
        print("could not install: " + "; ".join(missing), file=sys.stderr)
        # Outside CI the tests that need a missing component are skipped (and say why);
        # in CI a missing component is a failure.
        return 1 if os.environ.get("CI", "").strip().lower() == "true" else 0
    return 0


# --------------------------------------------------------------------------- command line
def main(argv: list[str] | None = None) -> int:
    if argv is None:
        argv = sys.argv[1:]
    if argv[:1] == ["install"]:
        return install()
    parser = argparse.ArgumentParser(prog="python -m eas_runtime.devservers",
                                     description="Run a MinIO or PostgreSQL server on loopback "
                                                 "in the foreground until Ctrl-C; `install` "
                                                 "installs what the tests need.")
    parser.add_argument("server", choices=("minio", "postgres"))
    parser.add_argument("--dir", default=None, help="data folder (default: .eas/<server>)")
    parser.add_argument("--port", type=int, default=None, help="port (default: a free one)")
    parser.add_argument("--webhook", default=None,
                        help="MinIO only: webhook endpoint for notifications (the storage adapter)")
    parser.add_argument("--webhook-token", default=None, help="MinIO only: webhook auth token")
    args = parser.parse_args(argv)
    data_dir = Path(args.dir or Path(".eas") / args.server)
    server: MinioServer | PostgresServer
    if args.server == "minio":
        server = MinioServer(data_dir, args.port, webhook_endpoint=args.webhook,
                             webhook_token=args.webhook_token)
    else:
        server = PostgresServer(data_dir, args.port)
    stop = False

    def _on_signal(*_):
        nonlocal stop
        stop = True

    signal.signal(signal.SIGTERM, _on_signal)
    server.start()
    try:
        if isinstance(server, MinioServer):
            print(f"MinIO at {server.url} (console http://{LOOPBACK}:{server.console_port}), "
                  f"user {server.access_key}, data {server.data_dir}; Ctrl-C stops it", flush=True)
        else:
            print(f"PostgreSQL at {server.url()} (data {server.cluster_dir}); Ctrl-C stops it",
                  flush=True)
        while not stop and server.running:
            time.sleep(0.5)
    except KeyboardInterrupt:
        pass
    finally:
        server.stop()
    return 0


if __name__ == "__main__":
    sys.exit(main())
