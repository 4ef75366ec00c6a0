"""Function entry points over real HTTP (functions-framework app in a loopback server)."""
from __future__ import annotations

import sys
import threading

import functions_framework
import pytest
import requests
from cloudevents.conversion import to_binary, to_structured
from sqlalchemy import func, select
from werkzeug.serving import make_server

from eas_runtime import events
from eas_runtime.control import scheduler
from eas_runtime.db.models import (A_FINISHED, DONE, FAILED, Attempt, DeadLetter, Product,
                                   ProductVersion, Task)
from eas_runtime.jobs import compile_job, insert_job
from eas_runtime.resources import Resources
from eas_runtime.settings import PROJECT_ROOT

FUNCTIONS = PROJECT_ROOT / "functions"


class FunctionServer:
    def __init__(self, task_type: str, resources: Resources):
        source = FUNCTIONS / task_type / "main.py"
        self.app = functions_framework.create_app(target="handle", source=str(source), signature_type="http")
        sys.modules["main"].handle.runner._resources = resources
        self.server = make_server("127.0.0.1", 0, self.app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}/"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def post(self, event, mode="binary", drop=None) -> requests.Response:
        headers, body = (to_structured if mode == "structured" else to_binary)(event)
        headers = {k: v for k, v in headers.items() if k.lower() != (drop or "").lower()}
        return requests.post(self.url, headers=headers, data=body, timeout=60)

    def close(self):
        self.server.shutdown()


def make_task(resources, task_type, *, params=None, inputs=None, outputs=None) -> scheduler.Ready:
    """A one-task job, claimed: the function's part is what the tests exercise."""
    spec = {"job_name": "t", "working_directory": "work", "task_list": [
        {"task": task_type, "name": task_type, "inputs": inputs or {}, "outputs": outputs or {},
         **(params or {})}]}
    with resources.db.session() as s:
        job, _ = insert_job(s, compile_job(spec), source_event=None, stat=resources.store.stat)
        task_id = s.scalar(select(Task.id).where(Task.job_id == job.id))
    ready = scheduler.claim(resources.db, task_id)
    assert ready is not None
    return ready


@pytest.fixture
def null_server(resources):
    server = FunctionServer("null", resources)
    yield server
    server.close()


@pytest.mark.parametrize("mode", ["binary", "structured"])
def test_success_answers_202_with_empty_body(null_server, resources, event_log, mode):
    ready = make_task(resources, "null")
    response = null_server.post(ready.event(), mode)
    assert response.status_code == 202
    assert response.content == b""      # a Broker counts a non-CloudEvent body as a failure
    with resources.db.read() as s:
        attempt = s.get(Attempt, ready.attempt_id)
        assert attempt.state == A_FINISHED and not attempt.error
        assert attempt.wall_s is not None and attempt.cpu_s is not None
        assert s.get(Task, ready.task_id).state == DONE
    finished = event_log.of_type("task.finished")
    assert [e["taskid"] for e in finished] == [str(ready.task_id)]


@pytest.mark.parametrize("header", ["ce-id", "ce-source", "ce-type", "ce-specversion"])
def test_each_required_header_dropped_gives_400(null_server, resources, header):
    ready = make_task(resources, "null")
    response = null_server.post(ready.event(), drop=header)
    assert response.status_code == 400
    with resources.db.read() as s:
        assert s.get(Attempt, ready.attempt_id).state == "queued"       # nothing ran
        assert s.scalar(select(func.count()).select_from(DeadLetter)) == 1  # and it was recorded


@pytest.mark.parametrize("missing", ["tasktype", "taskid", "attemptid"])
def test_missing_extension_gives_400_naming_it(null_server, resources, missing):
    ready = make_task(resources, "null")
    event = ready.event()
    del event[missing]
    response = null_server.post(event)
    assert response.status_code == 400
    assert missing in response.text


def test_wrong_task_type_gives_400(null_server, resources):
    ready = make_task(resources, "verify")
    response = null_server.post(ready.event())
    assert response.status_code == 400
    assert "'verify' is not served" in response.text


def test_get_is_not_an_event(null_server):
    assert requests.get(null_server.url, timeout=10).status_code == 405


def test_bad_parameter_fails_task_with_400_and_is_recorded(null_server, resources, event_log):
    ready = make_task(resources, "null", params={"duration": "soon"})
    response = null_server.post(ready.event())
    assert response.status_code == 400
    assert "'duration'" in response.text and "'soon'" in response.text
    with resources.db.read() as s:
        attempt = s.get(Attempt, ready.attempt_id)
        assert attempt.error and attempt.error_kind == "parameters"
        assert s.get(Task, ready.task_id).state == FAILED
    assert len(event_log.of_type("task.failed")) == 1


def test_science_failure_is_recorded_and_acknowledged(resources, event_log):
    server = FunctionServer("error", resources)
    try:
        ready = make_task(resources, "error")
        response = server.post(ready.event())
    finally:
        server.close()
    assert response.status_code == 202 and response.content == b""
    with resources.db.read() as s:
        attempt = s.get(Attempt, ready.attempt_id)
        assert attempt.error and attempt.error_kind == "science"
        assert "Traceback" in attempt.error_text
    assert len(event_log.of_type("task.failed")) == 1


