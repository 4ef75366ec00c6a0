"""The embedded runtime, started for real (broker, function processes, control, index site)."""
from __future__ import annotations

import pytest

from eas_runtime.embedded import EmbeddedRuntime
from tests.e2e.helpers import embedded_settings


@pytest.fixture
def make_runtime(tmp_path):
    started = []

    def make(**overrides) -> EmbeddedRuntime:
        runtime = EmbeddedRuntime(embedded_settings(tmp_path, **overrides)).start()
        started.append(runtime)
        return runtime

    yield make
    for runtime in started:
        runtime.stop()


@pytest.fixture
def runtime(make_runtime) -> EmbeddedRuntime:
    return make_runtime()
