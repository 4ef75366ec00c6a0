"""Seeded fuzzing of a running embedded runtime: the broker ingress, eas-control, a function
replica, the storage adapter and the index site, each over its real port.

Every case must be answered, within :data:`campaign.CLIENT_TIMEOUT_S`, by a 2xx or by a 4xx that
says what is wrong; no 5xx, no dropped connection, and no process of the runtime may die. After
the fuzz the broker must settle with no delivery tried more often than its Trigger allows, and an
ordinary upload must still be processed end to end. One runtime serves the whole module.

Cases come from :mod:`tests.reliability.campaign` (``FUZZ_SEED``, ``FUZZ_CASES``); a failure
message names the seed and the first cases that were not handled.
"""
from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

import pytest
from sqlalchemy import select

from eas_runtime.db.models import DONE, Delivery, Job, Task
from eas_runtime.demo import make_lightcurves
from eas_runtime.embedded import EmbeddedRuntime
from eas_runtime.resources import Resources
from tests.e2e.helpers import embedded_settings, wait_for, watch
from tests.reliability import campaign
from tests.reliability.campaign import SEED, Tally, exchange

pytestmark = pytest.mark.timeout(420)

#: Processes of the runtime that no request may kill (the fuzzed replica is added when woken).
KEPT = ("eas-control", "eas-index", "eas-storage-adapter")
NORMAL_CHAIN = ["ingest_external_lcs", "verify"]


@pytest.fixture(scope="module")
def runtime(tmp_path_factory):
    started = EmbeddedRuntime(embedded_settings(tmp_path_factory.mktemp("fuzz"))).start()
    wait_for(lambda: exchange(started.settings.index_port, campaign.Request("GET", "/healthz")).status == 200,
             timeout_s=60, what="the index site")
    yield started
    started.stop()


def pids(runtime, services=KEPT) -> dict[str, set[int]]:
    return {svc["name"]: {r["pid"] for r in svc["replicas"]} for svc in runtime.serving.status()
            if svc["name"] in services}


def port_of(runtime, service: str) -> int:
    (svc,) = [s for s in runtime.serving.status() if s["name"] == service]
    ready = [r for r in svc["replicas"] if r["ready"]]
    assert ready, f"{service} has no ready replica"
    return ready[0]["port"]


def fuzz(runtime, area: str, port: int, requests, *, workers: int = 4, watched=KEPT) -> Tally:
    """Send every case, judge every answer, count processes that died; save the tally."""
    tally = Tally()
    before = pids(runtime, watched)
    with ThreadPoolExecutor(workers) as pool:
        answers = list(pool.map(lambda req: exchange(port, req), requests))
    for req, answer in zip(requests, answers):
        tally.judge(area, req, answer)
    after = pids(runtime, watched)
    for name, alive in before.items():
        for pid in alive - after.get(name, set()):
            tally.count(area, "crash", what=f"{name} pid {pid}", answer="the process is gone")
    if runtime._server is None or not runtime._server.is_alive():
        tally.count(area, "crash", what="broker ingress thread", answer="stopped")
    tally.save()
    return tally


def assert_handled(tally: Tally, area: str) -> None:
    bad = tally.failed(area)
    shown = "\n".join(f"  [{f['column']}] {f['input'][:300]}\n    -> {f['answer']}" for f in bad[:10])
    tried = tally.rows[area]["tried"]
    assert not bad, (f"FUZZ_SEED={SEED}: {len(bad)} of {tried} {area} cases not handled "
                     f"(first {min(10, len(bad))}):\n{shown}")


# ---------------------------------------------------------------------------- the areas
def test_fuzz_broker_ingress(runtime):
    tally = fuzz(runtime, "ingress", runtime.settings.gateway_port, campaign.cases("ingress", campaign.ingress_case,
                                                                          token=runtime.settings.internal_token))
    assert_handled(tally, "ingress")


def test_fuzz_eas_control(runtime):
    requests = campaign.cases("control", campaign.control_case, token=runtime.settings.internal_token)
    tally = fuzz(runtime, "control", port_of(runtime, "eas-control"), requests)
    assert_handled(tally, "control")


