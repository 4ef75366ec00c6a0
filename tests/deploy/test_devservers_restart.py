"""MinioServer.restart without a MinIO binary fails as start() does (DevServerError naming the
install command), not with a TypeError from Popen."""
from __future__ import annotations

import pytest

from eas_runtime import devservers


def test_restart_without_a_binary_names_the_install(tmp_path, monkeypatch):
    server = devservers.MinioServer(tmp_path / "minio", 9999)
    server.binary = None
    monkeypatch.setattr(server, "stop", lambda: None)
    monkeypatch.setattr(devservers, "find_minio", lambda: None)
    with pytest.raises(devservers.DevServerError, match="MinIO server binary not found"):
        server.restart()
