"""``eas`` finds its pipeline (issue 14: without EAS_HOME, ``eas status`` printed a SQLAlchemy
traceback and left a stray ./.eas/eas.db, and ``eas upload`` wrote to ./.eas while the running
pipeline looked elsewhere). The order is EAS_HOME, a running ``eas up``, ./.eas, else one line."""
from __future__ import annotations

import json
import os
import signal
import socket
import subprocess
import sys

import pytest

from eas_runtime import devservers, discovery
from eas_runtime.settings import PROJECT_ROOT, Settings
from tests.e2e.helpers import wait_for

SAMPLE = PROJECT_ROOT / "functions" / "ingest_external_lcs" / "sample" / "lcsg_example.csv"
EAS = [sys.executable, "-m", "eas_runtime.cli"]


@pytest.fixture
def bare(tmp_path, monkeypatch):
    """An empty working folder, no EAS_HOME, its own state folder."""
    monkeypatch.delenv("EAS_HOME", raising=False)
    work = tmp_path / "work"
    work.mkdir()
    monkeypatch.chdir(work)
    return work


@pytest.fixture
def listening():
    """A port something listens on, as a running gateway would."""
    sock = socket.socket()
    sock.bind(("127.0.0.1", 0))
    sock.listen()
    yield sock.getsockname()[1]
    sock.close()


def _record(tmp_path, pid: int, port: int, name: str) -> Settings:
    settings = Settings.load(environ={}, home=str(tmp_path / name), gateway_port=port)
    discovery.record(settings, pid=pid)
    return settings


def test_nothing_anywhere_is_one_line_and_creates_nothing(bare):
    with pytest.raises(discovery.NoPipeline) as err:
        discovery.locate({}, mode="needs")
    text = str(err.value)
    assert "EAS_HOME is not set" in text and "no `eas up` is running" in text and "`eas up`" in text
    assert str(bare) in text
    assert list(bare.iterdir()) == []


@pytest.mark.parametrize("command", [["status"], ["jobs"], ["errors"], ["candidates"], ["upload", str(SAMPLE)],
                                     ["submit", str(PROJECT_ROOT / "examples/jobs/control_flow_demo.json")]])
def test_the_command_line_says_what_is_missing(bare, capsys, command):
    from eas_runtime import cli
    assert cli.main(command) == 1
    err = capsys.readouterr().err
    assert err.count("\n") == 1 and "Traceback" not in err
    assert err.startswith(f"eas {command[0]}: no pipeline here")
    assert list(bare.iterdir()) == []


def test_a_dry_run_and_the_demo_do_not_need_a_running_pipeline(bare, capsys):
    from eas_runtime import cli
    assert cli.main(["submit", "--dry-run", "--json", str(PROJECT_ROOT / "examples/jobs/control_flow_demo.json")]) == 0
    assert json.loads(capsys.readouterr().out)["task_counts"]
    assert discovery.locate({}, mode="creates").home_path == bare / ".eas"


def test_a_configured_home_without_a_database_is_not_given_an_empty_one(tmp_path, capsys):
    from eas_runtime import cli
    home = tmp_path / "nothing-here"
    assert cli.main(["--home", str(home), "status"]) == 1
    assert "no pipeline in" in capsys.readouterr().err
    assert not home.exists()


def test_a_running_eas_up_is_found_and_its_settings_used(bare, tmp_path, listening, monkeypatch):
    mine = _record(tmp_path, os.getpid(), listening, "up-home")
    found = discovery.locate({}, mode="reads")
    assert found.home == mine.home and found.gateway_port == listening
    assert found.sink_url == f"http://127.0.0.1:{listening}/eas/default"
    monkeypatch.setenv("EAS_INDEX_PORT", "1234")            # the environment still wins
    assert discovery.locate({}, mode="needs").index_port == 1234
    assert discovery.locate({"home": str(tmp_path / "x")}, mode="optional").home == str(tmp_path / "x")
    assert discovery.locate({}, mode="creates").home_path == bare / ".eas"   # eas up never joins


def test_a_record_is_private(tmp_path, listening):
    path = discovery.record(Settings.load(environ={}, home=str(tmp_path / "h"), gateway_port=listening))
    assert path.stat().st_mode & 0o777 == 0o600


def test_records_of_stopped_pipelines_are_removed(bare, tmp_path, listening):
    dead = subprocess.Popen([sys.executable, "-c", "pass"])
    dead.wait()
    _record(tmp_path, dead.pid, listening, "gone")
    with pytest.raises(discovery.NoPipeline):
        discovery.locate({}, mode="needs")
    assert not list((discovery.state_dir() / "running").glob("*.json"))


def test_a_record_whose_gateway_does_not_answer_is_not_joined(bare, tmp_path):
    _record(tmp_path, os.getpid(), devservers.free_port(), "silent")
    with pytest.raises(discovery.NoPipeline):
        discovery.locate({}, mode="needs")


def test_several_running_pipelines_are_listed_unless_one_is_here(bare, tmp_path, listening):
    sleeper = subprocess.Popen([sys.executable, "-c", "import time; time.sleep(60)"])
    try:
        a = _record(tmp_path, os.getpid(), listening, "a")
        b = _record(tmp_path, sleeper.pid, listening, "b")
        with pytest.raises(discovery.NoPipeline) as err:
            discovery.locate({}, mode="needs")
        assert a.home in str(err.value) and b.home in str(err.value) and "--home" in str(err.value)
        (bare / ".eas").mkdir()
        _record(tmp_path, sleeper.pid, listening, "work/.eas")
        assert discovery.locate({}, mode="needs").home_path == (bare / ".eas").resolve()
    finally:
        sleeper.kill()
        sleeper.wait()