def test_duplicate_delivery_makes_one_product_and_one_attempt(resources, event_log):
    sample = sorted((FUNCTIONS / "ingest_external_lcs" / "sample").glob("*.csv"))[0]
    resources.store.put_file("inbox/sample.csv", sample)
    with resources.db.session() as s:
        from eas_runtime.db.products import ensure_product
        s.add(ProductVersion(product_id=ensure_product(s, "inbox/sample.csv").id, passed_qc=True))
    ready = make_task(resources, "ingest_external_lcs", inputs={"lightcurve": "../inbox/sample.csv"},
                      outputs={"lightcurve": "sample.fits"})
    server = FunctionServer("ingest_external_lcs", resources)
    try:
        first = server.post(ready.event())
        second = server.post(ready.event())
    finally:
        server.close()
    assert (first.status_code, second.status_code) == (202, 202)
    with resources.db.read() as s:
        assert s.scalar(select(func.count()).select_from(Attempt).where(Attempt.task_id == ready.task_id)) == 1
        products = s.scalars(select(Product).where(Product.key == "work/sample.fits")).all()
        assert len(products) == 1
        assert len(s.scalars(select(ProductVersion).where(ProductVersion.product_id == products[0].id)).all()) == 1
    assert resources.store.exists("work/sample.fits")
    assert len(event_log.of_type("task.finished")) == 1


def test_database_outage_gives_503(settings, event_log):
    from eas_runtime.db.session import Database
    from eas_runtime.store.local import LocalStore
    down = Database("postgresql+psycopg2://nobody@127.0.0.1:1/none?connect_timeout=2")
    res = Resources(settings, send=event_log, db=down, store=LocalStore(settings.store_path))
    server = FunctionServer("null", res)
    try:
        event = scheduler.Ready(task_id=1, attempt_id=1, task_type="null", job_id=1).event()
        response = server.post(event)
    finally:
        server.close()
    assert response.status_code == 503


def test_task_ready_event_shape():
    event = scheduler.Ready(task_id=7, attempt_id=9, task_type="verify", job_id=3).event()
    assert event["type"] == events.TASK_READY
    assert (event["tasktype"], event["taskid"], event["attemptid"], event["jobid"]) == ("verify", "7", "9", "3")
    # stable id: the same attempt always gives the same event id
    assert event["id"] == scheduler.Ready(7, 9, "verify", 3).event()["id"]


def test_asked_for_a_reply_the_function_answers_with_its_end_event(null_server, resources, event_log):
    ready = make_task(resources, "null")
    headers, body = to_binary(ready.event())
    response = requests.post(null_server.url, headers={**headers, "Prefer": "reply"}, data=body, timeout=60)
    assert response.status_code == 200
    reply = events.parse(response.headers, response.content)
    assert (reply["type"], reply["taskid"], reply["attemptid"]) == (
        events.TASK_FINISHED, str(ready.task_id), str(ready.attempt_id))
    assert reply["id"] == events.stable_id(events.TASK_FINISHED, ready.attempt_id)
    assert event_log.of_type("task.finished") == []            # replied, not posted as well
    again = requests.post(null_server.url, headers={**headers, "Prefer": "reply"}, data=body, timeout=60)
    assert (again.status_code, again.content) == (202, b"")    # a duplicate: nothing to announce


def test_ingest_takes_reader_options_as_task_parameters(resources, event_log, tmp_path):
    """``select`` and ``columns`` as parameters of the task; a bad one fails that task as a
    parameter error naming it."""
    from eas_runtime.lightcurve import read_lightcurve
    rows = ["time,mag,flux,instrument"] + [f"{i * 0.02},12,{1 + (i % 7) * 1e-4},{'K2' if i % 2 else 'LCO'}"
                                           for i in range(40)]
    resources.store.put_bytes("inbox/mixed.csv", ("\n".join(rows) + "\n").encode())
    with resources.db.session() as s:
        from eas_runtime.db.products import ensure_product
        s.add(ProductVersion(product_id=ensure_product(s, "inbox/mixed.csv").id, passed_qc=True))
    good = make_task(resources, "ingest_external_lcs", inputs={"lightcurve": "../inbox/mixed.csv"},
                     outputs={"lightcurve": "k2.fits"},
                     params={"select": {"instrument": "K2"}, "time_system": "BTJD"})
    bad = make_task(resources, "ingest_external_lcs", inputs={"lightcurve": "../inbox/mixed.csv"},
                    outputs={"lightcurve": "bad.fits"}, params={"columns": {"flux": -1}})
    server = FunctionServer("ingest_external_lcs", resources)
    try:
        assert server.post(good.event()).status_code == 202
        refused = server.post(bad.event())     # unusable parameters: 400, recorded, not retried
        assert refused.status_code == 400 and "columns.flux" in refused.text
    finally:
        server.close()
    resources.store.get_file("work/k2.fits", tmp_path / "k2.fits")
    lc = read_lightcurve(tmp_path / "k2.fits")
    assert len(lc) == 20 and lc.meta["time_system"] == "BTJD" and lc.meta["selected_rows"] == 20
    assert "uncertainties missing: replaced" in lc.meta["warnings"]
    with resources.db.read() as s:
        kind, text = s.execute(select(Attempt.error_kind, Attempt.error_text)
                               .where(Attempt.task_id == bad.task_id)).one()
    assert kind == "parameters" and "'columns.flux' must be a column name or a 0-based position" in text
