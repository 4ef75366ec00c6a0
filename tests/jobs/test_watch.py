"""Watch rules bound to a job template: every upload under the prefix gets its own job."""
from __future__ import annotations

import pytest
from sqlalchemy import select

from eas_runtime.control import watch
from eas_runtime.db.models import Job, Task, TaskInput, WatchRule
from eas_runtime.jobs import JobError
from eas_runtime.store.base import product_created_event
from tests.jobs.conftest import EXAMPLES, load


def _upload(resources, key, data=b"1,2,0\n"):
    resources.store.notify = None
    info = resources.store.put_bytes(key, data)
    return product_created_event(info, sequencer=info.version_id), info


def test_upload_metadata_names_the_object():
    meta = watch.upload_metadata("inbox/tess/", "inbox/tess/star 1.fits.gz", "0123456789abcdef")
    assert meta == {"input_key": "inbox/tess/star 1.fits.gz", "input_path": "/inbox/tess/star 1.fits.gz",
                    "input_name": "star 1.fits.gz", "input_stem": "star_1", "input_etag": "01234567",
                    "input_dir": "inbox/tess", "input_prefix": "inbox/tess/"}


def test_the_standard_search_template_makes_one_job_per_upload(resources, control, event_log):
    with resources.db.session() as s:
        s.add(WatchRule(prefix="inbox/tess/", task_types=[], job_template=load(EXAMPLES / "standard_search.json")))
    event, info = _upload(resources, "inbox/tess/star_1.csv")
    summary = control.handle(event)
    assert summary == {"key": "inbox/tess/star_1.csv", "jobs": 1, "claimed": 1}
    wd = f"processed/star_1-{info.etag[:8]}"
    with resources.db.read() as s:
        job = s.scalars(select(Job)).one()
        tasks = s.scalars(select(Task).order_by(Task.id)).all()
        inputs = dict(s.execute(select(TaskInput.task_id, TaskInput.key)).all())
    assert job.name == "standard search star_1.csv" and job.working_directory == wd
    assert [(t.task_type, t.name, t.state) for t in tasks] == [
        ("ingest_external_lcs", "ingest", "queued"), ("detrend", "detrend", "waiting"),
        ("planet_search", "search", "waiting"), ("vetting", "vetting", "waiting")]
    assert inputs[tasks[0].id] == "inbox/tess/star_1.csv" and inputs[tasks[1].id] == f"{wd}/star_1.fits"
    assert tasks[0].params["metadata"]["input_key"] == "inbox/tess/star_1.csv"
    assert [e["tasktype"] for e in event_log.of_type("task.ready")] == ["ingest_external_lcs"]
    assert control.handle(event)["jobs"] == 0                     # the same notification again
    other, _ = _upload(resources, "inbox/tess/star_2.csv", b"3,4,0\n")
    assert control.handle(other)["jobs"] == 1
    assert control.handle(_upload(resources, "inbox/elsewhere/x.csv")[0])["jobs"] == 0


def test_a_template_with_control_flow_runs_it(resources, player):
    template = {"task_list": [
        {"task": "null", "name": "first", "inputs": {"x": "(metadata['input_path'])"}},
        {"task": "execution_conditional", "requires_metadata_from": ["first"],
         "criterion": "(metadata['input_stem'].startswith('keep'))",
         "task_list": [{"task": "null", "name": "kept"}], "else_task_list": [{"task": "null", "name": "skipped"}]}]}
    with resources.db.session() as s:
        s.add(WatchRule(prefix="in/", task_types=[], job_template=template))
    player.control.handle(_upload(resources, "in/keep_me.csv")[0])
    player.control.handle(_upload(resources, "in/drop_me.csv")[0])
    player.run()
    assert [t.name for t in player.tasks(task_type="null") if t.name in ("kept", "skipped")] == ["kept", "skipped"]


def test_templates_are_checked_when_a_rule_is_added():
    checked = watch.check_template(load(EXAMPLES / "standard_search.json"), "inbox/tess/")
    assert checked.working_directory == "processed/example_a-01234567" and len(checked.tasks) == 4
    shared = {"working_directory": "everything", "task_list": [{"task": "null"}]}
    with pytest.raises(JobError, match="every upload's job needs its own folder"):
        watch.check_template(shared, "inbox/")
    with pytest.raises(JobError, match=r"task_list\[0\].inputs.x: expression"):
        watch.check_template({"task_list": [{"task": "null", "inputs": {"x": "(metadata['no_such'])"}}]}, "in/")


def test_the_task_chain_form_still_works(resources, control, event_log):
    with resources.db.session() as s:
        s.add(WatchRule(prefix="inbox/", task_types=["ingest_external_lcs", "verify"]))
    control.handle(_upload(resources, "inbox/a.csv")[0])
    with resources.db.read() as s:
        assert [t.path for t in s.scalars(select(Task).order_by(Task.id))] == ["watch[0]", "watch[1]"]


def test_an_upload_a_template_cannot_handle_is_kept_as_a_dead_letter(resources, control):
    from eas_runtime.db.models import DeadLetter, ProductVersion
    template = {"task_list": [{"task": "null", "x": "(10 / len(metadata['input_stem']) - 10)",
                               "y": "(1 / (metadata['input_stem'] != 'bad'))"}]}
    with resources.db.session() as s:
        s.add(WatchRule(prefix="in/", task_types=[], job_template=template))
    summary = control.handle(_upload(resources, "in/bad.csv")[0])
    assert summary["jobs"] == 0
    with resources.db.read() as s:
        letter = s.scalars(select(DeadLetter)).one()
        assert s.scalars(select(ProductVersion)).one().passed_qc          # the upload itself is recorded
    assert "upload in/bad.csv: no job from watch rule 'in/'" in letter.reason
    assert "task_list[0]: expression" in letter.reason and "ZeroDivisionError" in letter.reason
    assert control.handle(_upload(resources, "in/good.csv")[0])["jobs"] == 1
