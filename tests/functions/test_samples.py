"""Every function's sample input, run stand-alone (``eas invoke``) and through the full event
path of the embedded runtime; ``eas invoke --url``; the glob mode of ingest_external_lcs run
twice (the prototype duplicated the products)."""
from __future__ import annotations

import json
import subprocess
import sys
import threading
import uuid
from pathlib import Path

import functions_framework
import pytest
from sqlalchemy import func, select
from werkzeug.serving import make_server

from eas_runtime import events, invoke
from eas_runtime.db import metadata as md
from eas_runtime.db.models import Attempt, Product, ProductVersion, Task
from eas_runtime.resources import Resources
from eas_runtime.settings import PROJECT_ROOT
from tests.e2e.conftest import make_runtime, runtime  # noqa: F401 - fixtures
from tests.e2e.helpers import settled, wait_for

FUNCTIONS = PROJECT_ROOT / "functions"
FOLDERS = sorted(p.parent.parent.name for p in FUNCTIONS.glob("*/sample/invoke.json"))
SEARCHES = {"transit_search_bls_reference", "transit_search_bls_kovacs", "transit_search_tls",
            "transit_search_qats"}


def check_result(task_type: str, state: str, meta: dict, outputs: list[str]) -> None:
    """What each sample must give (see each sample's README)."""
    if task_type == "error":
        assert state == "failed"
        return
    assert state == "done", meta
    if task_type in SEARCHES:
        assert meta["outcome"] == "PASS" and meta["detected"] is True
        assert any(key.endswith(".fits") and "periodogram" in key for key in outputs)
        for key in ("period", "epoch", "duration", "depth", "snr", "sde", "power",
                    "transit_count", "target_period"):
            assert meta[key] is not None, key
        assert abs(meta["period"] / meta["target_period"] - 1) < 0.01
    if task_type == "planet_search":
        assert meta["n_periodic"] == 2 and meta["n_single"] == 1, meta
        assert any(key.endswith(".ecsv") for key in outputs)
    if task_type == "stitch":
        assert meta["n_segments"] == 1 and meta["star_id"] == "SAMPLE-1", meta
    if task_type == "vetting":
        assert meta["n_planet_candidates"] == 3 and meta["n_false_positives"] == 0, meta
    if task_type == "transit_search_qats":
        assert any(key.endswith(".tar.gz") for key in outputs)
        assert meta["period_span"] == meta["transit_count"] - 1
    if task_type in ("synthesis_batman", "synthesis_psls", "multiply", "binning", "detrend",
                     "ingest_external_lcs"):
        assert any(key.endswith(".fits") for key in outputs)
    expected = {"verify": ("verification", True), "binning": ("n_samples", 96),
                "multiply": ("n_samples", 1440), "synthesis_batman": ("orbital_period", 50.0),
                "synthesis_psls": ("master_seed", 5), "detrend": ("method", "biweight")}
    if task_type in expected:
        key, value = expected[task_type]
        assert meta[key] == value


def test_every_function_folder_ships_a_sample():
    folders = sorted(p.name for p in FUNCTIONS.iterdir() if (p / "main.py").is_file())
    assert folders == FOLDERS
    for folder in folders:
        assert (FUNCTIONS / folder / "sample" / "README.md").is_file()
        assert (FUNCTIONS / folder / "func.yaml").is_file()
        assert (FUNCTIONS / folder / "requirements.txt").is_file()
        for run in invoke.sample_runs(folder):
            assert all(path.is_file() for path in run["inputs"].values())


@pytest.mark.parametrize("folder", FOLDERS)
def test_sample_runs_stand_alone(folder, tmp_path):
    for i, run in enumerate(invoke.sample_runs(folder)):
        result = invoke.run_local(folder, run["inputs"], run["params"], {}, tmp_path / str(i))
        outputs = [item["key"] for item in result["outputs"]]
        check_result(folder, result["state"], result["metadata"], outputs)
        for item in result["outputs"]:
            assert Path(item["file"]).is_file() and item["passed_qc"]
        if folder in SEARCHES:
            assert result["units"]["period"] == "d" and result["units"]["depth"] == "ppm"


def test_eas_invoke_command_line(tmp_path):
    sample = FUNCTIONS / "transit_search_bls_reference" / "sample" / "batman_p3.2d.fits"
    out = subprocess.run(
        [sys.executable, "-m", "eas_runtime.cli", "invoke", "transit_search_bls_reference",
         "--input", f"lightcurve={sample}", "--param", "lc_duration=30",
         "--param", 'search_settings={"period_min": 1, "period_max": 10}',
         "--out", str(tmp_path / "out")], capture_output=True, text=True, timeout=300)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout)
    assert result["metadata"]["outcome"] == "PASS" and result["units"]["period"] == "d"
    assert (tmp_path / "out" / Path(result["outputs"][0]["key"]).name).is_file()
    # a bad parameter: the task fails as a parameter problem, exit status 1, message names it
    bad = subprocess.run(
        [sys.executable, "-m", "eas_runtime.cli", "invoke", "transit_search_bls_reference",
         "--input", f"lightcurve={sample}", "--param", 'search_settings={"bins": 3}'],
        capture_output=True, text=True, timeout=300)
    assert bad.returncode == 1
    failed = json.loads(bad.stdout)
    assert failed["error_kind"] == "parameters" and "unknown search setting" in failed["error"]
    cause = bad.stderr.strip().splitlines()[-1]      # the one line that says why, after the JSON
    assert cause.startswith("eas invoke: transit_search_bls_reference failed (parameters): ")
    assert "unknown search setting" in cause and "Traceback" not in bad.stderr
    usage = subprocess.run([sys.executable, "-m", "eas_runtime.cli", "invoke", "nosuch"],
                           capture_output=True, text=True, timeout=300)
    assert usage.returncode == 2 and "no function serves task type 'nosuch'" in usage.stderr


