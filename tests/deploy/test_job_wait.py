"""`just deploy` stops at a failed init Job and shows its logs (issue 15: `kubectl wait
--for=condition=complete` waited out its whole timeout on a Job that had already failed).
The wait's shell script runs here against a stand-in kubectl that answers as the API would."""
from __future__ import annotations

import os
import subprocess

import pytest

from eas_runtime.deploy.plan import job_wait


def _kubectl(bin_dir, conditions: list[str]):
    """A kubectl whose `get job` answers each call with the next line of ``conditions``
    (the types whose status is True), and whose `logs` prints a line of the Job's log."""
    bin_dir.mkdir()
    answers = bin_dir / "answers"
    answers.write_text("\n".join(conditions) + "\n")
    script = bin_dir / "kubectl"
    script.write_text(f"""#!/bin/sh
case "$1" in
  get) line=$(head -n 1 {answers}); tail -n +2 {answers} > {answers}.next; mv {answers}.next {answers}
       [ -s {answers} ] || echo "$line" > {answers}; printf '%s' "$line";;
  logs) echo "eas storage init: cannot reach MinIO at minio.eas.svc.cluster.local:9000";;
esac
""")
    script.chmod(0o755)


def _run(tmp_path, conditions, wait_s=30):
    _kubectl(tmp_path / "bin", conditions)
    argv = job_wait("eas-storage-init", wait_s, poll_s=0).argv
    env = {**os.environ, "PATH": f"{tmp_path / 'bin'}:{os.environ['PATH']}"}
    return subprocess.run(list(argv), env=env, capture_output=True, text=True, timeout=60)


@pytest.mark.parametrize("conditions", [["", "", "Complete "], ["Complete "]])
def test_a_completed_job_ends_the_wait(tmp_path, conditions):
    done = _run(tmp_path, conditions)
    assert done.returncode == 0, done.stderr


def test_a_failed_job_stops_the_deployment_with_its_logs(tmp_path):
    done = _run(tmp_path, ["", "Failed "], wait_s=3600)
    assert done.returncode == 1
    assert "Job eas-storage-init failed" in done.stderr and "cannot reach MinIO" in done.stderr


def test_a_job_that_never_ends_stops_at_the_timeout_with_its_logs(tmp_path):
    done = _run(tmp_path, [""], wait_s=1)
    assert done.returncode == 1
    assert "did not complete within 1 s" in done.stderr and "cannot reach MinIO" in done.stderr
