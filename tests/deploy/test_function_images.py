"""Every science function imports with what its image has, and nothing more.

A function's image (functions/<task_type>/Containerfile) is the base image, whose wheel is built
from ``eas_runtime/`` alone (functions/Containerfile.base copies no ``functions/``), plus the
function's own folder at /app/functions/<task_type>/. A function that imports another's folder
works in the checkout and fails in its image with ModuleNotFoundError: synthesis_psls imported
the batman model from functions/synthesis_batman/ until it moved to eas_runtime/batman_synthesis.

No container engine here: the image is imitated. The wheel is built as the base image builds it
and installed into a folder; each function's folder is copied alone under an empty /app; the
interpreter runs with ``-S`` (no site-packages processing: the checkout's editable install, a
.pth file, would otherwise make every folder of the checkout importable) and finds the wheel and
this machine's packages (standing in for the image's dependencies) through PYTHONPATH.
"""
from __future__ import annotations

import os
import shutil
import site
import subprocess
import sys
from pathlib import Path

import pytest

from eas_runtime.settings import PROJECT_ROOT

from .conftest import build_wheel, env_without_pythonpath

pytestmark = [pytest.mark.slow, pytest.mark.timeout(900)]

FUNCTIONS = sorted(p.parent.name for p in (PROJECT_ROOT / "functions").glob("*/main.py"))


@pytest.fixture(scope="module")
def wheel_dir(tmp_path_factory) -> Path:
    """The base image's wheel, installed into a folder (built from what the base image copies)."""
    root = tmp_path_factory.mktemp("base-image")
    wheel = build_wheel(root, ("pyproject.toml", "README.md", "constraints.txt", "eas_runtime"))
    target = root / "site"
    subprocess.run([sys.executable, "-m", "pip", "install", "-q", "--no-deps", "--no-index",
                    "--target", str(target), str(wheel)], check=True, capture_output=True, timeout=300,
                   env=env_without_pythonpath())
    assert not (target / "functions").exists(), "the base image's wheel must not carry functions/"
    return target


def _image_python(wheel_dir: Path, app: Path, code: str) -> subprocess.CompletedProcess:
    path = os.pathsep.join([str(wheel_dir), *site.getsitepackages()])
    env = {"PATH": os.environ.get("PATH", "/usr/bin:/bin"), "LANG": "C.UTF-8", "PYTHONPATH": path,
           "HOME": str(app.parent), "EAS_HOME": str(app.parent / "eas-home"),
           "NUMBA_CACHE_DIR": str(app.parent / "numba")}
    # cwd /app and "" first on sys.path, as `python -m ...` and functions-framework run there.
    return subprocess.run([sys.executable, "-S", "-c", code], cwd=app, env=env, capture_output=True,
                          text=True, timeout=600)


def _app_with(tmp_path: Path, task_type: str) -> Path:
    app = tmp_path / "app"
    shutil.copytree(PROJECT_ROOT / "functions" / task_type, app / "functions" / task_type,
                    ignore=shutil.ignore_patterns("__pycache__"))
    return app


IMPORT = """
import importlib, sys
sys.path.insert(0, "")
for part in ("main", "science"):
    try:
        module = importlib.import_module("functions.{task}." + part)
    except ModuleNotFoundError as exc:
        if part == "science" and exc.name == "functions.{task}.science":
            continue          # a function may keep everything in main.py
        raise
    print(part, module.__file__)
"""


@pytest.mark.parametrize("task_type", FUNCTIONS)
def test_each_function_imports_from_its_own_image(wheel_dir, tmp_path, task_type):
    app = _app_with(tmp_path, task_type)
    done = _image_python(wheel_dir, app, IMPORT.format(task=task_type))
    assert done.returncode == 0, f"functions/{task_type} does not import in its image:\n{done.stderr[-3000:]}"
    for line in done.stdout.splitlines():
        assert line.split()[1].startswith(str(app)), line       # its own folder, not the checkout's
    assert "eas_runtime" not in {p.name for p in app.iterdir()}


def test_the_imitation_hides_the_other_functions(wheel_dir, tmp_path):
    """The negative control: in that environment, another function's folder is not importable,
    and the runtime is the wheel's, not the checkout's."""
    app = _app_with(tmp_path, "null")
    done = _image_python(wheel_dir, app, "import sys; sys.path.insert(0, '');\n"
                                         "import eas_runtime; print(eas_runtime.__file__)\n"
                                         "import functions.synthesis_batman.science")
    assert done.stdout.strip().startswith(str(wheel_dir)), done.stdout + done.stderr
    assert done.returncode != 0 and "No module named 'functions.synthesis_batman'" in done.stderr, done.stderr
