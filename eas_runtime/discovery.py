"""Which pipeline an ``eas`` command talks to when it is not told.

``eas up`` started in some folder keeps its database, store and logs in ``<that folder>/.eas``
unless ``EAS_HOME`` says otherwise; a later ``eas status`` or ``eas upload`` in another folder
(or another shell without the variable) must find that pipeline, not make a second, empty one
where it happens to run. The order, first match wins:

1. ``--home`` or ``--database-url`` on the command line, ``EAS_HOME`` or ``EAS_DATABASE_URL``
   in the environment: that pipeline, as configured (a cluster's components always are).
2. A running ``eas up`` this user started on this machine that answers on its gateway port:
   ``eas up`` writes a record of its settings (``<state dir>/running/<pid>.json``, the state
   dir being ``$XDG_STATE_HOME/eas``, else ``~/.local/state/eas``; mode 0600, since a database
   URL may hold a password) and removes it when it stops. Several reachable ones: the one whose
   home is ``./.eas``, else the command refuses and lists them.
3. ``./.eas`` when it exists: the folder of an earlier ``eas up``/``eas demo`` here, whose
   results can be read after the pipeline stopped.
4. Nothing: commands that make a pipeline (``eas up``, ``eas demo``) make it in ``./.eas``
   (they never join a running one: that is steps 2 and 3 for the other commands), commands
   that work without one (``eas db``, ``eas invoke``, ``eas validate``, ...) go on with the
   defaults; every other command stops with one line that says what is missing and what to
   run (:class:`NoPipeline`), and creates nothing.

Records whose process is gone are deleted when seen. Environment values still override a
record's (precedence: flags > ``EAS_*`` > the record > defaults).
"""
from __future__ import annotations

import json
import os
import socket
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Mapping

from eas_runtime.settings import Settings, SettingsError

#: Settings a record carries: where the pipeline keeps things and where it listens.
RECORDED = ("home", "database_url", "store", "store_root", "bucket", "minio_endpoint", "minio_secure",
            "broker_url", "gateway_port", "index_port", "adapter_port")
#: How long a reachability probe of a recorded gateway may take [s].
PROBE_TIMEOUT_S = 0.5


class NoPipeline(SettingsError):
    """No pipeline is configured, running or left in this folder; the message says what to run."""


@dataclass(frozen=True)
class Running:
    """One ``eas up`` as its record describes it."""
    pid: int
    path: Path
    settings: dict[str, Any]

    @property
    def home(self) -> str:
        return str(self.settings.get("home", ""))


def state_dir(environ: Mapping[str, str] | None = None) -> Path:
    env = os.environ if environ is None else environ
    base = env.get("XDG_STATE_HOME") or str(Path(env.get("HOME") or Path.home()) / ".local" / "state")
    return Path(base) / "eas"


