"""The Alembic migrations build exactly the schema the models declare, on both databases.

A column added to a model without its migration (or the other way round) would work on a fresh
test database built one way and fail on an upgraded installation built the other.
"""
from __future__ import annotations

import pytest
from alembic.autogenerate import compare_metadata
from alembic.migration import MigrationContext

from eas_runtime.db.models import Base
from eas_runtime.db.session import Database
from tests.integration.conftest import postgres_server, postgres_url  # noqa: F401 - fixtures


def _drift(url: str) -> list:
    db = Database(url)
    try:
        db.create_schema()
        with db.engine.connect() as conn:
            return compare_metadata(MigrationContext.configure(conn), Base.metadata)
    finally:
        db.dispose()


def test_migrations_match_the_models_on_sqlite(tmp_path):
    assert _drift(f"sqlite:///{tmp_path / 'eas.db'}") == []


@pytest.mark.postgres
def test_migrations_match_the_models_on_postgresql(postgres_url):  # noqa: F811
    assert _drift(postgres_url) == []
