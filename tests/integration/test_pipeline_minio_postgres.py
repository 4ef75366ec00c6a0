"""The whole flow on real servers: MinIO (webhook -> storage adapter) and PostgreSQL."""
from __future__ import annotations

import threading
import time

import pytest
from sqlalchemy import func, select

from eas_runtime import devservers
from eas_runtime.db import metadata as md
from eas_runtime.db.models import DONE, Attempt, Job, Product, ProductVersion, Task
from eas_runtime.demo import make_lightcurves
from eas_runtime.embedded import EmbeddedRuntime
from tests.e2e.helpers import CHAIN, embedded_settings, settled, wait_for, watch

pytestmark = [pytest.mark.minio, pytest.mark.postgres]
TOKEN = "test-adapter-token"


@pytest.fixture
def stack(tmp_path, minio_factory, postgres_url):
    """MinIO with its webhook pointing at the storage adapter of an embedded runtime."""
    adapter_port = devservers.free_port()
    minio = minio_factory(webhook_endpoint=f"http://127.0.0.1:{adapter_port}/minio", webhook_token=TOKEN)
    settings = embedded_settings(tmp_path, database_url=postgres_url, adapter_port=adapter_port,
                                 adapter_token=TOKEN, **minio.settings_overrides())
    runtime = EmbeddedRuntime(settings).start()
    watch(runtime)
    yield runtime, minio
    runtime.stop()


def test_upload_with_the_minio_client_is_processed(stack, tmp_path):
    runtime, minio = stack
    (path, period), = make_lightcurves(tmp_path / "lcs", 1)
    minio.client().fput_object("eas", f"inbox/{path.name}", str(path))
    wait_for(settled(runtime.db, expected_tasks=len(CHAIN)), what="the chain to finish")
    with runtime.db.read() as s:
        tasks = s.scalars(select(Task).order_by(Task.id)).all()
        assert [t.state for t in tasks] == [DONE] * 3
        search = tasks[-1]
        attempt = s.scalars(select(Attempt).where(Attempt.task_id == search.id)).one()
        result = md.get_metadata(s, "attempt", attempt.id)
        outputs = s.scalars(select(Product.key).where(Product.generator_task_id.is_not(None))).all()
    assert abs(result["period"] / period - 1) < 0.01 and result["outcome"] == "PASS"
    stat = minio.client().stat_object("eas", [k for k in outputs if k.endswith(".fits") and "ingest" in k][0])
    assert stat.size > 0 and stat.metadata.get("x-amz-meta-eas-task-id") == str(tasks[0].id)


def test_minio_restart_during_uploads_loses_no_upload(stack, tmp_path):
    runtime, minio = stack
    files = make_lightcurves(tmp_path / "lcs", 6)
    uploaded: list[str] = []

    def upload_all():
        client = minio.client()
        for path, _ in files:
            key = f"inbox/{path.name}"
            deadline = time.monotonic() + 60
            while True:       # a user's upload tool retries while the server restarts
                try:
                    client.fput_object("eas", key, str(path))
                    uploaded.append(key)
                    break
                except Exception:  # noqa: BLE001 - connection refused while MinIO is down
                    if time.monotonic() > deadline:
                        raise
                    time.sleep(0.2)
            time.sleep(0.1)

    uploader = threading.Thread(target=upload_all)
    uploader.start()
    time.sleep(0.3)
    minio.restart()
    uploader.join()
    assert len(uploaded) == len(files)
    wait_for(settled(runtime.db, expected_tasks=len(CHAIN) * len(files)), timeout_s=300,
             what="every upload to be processed")
    with runtime.db.read() as s:
        jobs = s.scalar(select(func.count()).select_from(Job))
        upload_versions = s.scalar(select(func.count()).select_from(ProductVersion)
                                   .where(ProductVersion.event_id.is_not(None)))
        states = set(s.scalars(select(Task.state)))
    assert jobs == len(files) and upload_versions == len(files)
    assert states == {DONE}


def test_defect_5_two_uploads_to_one_key_on_minio_each_job_reads_its_own_version(stack, tmp_path):
    """Issue 11, defect 5 on MinIO: the same (Unicode) key written twice with the MinIO client
    in quick succession; the versioned bucket keeps both, each job reads the version whose
    upload created it, and its attempts record that version."""
    from eas_runtime.db.models import AttemptInput
    runtime, minio = stack
    made = make_lightcurves(tmp_path / "lcs", 3)
    (a, period_a), (b, period_b) = made[0], made[2]             # two CSV light curves
    client = minio.client()
    key = "inbox/étoile 星.csv"
    first = client.fput_object("eas", key, str(a))
    second = client.fput_object("eas", key, str(b))
    assert first.version_id and second.version_id and first.version_id != second.version_id
    wait_for(settled(runtime.db, expected_tasks=2 * len(CHAIN)), timeout_s=300, what="both jobs to end")
    periods, read = {}, {}
    with runtime.db.read() as s:
        for job in s.scalars(select(Job)):
            tasks = {t.task_type: t for t in s.scalars(select(Task).where(Task.job_id == job.id))}
            assert all(t.state == DONE for t in tasks.values()), [(t.task_type, t.state) for t in tasks.values()]
            search = s.scalars(select(Attempt).where(Attempt.task_id == tasks[CHAIN[-1]].id)).one()
            periods[job.spec["object_version"]] = md.get_metadata(s, "attempt", search.id)["period"]
            ingest = s.scalars(select(Attempt).where(Attempt.task_id == tasks[CHAIN[0]].id)).one()
            read[job.spec["object_version"]] = s.scalars(
                select(AttemptInput.object_version).where(AttemptInput.attempt_id == ingest.id)).all()
    assert set(periods) == {first.version_id, second.version_id}
    assert abs(periods[first.version_id] / period_a - 1) < 0.01, periods
    assert abs(periods[second.version_id] / period_b - 1) < 0.01, periods
    assert read == {first.version_id: [first.version_id], second.version_id: [second.version_id]}
