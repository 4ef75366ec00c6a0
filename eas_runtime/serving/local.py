"""Local Knative Serving: an activator and autoscaler for replica processes on one machine.

Dispatcher contract (what the embedded broker relies on)::

    status, headers, body = serving.post(destination, headers, body, timeout)

returns the HTTP response of the destination, whatever its status. When there is no response
(the replica died or refused the connection, the request timed out, no replica became free or
ready in time, serving is stopped) it raises a
:class:`DispatchError`, which is a :class:`ConnectionError`: the broker treats it as a network
error and retries. It never returns status 0. A destination that cannot be resolved at all (a
malformed one, or a Service that is not defined: :class:`ServiceNotFound`) raises
``ValueError``, which the broker does not retry.

Node CPU (without an explicit ``max_replicas``): a request starts on a scale-to-zero function
replica only when the ``requests.cpu`` of the function replicas busy with a request, plus its
own, fits the machine's cores, or when no other is busy. So a 2-CPU search does not share two
cores with another 2-CPU search and two 1-CPU ones, each at a third of the speed it was sized
for and past its request limit, as it could not on a Kubernetes node of that size. Requests that
wait for CPU are admitted in the order they began waiting, whatever their service: a large
request is not overtaken for ever by a stream of small ones, at the cost of a core left idle
while it waits for the second. An idle replica holds no CPU (it uses none). Services with a
fixed port (eas-control, the adapter) and those that request no CPU are outside the budget.
"""
from __future__ import annotations

import collections
import http.client
import logging
import os
import re
import signal as _signal
import subprocess
import threading
import time
from concurrent.futures import ThreadPoolExecutor
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Iterable, Mapping
from urllib.parse import urlsplit

from eas_runtime.manifests.serving_rules import TIMEOUT_SECONDS_DEFAULT
from eas_runtime.settings import Settings

from . import process
from .http import STALE, exchange, has_input
from .spec import API_VERSION, ServiceSpec, load_specs

log = logging.getLogger(__name__)


#: How long [s] a request waits for a busy replica before another one is started. Knative's
#: activator holds requests and its autoscaler scales on a window of seconds; a cold start costs
#: a second or more, far more than waiting for a replica that is finishing its answer.
SCALE_UP_DELAY_S = 0.25


class DispatchError(ConnectionError):
    """No response could be obtained from the destination (retryable, like a network error)."""


class ServiceNotFound(ValueError):
    """The destination names a Service that is not defined (unresolvable, not retried)."""


class ReplicaLost(DispatchError):
    """The replica died, reset or refused the connection; it has been removed."""


class ColdStartFailed(DispatchError):
    """A new replica exited or did not listen within ``settings.cold_start_timeout_s``."""


class NoCapacity(DispatchError):
    """Every replica stayed busy, at max-scale, for the whole timeout."""


class RequestTimeout(DispatchError):
    """The replica did not answer within the timeout."""


class ServingStopped(DispatchError):
    pass


@dataclass(eq=False)
class Replica:
    service: str
    port: int
    proc: subprocess.Popen | None = None
    log_path: Path | None = None
    started_at: float = field(default_factory=time.time)
    last_used: float = field(default_factory=time.monotonic)
    inflight: int = 0
    served: int = 0
    ready: bool = False
    dead: bool = False
    #: Open keep-alive connections to the replica that no request uses (guarded by the lock).
    idle: list = field(default_factory=list)

    @property
    def pid(self) -> int | None:
        return self.proc.pid if self.proc else None

    def exited(self) -> bool:
        return self.proc is not None and self.proc.poll() is not None


class _Service:
    def __init__(self, spec: ServiceSpec, lock: threading.Lock):
        self.spec = spec
        self.replicas: list[Replica] = []
        self.changed = threading.Condition(lock)
        self.crash_backoff_s = 0.0
        self.next_topup = 0.0

    def has_room(self, replica: Replica) -> bool:
        limit = self.spec.container_concurrency
        return not replica.dead and (limit == 0 or replica.inflight < limit)


_CLUSTER_LOCAL = re.compile(r"https?://([a-z0-9]([-a-z0-9]*[a-z0-9])?)\.[a-z0-9-]+\.svc\.cluster\.local(:80)?(/[^?#]*)?")