def test_fuzz_storage_adapter(runtime):
    requests = campaign.cases("adapter", campaign.adapter_case, token=runtime.settings.adapter_token)
    tally = fuzz(runtime, "adapter", runtime.settings.adapter_port, requests)
    assert_handled(tally, "adapter")


def test_fuzz_function_replica(runtime):
    # Wake one replica of the null function through local serving (an empty request is refused
    # with 400), then talk to its port directly, one request at a time (containerConcurrency 1).
    ref = {"ref": {"apiVersion": "serving.knative.dev/v1", "kind": "Service", "name": "eas-null"}}
    token = {"Authorization": f"Bearer {runtime.settings.internal_token}"}
    status, _, _ = runtime.serving.post(ref, token, b"", timeout=60)
    assert status == 400
    requests = campaign.cases("replica", campaign.replica_case, token=runtime.settings.internal_token)
    tally = fuzz(runtime, "replica", port_of(runtime, "eas-null"), requests, workers=1,
                 watched=KEPT + ("eas-null",))
    assert_handled(tally, "replica")


def test_fuzz_index_site(runtime):
    # Last of the areas: the site now renders the hostile dead letters and products left by the others.
    tally = fuzz(runtime, "site", runtime.settings.index_port, campaign.cases("site", campaign.site_case))
    assert_handled(tally, "site")


# ---------------------------------------------------------------------------- afterwards
def test_after_the_fuzz_no_delivery_is_retried_without_bound(runtime):
    """Once the broker settles, no delivery row is pending and none was tried more often than its
    Trigger's retry budget (1 + ``delivery.retry``)."""
    tally = Tally()

    def pending() -> set[int]:
        with runtime.db.read() as s:
            return set(s.scalars(select(Delivery.id).where(Delivery.state == "pending")))
    # The reconcile tick adds rows all the time: wait for the rows pending now to end. The
    # longest budget (6 attempts, backoff 0.5 s doubling) is spent in about 16 s plus the answers.
    left = pending()
    try:
        wait_for(lambda: not (left & pending()), timeout_s=120, interval_s=1.0, what="the broker to settle")
    except AssertionError:
        pass  # counted below, row by row
    stuck = left & pending()
    triggers = runtime.broker.config.triggers
    with runtime.db.read() as s:
        rows = list(s.scalars(select(Delivery)))
    for row in rows:
        tally.count("broker after the fuzz", "tried")
        budget = triggers[row.trigger].delivery.attempts if row.trigger in triggers else 1
        what = f"delivery {row.id} {row.event_type} -> {row.trigger}, {row.tries} tries of {budget}"
        if row.tries > budget:
            tally.count("broker after the fuzz", "over budget", what=what, answer=row.last_error[:200])
        elif row.id in stuck:
            tally.count("broker after the fuzz", "over budget", what=what + ", still pending",
                        answer=row.last_error[:200])
        else:
            tally.count("broker after the fuzz", "handled")
    tally.save()
    assert_handled(tally, "broker after the fuzz")


def test_after_the_fuzz_an_upload_is_processed_end_to_end(runtime, tmp_path):
    tally = Tally()
    watch(runtime, prefix="normal/", chain=NORMAL_CHAIN)
    (path, _), = make_lightcurves(tmp_path / "lcs", 1)
    Resources(runtime.settings, db=runtime.db).store.put_file(f"normal/{path.name}", path)
    job_name = f"watch normal/ {path.name}"

    def states():
        with runtime.db.read() as s:
            return [t.state for t in s.scalars(select(Task).join(Job).where(Job.name == job_name))]
    tally.count("upload after the fuzz", "tried")
    try:
        wait_for(lambda: states() == [DONE] * len(NORMAL_CHAIN), timeout_s=180, what="the upload's job")
        tally.count("upload after the fuzz", "handled")
    except AssertionError:
        tally.count("upload after the fuzz", "lost", what=f"normal/{path.name}", answer=f"task states {states()}")
    tally.save()
    assert_handled(tally, "upload after the fuzz")