def test_a_stopped_pipeline_here_can_still_be_read(bare, capsys):
    from eas_runtime import cli
    from eas_runtime.db.session import database
    (bare / ".eas").mkdir()
    database(f"sqlite:///{bare / '.eas' / 'eas.db'}").create_schema()
    assert cli.main(["status", "--json"]) == 0
    assert json.loads(capsys.readouterr().out)["tasks"]["done"] == 0


def test_eas_up_in_one_folder_serves_commands_run_in_another(tmp_path):
    """The issue's scenario with real processes: `eas up` in one folder, `eas watch`, `eas
    upload` and `eas status` in another shell and folder with no EAS_HOME."""
    env = {k: v for k, v in os.environ.items() if k != "EAS_HOME"}
    env.update(XDG_STATE_HOME=str(tmp_path / "state"), EAS_RECONCILE_S="2")
    ports = ["--gateway-port", str(devservers.free_port()), "--index-port", str(devservers.free_port())]
    env["EAS_ADAPTER_PORT"] = str(devservers.free_port())
    up_dir, other = tmp_path / "up", tmp_path / "elsewhere"
    up_dir.mkdir()
    other.mkdir()

    def eas(*args, check=True):
        return subprocess.run([*EAS, *args], env=env, cwd=other, capture_output=True, text=True,
                              timeout=120, check=check)
    up = subprocess.Popen([*EAS, "up", *ports], env=env, cwd=up_dir, stdout=subprocess.PIPE,
                          stderr=subprocess.STDOUT, text=True)
    try:
        wait_for(lambda: "EAS is up" in (up.stdout.readline() or ""), timeout_s=60, what="eas up")
        eas("watch", "add", "--prefix", "inbox/", "--tasks", "ingest_external_lcs,verify")
        assert "inbox/lcsg_example.csv" in eas("upload", str(SAMPLE)).stdout

        def finished():
            status = json.loads(eas("status", "--json").stdout)
            return status if status["tasks"]["done"] + status["tasks"]["failed"] == 2 else None
        status = wait_for(finished, timeout_s=180, interval_s=1, what="the upload to be processed")
        assert status["tasks"]["done"] == 2
        assert (up_dir / ".eas" / "eas.db").is_file() and list(other.iterdir()) == []
    finally:
        up.send_signal(signal.SIGTERM)
        up.wait(timeout=60)
    assert not list((tmp_path / "state" / "eas" / "running").glob("*.json"))
    gone = eas("status", check=False)
    assert gone.returncode == 1 and "no pipeline here" in gone.stderr and "Traceback" not in gone.stderr
    assert list(other.iterdir()) == []


def test_up_detach_upload_wait_and_down(tmp_path):
    """`eas up --detach` returns once the pipeline answers (and once per home), `eas upload
    --wait` follows the job the watch rule makes and prints its results, `eas down` stops it."""
    env = {k: v for k, v in os.environ.items() if k != "EAS_HOME"}
    env.update(XDG_STATE_HOME=str(tmp_path / "state"), EAS_ADAPTER_PORT=str(devservers.free_port()))
    ports = ["--gateway-port", str(devservers.free_port()), "--index-port", str(devservers.free_port())]
    work = tmp_path / "work"
    work.mkdir()

    def eas(*args):
        return subprocess.run([*EAS, *args], env=env, cwd=work, capture_output=True, text=True, timeout=240)
    up = eas("up", "--detach", *ports)
    try:
        assert up.returncode == 0 and "EAS is up in the background" in up.stdout, up
        pid = int(up.stdout.split("(pid ")[1].split(",")[0])
        again = eas("up", "--detach", *ports)
        assert again.returncode == 0 and f"EAS is already up (pid {pid})" in again.stdout
        assert eas("watch", "add", "--prefix", "inbox/", "--tasks", "ingest_external_lcs,verify").returncode == 0
        done = eas("upload", "--wait", str(SAMPLE))
        assert done.returncode == 0, done
        lines = done.stdout.splitlines()
        assert any(line.startswith("job 1: 2/2 done") and line.endswith("finished") for line in lines)
        assert "ingest_external_lcs (1 tasks)" in lines and "verify (1 tasks)" in lines
        same = eas("upload", "--wait", str(SAMPLE))        # the same bytes: the earlier job
        assert same.returncode == 0 and "job 1: 2/2 done" in same.stdout
        other = eas("upload", "--wait", "--prefix", "elsewhere/", str(SAMPLE))
        assert other.returncode == 0 and "no watch rule covers elsewhere/lcsg_example.csv" in other.stdout
    finally:
        down = eas("down")
    assert down.returncode == 0 and f"stopped eas up (pid {pid})" in down.stdout, down
    assert not list((tmp_path / "state" / "eas" / "running").glob("*.json"))
    assert not discovery.alive(pid)           # gone, or a zombie its new parent has not reaped yet
    assert "nothing to stop" in eas("down").stdout


def test_a_pipeline_that_cannot_start_shows_its_log(tmp_path):
    env = {k: v for k, v in os.environ.items() if k != "EAS_HOME"}
    env.update(XDG_STATE_HOME=str(tmp_path / "state"), EAS_STORE="minio", EAS_MINIO_ENDPOINT=f"127.0.0.1:{devservers.free_port()}")
    done = subprocess.run([*EAS, "up", "--detach", "--gateway-port", str(devservers.free_port()),
                           "--index-port", str(devservers.free_port()), "--start-timeout", "100"],
                          env=env, cwd=tmp_path, capture_output=True, text=True, timeout=200)
    assert done.returncode == 1 and "the pipeline stopped while starting" in done.stderr, done
    assert str(tmp_path / ".eas" / "up.log") in done.stderr
