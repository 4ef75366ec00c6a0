"""The deploy, undeploy, logs and invoke plans, their shell form and their execution."""
from __future__ import annotations

import subprocess
from pathlib import Path
from types import SimpleNamespace

import pytest
import yaml

from eas_runtime.deploy import plan as p
from eas_runtime.deploy.steps import Command, PlanError, Step, run, script

from .conftest import REPO

OPTS = p.Options(REPO, overlay="laptop", registry="ghcr.io/me/plato-eas", tag="v1")


def titles(steps):
    return [s.title.splitlines()[0] for s in steps]


def programs(step: Step):
    return [" ".join(c.argv[:3]) for c in step.commands]


def manifests_of(steps):
    return [d for s in steps for c in (*s.commands, *s.if_exists) if c.stdin
            for d in yaml.safe_load_all(c.stdin) if d]


@pytest.fixture(scope="module")
def deploy():
    return p.deploy_plan(OPTS)


def test_order_storage_eventing_services_triggers(deploy):
    names = titles(deploy)
    assert names[0] == "Namespace eas"
    first = {kind: next(i for i, t in enumerate(names) if t.startswith(kind))
             for kind in ("Secret", "storage:", "wait for Job", "Broker", "PingSource",
                          "Knative Service", "Trigger", "wait until")}
    assert first["Secret"] < first["storage:"] < first["wait for Job"] < first["Broker"] \
        < first["PingSource"] < first["Knative Service"] < first["Trigger"] < first["wait until"]
    assert names[-1].startswith("wait until")


def test_secrets_are_never_overwritten(deploy):
    secrets = [s for s in deploy if s.title.startswith("Secret")]
    assert {s.title.split()[1].rstrip(":") for s in secrets} == \
        {"eas-minio", "eas-adapter", "eas-database", "eas-index"}
    for step in secrets:
        assert step.probe.argv[:3] == ("kubectl", "get", "secret")
        assert step.if_exists == ()                 # exists: left as it is
        assert step.commands[0].argv[:2] == ("kubectl", "create")


def test_every_image_points_at_the_registry_and_tag(deploy):
    images = []
    for doc in manifests_of(deploy):
        for container in ((doc.get("spec") or {}).get("template") or {}).get("spec", {}).get(
                "containers", []):
            images.append(container["image"])
    ours = [i for i in images if not i.startswith("docker.io/library/")]
    assert len(ours) == len(images) - 1                           # PostgreSQL's official image
    assert ours and all(i.startswith("ghcr.io/me/plato-eas/") and i.endswith(":v1")
                        for i in ours), ours
    assert not any("registry.invalid" in c.stdin for s in deploy
                   for c in (*s.commands, *s.if_exists) if c.stdin)
    assert "ghcr.io/me/plato-eas/eas-base:v1" in images           # platform and init Job
    assert "ghcr.io/me/plato-eas/eas-verify:v1" in images
    assert "ghcr.io/me/plato-eas/eas-minio:v1" in images           # built from the pinned commit


def test_services_go_through_kn_service_apply(deploy):
    services = [s for s in deploy if s.title.startswith("Knative Service")]
    assert len(services) == len(p.overlay_services(OPTS))
    for step in services:
        (command,) = step.commands
        name = step.title.split()[-1]
        assert command.argv == ("kn", "service", "apply", name, "--namespace", "eas",
                                "--filename", "/dev/stdin", "--no-wait")
        assert yaml.safe_load(command.stdin)["metadata"]["name"] == name


