"""`just images`: engine detection and the build commands, with stand-in engines on PATH that
record their arguments (no real engine runs here)."""
from __future__ import annotations

import shutil
import subprocess
import sys

import pytest

from eas_runtime.deploy import images

from .conftest import REPO, copy_repo

DOWN = "Cannot connect to the Docker daemon at unix:///var/run/docker.sock. Is the docker " \
       "daemon running?"


def engine(bin_dir, name, works, log=None):
    """A stand-in engine: `info` succeeds or fails; every call is appended to ``log``."""
    bin_dir.mkdir(exist_ok=True)
    record = f'echo "$0 $*" >> {log}\n' if log else ""
    fail = f'if [ "$1" = info ]; then echo "{DOWN}" >&2; exit 1; fi\n' if not works else ""
    path = bin_dir / name
    path.write_text(f"#!/bin/sh\n{record}{fail}exit 0\n")
    path.chmod(0o755)


def test_find_engine(tmp_path, monkeypatch):
    bin_dir = tmp_path / "bin"
    engine(bin_dir, "docker", works=False)
    monkeypatch.setenv("PATH", str(bin_dir))
    with pytest.raises(images.EngineError) as info:
        images.find_engine()
    message = str(info.value)
    assert "docker: installed, but its engine does not answer: Cannot connect" in message
    assert "podman: not installed" in message and "Start the Docker daemon" in message
    engine(bin_dir, "podman", works=True)
    assert images.find_engine() == "podman"
    with pytest.raises(images.EngineError, match="docker: installed"):
        images.find_engine("docker")


def eas_images(root, bin_dir, *args):
    return subprocess.run([sys.executable, "-m", "eas_runtime.cli", "deploy", "images",
                           "--root", str(root), "--registry", "localhost:5001/eas", "--tag", "t1",
                           *args], capture_output=True, text=True, timeout=120, cwd=REPO,
                          env={"PATH": f"{bin_dir}:/usr/bin:/bin", "PYTHONPATH": str(REPO)})


def test_no_working_engine_is_a_clear_error(tmp_path):
    bin_dir = tmp_path / "bin"
    engine(bin_dir, "docker", works=False)
    result = eas_images(REPO, bin_dir)
    assert result.returncode == 2
    assert "no working container engine" in result.stderr and "Cannot connect" in result.stderr


def test_builds_base_then_each_function(tmp_path):
    root = copy_repo(tmp_path / "repo")
    for name in ("pyproject.toml", "README.md", "constraints.txt"):
        shutil.copy2(REPO / name, root / name)
    shutil.copytree(REPO / "eas_runtime", root / "eas_runtime")
    log = tmp_path / "calls.log"
    bin_dir = tmp_path / "bin"
    engine(bin_dir, "podman", works=True, log=log)
    result = eas_images(root, bin_dir, "--push")
    assert result.returncode == 0, result.stderr
    calls = [line.split(" ", 1)[1] for line in log.read_text().splitlines()]
    assert calls[0] == "info"
    assert calls[1] == ("build -f functions/Containerfile.base -t localhost:5001/eas/eas-base:t1 "
                        ".eas/build/base-context")
    builds = [c for c in calls if c.startswith("build ")]
    functions = sorted(p.parent.name for p in (root / "functions").glob("*/func.yaml"))
    assert len(builds) == 2 + len(functions)                    # the base, MinIO, each function
    from eas_runtime.devservers import MINIO_VERSION
    assert (f"build -f storage/Containerfile.minio --build-arg MINIO_VERSION={MINIO_VERSION} "
            "-t localhost:5001/eas/eas-minio:t1 storage") in builds
    assert ("build -f functions/verify/Containerfile --build-arg "
            "BASE_IMAGE=localhost:5001/eas/eas-base:t1 -t localhost:5001/eas/eas-verify:t1 "
            "functions/verify") in builds
    assert sum(c.startswith("push ") for c in calls) == 2 + len(functions)
    context = root / ".eas" / "build" / "base-context"
    assert {p.name for p in context.iterdir()} == {"pyproject.toml", "README.md", "constraints.txt", "eas_runtime"}
    assert not list(context.rglob("__pycache__"))


def test_only_one_function(tmp_path):
    steps = images.images_plan(REPO, "r", "t", "docker", only=["verify"], kind_cluster="knative")
    argvs = [c.argv for s in steps for c in s.commands]
    assert [a[:2] for a in argvs] == [("sh", "-c"), ("docker", "build"), ("docker", "build"),
                                      ("kind", "load")]
    assert argvs[-1] == ("kind", "load", "docker-image", "r/eas-base:t", "r/eas-verify:t",
                         "--name", "knative")
    with pytest.raises(ValueError, match="no science function"):
        images.images_plan(REPO, "r", "t", "docker", only=["no_such_function"])
