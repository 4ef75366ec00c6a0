"""Experiment reports on a real PostgreSQL: loop parameters read from the JSON params, grouped
by position, counted as on SQLite (the same rows as tests/diagnostics/test_experiments.py)."""
from __future__ import annotations

import pytest

from eas_runtime.db.session import Database
from eas_runtime.diagnostics import experiments as ex
from tests.diagnostics.builders import Rows
from tests.diagnostics.test_experiments import SIZES, build_grid

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg(postgres_url):
    db = Database(postgres_url)
    db.create_schema()
    yield db
    db.dispose()


def test_report_on_postgres(pg):
    job, expected = build_grid(Rows(pg))
    data = ex.report(pg, job, x="size", by="period", map_x="size", map_y="period", length="size")
    assert [p["name"] for p in data["parameters"]] == ["period", "size"]
    assert data["parameters"][1]["values"] == list(SIZES)
    table = {r["tda"]: r for r in data["tda_table"]}
    for tda, want in expected.items():
        row = table[tda]
        assert (row["ended"], row["detections"], row["false_alarms"]) == (want["ended"], want["det"], want["fa"])
    assert table["tls"]["cpu_s_median"] == 21.0
    assert len(data["fraction"]["series"]) == 4 and data["completeness"]["missing"] == 2
    assert {len(m["cells"]) for m in data["completeness"]["maps"]} == {6}
    assert all(s["fit"] is not None for s in data["timing"]["series"])