def test_triggers_with_kn_where_kn_can_express_them(deploy):
    verify = next(s for s in deploy if s.title.startswith("Trigger eas-verify "))
    assert verify.commands[0].argv == (
        "kn", "trigger", "create", "eas-verify", "--namespace", "eas", "--broker", "default",
        "--filter", "type=org.plato.eas.task.ready", "--filter", "tasktype=verify",
        "--sink", "ksvc:eas-verify")
    assert verify.commands[1].argv[:3] == ("kubectl", "label", "triggers.eventing.knative.dev")
    assert "eas.plato/task-type=verify" in verify.commands[1].argv
    assert verify.probe.argv[:3] == ("kubectl", "get", "triggers.eventing.knative.dev")
    assert verify.if_exists[0].argv[:3] == ("kubectl", "replace", "--save-config")
    bls = next(s for s in deploy if s.title.startswith("Trigger eas-transit-search-bls-ref"))
    assert "its own delivery" in bls.title and programs(bls) == ["kubectl apply -f"]
    tasks = next(s for s in deploy if s.title.startswith("Trigger eas-control-tasks"))
    assert "filter expressions" in tasks.title


def test_kn_broker_when_kn_can_express_it():
    broker = yaml.safe_load((REPO / "broker_config" / "broker.yaml").read_text())
    argv, why = p.kn_broker(broker)          # the dead-letter sink is a URI: kn says it
    assert argv == ("kn", "broker", "create", "default", "--namespace", "eas", "--class",
                    "MTChannelBasedBroker", "--retry", "5", "--backoff-policy", "exponential",
                    "--backoff-delay", "PT0.5S", "--dl-sink", "http://eas-control.eas.svc.cluster.local/dead-letter")
    broker["spec"]["delivery"]["deadLetterSink"] = {"ref": {"apiVersion": "serving.knative.dev/v1", "kind": "Service",
                                                            "name": "eas-control"}, "uri": "/dead-letter"}
    argv, why = p.kn_broker(broker)
    assert argv is None and "/dead-letter" in why
    del broker["spec"]["delivery"]["deadLetterSink"]["uri"]
    argv, why = p.kn_broker(broker)
    assert argv[-2:] == ("--dl-sink", "ksvc:eas-control")


def test_no_kn(deploy):
    plan = p.deploy_plan(p.Options(REPO, tag="v1", use_kn=False))
    # kubectl only (the Job's wait is a shell loop over kubectl: tests/deploy/test_job_wait.py)
    assert all(c.argv[0] == "kubectl" or (c.argv[:2] == ("sh", "-c") and "kubectl get job" in c.argv[2])
               for s in plan for c in (*s.commands, *s.if_exists))
    assert len(plan) == len(deploy)


def test_only_one_service():
    plan = p.deploy_plan(p.Options(REPO, tag="v2", only=("verify",)))
    assert titles(plan) == ["Knative Service eas-verify", "Trigger eas-verify -> eas-verify",
                            "wait until the Services, the Broker and the Triggers are Ready"]
    assert plan[-1].commands[0].argv[:3] == ("kubectl", "wait", "--for=condition=Ready")
    assert "ksvc/eas-verify" in plan[-1].commands[0].argv
    with pytest.raises(p.PlanInputError, match="no such Service"):
        p.deploy_plan(p.Options(REPO, tag="v2", only=("nothing",)))


def test_unknown_overlay():
    with pytest.raises(p.PlanInputError, match="laptop, cluster, base"):
        p.deploy_plan(p.Options(REPO, overlay="huge", tag="x"))


def test_script_is_valid_shell(deploy, tmp_path):
    text = script(deploy, p.header(OPTS))
    path = tmp_path / "plan.sh"
    path.write_text(text)
    assert subprocess.run(["sh", "-n", str(path)]).returncode == 0
    assert text.count("<<'EOF'") == sum(1 for s in deploy for c in (*s.commands, *s.if_exists)
                                        if c.stdin)
    assert "kubectl get secret eas-minio --namespace eas >/dev/null 2>&1 || kubectl create" in text


def test_undeploy_keeps_storage_unless_purged():
    plan = p.undeploy_plan(OPTS)
    kinds = {d["kind"] for d in manifests_of(plan)}
    assert {"Trigger", "Service", "Broker", "PingSource", "SinkBinding"} <= kinds
    assert not kinds & {"StatefulSet", "Secret", "Namespace", "Job"}
    assert all(s.commands[0].argv[:3] == ("kubectl", "delete", "--ignore-not-found")
               for s in plan)
    purged = {d["kind"] for d in manifests_of(p.undeploy_plan(OPTS, purge=True))}
    assert {"StatefulSet", "Namespace", "Secret"} <= purged


