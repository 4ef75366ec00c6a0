"""The internal token: the per-installation secret the embedded runtime's endpoints demand.

On one machine every local process can reach the broker ingress, eas-control and each function
replica on 127.0.0.1, so each of them demands ``Authorization: Bearer <token>`` and everything
internal that posts to them sends it. Which case a component is in follows from one setting,
``Settings.internal_token``:

* **a token is configured** (the embedded runtime always configures one, see
  :func:`with_token`): requests without it get 401 with ``WWW-Authenticate: Bearer``, with a
  wrong one 403; ``/healthz`` stays open;
* **no token** (a Knative cluster, where the Broker cannot add our header): nothing is demanded;
  there NetworkPolicies (``storage/network-policies.yaml``) admit only the Knative data plane.

The token lives in ``$EAS_HOME/internal-token``, made on first use from 32 random bytes
(:mod:`secrets`), written with mode 0600 under a temporary name and linked into place, so a
reader never sees half a file and two runtimes starting at once agree on one token. A file that
group or others may read is refused: the token would no longer be a secret.
``EAS_INTERNAL_TOKEN`` overrides the file (see :mod:`eas_runtime.settings`). The storage
adapter keeps its own token, the one MinIO sends (``EAS_ADAPTER_TOKEN``).
"""
from __future__ import annotations

import hmac
import ipaddress
import os
import secrets
import stat
from pathlib import Path
from typing import Any, Mapping
from urllib.parse import urlsplit

from eas_runtime.settings import SettingsError

TOKEN_FILE = "internal-token"
#: Paths any process may ask without the token (liveness probes, readiness checks).
OPEN_PATHS = frozenset({"/healthz"})
#: Shortest token accepted from a file: anything shorter was not made here.
_MIN_LENGTH = 32


class TokenFileError(SettingsError):
    """The token file cannot be used; the message names the file and the fix."""


def token_path(home: str | os.PathLike) -> Path:
    return Path(home) / TOKEN_FILE


def read_token_file(home: str | os.PathLike) -> str:
    """The token in ``$EAS_HOME/internal-token``; "" when there is no such file."""
    path = token_path(home)
    try:
        fd = os.open(path, os.O_RDONLY | getattr(os, "O_NOFOLLOW", 0))
    except FileNotFoundError:
        return ""
    except OSError as exc:
        raise TokenFileError(f"cannot read the internal token {path}: {exc}") from None
    with os.fdopen(fd, "rb") as f:
        mode = os.fstat(f.fileno()).st_mode
        if stat.S_IMODE(mode) & 0o077:
            raise TokenFileError(
                f"the internal token {path} is open to group or others (mode "
                f"{stat.S_IMODE(mode):04o}); run `chmod 600 {path}` (or delete it: a new one is made)")
        token = f.read(4096).decode("ascii", "replace").strip()
    if len(token) < _MIN_LENGTH:
        raise TokenFileError(f"the internal token {path} holds {len(token)} characters, fewer than "
                             f"{_MIN_LENGTH}; delete it and a new one is made")
    return token


def ensure_token(home: str | os.PathLike) -> str:
    """The token of ``home``, made and written (mode 0600) when there is none yet."""
    existing = read_token_file(home)
    if existing:
        return existing
    path = token_path(home)
    token = secrets.token_urlsafe(32)         # 32 random bytes, 43 characters
    temporary = path.with_name(f".{TOKEN_FILE}.{os.getpid()}.{secrets.token_hex(4)}")
    try:
        path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except OSError as exc:
        raise TokenFileError(f"cannot write the internal token {path}: {exc}") from None
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(token.encode() + b"\n")
            f.flush()
            os.fsync(f.fileno())
        try:
            os.link(temporary, path)          # never replaces a token another process made
        except FileExistsError:
            return read_token_file(home)
    finally:
        temporary.unlink(missing_ok=True)
    return token


def with_token(settings):
    """``settings`` with an internal token: the configured one, else the file's (made if need
    be). The embedded runtime calls this, so its endpoints always demand the token."""
    if settings.internal_token:
        return settings
    return settings.replace(internal_token=ensure_token(settings.home_path))


# ---------------------------------------------------------------------- sending
def bearer(token: str) -> dict[str, str]:
    """The header that carries ``token``; none when no token is configured."""
    return {"Authorization": f"Bearer {token}"} if token else {}


def signed(headers: Mapping[str, str], token: str) -> dict[str, str]:
    """``headers`` with the token's Authorization header instead of any other."""
    out = {k: v for k, v in headers.items() if str(k).lower() != "authorization"}
    out.update(bearer(token))
    return out


def _is_local(destination: Mapping[str, Any]) -> bool:
    """A Service of the runtime (``ref``) or a loopback URL: where the token may go."""
    if destination.get("ref"):
        return True
    host = urlsplit(str(destination.get("uri") or "")).hostname or ""
    if host == "localhost":
        return True
    try:
        return ipaddress.ip_address(host).is_loopback
    except ValueError:
        return False


class SignedDispatcher:
    """A broker dispatcher (``post(destination, headers, body, timeout)``) that adds the token
    to every delivery to the runtime's own Services and loopback URLs, and to nothing else: a
    Trigger may name an outside URL, which must not learn the secret."""

    def __init__(self, inner, token: str):
        self.inner = inner
        self.token = token

    def post(self, destination: Mapping[str, Any], headers: Mapping[str, str], body: bytes,
             timeout: float | None = None):
        if self.token and _is_local(destination):
            headers = signed(headers, self.token)
        return self.inner.post(destination, headers, body, timeout)


# ---------------------------------------------------------------------- checking
def _authorization(headers: Any) -> str:
    value = headers.get("Authorization") if hasattr(headers, "get") else None
    if value is None:
        value = next((v for k, v in headers.items() if str(k).lower() == "authorization"), "")
    return str(value or "")


def refusal(headers: Any, token: str) -> tuple[int, str, dict[str, str]] | None:
    """``None`` when the request may pass, else (status, one-line message, headers): 401 without
    a bearer token, 403 with a wrong one. Nothing is demanded when ``token`` is empty."""
    if not token:
        return None
    scheme, _, given = _authorization(headers).strip().partition(" ")
    if scheme.lower() != "bearer" or not given.strip():
        return (401, "this endpoint needs the internal token: send Authorization: Bearer <token> "
                     "(the token is in $EAS_HOME/internal-token)",
                {"WWW-Authenticate": 'Bearer realm="eas-internal"'})
    if not hmac.compare_digest(given.strip().encode("utf-8", "surrogateescape"),
                               token.encode("utf-8", "surrogateescape")):
        return (403, "wrong internal token (see $EAS_HOME/internal-token)",
                {"WWW-Authenticate": 'Bearer realm="eas-internal", error="invalid_token"'})
    return None


def protect_flask(app, token: str) -> None:
    """Make every route of a Flask ``app`` but :data:`OPEN_PATHS` demand ``token``."""
    if not token:
        return
    from flask import Response, request

    @app.before_request
    def _demand_internal_token():
        if request.path in OPEN_PATHS:
            return None
        refused = refusal(request.headers, token)
        if refused is None:
            return None
        status, text, headers = refused
        return Response(text + "\n", status=status, headers=headers, mimetype="text/plain")
