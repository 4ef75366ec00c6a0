"""A scratch copy of the parts of the repository the generator and the planner read."""
from __future__ import annotations

import shutil
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
