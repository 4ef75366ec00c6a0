"""The generator: checked-in files are fresh, and what it writes for new, changed and removed
descriptors."""
from __future__ import annotations

import subprocess
import sys

import pytest
import yaml

from eas_runtime import manifests
from eas_runtime.broker.config import load_config
from eas_runtime.deploy import generate
from eas_runtime.deploy.descriptor import load_all
from eas_runtime.serving.spec import load_specs
from eas_runtime.settings import Settings

from .conftest import REPO, add_function


def test_generated_files_are_fresh():
    """Regenerate in memory and compare with the checked-in files."""
    stale = generate.stale(REPO)
    assert stale == [], "run `just generate` and commit the result:\n" + "\n".join(stale)


def test_every_descriptor_has_its_files():
    files = generate.render(REPO).files
    for desc in load_all(REPO):
        assert f"knative/base/{desc.name}.yaml" in files
        for task_type in desc.task_types:
            assert f"broker_config/triggers/{generate.trigger_name(desc, task_type)}.yaml" in files


def test_generated_services_follow_the_rules():
    for desc in load_all(REPO):
        doc = generate.service_document(desc)
        template = doc["spec"]["template"]
        annotations = template["metadata"]["annotations"]
        container = template["spec"]["containers"][0]
        if desc.is_function:
            assert template["spec"]["containerConcurrency"] == 1
            assert annotations["autoscaling.knative.dev/min-scale"] == "0"
            assert doc["metadata"]["labels"]["networking.knative.dev/visibility"] == \
                "cluster-local"
        elif desc.component in ("control", "index"):
            assert annotations["autoscaling.knative.dev/min-scale"] == "1"
        assert container["securityContext"]["runAsNonRoot"] is True
        assert "nvidia.com/gpu" not in container["resources"]["limits"]


def test_embedded_runtime_reads_the_generated_files():
    """What runs on a laptop is what runs in the cluster: the same Services and Triggers."""
    settings = Settings.load(max_replicas=2)
    specs = load_specs(REPO / "knative" / "base", settings)
    config = load_config(REPO / "broker_config")
    for desc in load_all(REPO):
        spec = specs[desc.name]
        assert list(spec.argv) == [*desc.command, *desc.args]
        assert spec.container_concurrency == desc.concurrency
        for task_type in desc.task_types:
            matching = config.matching("eas/default", {
                "type": "org.plato.eas.task.ready", "tasktype": task_type, "source": "/x",
                "id": "1", "specversion": "1.0"})
            assert [t.subscriber["ref"]["name"] for t in matching] == [desc.name]
    bls = config.triggers["eas-transit-search-bls-reference"].delivery
    assert (bls.retry, bls.timeout_s) == (3, 600.0)


# --------------------------------------------------------------------------- writing
def test_new_function_gets_service_trigger_containerfile_and_kustomization_entries(repo):
    add_function(repo, "transit_search_example")
    assert "functions/transit_search_example/Containerfile: missing" in generate.stale(repo)
    report = generate.write(repo)
    assert set(report.written) == {
        "knative/base/eas-transit-search-example.yaml", "knative/base/kustomization.yaml",
        "broker_config/triggers/eas-transit-search-example.yaml", "broker_config/kustomization.yaml",
        "functions/transit_search_example/Containerfile"}
    assert generate.stale(repo) == []
    kustomization = yaml.safe_load((repo / "knative/base/kustomization.yaml").read_text())
    assert "eas-transit-search-example.yaml" in kustomization["resources"]
    assert manifests.validate_paths([repo / "knative", repo / "broker_config"]) == []
    trigger = yaml.safe_load((repo / "broker_config/triggers/eas-transit-search-example.yaml")
                             .read_text())
    assert trigger["spec"]["filter"]["attributes"] == {"type": "org.plato.eas.task.ready",
                                                       "tasktype": "transit_search_example"}


def test_hand_written_copies_are_taken_over(repo):
    """Another engineer's hand-written Service and Trigger for a new function (no marker) are
    replaced by the generated ones at the same paths."""
    add_function(repo, "transit_search_example")
    for rel in ("knative/base/eas-transit-search-example.yaml",
                "broker_config/triggers/eas-transit-search-example.yaml"):
        source = (repo / rel.replace("transit-search-example", "verify")).read_text()
        (repo / rel).write_text("# hand-written\n" + source.split("\n", 2)[2]
                                .replace("verify", "transit_search_example")
                                .replace("eas-transit_search_example", "eas-transit-search-example"))
    generate.write(repo)
    assert generate.stale(repo) == []
    assert (repo / "knative/base/eas-transit-search-example.yaml").read_text().startswith(
        generate.MARKER)