@pytest.mark.parametrize("text, value", [("3", 3), ("2.5", 2.5), ("true", True),
                                         ('{"a": [1]}', {"a": [1]}), ("biweight", "biweight"),
                                         ("", "")])
def test_parameter_values_are_json_when_they_parse(text, value):
    assert invoke.parse_value(text) == value


def test_invoke_url_posts_to_a_running_function(resources, tmp_path):
    """--url: the task is created in the running pipeline's database and store, the event goes
    to the function, the results come back from the database."""
    app = functions_framework.create_app(target="handle", signature_type="http",
                                         source=str(FUNCTIONS / "verify" / "main.py"))
    sys.modules["main"].handle.runner._resources = resources
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    try:
        sample = FUNCTIONS / "verify" / "sample" / "batman_fixed_step.fits"
        result = invoke.run_remote(f"http://127.0.0.1:{server.server_port}/", resources.settings,
                                   "verify", {"lightcurve": sample}, {}, {}, None)
    finally:
        server.shutdown()
    assert result["http_status"] == 202 and result["state"] == "done"
    assert result["metadata"]["verification"] is True
    with resources.db.read() as s:
        assert s.scalar(select(func.count()).select_from(Task)) == 1


def test_glob_ingest_twice_adds_no_duplicate(resources, functions_dir_samples):
    """Regression of the prototype's defect: ingesting the same objects again registered each
    light curve once more. The second run finds them and skips them."""
    store = resources.store
    for name in ("lcsg_example.csv", "demo_superearth_first_5d.gz"):
        store.put_file(f"archive/bright/plato_bright_{name}", functions_dir_samples / name)
    store.put_file("archive/bright/other.csv", functions_dir_samples / "lcsg_example.csv")
    runner = invoke.load_runner("ingest_external_lcs", resources)
    results = []
    for prefix in ("first", "second"):
        ready = invoke.create_task(resources, "ingest_external_lcs", {},
                                   {"input_path": "/archive/bright/plato_bright*"}, {}, prefix)
        runner.run(ready.task_id, ready.attempt_id)
        results.append(invoke.report(resources, ready, None))
    first, second = results
    assert first["state"] == second["state"] == "done"
    assert first["metadata"]["n_ingested"] == 2 and len(first["outputs"]) == 2
    assert second["metadata"]["n_ingested"] == 0 and second["metadata"]["n_skipped"] == 2
    assert sorted(second["metadata"]["skipped"].values()) == sorted(o["key"] for o in first["outputs"])
    assert second["outputs"] == []
    with resources.db.read() as s:
        made = s.scalar(select(func.count()).select_from(Product).where(
            Product.generator_task_id.is_not(None)))
    assert made == 2
    # new content under a known name is new: it is ingested
    store.put_file("archive/bright/plato_bright_lcsg_example.csv",
                   functions_dir_samples / "demo_superearth_first_5d.gz")
    ready = invoke.create_task(resources, "ingest_external_lcs", {},
                               {"input_path": "archive/bright/plato_bright*"}, {}, "third")
    runner.run(ready.task_id, ready.attempt_id)
    third = invoke.report(resources, ready, None)
    assert third["metadata"]["n_ingested"] == 1 and third["metadata"]["n_skipped"] == 1


@pytest.fixture
def functions_dir_samples() -> Path:
    return FUNCTIONS / "ingest_external_lcs" / "sample"


def test_every_sample_through_the_event_path(runtime):  # noqa: F811 - the e2e fixture
    """One job with every function's (first) sample, submitted as a CloudEvent to the embedded
    runtime's broker: each task is delivered to its function's own process by its Trigger."""
    store = Resources(runtime.settings, db=runtime.db).store
    tasks = []
    for folder in FOLDERS:
        run = invoke.sample_runs(folder)[0]
        inputs = {}
        for name, path in run["inputs"].items():
            key = f"samples/{folder}/{path.name}"
            store.put_file(key, path)
            inputs[name] = f"{folder}/{path.name}"    # relative to the job's folder
        tasks.append({"task": folder, "name": folder, "inputs": inputs, **run["params"]})
    job = {"job_name": "every sample", "working_directory": "samples", "task_list": tasks}
    events.send(events.make_event(events.JOB_SUBMITTED, "/tests/samples", job,
                                  id=uuid.uuid4().hex), runtime.broker_url,
                token=runtime.settings.internal_token)
    wait_for(settled(runtime.db, expected_tasks=len(tasks)), timeout_s=900,
             what="every sample task to end")
    with runtime.db.read() as s:
        rows = s.scalars(select(Task).order_by(Task.id)).all()
        assert sorted(t.task_type for t in rows) == FOLDERS
        for task in rows:
            attempt = s.scalars(select(Attempt).where(Attempt.task_id == task.id)
                                .order_by(Attempt.number.desc())).first()
            meta = md.get_metadata(s, "attempt", attempt.id)
            keys = s.scalars(select(Product.key).join(ProductVersion).where(
                ProductVersion.attempt_id == attempt.id)).all()
            check_result(task.task_type, task.state, meta, list(keys))
            assert all(store.exists(k) for k in keys)
