"""The experiment report of a job shaped like ``detection_grid_2d`` (20,736 searches: 3 TDAs x
24 sizes x 24 periods x 12 impact parameters), rows inserted in bulk: the counts are exact and
the plots keep their size (no timing assertions: the report takes about 1 s on SQLite)."""
from __future__ import annotations

import itertools

import pytest
from sqlalchemy import insert

from eas_runtime.db.models import Attempt, Job, MetadataItem, Task, utcnow
from eas_runtime.db.session import Database
from eas_runtime.diagnostics import experiments as ex
from eas_runtime.site import experiment_plots as draw

TDAS = ("tls", "bls_reference", "qats")
SIZES = [round(0.01 * (1 + n), 4) for n in range(24)]
PERIODS = [round(0.5 * 1.35 ** n, 6) for n in range(24)]
IMPACTS = [round(n / 11, 6) for n in range(12)]


@pytest.fixture(scope="module")
def grid(tmp_path_factory):
    db = Database(f"sqlite:///{tmp_path_factory.mktemp('grid2d') / 'eas.db'}")
    db.create_schema()
    now = utcnow()
    tasks, attempts, meta = [], [], []
    for n, ((t, tda), (i, size), (k, period), (b, impact)) in enumerate(itertools.product(
            enumerate(TDAS), enumerate(SIZES), enumerate(PERIODS), enumerate(IMPACTS)), 1):
        loop = {"tda": tda, "tda_index": t, "size": size, "size_index": i, "period": period,
                "period_index": k, "impact": impact, "impact_index": b}
        failed = n % 97 == 0
        tasks.append({"id": n, "job_id": 1, "task_type": f"transit_search_{tda}", "path": "", "name": "search",
                      "working_directory": "g", "params": {"lc_duration": 730, "metadata": loop},
                      "state": "failed" if failed else "done", "attempt_count": 1, "created_at": now})
        attempts.append({"id": n, "task_id": n, "number": 1, "state": "finished", "queued_at": now,
                         "wall_s": 1.0, "cpu_s": 1.0, "cpu_children_s": 10.0 * (t + 1)})
        found = size >= 0.12 and period < 200
        for key, value in (("outcome", "PASS" if found else "FAIL"), ("detected", found or impact == 1.0),
                           ("pixels_in_transit", 10)):
            meta.append({"owner_kind": "attempt", "owner_id": n, "key": key, "value": value, "unit": ""})
    with db.session() as s:
        s.execute(insert(Job), [{"id": 1, "name": "detection_grid_2d", "working_directory": "g", "spec": {},
                                 "cancelled": False}])
        for table, rows in ((Task, tasks), (Attempt, attempts), (MetadataItem, meta)):
            for start in range(0, len(rows), 5000):
                s.execute(insert(table), rows[start:start + 5000])
    yield db, tasks, meta
    db.dispose()


def test_the_whole_grid_is_counted_exactly(grid):
    db, tasks, meta = grid
    report = ex.report(db, 1)
    assert [p["name"] for p in report["parameters"]] == ["impact", "period", "size"]
    assert report["plots"] == {"fraction": True, "completeness": True, "timing": False}
    failed = {t["id"] for t in tasks if t["state"] == "failed"}
    outcome = {m["owner_id"]: m["value"] for m in meta if m["key"] == "outcome"}
    detected = {m["owner_id"]: m["value"] for m in meta if m["key"] == "detected"}
    for row in report["tda_table"]:
        mine = [t["id"] for t in tasks if t["task_type"] == row["task_type"]]
        ended = [i for i in mine if i not in failed]
        assert (row["tasks"], row["ended"], row["missing"]) == (6912, len(ended), 6912 - len(ended))
        assert row["detections"] == sum(outcome[i] == "PASS" for i in ended)
        assert row["false_alarms"] == sum(detected[i] and outcome[i] != "PASS" for i in ended)
        assert row["cpu_s_median"] == 10.0 * (TDAS.index(row["tda"]) + 1)
    maps = report["completeness"]["maps"]
    assert (report["completeness"]["x"], report["completeness"]["y"]) == ("period", "size")
    assert [len(m["cells"]) for m in maps] == [24 * 24] * 3
    assert sum(c["ended"] + c["missing"] for m in maps for c in m["cells"]) == len(tasks)
    cell = next(c for c in maps[0]["cells"] if c["size"] == 0.2 and c["period"] == PERIODS[0])
    assert (cell["tasks"], cell["pass_fraction"]) == (12, 1.0)
    assert sum(p["tasks"] for s in report["fraction"]["series"] for p in s["points"]) == len(tasks)


def test_plots_of_the_grid_keep_their_size(grid):
    db, *_ = grid
    from io import BytesIO

    from matplotlib.image import imread
    for png in (draw.completeness_png(ex.completeness(db, 1)), draw.fraction_png(ex.fraction(db, 1, x="size"))):
        height, width, _ = imread(BytesIO(png), format="png").shape
        assert (width, height) == draw.PIXELS == (1200, 510)
