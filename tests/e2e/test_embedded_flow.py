"""Uploads alone drive ingest -> verify -> BLS on the embedded default (SQLite + local store)."""
from __future__ import annotations

import json
import subprocess
import uuid

from sqlalchemy import func, select

from eas_runtime import events
from eas_runtime.db import metadata as md
from eas_runtime.db.models import (DONE, FAILED, Attempt, Product, ProductVersion, Task,
                                   TaskOutput)
from eas_runtime.demo import make_lightcurves
from eas_runtime.resources import Resources
from eas_runtime.settings import PROJECT_ROOT
from tests.e2e.helpers import CHAIN, settled, wait_for, watch

SAMPLES = PROJECT_ROOT / "functions" / "ingest_external_lcs" / "sample"


def _store(runtime):
    return Resources(runtime.settings, db=runtime.db).store


def test_uploads_are_processed_and_a_corrupt_file_fails_alone(runtime, tmp_path):
    watch(runtime)
    good = make_lightcurves(tmp_path / "lcs", 2)
    truncated = tmp_path / "truncated.gz"
    truncated.write_bytes((SAMPLES / "demo_superearth_first_5d.gz").read_bytes()[:700])
    store = _store(runtime)
    for path, _ in good:
        store.put_file(f"inbox/{path.name}", path)
    store.put_file("inbox/truncated.gz", truncated)

    wait_for(settled(runtime.db, expected_tasks=3 * len(CHAIN)), what="every task to end")
    with runtime.db.read() as s:
        searches = s.scalars(select(Task).where(Task.task_type == "transit_search_bls_reference")
                             .order_by(Task.id)).all()
        results = {}
        for task in searches:
            attempt = s.scalars(select(Attempt).where(Attempt.task_id == task.id)).one_or_none()
            results[task.id] = (task.state, md.get_metadata(s, "attempt", attempt.id) if attempt else {})
        bad_ingest = s.scalar(select(Task).join(TaskOutput).where(
            Task.task_type == "ingest_external_lcs", TaskOutput.key.like("%truncated%")))
        bad_attempt = s.scalars(select(Attempt).where(Attempt.task_id == bad_ingest.id)).one()
        downstream = s.scalars(select(Task.state).where(Task.job_id == bad_ingest.job_id,
                                                        Task.id != bad_ingest.id)).all()
    done = [meta for state, meta in results.values() if state == DONE]
    assert len(done) == 2                          # both good light curves searched
    truths = sorted(p for _, p in good)
    found = sorted(meta["period"] for meta in done)
    for true_p, found_p in zip(truths, found):
        assert abs(found_p / true_p - 1) < 0.01    # well above the noise: within 1 %
    assert all(meta["outcome"] == "PASS" for meta in done)
    # the corrupt upload failed at ingest, with a message naming the file and the defect
    assert bad_ingest.state == FAILED and bad_attempt.error_kind == "input"
    assert "inbox/truncated.gz: truncated gzip stream" in bad_attempt.error_text
    assert set(downstream) == {"waiting"}          # nothing ran on a light curve that never existed
    # outputs are in the store, and each has exactly one version
    with runtime.db.read() as s:
        keys = s.scalars(select(Product.key).where(Product.generator_task_id.is_not(None))).all()
        versions = s.execute(select(ProductVersion.product_id, func.count()).group_by(ProductVersion.product_id)).all()
    assert keys and all(store.exists(k) for k in keys)
    assert all(n == 1 for _, n in versions)


def _authorization(runtime) -> str:
    """The header the README's curl example sends: the token read from $EAS_HOME/internal-token."""
    return f"Authorization: Bearer {(runtime.settings.home_path / 'internal-token').read_text().strip()}"


def _curl(runtime, event, mode: str) -> int:
    if mode == "structured":
        headers, body = events.to_http(event, "structured")
    else:
        headers, body = events.to_http(event, "binary")
    cmd = ["curl", "-s", "-o", "/dev/null", "-w", "%{http_code}", "-X", "POST", runtime.broker_url,
           "-H", _authorization(runtime), "--data-binary", "@-"]
    for k, v in headers.items():
        cmd += ["-H", f"{k}: {v}"]
    out = subprocess.run(cmd, input=body, capture_output=True, check=True)
    return int(out.stdout)


def test_manual_run_posted_with_curl_in_both_modes(runtime):
    store = _store(runtime)
    sample = SAMPLES / "lcsg_example.csv"
    store.put_file("manual/lc.csv", sample)
    wait_for(lambda: _passed(runtime, "manual/lc.csv"), what="the upload to be recorded")
    for i, mode in enumerate(("binary", "structured")):
        job = {"job_name": f"manual {mode}", "task_list": [
            {"task": "ingest_external_lcs", "inputs": {"lightcurve": "manual/lc.csv"},
             "outputs": {"lightcurve": f"manual/lc.{mode}.fits"}}]}
        event = events.make_event(events.JOB_SUBMITTED, "/curl", job, id=uuid.uuid4().hex)
        assert _curl(runtime, event, mode) == 202
    wait_for(settled(runtime.db, expected_tasks=2), what="both manual runs")
    with runtime.db.read() as s:
        assert set(s.scalars(select(Task.state))) == {DONE}
    assert store.exists("manual/lc.binary.fits") and store.exists("manual/lc.structured.fits")


def test_invalid_event_at_the_ingress_is_refused(runtime):
    out = subprocess.run(["curl", "-s", "-w", "\n%{http_code}", "-X", "POST", runtime.broker_url,
                          "-H", _authorization(runtime),
                          "-H", "content-type: application/json", "-d", json.dumps({"hello": 1})],
                         capture_output=True, check=True, text=True)
    assert out.stdout.strip().endswith("400")


def _passed(runtime, key):
    with runtime.db.read() as s:
        return s.scalar(select(func.count()).select_from(ProductVersion).join(Product)
                        .where(Product.key == key, ProductVersion.passed_qc.is_(True)))
