"""Diagnostics on a real PostgreSQL: the queries (recursive CTEs, grouping by display state,
JSON metadata) and backup/restore with pg_dump/pg_restore."""
from __future__ import annotations

import io
import uuid

import pytest
from sqlalchemy import select

from eas_runtime import diagnostics as diag
from eas_runtime.db.models import A_RUNNING, Base, Job
from eas_runtime.db.session import Database
from tests.diagnostics.builders import Rows

pytestmark = pytest.mark.postgres


@pytest.fixture
def pg(postgres_url):
    db = Database(postgres_url)
    db.create_schema()
    yield db
    db.dispose()


@pytest.fixture
def second_pg(postgres_server):
    """Another fresh database on the same server, dropped afterwards."""
    name = f"t_restore_{uuid.uuid4().hex[:8]}"
    db = Database(postgres_server.create_database(name))
    yield db
    db.dispose()
    postgres_server.drop_database(name)


def _fill(db) -> dict:
    rows = Rows(db)
    job = rows.job("grid")
    loop = rows.task(job, "execution_for_loop", path="task_list[0]", state="done")
    out = {"job": job, "loop": loop, "searches": []}
    for i, (state, outcome) in enumerate((("done", "PASS"), ("done", "FAIL"), ("failed", None))):
        t = rows.task(job, "transit_search_tls", parent=loop, state=state,
                      metadata={"size": 0.5 * (i + 1), "size_index": i, "tda": 'tls, "x"'},
                      params={"specs": {"duration": 730}})
        if outcome:
            rows.attempt(t, wall_s=1.0 + i, metadata={"period": 50.0, "outcome": outcome},
                         logs=[("INFO", "start"), ("WARNING", "careful")])
        else:
            rows.attempt(t, error_kind="science", error_text="Traceback ...\nValueError: boom")
        out["searches"].append(t)
    stalled = rows.task(job, "verify", parent=loop, state="running")
    rows.attempt(stalled, state=A_RUNNING, heartbeat_age_s=10_000)
    flat = rows.job("flat")
    out["flat"] = [rows.task(flat, "verify", state="waiting") for _ in range(3)]
    rows.delivery(tries=1, last_error="[503]")
    rows.dead_letter("no sink")
    return out


def _contents(db) -> dict:
    with db.read_engine.connect() as conn:
        return {name: sorted(tuple(map(repr, r)) for r in conn.execute(select(table)))
                for name, table in sorted(Base.metadata.tables.items())}


def test_queries_on_postgresql(pg):
    ids = _fill(pg)
    tree = diag.tree(pg, stall_s=300)
    assert [i["task_id"] for i in tree["items"]] == [ids["loop"], *ids["searches"], ids["searches"][-1] + 1,
                                                     *ids["flat"]]
    assert [i["depth"] for i in tree["items"]] == [0, 1, 1, 1, 1, 0, 0, 0]
    assert tree["items"][4]["state"] == "stalled"
    assert [i["task_id"] for i in diag.tree(pg, depth=0, page=1, page_size=2)["items"]] == ids["flat"][1:]
    assert diag.tree(pg, subtree=ids["loop"], depth=1)["total"] == 5
    assert [i["state"] for i in diag.tree(pg, running_only=True, stall_s=300)["items"]] == ["stalled"]
    progress = diag.progress(pg, stall_s=300)
    assert progress["all"]["counts"]["stalled"] == 1 and progress["all"]["total"] == 8
    assert diag.jobs(pg, stall_s=300)["items"][1]["counts"]["stalled"] == 1
    errors = diag.errors(pg, since="1h")
    assert errors["total"] == 1 and errors["items"][0]["error"].endswith("ValueError: boom")
    timings = diag.timings(pg, ids["job"], "transit_search_tls")
    assert timings["parameters"] == ["size", "size_index", "tda", "specs.duration"]
    assert [r["outcome"] for r in timings["items"]] == ["PASS", "FAIL", None]
    assert diag.passfail(pg, ids["job"], "transit_search_tls")["summary"] == {"FAIL": 1, "PASS": 1, "null": 1}
    assert diag.timing_groups(pg)["total"] == 4
    buf = io.StringIO(newline="")
    assert diag.export_csv(pg, ids["job"], "transit_search_tls", buf) == 3
    assert '"tls, ""x"""' in buf.getvalue()
    assert [m["text"] for m in diag.logs(pg, job_id=ids["job"], severity="WARNING")["items"]] == ["careful"] * 2
    inflight = diag.inflight(pg, stall_s=300)
    assert inflight["attempts"]["items"][0]["task_state"] == "stalled"
    assert inflight["deliveries"]["total"] == 1 and inflight["dead_letters"]["count"] == 1
    assert len(diag.task_detail(pg, ids["searches"][0])["attempts"]) == 1
    # the units of results, the default activity window, stars found by name (PostgreSQL SQL)
    assert diag.task_detail(pg, ids["searches"][0])["attempts"][0]["units"] == {}   # none recorded
    assert timings["units"]["wall_s"] == "s"
    from eas_runtime.diagnostics.activity import activity
    from eas_runtime.planets.stars import stars
    window = activity(pg)["window"]
    assert window["default"] and window["job_id"] == ids["job"]
    assert stars(pg, search="wasp")["total"] == 0


def test_backup_and_restore_on_postgresql(pg, second_pg, tmp_path):
    _fill(pg)
    out = diag.backup(pg, tmp_path / "eas.dump")
    assert out["format"] == "pg_dump-custom"
    assert (tmp_path / "eas.dump").read_bytes().startswith(b"PGDMP")
    diag.restore(second_pg, tmp_path / "eas.dump")            # a brand-new, empty database
    assert _contents(second_pg) == _contents(pg)
    assert diag.tree(second_pg)["total"] == 8                  # usable, sequences included
    Rows(second_pg).job("after the restore")
    with pytest.raises(diag.BackupError, match="not empty"):
        diag.restore(second_pg, tmp_path / "eas.dump")
    diag.restore(second_pg, tmp_path / "eas.dump", force=True)
    with second_pg.read() as s:
        assert s.scalars(select(Job.name).order_by(Job.id)).all() == ["grid", "flat"]
    sqlite_copy = tmp_path / "sqlite.db"
    sqlite_copy.write_bytes(b"SQLite format 3\x00" + b"\x00" * 100)
    with pytest.raises(diag.BackupError, match="SQLite backup: restore it into SQLite"):
        diag.restore(second_pg, sqlite_copy, force=True)


def test_restore_over_an_empty_schema(pg, second_pg, tmp_path):
    _fill(pg)
    diag.backup(pg, tmp_path / "eas.dump")
    second_pg.create_schema()                                  # `eas db upgrade` ran first
    assert diag.is_empty(second_pg)
    diag.restore(second_pg, tmp_path / "eas.dump")
    assert _contents(second_pg) == _contents(pg)