def record(settings: Settings, *, pid: int | None = None, environ: Mapping[str, str] | None = None) -> Path:
    """Write the record of a running ``eas up`` (atomically, mode 0600); returns its path."""
    pid = os.getpid() if pid is None else pid
    folder = state_dir(environ) / "running"
    folder.mkdir(parents=True, exist_ok=True, mode=0o700)
    values = {name: getattr(settings, name) for name in RECORDED}
    values["home"] = str(Path(settings.home).resolve())
    if settings.store == "local":
        values["store_root"] = str(settings.store_path.resolve())
    path = folder / f"{pid}.json"
    tmp = folder / f".{pid}.json.tmp"
    fd = os.open(tmp, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    with os.fdopen(fd, "w") as fh:
        json.dump({"pid": pid, "cwd": str(Path.cwd()), "settings": values}, fh)
    os.replace(tmp, path)
    return path


def forget(path: Path) -> None:
    try:
        path.unlink()
    except FileNotFoundError:
        pass


def alive(pid: int) -> bool:
    """The process runs (a zombie its parent has not reaped yet does not); another user's
    process counts as not ours to talk to."""
    try:
        os.kill(pid, 0)
    except (ProcessLookupError, PermissionError):
        return False
    try:
        return Path(f"/proc/{pid}/stat").read_text().split(") ", 1)[1][0] != "Z"
    except (OSError, IndexError):       # no /proc: trust kill
        return True


def _answers(port: Any) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", int(port)), timeout=PROBE_TIMEOUT_S):
            return True
    except (OSError, ValueError, TypeError):
        return False


def running(environ: Mapping[str, str] | None = None) -> list[Running]:
    """The reachable ``eas up`` processes; records of dead ones are removed, unreadable ones
    skipped."""
    folder = state_dir(environ) / "running"
    found = []
    for path in sorted(folder.glob("*.json")) if folder.is_dir() else ():
        try:
            data = json.loads(path.read_text())
            pid, values = int(data["pid"]), dict(data["settings"])
        except (OSError, ValueError, KeyError, TypeError):
            continue
        if not alive(pid):
            forget(path)
            continue
        if _answers(values.get("gateway_port")):
            found.append(Running(pid, path, values))
    return found


def pick(live: list[Running], home: str | Path | None = None) -> Running | None:
    """The one of the running pipelines meant: the one in ``home`` when given (None when it
    does not run), else the only one, else the one whose home is ``./.eas``; several others:
    :class:`NoPipeline` listing them."""
    if home is not None:
        wanted = Path(home).resolve()
        return next((r for r in live if Path(r.home) == wanted), None)
    if len(live) > 1:
        here = (Path.cwd() / ".eas").resolve()
        mine = [r for r in live if Path(r.home) == here]
        if len(mine) != 1:
            listed = "; ".join(f"pid {r.pid}: {r.home}" for r in live)
            raise NoPipeline(f"several pipelines are running ({listed}); choose one with --home or EAS_HOME")
        live = mine
    return live[0] if live else None


#: What a command does when it is not told which pipeline: see :func:`locate`.
MODES = ("reads", "needs", "optional", "creates")


def locate(flags: Mapping[str, Any], *, mode: str = "needs",
           environ: Mapping[str, str] | None = None) -> Settings:
    """Settings of the pipeline a command works on (see the module's docstring for the order).
    ``flags``: the command line's setting overrides (None when not given);
    ``mode``: ``needs`` a pipeline (raises :class:`NoPipeline` when there is none),
    ``reads`` one (the same, and a configured home without a task database is refused rather
    than given an empty one),
    ``optional`` (works without one; a running one is still found), or ``creates`` its own in
    ``./.eas`` (``eas up``, ``eas demo``: a running one elsewhere is not joined)."""
    env = os.environ if environ is None else environ
    given = {k: v for k, v in flags.items() if v is not None}
    if given.get("home") or given.get("database_url") or env.get("EAS_HOME") or env.get("EAS_DATABASE_URL"):
        settings = Settings.load(environ=env, **given)
        if mode == "reads" and not settings.database_url and not (settings.home_path / "eas.db").is_file():
            raise NoPipeline(f"no pipeline in {settings.home_path}: it has no task database (eas.db); start the "
                             f"pipeline there with `EAS_HOME={settings.home_path} eas up`, or point EAS_HOME at "
                             f"another pipeline's folder")
        return settings
    if mode not in MODES:
        raise ValueError(f"mode {mode!r} is not one of {MODES}")
    here = Path.cwd() / ".eas"
    if mode == "creates":
        return Settings.load(environ=env, **given)
    found = pick(running(env))
    if found is not None:
        values = {k: v for k, v in found.settings.items()
                  if k in RECORDED and not env.get("EAS_" + k.upper())}
        return Settings.load(environ=env, **{**values, **given})
    if (here / "eas.db").is_file() if mode == "reads" else (here.is_dir() or mode == "optional"):
        return Settings.load(environ=env, **given)
    raise NoPipeline(f"no pipeline here: EAS_HOME is not set, no `eas up` is running, and {Path.cwd()} has no "
                     f".eas folder; start one with `eas up` (another shell) or `eas demo --keep`, or point "
                     f"EAS_HOME (or --home) at a pipeline's folder")
