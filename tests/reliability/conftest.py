"""Fixtures of the reliability tier: the real servers of the integration tier, reused."""
from tests.integration.conftest import (capture_broker, minio_binary, minio_factory, minio_server,  # noqa: F401
                                        minio_store, postgres_server, postgres_url, wsgi_server)
from tests.e2e.conftest import make_runtime, runtime  # noqa: F401,E402