def test_tag_from_git(tmp_path):
    assert p.default_tag(tmp_path) == "dev"                      # not a repository
    git = ["git", "-c", "user.email=a@b", "-c", "user.name=a"]
    subprocess.run([*git, "init", "-q", str(tmp_path)], check=True)
    (tmp_path / "f").write_text("1")
    subprocess.run([*git, "-C", str(tmp_path), "add", "f"], check=True)
    subprocess.run([*git, "-C", str(tmp_path), "commit", "-qm", "x"], check=True)
    clean = p.default_tag(tmp_path)
    assert len(clean) == 12
    (tmp_path / "f").write_text("2")
    dirty = p.default_tag(tmp_path)
    (tmp_path / "f").write_text("3")
    assert dirty.startswith(clean + "-dirty-") and p.default_tag(tmp_path) != dirty


# --------------------------------------------------------------------------- execution
class FakeRunner:
    """Records commands; probes succeed for the names in ``existing``; ``fail`` fails one."""

    def __init__(self, existing=(), fail=None):
        self.calls: list[tuple[str, bool]] = []
        self.existing = set(existing)
        self.fail = fail

    def __call__(self, command: Command, show: bool):
        line = " ".join(command.argv)
        self.calls.append((line, show))
        if not show:
            return SimpleNamespace(returncode=0 if command.argv[3] in self.existing else 1)
        return SimpleNamespace(returncode=1 if self.fail and self.fail in line else 0)


def test_run_follows_the_probes(deploy, capsys):
    runner = FakeRunner(existing={"eas-minio", "eas-verify"})
    run(deploy, runner)
    lines = [line for line, show in runner.calls if show]
    assert not any(line.startswith("kubectl create") and "eas-minio" in line for line in lines)
    assert sum(line.startswith("kubectl create -f -") for line in lines) == 3   # other Secrets
    assert "kn trigger create eas-verify" not in " ".join(lines)            # exists: replaced
    assert "kn trigger create eas-null --namespace eas" in " ".join(lines)
    assert "exists already: left as it is" in capsys.readouterr().out


def test_run_stops_at_the_first_failure(deploy):
    runner = FakeRunner(fail="kn service apply eas-index")
    with pytest.raises(PlanError, match="Knative Service eas-index.*exited with 1"):
        run(deploy, runner)
    assert not any("eas-storage-adapter" in line and "kn service" in line
                   for line, _ in runner.calls)


# --------------------------------------------------------------------------- logs, invoke
def test_logs_step():
    step = p.logs_step(REPO, "verify", follow=True, tail=50)
    assert step.commands[0].argv == (
        "kubectl", "logs", "--namespace", "eas", "-l", "serving.knative.dev/service=eas-verify",
        "-c", "function", "--prefix", "--tail=50", "--max-log-requests=20", "--follow")
    assert "-c control" in " ".join(p.logs_step(REPO, "control").commands[0].argv)
    with pytest.raises(p.PlanInputError, match="no Service, task type or component"):
        p.logs_step(REPO, "no_such_function")


def test_invoke_step_posts_from_a_pod():
    (command,) = p.invoke_step(REPO, "transit_search_bls_reference").commands
    argv = list(command.argv)
    assert argv[:2] == ["kubectl", "run"] and "--rm" in argv and "--restart=Never" in argv
    assert "http://eas-transit-search-bls-reference.eas.svc.cluster.local/" in argv
    assert "ce-tasktype: transit_search_bls_reference" in argv
    assert "ce-type: org.plato.eas.task.ready" in argv
    _, headers, _ = p.sample_event(REPO, "control")
    assert headers["ce-type"] == "org.plato.eas.reconcile"
    with pytest.raises(p.PlanInputError, match="does not receive CloudEvents"):
        p.sample_event(REPO, "index")


def test_repository_path_is_absolute():
    assert Path(OPTS.root).is_absolute()
