"""A scratch copy of the parts of the repository the generator and the planner read."""
from __future__ import annotations

import os
import shutil
import subprocess
import sys
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]


def copy_repo(dest: Path) -> Path:
    """functions/*/{func.yaml, main.py, Containerfile}, knative/, broker_config/, storage/."""
    for folder in ("knative", "broker_config", "storage"):
        shutil.copytree(REPO / folder, dest / folder)
    for descriptor in (REPO / "functions").glob("*/func.yaml"):
        target = dest / "functions" / descriptor.parent.name
        target.mkdir(parents=True)
        for name in ("func.yaml", "main.py", "Containerfile"):
            if (descriptor.parent / name).exists():
                shutil.copy2(descriptor.parent / name, target / name)
    return dest


#: What `just deploy` renders that makes pods.
POD_SOURCES = ("storage", "knative/overlays/laptop", "knative/overlays/cluster", "broker_config")


def pod_specs(doc: dict) -> list[tuple[str, dict]]:
    """(name, pod spec) of an object that makes pods."""
    kind, name = doc.get("kind"), (doc.get("metadata") or {}).get("name")
    spec = doc.get("spec") or {}
    if kind == "Service" and "template" in spec:                        # Knative Service
        return [(f"{kind} {name}", spec["template"].get("spec") or {})]
    if kind in ("StatefulSet", "Deployment", "DaemonSet", "Job", "ReplicaSet"):
        return [(f"{kind} {name}", (spec.get("template") or {}).get("spec") or {})]
    if kind == "CronJob":
        return [(f"{kind} {name}", spec["jobTemplate"]["spec"]["template"]["spec"])]
    return []


def env_without_pythonpath() -> dict[str, str]:
    """This environment without PYTHONPATH, which would put a checkout before a built wheel."""
    return {k: v for k, v in os.environ.items() if k != "PYTHONPATH"}


def build_wheel(root: Path, names: tuple[str, ...]) -> Path:
    """The project's wheel, built from a copy of ``names`` (files and folders of the repository)
    under ``root``, so that the build leaves nothing in the checkout."""
    source = root / "source"
    source.mkdir()
    for name in names:
        if (REPO / name).is_dir():
            shutil.copytree(REPO / name, source / name, ignore=shutil.ignore_patterns("__pycache__"))
        else:
            shutil.copy2(REPO / name, source / name)
    wheels = root / "wheels"
    subprocess.run([sys.executable, "-m", "pip", "wheel", "-q", "--no-deps", "-w", str(wheels), str(source)],
                   check=True, capture_output=True, timeout=300, env=env_without_pythonpath())
    return next(wheels.glob("plato_eas-*.whl"))


@pytest.fixture
def repo(tmp_path) -> Path:
    return copy_repo(tmp_path / "repo")


def add_function(root: Path, task_type: str, descriptor: str | None = None) -> Path:
    """A new function folder with a main.py and a descriptor (default: the verify pattern)."""
    folder = root / "functions" / task_type
    folder.mkdir(parents=True)
    (folder / "main.py").write_text("def handle(request):\n    return '', 202\n")
    name = "eas-" + task_type.replace("_", "-")
    (folder / "func.yaml").write_text(descriptor if descriptor is not None else f"""\
name: {name}
description: a test function
task_types: [{task_type}]
source: functions/{task_type}/main.py
target: handle
resources:
  requests: {{cpu: "250m", memory: 512Mi}}
  limits: {{cpu: "1", memory: 1Gi}}
  gpu: 0
scale: {{min: 0, max: 4}}
concurrency: 1
timeout_s: 300
""")
    return folder
