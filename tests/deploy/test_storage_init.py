"""`eas storage init` (the storage Job's command) against a real MinIO with the webhook target
configured as storage/minio.yaml configures it, and a real task database."""
from __future__ import annotations

import socket
import subprocess
import sys
import threading
import time
import uuid

import pytest
from sqlalchemy import create_engine, inspect
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from eas_runtime import devservers
from eas_runtime.deploy.storage_init import StorageInitError, init_storage
from eas_runtime.settings import Settings
from eas_runtime.store.minio_store import DEFAULT_QUEUE_ARN, MinioStore

from .conftest import REPO

TOKEN = "storage-init-token"


class Webhook:
    """Records the notification calls MinIO makes (what the storage adapter would receive)."""

    def __init__(self):
        self.calls: list[tuple[str, str, bytes]] = []
        self.server = make_server("127.0.0.1", 0, self.app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}/minio"
        threading.Thread(target=self.server.serve_forever, daemon=True).start()

    @Request.application
    def app(self, request: Request) -> Response:
        self.calls.append((request.path, request.headers.get("Authorization", ""),
                           request.get_data()))
        return Response(b"", status=200)

    def close(self):
        self.server.shutdown()
        self.server.server_close()


@pytest.fixture
def minio_with_webhook(tmp_path):
    binary = devservers.require("minio")
    hook = Webhook()
    server = devservers.MinioServer(tmp_path / "minio", binary=binary,
                                    webhook_endpoint=hook.url, webhook_token=TOKEN).start()
    yield server, hook
    server.stop()
    hook.close()


@pytest.mark.minio
def test_storage_init_prepares_schema_bucket_and_notification(minio_with_webhook, tmp_path):
    server, hook = minio_with_webhook
    bucket = f"init-{uuid.uuid4().hex[:12]}"
    db_url = f"sqlite:///{tmp_path / 'eas.db'}"
    env = {"PATH": "/usr/bin:/bin", "PYTHONPATH": str(REPO), "EAS_HOME": str(tmp_path / "home"),
           "EAS_STORE": "minio", "EAS_MINIO_ENDPOINT": server.endpoint, "EAS_BUCKET": bucket,
           "EAS_MINIO_ACCESS_KEY": server.access_key, "EAS_MINIO_SECRET_KEY": server.secret_key,
           "EAS_DATABASE_URL": db_url}
    for _ in range(2):                                  # every deploy runs it again
        result = subprocess.run([sys.executable, "-m", "eas_runtime.cli", "storage", "init",
                                 "--wait-s", "30"], env=env, capture_output=True, text=True,
                                timeout=120)
        assert result.returncode == 0, result.stderr
        assert f"bucket {bucket}" in result.stdout and "newest schema" in result.stdout
    assert "alembic_version" in inspect(create_engine(db_url)).get_table_names()
    store = MinioStore(server.endpoint, server.access_key, server.secret_key, bucket)
    config = store.client.get_bucket_notification(bucket)
    assert [q.queue for q in config.queue_config_list] == [DEFAULT_QUEUE_ARN]
    source = tmp_path / "star.csv"
    source.write_text("time,flux\n0,1\n")
    store.put_file("inbox/star.csv", source)
    deadline = time.monotonic() + 20
    while not hook.calls and time.monotonic() < deadline:
        time.sleep(0.1)
    assert hook.calls, "MinIO announced nothing"
    path, auth, body = hook.calls[0]
    assert (path, auth) == ("/minio", f"Bearer {TOKEN}") and b"inbox/star.csv" in body


def _closed_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_gives_up_when_minio_never_answers(tmp_path):
    settings = Settings.load(home=str(tmp_path), store="minio",
                             minio_endpoint=f"127.0.0.1:{_closed_port()}")
    lines: list[str] = []
    with pytest.raises(StorageInitError, match="MinIO: gave up after [0-9]+ attempts"):
        init_storage(settings, wait_s=1.0, database=False, say=lines.append, pause_s=0.2)
    assert lines and lines[0].startswith("MinIO: not yet")


def test_gives_up_when_the_database_never_answers(tmp_path):
    url = f"postgresql+psycopg2://eas:x@127.0.0.1:{_closed_port()}/eas"
    settings = Settings.load(home=str(tmp_path), database_url=url)
    with pytest.raises(StorageInitError, match="task database: gave up"):
        init_storage(settings, wait_s=1.0, store=False, say=lambda _: None, pause_s=0.2)


def test_the_store_must_be_minio(tmp_path):
    with pytest.raises(StorageInitError, match="must be MinIO"):
        init_storage(Settings.load(home=str(tmp_path)), wait_s=1, say=lambda _: None)
