"""`just deploy-dry-run` prints the whole deployment on a machine with no cluster, no kn, no
kubectl and no container engine: PATH holds only `just` and `sh`. Without the `just` binary (it
comes with the dev extra, rust-just), the recipe's two commands run through the Python entry
point instead, so the test never skips."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys

from .conftest import REPO

EXPECTED = [
    "docker build -f functions/Containerfile.base -t dev.local/plato-eas/eas-base:ci",
    ("docker build -f functions/verify/Containerfile --build-arg "
     "BASE_IMAGE=dev.local/plato-eas/eas-base:ci -t dev.local/plato-eas/eas-verify:ci "
     "functions/verify"),
    "kubectl apply -f - <<'EOF'",
    "kubectl get job eas-storage-init --namespace eas -o jsonpath=",
    "kn service apply eas-control --namespace eas --filename /dev/stdin --no-wait <<'EOF'",
    "kn service apply eas-verify --namespace eas --filename /dev/stdin --no-wait <<'EOF'",
    ("kn trigger create eas-verify --namespace eas --broker default "
     "--filter type=org.plato.eas.task.ready --filter tasktype=verify --sink ksvc:eas-verify"),
    "kind: Broker",
    "kind: PingSource",
    "kind: SinkBinding",
    "image: dev.local/plato-eas/eas-transit-search-bls-reference:ci",
    "kubectl wait --for=condition=Ready",
]


def bare_path(tmp_path):
    """A PATH with `sh` and (when installed) `just`, nothing else."""
    bin_dir = tmp_path / "bin"
    bin_dir.mkdir()
    os.symlink(shutil.which("sh"), bin_dir / "sh")
    just = shutil.which("just")
    if just:
        os.symlink(just, bin_dir / "just")
    return str(bin_dir), just


def test_deploy_dry_run_needs_no_cluster_tools(tmp_path):
    path, just = bare_path(tmp_path)
    env = {"PATH": path, "HOME": str(tmp_path), "PYTHONPATH": str(REPO), "TAG": "ci"}
    if just:
        command = [just, f"python={sys.executable}", "deploy-dry-run"]
        results = [subprocess.run(command, cwd=REPO, env=env, capture_output=True, text=True,
                                  timeout=300)]
    else:
        common = ["--registry", "dev.local/plato-eas", "--tag", "ci"]
        results = [subprocess.run([sys.executable, "-m", "eas_runtime.cli", "deploy", verb,
                                   "--dry-run", *common, *extra], cwd=REPO, env=env,
                                  capture_output=True, text=True, timeout=300)
                   for verb, extra in (("images", []), ("apply", ["--overlay", "laptop"]))]
    for result in results:
        assert result.returncode == 0, result.stderr
    out = "".join(r.stdout for r in results)
    for text in EXPECTED:
        assert text in out, text
    assert "registry.invalid" not in out
    script = tmp_path / "plan.sh"
    script.write_text(out)
    assert subprocess.run(["sh", "-n", str(script)]).returncode == 0


def test_dry_run_of_undeploy_logs_and_invoke(tmp_path):
    path, _ = bare_path(tmp_path)
    env = {"PATH": path, "HOME": str(tmp_path), "PYTHONPATH": str(REPO)}

    def eas(*args):
        result = subprocess.run([sys.executable, "-m", "eas_runtime.cli", "deploy", *args,
                                 "--dry-run"], cwd=REPO, env=env, capture_output=True,
                                text=True, timeout=120)
        assert result.returncode == 0, result.stderr
        return result.stdout
    assert "kubectl delete --ignore-not-found -f -" in eas("delete")
    assert "kind: Namespace" in eas("delete", "--purge")
    assert "serving.knative.dev/service=eas-null" in eas("logs", "null")
    assert "ce-tasktype: null" in eas("invoke", "null")


def test_real_run_without_tools_says_what_is_missing(tmp_path):
    path, _ = bare_path(tmp_path)
    result = subprocess.run([sys.executable, "-m", "eas_runtime.cli", "deploy", "apply",
                             "--tag", "x"], cwd=REPO, capture_output=True, text=True,
                            timeout=120, env={"PATH": path, "PYTHONPATH": str(REPO)})
    assert result.returncode == 2
    assert "kn, kubectl not found on PATH" in result.stderr and "--dry-run" in result.stderr
