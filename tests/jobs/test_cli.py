"""`eas submit` (dry run, checks, posting to a broker) and `eas watch` with job templates."""
from __future__ import annotations

import json
import threading

import pytest
from werkzeug.serving import make_server
from werkzeug.wrappers import Request, Response

from eas_runtime import cli, events
from tests.jobs.conftest import EXAMPLES


def run(capsys, *argv) -> tuple[int, str, str]:
    code = cli.main(list(argv))
    out = capsys.readouterr()
    return code, out.out, out.err


@pytest.fixture
def broker():
    """A stand-in broker ingress that keeps every CloudEvent posted to it."""
    received = []

    @Request.application
    def app(request):
        received.append(events.parse(request.headers, request.get_data()))
        return Response("", status=202)
    server = make_server("127.0.0.1", 0, app)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield f"http://127.0.0.1:{server.server_port}/", received
    server.shutdown()


def test_dry_run_json_counts_every_task_type(capsys):
    code, out, _ = run(capsys, "submit", "--dry-run", "--json", str(EXAMPLES / "earth_vs_size_batman.json"))
    data = json.loads(out)
    assert code == 0
    assert data["task_counts"] == {"synthesis_batman": 40, "transit_search_bls_reference": 20,
                                   "transit_search_tls": 20, "verify": 40}
    assert data["control_counts"] == {"execution_chain": 46, "execution_for_loop": 7}
    assert data["rows"] == 173 and data["tasks"] == 120 and data["deferred"] == []


def test_dry_run_text_shows_the_tree_and_the_deferred_parts(capsys):
    code, out, _ = run(capsys, "submit", "--dry-run", str(EXAMPLES / "control_flow_demo.json"))
    assert code == 0
    assert "task_list[0]@0  execution_chain  trial='a'" in out
    assert "task_list[0]@0.task_list[1]  execution_conditional" in out and "[else_task_list]" in out
    assert "evaluated at run time (x2): task_list[0]@*.task_list[2] execution_do_while_loop" in out
    assert "iteration 1: 1 null, 1 execution_chain, 1 execution_do_while_loop" in out


def test_a_defective_job_is_refused_with_its_path(capsys, tmp_path):
    job = tmp_path / "bad.json"
    job.write_text(json.dumps({"working_directory": "w", "task_list": [
        {"task": "execution_for_loop", "parameter": "i", "values": [1, 2],
         "task_list": [{"task": "null", "outputs": {"x": "same.json"}}]}]}))
    code, _, err = run(capsys, "submit", "--dry-run", str(job))
    assert code == 2 and "task_list[0]@1.task_list[0].outputs.x: 'w/same.json' is already produced" in err
    job.write_text("{")
    assert run(capsys, "submit", str(job))[0] == 2


def test_submit_posts_the_job_to_the_broker(capsys, broker):
    url, received = broker
    path = EXAMPLES / "if_then_else.json"
    code, out, _ = run(capsys, "--broker-url", url, "submit", str(path))
    assert code == 0 and "submitted 'if_then_else_test' (45 task rows, 24 tasks to run)" in out
    (event,) = received
    assert event["type"] == events.JOB_SUBMITTED and events.data_of(event) == json.loads(path.read_text())


def test_submit_check_reports_missing_inputs_before_sending(capsys, broker, tmp_path):
    url, received = broker
    job = tmp_path / "job.json"
    job.write_text(json.dumps({"working_directory": "w", "task_list": [
        {"task": "verify", "inputs": {"lightcurve": "nowhere.fits"}}]}))
    code, _, err = run(capsys, "--broker-url", url, "submit", "--check", str(job))
    assert code == 2 and "task_list[0].inputs.lightcurve: 'w/nowhere.fits' is not made by any task" in err
    assert "wait_for_upload" in err and received == []


def test_watch_rules_with_templates(capsys, tmp_path):
    template = str(EXAMPLES / "standard_search.json")
    code, out, _ = run(capsys, "watch", "add", "--prefix", "inbox/tess/", "--job", template)
    assert code == 0 and "watching 'inbox/tess/': job" in out and "4 tasks per object" in out
    assert run(capsys, "watch", "add", "--prefix", "inbox/", "--tasks", "ingest_external_lcs,verify")[0] == 0
    code, out, _ = run(capsys, "watch", "list", "--json")
    rules = {r["prefix"]: r for r in json.loads(out)}
    assert [t["task"] for t in rules["inbox/tess/"]["job_template"]["task_list"]] == [
        "ingest_external_lcs", "detrend", "planet_search", "vetting"]
    assert rules["inbox/"]["task_types"] == ["ingest_external_lcs", "verify"] and rules["inbox/"]["job_template"] is None
    assert "inbox/tess/\tjob 'standard search {input_name}'" in run(capsys, "watch", "list")[1]
    bad = tmp_path / "shared.json"
    bad.write_text(json.dumps({"working_directory": "all", "task_list": [{"task": "null"}]}))
    code, _, err = run(capsys, "watch", "add", "--prefix", "x/", "--job", str(bad))
    assert code == 2 and "every upload's job needs its own folder" in err
    assert "removed 1 rule(s)" in run(capsys, "watch", "remove", "--prefix", "inbox/tess/")[1]


def test_watch_add_without_a_job_or_tasks_uses_the_standard_path(capsys):
    code, out, _ = run(capsys, "watch", "add", "--prefix", "inbox/")
    assert code == 0 and "standard_search.json (4 tasks per object" in out
    rule = json.loads(run(capsys, "watch", "list", "--json")[1])[0]
    assert rule["job_template"] == json.loads((EXAMPLES / "standard_search.json").read_text())
    assert rule["task_types"] == []


def test_dry_run_refuses_task_types_no_function_serves(capsys, tmp_path):
    # It used to list them and exit 0; such a job's tasks stay queued forever (issue 11, defect 10).
    job = tmp_path / "job.json"
    job.write_text(json.dumps({"task_list": [{"task": "null"}, {"task": "made_up_search"}]}))
    for argv in (("submit", "--dry-run", "--json", str(job)), ("submit", "--dry-run", str(job))):
        code, out, err = run(capsys, *argv)
        assert code == 2 and out == ""
        assert "task_list[1].task: no function serves task type 'made_up_search'" in err and "verify" in err