def test_descriptor_change_and_gpu(repo):
    path = repo / "functions" / "verify" / "func.yaml"
    path.write_text(path.read_text().replace("gpu: 0", "gpu: 1").replace("max: 10", "max: 3"))
    assert generate.stale(repo) == [("knative/base/eas-verify.yaml: differs from what its "
                                     "descriptor gives")]
    generate.write(repo)
    doc = yaml.safe_load((repo / "knative/base/eas-verify.yaml").read_text())
    template = doc["spec"]["template"]
    assert template["spec"]["containers"][0]["resources"]["limits"]["nvidia.com/gpu"] == "1"
    assert template["metadata"]["annotations"]["autoscaling.knative.dev/max-scale"] == "3"
    assert manifests.validate_paths([repo / "knative"]) == []


def test_removed_function_leaves_no_generated_file(repo):
    for name in ("func.yaml", "main.py"):
        (repo / "functions" / "verify" / name).unlink()
    stale = generate.stale(repo)
    assert "knative/base/eas-verify.yaml: generated, but no descriptor produces it any more" \
        in stale
    report = generate.write(repo)
    assert set(report.removed) == {"knative/base/eas-verify.yaml",
                                   "broker_config/triggers/eas-verify.yaml",
                                   "functions/verify/Containerfile"}
    assert "eas-verify.yaml" not in (repo / "knative/base/kustomization.yaml").read_text()
    assert generate.stale(repo) == []


def test_hand_maintained_containerfile_is_left_alone(repo):
    path = repo / "functions" / "verify" / "Containerfile"
    custom = "".join(path.read_text().splitlines(keepends=True)[1:]) + "# CUDA later\n"
    path.write_text(custom)
    assert generate.stale(repo) == []
    generate.write(repo)
    assert path.read_text() == custom


def test_edited_generated_file_is_stale(repo):
    path = repo / "broker_config" / "triggers" / "eas-null.yaml"
    path.write_text(path.read_text().replace("tasktype: \"null\"", "tasktype: nul"))
    assert generate.stale(repo) == [("broker_config/triggers/eas-null.yaml: differs from "
                                     "what its descriptor gives")]


def test_invalid_result_writes_nothing(repo):
    """A hand-written Trigger that routes a task type a descriptor also routes: the generated
    set would not validate, so nothing is written."""
    clash = repo / "broker_config" / "triggers" / "eas-control-jobs.yaml"
    clash.write_text(clash.read_text().replace("type: org.plato.eas.job.submitted",
                                               "type: org.plato.eas.task.ready\n"
                                               "      tasktype: verify"))
    add_function(repo, "transit_search_example")
    with pytest.raises(generate.GenerateError, match="also routed by"):
        generate.write(repo)
    assert not (repo / "knative/base/eas-transit-search-example.yaml").exists()


def test_command_check_and_write(repo):
    def eas(*args):
        return subprocess.run([sys.executable, "-m", "eas_runtime.cli", "deploy", "generate",
                               "--root", str(repo), *args], capture_output=True, text=True,
                              timeout=120, cwd=REPO)
    assert eas("--check").returncode == 0
    add_function(repo, "transit_search_example")
    result = eas("--check")
    assert result.returncode == 1 and "eas-transit-search-example.yaml: missing" in result.stdout
    result = eas()
    assert result.returncode == 0 and "5 written" in result.stdout
    assert eas("--check").returncode == 0
    (repo / "functions" / "transit_search_example" / "func.yaml").write_text("name: [\n")
    result = eas()
    assert result.returncode == 2 and "functions/transit_search_example/func.yaml" in result.stderr


def test_a_long_timeout_reaches_service_trigger_wrapper_and_embedded_runtime(repo):
    """Issue 12, item 5: a descriptor's timeout_s beyond a default install's 600 s is carried
    by the Service (timeoutSeconds, EAS_TIMEOUT_S for the wrapper), the Trigger's delivery
    timeout and the embedded runtime's request limit; the manifest check warns (not fails)
    that the cluster's max-revision-timeout-seconds must allow it, naming where it is set."""
    path = repo / "functions" / "verify" / "func.yaml"
    path.write_text(path.read_text().replace("timeout_s: 300", "timeout_s: 7200"))
    generate.write(repo)
    text = (repo / "knative/base/eas-verify.yaml").read_text()
    assert "max-revision-timeout-seconds" in text and "Tasks longer than 10 minutes" in text
    pod = yaml.safe_load(text)["spec"]["template"]["spec"]
    assert pod["timeoutSeconds"] == 7200
    assert {"name": "EAS_TIMEOUT_S", "value": "7200"} in pod["containers"][0]["env"]
    trigger = yaml.safe_load((repo / "broker_config/triggers/eas-verify.yaml").read_text())
    assert trigger["spec"]["delivery"]["timeout"] == "PT2H"
    findings = manifests.validate_paths([repo / "knative", repo / "broker_config"])
    assert [(f.severity, "max-revision-timeout-seconds" in f.message) for f in findings
            if "timeoutSeconds" in f.path] == [("warning", True)]
    assert not [f for f in findings if f.severity == "error"]
    spec = load_specs(repo / "knative" / "base", Settings.load(max_replicas=2))["eas-verify"]
    assert spec.timeout_s == 7200.0
    delivery = load_config(repo / "broker_config").triggers["eas-verify"].delivery
    assert delivery.timeout_s == 7200.0