def cluster_local(uri: str, services: Mapping[str, Any]) -> tuple[dict, str] | None:
    """(a Service ref, its path) for a cluster-local address of a Service run here
    (``http://<name>.<namespace>.svc.cluster.local/path``, as cluster DNS would resolve it), else
    None. The Broker's dead-letter sink is such an address: a URI, not a ref, so that the Broker
    is Ready before eas-control exists (a ref would wait for it, and eas-control's K_SINK waits
    for the Broker)."""
    match = _CLUSTER_LOCAL.fullmatch(uri)
    if match is None or match.group(1) not in services:
        return None
    return {"apiVersion": API_VERSION, "kind": "Service", "name": match.group(1)}, match.group(4) or "/"


class LocalServing:
    """Runs the Knative Services of a folder as local processes; see the module docstring."""

    def __init__(self, settings: Settings, broker_url: str,
                 services: str | Path | Iterable[Any] | None = None,
                 ports: Mapping[str, int] | None = None, grace_s: float = 5.0,
                 scale_up_delay_s: float = SCALE_UP_DELAY_S):
        self.settings = settings
        self.broker_url = broker_url
        self.grace_s = grace_s
        self.scale_up_delay_s = scale_up_delay_s
        self.log_dir = settings.home_path / "logs"
        source = settings.knative_dir if services is None else services
        self._lock = threading.Lock()
        self._services = {name: _Service(spec, self._lock)
                          for name, spec in load_specs(source, settings, ports).items()}
        self._stopped = threading.Event()
        self._started = False
        #: Cores the busy function replicas' ``requests.cpu`` may add up to (0 = no budget: an
        #: explicit ``max_replicas`` is taken as given), and the requests waiting for CPU, first
        #: come first served (see the module docstring).
        self.node_cpu = 0.0 if settings.max_replicas else float(os.cpu_count() or 1)
        self._cpu_queue: collections.deque = collections.deque()
        self._spawner: ThreadPoolExecutor | None = None
        self._reaper: threading.Thread | None = None

    # ------------------------------------------------------------------ lifecycle
    @property
    def specs(self) -> dict[str, ServiceSpec]:
        return {name: svc.spec for name, svc in self._services.items()}

    def start(self, wait: bool = True) -> None:
        """Start min-scale replicas and the idle reaper; with ``wait``, until they listen.

        Raises :class:`ColdStartFailed` (after stopping everything) when one cannot start.
        """
        with self._lock:
            if self._started:
                return
            self._started = True
            self._stopped.clear()
            # One long-lived thread launches every replica: PR_SET_PDEATHSIG fires when the
            # forking *thread* ends, so request threads must not fork.
            self._spawner = ThreadPoolExecutor(1, thread_name_prefix="eas-serving-spawn")
        starting = []
        try:
            for svc in self._services.values():
                for _ in range(svc.spec.min_scale):
                    with self._lock:
                        replica = self._new_replica(svc)
                    starting.append((svc, replica))
            for svc, replica in starting:
                self._launch(svc, replica)
            self._reaper = threading.Thread(target=self._reap_loop, name="eas-serving-reaper",
                                            daemon=True)
            self._reaper.start()
            if wait:
                for svc, replica in starting:
                    self._await_ready(svc, replica, self.settings.cold_start_timeout_s)
        except BaseException:
            self.stop()  # all or nothing: no replica survives a failed start
            raise

    def stop(self) -> None:
        """Terminate every replica (SIGTERM, SIGKILL after ``grace_s``) and reap them."""
        with self._lock:
            self._stopped.set()
            self._started = False
            replicas = [r for svc in self._services.values() for r in svc.replicas]
            for svc in self._services.values():
                svc.replicas.clear()
                svc.changed.notify_all()
            for replica in replicas:
                replica.dead = True
        spawner, self._spawner = self._spawner, None
        if spawner is not None:
            spawner.shutdown(wait=True)  # a launch in progress registers, sees _stopped, kills
        process.terminate([r.proc for r in replicas if r.proc is not None], self.grace_s)
        if self._reaper is not None and self._reaper is not threading.current_thread():
            self._reaper.join(timeout=10)
        self._reaper = None

    def __enter__(self) -> "LocalServing":
        self.start()
        return self

    def __exit__(self, *exc: Any) -> None:
        self.stop()

    def url_of(self, name: str) -> str:
        """Address of a service with a fixed port (``ports=`` in the constructor)."""
        spec = self._service(name).spec
        if spec.port is None:
            raise LookupError(f"service {name} has no fixed port")
        return f"http://127.0.0.1:{spec.port}"

    # ------------------------------------------------------------------ dispatch
    def post(self, destination: Mapping[str, Any], headers: Mapping[str, str], body: bytes,
             timeout: float | None = None) -> tuple[int, dict[str, str], bytes]:
        """POST to a Knative Destination; see the module docstring for the error contract.

        ``timeout`` bounds the wait for a free replica, and then the request itself once the
        replica listens; a cold start is bounded by ``settings.cold_start_timeout_s``. Without a
        timeout the service's ``timeoutSeconds`` applies to the request, if it sets one.
        """
        ref, uri = destination.get("ref"), destination.get("uri")
        if not ref:
            if not uri:
                raise ValueError(f"destination {destination!r} has neither ref nor uri")
            local = cluster_local(str(uri), self._services)
            if local is None:
                return self._post_url(str(uri), headers, body, timeout)
            ref, uri = local
        if ref.get("kind") != "Service" or ref.get("apiVersion", API_VERSION) != API_VERSION:
            raise ValueError(f"destination ref {ref!r}: only {API_VERSION} Services are served")
        path = str(uri or "/")
        if not path.startswith("/"):
            raise ValueError(f"destination uri {uri!r} must be a path relative to the Service")
        svc = self._service(ref.get("name"), not_found=ServiceNotFound)
        replica = self._acquire(svc, timeout)
        try:
            if not replica.ready:
                self._await_ready(svc, replica, self.settings.cold_start_timeout_s)
            request_timeout = timeout if timeout is not None else svc.spec.timeout_s
            return self._forward(svc, replica, path, headers, body, request_timeout)
        finally:
            self._release(svc, replica)

    def _post_url(self, url: str, headers, body, timeout):
        parts = urlsplit(url)
        if parts.scheme not in ("http", "https") or not parts.hostname:
            raise ValueError(f"destination uri {url!r} is not an absolute http(s) URL")
        cls = http.client.HTTPSConnection if parts.scheme == "https" else http.client.HTTPConnection
        conn = cls(parts.hostname, parts.port, timeout=timeout)
        path = (parts.path or "/") + (f"?{parts.query}" if parts.query else "")
        try:
            return exchange(conn, path, headers, body)
        except TimeoutError as exc:
            raise RequestTimeout(f"{url}: no answer within {timeout} s") from exc
        except (OSError, http.client.HTTPException) as exc:
            raise DispatchError(f"{url}: {exc!r}") from exc

    def _forward(self, svc: _Service, replica: Replica, path, headers, body, timeout):
        conn, reused = self._connection(replica, timeout)
        try:
            try:
                answer = exchange(conn, path, headers, body, keep=True)
            except STALE as exc:
                conn.close()
                if not reused:
                    raise
                # The replica closed the idle connection as the request went out (a keep-alive
                # timeout); whether or not it saw the request, send it once more on a new one.
                log.debug("%s pid %s: kept-alive connection closed (%r); reconnecting",
                          svc.spec.name, replica.pid, exc)
                conn = http.client.HTTPConnection("127.0.0.1", replica.port, timeout=timeout)
                answer = exchange(conn, path, headers, body, keep=True)
        except TimeoutError as exc:
            conn.close()
            with self._lock:
                # A replica still busy with an abandoned request would hold its slot (and a core)
                # with nobody waiting for the answer: stop it unless others still use it.
                doomed = replica.inflight <= 1
                if doomed:
                    self._remove(svc, replica)
            if doomed:
                self._kill_async(replica)
            raise RequestTimeout(
                f"{svc.spec.name} (pid {replica.pid}): no answer within {timeout} s") from exc
        except (OSError, http.client.HTTPException) as exc:
            conn.close()
            with self._lock:
                self._remove(svc, replica)
            self._kill_async(replica)
            raise ReplicaLost(f"{svc.spec.name} (pid {replica.pid}): {exc!r}") from exc
        with self._lock:
            if replica.dead or conn.sock is None:
                conn.close()
            else:
                replica.idle.append(conn)
        return answer

    def _connection(self, replica: Replica, timeout) -> tuple[http.client.HTTPConnection, bool]:
        """A kept-alive connection to the replica (``True``) or a new one (``False``)."""
        while True:
            with self._lock:
                conn = replica.idle.pop() if replica.idle else None
            if conn is None:
                return http.client.HTTPConnection("127.0.0.1", replica.port, timeout=timeout), False
            if conn.sock is not None and not has_input(conn.sock):
                conn.timeout = timeout
                conn.sock.settimeout(timeout)
                return conn, True
            conn.close()      # readable while idle: the replica closed it (or sent garbage)

    def _acquire(self, svc: _Service, timeout: float | None) -> Replica:
        """A replica with room for one more request (``inflight`` counted), launching one when
        every replica stays busy for ``scale_up_delay_s`` (at once when there is none) and the
        service is below max-scale; else waiting for one to free up, up to ``timeout``. A
        request of a budgeted service also waits for node CPU (module docstring). Waits on the
        service's condition variable: a release (of any service), a ready replica and the
        reaper's removal of an exited one all notify it."""
        now = time.monotonic()
        deadline = None if timeout is None else now + timeout
        scale_at = now + self.scale_up_delay_s
        launch = None
        ticket = object()
        with self._lock:
            try:
                while True:
                    if self._stopped.is_set() or not self._started:
                        raise ServingStopped("serving is not running")
                    self._drop_exited(svc)
                    candidates = [r for r in svc.replicas if svc.has_room(r)]
                    now = time.monotonic()
                    replica = None
                    if candidates:
                        replica = min(candidates, key=lambda r: (not r.ready, r.inflight, r.started_at))
                    elif len(svc.replicas) < svc.spec.max_scale and (not svc.replicas or now >= scale_at):
                        replica = launch = Replica(svc.spec.name, 0)       # registered below
                    waiting_cpu = False
                    if replica is not None:
                        if self._cpu_admits(svc, ticket, busy_replica=replica.inflight > 0):
                            break
                        replica = launch = None
                        waiting_cpu = True
                        if ticket not in self._cpu_queue:
                            self._cpu_queue.append(ticket)
                    remaining = None if deadline is None else deadline - now
                    if remaining is not None and remaining <= 0:
                        if waiting_cpu:
                            raise NoCapacity(f"{svc.spec.name}: waited {timeout} s for node CPU: "
                                             f"{self._busy_cpu():g} of {self.node_cpu:g} cores "
                                             "requested by busy replicas")
                        raise NoCapacity(f"{svc.spec.name}: all {len(svc.replicas)} replicas busy "
                                         f"for {timeout} s")
                    if not waiting_cpu and len(svc.replicas) < svc.spec.max_scale:
                        # A busy replica usually frees up sooner than a new one starts (a function
                        # finishing its answer while the next task is already on its way).
                        remaining = scale_at - now if remaining is None else min(remaining, scale_at - now)
                    svc.changed.wait(remaining)
            finally:
                if ticket in self._cpu_queue:
                    self._cpu_queue.remove(ticket)
                    self._notify_all()          # the next in line may fit now
            if launch is not None:
                replica = launch = self._new_replica(svc)
            replica.inflight += 1
            replica.last_used = time.monotonic()
        if launch is not None:
            try:
                self._launch(svc, launch)
            except BaseException:
                self._release(svc, launch)
                raise
        return replica

    # ------------------------------------------------------------------ node CPU
    def _budgeted(self, svc: _Service) -> bool:
        return self.node_cpu > 0 and svc.spec.port is None and svc.spec.cpu_request > 0

    def _busy_cpu(self) -> float:
        """``requests.cpu`` of the budgeted replicas busy with a request (caller holds the lock)."""
        return sum(s.spec.cpu_request for s in self._services.values() if self._budgeted(s)
                   for r in s.replicas if r.inflight > 0 and not r.dead)

    def _cpu_admits(self, svc: _Service, ticket: object, *, busy_replica: bool) -> bool:
        """Whether a request of ``svc`` may start now (caller holds the lock): outside the
        budget, on a replica already busy (its CPU is counted), or first in line and fitting."""
        if not self._budgeted(svc) or busy_replica:
            return True
        if self._cpu_queue and self._cpu_queue[0] is not ticket:
            return False
        busy = self._busy_cpu()
        return busy == 0 or busy + svc.spec.cpu_request <= self.node_cpu + 1e-9

    def _notify_all(self) -> None:
        """Wake the waiters of every service (caller holds the lock): CPU is shared."""
        for other in self._services.values():
            other.changed.notify_all()

    def _wake(self, svc: _Service) -> None:
        """A replica of ``svc`` freed up or went (caller holds the lock): wake its service's
        waiters, and every service's while requests wait for CPU it may have held."""
        if self._cpu_queue:
            self._notify_all()
        else:
            svc.changed.notify_all()

    def _release(self, svc: _Service, replica: Replica) -> None:
        with self._lock:
            replica.inflight -= 1
            replica.served += 1
            replica.last_used = time.monotonic()
            self._wake(svc)

    # ------------------------------------------------------------------ replicas
    def _new_replica(self, svc: _Service) -> Replica:
        """Register a replica (no process yet). Caller holds the lock, then calls _launch."""
        replica = Replica(svc.spec.name, svc.spec.port or process.free_port())
        svc.replicas.append(replica)
        return replica

    def _launch(self, svc: _Service, replica: Replica) -> None:
        """Start the process of a registered replica, from the spawner thread."""
        spec = svc.spec
        try:
            argv = process.resolve_command(spec.argv)
            env = process.replica_env(spec, self.settings, self.broker_url, replica.port)
            # The wrapper ends a science run before the request limit and records a timeout;
            # without timeoutSeconds, Knative's default limit applies.
            env["EAS_TIMEOUT_S"] = f"{spec.timeout_s or TIMEOUT_SECONDS_DEFAULT:g}"
            spawner = self._spawner
            if spawner is None:
                raise ServingStopped("serving is not running")
            spawner.submit(self._spawn, svc, replica, argv, env).result()
        except (OSError, RuntimeError, subprocess.SubprocessError) as exc:
            with self._lock:
                self._remove(svc, replica)
            if isinstance(exc, DispatchError):
                raise
            raise ColdStartFailed(f"{spec.name}: cannot start {spec.argv[0]!r}: {exc}") from exc
        log.info("started %s replica pid %s on port %s", spec.name, replica.pid, replica.port)

    def _spawn(self, svc: _Service, replica: Replica, argv: list[str], env: dict) -> None:
        # Runs in the spawner thread, so stop() (which waits for that thread) cannot return
        # while a process it did not see is still being launched.
        proc, log_path = process.spawn(argv, env, self.log_dir, svc.spec.name,
                                       memory_limit_bytes=svc.spec.memory_limit_bytes)
        with self._lock:
            replica.proc, replica.log_path = proc, log_path
            stopped = self._stopped.is_set() or replica.dead
        if stopped:
            process.terminate([proc], self.grace_s)
            raise ServingStopped("serving stopped during a cold start")

    def _await_ready(self, svc: _Service, replica: Replica, timeout_s: float) -> None:
        """Wait until the replica accepts connections (short sleeps, cold start only)."""
        deadline = time.monotonic() + timeout_s
        pause = 0.02
        while True:
            if replica.dead or replica.exited():
                with self._lock:
                    self._remove(svc, replica)
                    self._note_crash(svc)
                raise ColdStartFailed(f"{svc.spec.name}: replica pid {replica.pid} exited during "
                                      f"start (code {replica.proc and replica.proc.returncode}); "
                                      f"see {replica.log_path}")
            if replica.proc is not None and process.is_listening(replica.port):
                with self._lock:
                    replica.ready = True
                    svc.crash_backoff_s = 0.0
                    svc.changed.notify_all()
                return
            if time.monotonic() > deadline:
                with self._lock:
                    self._remove(svc, replica)
                self._kill_async(replica)
                raise ColdStartFailed(f"{svc.spec.name}: replica pid {replica.pid} did not "
                                      f"listen within {timeout_s} s; see {replica.log_path}")
            time.sleep(pause)
            pause = min(pause * 1.5, 0.25)

    def _remove(self, svc: _Service, replica: Replica) -> None:
        """Forget a replica (caller holds the lock)."""
        replica.dead = True
        if replica in svc.replicas:
            svc.replicas.remove(replica)
        for conn in replica.idle:
            conn.close()
        replica.idle.clear()
        self._wake(svc)

    def _note_crash(self, svc: _Service) -> None:
        svc.crash_backoff_s = min(max(1.0, svc.crash_backoff_s * 2), 60.0)
        svc.next_topup = time.monotonic() + svc.crash_backoff_s

    def _drop_exited(self, svc: _Service) -> None:
        """Remove replicas whose process exited on its own (caller holds the lock)."""
        for replica in list(svc.replicas):
            if replica.exited():
                proc = replica.proc
                assert proc is not None         # exited() needs a process
                log.warning("%s replica pid %s exited with code %s; see %s", svc.spec.name,
                            replica.pid, proc.returncode, replica.log_path)
                self._remove(svc, replica)
                self._note_crash(svc)
                process.forget(proc)
                # Its workers may outlive the server process; the group goes with it.
                process.signal_group(proc, _signal.SIGKILL)

    def _kill_async(self, replica: Replica) -> None:
        if replica.proc is not None:
            threading.Thread(target=process.terminate, args=([replica.proc], self.grace_s),
                             name="eas-serving-stop", daemon=True).start()

    def kill_replica(self, name: str, sig: int = _signal.SIGKILL, pid: int | None = None) -> int:
        """Send ``sig`` to one replica's process group (fault injection); returns its pid.

        Without ``pid``, the busiest replica is chosen. The replica is not removed here: the
        request it was serving fails, or the next poll notices the exit.
        """
        svc = self._service(name)
        with self._lock:
            alive = [r for r in svc.replicas if r.proc is not None and not r.dead]
            if pid is not None:
                alive = [r for r in alive if r.pid == pid]
            if not alive:
                raise LookupError(f"service {name} has no running replica"
                                  + (f" with pid {pid}" if pid is not None else ""))
            replica = max(alive, key=lambda r: (r.inflight, -r.started_at))
        proc = replica.proc
        assert proc is not None                 # alive holds replicas with a process only
        process.signal_group(proc, sig)
        return proc.pid

    # ------------------------------------------------------------------ idle reaper
    def _reap_loop(self) -> None:
        interval = max(0.05, min(1.0, self.settings.idle_s / 4))
        while not self._stopped.wait(interval):
            try:
                self._reap_once()
            except Exception:  # keep reaping; a failure here must not stop the runtime
                log.exception("serving reaper")

    def _reap_once(self) -> None:
        now = time.monotonic()
        idle, topups, probes = [], [], []
        with self._lock:
            if self._stopped.is_set():
                return
            for svc in self._services.values():
                self._drop_exited(svc)
                running = sorted(svc.replicas, key=lambda r: r.started_at)
                # The oldest min-scale replicas are kept; the rest go when idle long enough.
                for replica in running[svc.spec.min_scale:]:
                    if (replica.ready and replica.inflight == 0
                            and now - replica.last_used > self.settings.idle_s):
                        self._remove(svc, replica)
                        idle.append(replica)
                probes += [(svc, r) for r in svc.replicas if not r.ready and r.proc is not None]
                missing = svc.spec.min_scale - len(svc.replicas)
                if missing > 0 and now >= svc.next_topup:
                    topups += [(svc, self._new_replica(svc)) for _ in range(missing)]
        for svc, replica in probes:  # replicas started with no request waiting for them
            if process.is_listening(replica.port, 0.2):
                with self._lock:
                    replica.ready = True
                    svc.changed.notify_all()
        for replica in idle:
            log.info("stopping idle %s replica pid %s", replica.service, replica.pid)
        if idle:
            process.terminate([r.proc for r in idle if r.proc is not None], self.grace_s)
        for svc, replica in topups:
            try:
                self._launch(svc, replica)
            except DispatchError as exc:
                log.warning("cannot restore min-scale of %s: %s", svc.spec.name, exc)
                with self._lock:
                    self._note_crash(svc)

    # ------------------------------------------------------------------ status
    def status(self) -> list[dict[str, Any]]:
        """Per service: scale bounds, concurrency and replicas (for the Functions page)."""
        out = []
        with self._lock:
            for name, svc in sorted(self._services.items()):
                self._drop_exited(svc)
                spec = svc.spec
                out.append({
                    "name": name, "min_scale": spec.min_scale, "max_scale": spec.max_scale,
                    "concurrency": spec.container_concurrency, "port": spec.port,
                    "replicas": [{
                        "pid": r.pid, "port": r.port, "ready": r.ready, "busy": r.inflight > 0,
                        "inflight": r.inflight, "started_at": r.started_at,
                        "requests": r.served, "log": str(r.log_path) if r.log_path else None,
                    } for r in svc.replicas],
                })
        return out

    def _service(self, name: Any, not_found: type[Exception] = LookupError) -> _Service:
        try:
            return self._services[name]
        except KeyError:
            raise not_found(f"no Service named {name!r} (known: {sorted(self._services)})") from None
