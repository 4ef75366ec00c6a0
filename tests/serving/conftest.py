"""Fixtures for local Knative Serving: Service manifests in tmp_path running the echo function."""
from __future__ import annotations

import pytest

from eas_runtime.serving import LocalServing
from eas_runtime.settings import Settings
from tests.serving.serving_helpers import write_manifests


@pytest.fixture
def make_serving(tmp_path):
    """``make_serving(*docs, **settings)`` -> a started LocalServing, stopped after the test."""
    made: list[LocalServing] = []

    def make(*docs: dict, ports: dict | None = None, start: bool = True,
             scale_up_delay_s: float | None = None, **overrides) -> LocalServing:
        folder = write_manifests(tmp_path / f"knative{len(made)}", *docs)
        values = {"home": str(tmp_path / "home"), "knative_dir": str(folder),
                  "max_replicas": 4, "idle_s": 60.0, "cold_start_timeout_s": 60.0}
        values.update(overrides)
        settings = Settings.load(environ={}, **values)
        extra = {} if scale_up_delay_s is None else {"scale_up_delay_s": scale_up_delay_s}
        serving = LocalServing(settings, "http://127.0.0.1:1/eas/default", ports=ports,
                               grace_s=3.0, **extra)
        made.append(serving)
        if start:
            serving.start()
        return serving

    yield make
    for serving in made:
        serving.stop()
