"""The built wheel, not the checkout, serves the index site's plot pages as the images run it:
UID 10001, the working directory /app read-only, the environment of functions/Containerfile.base
(issue 15: with no EAS_HOME in the images, the site tried to make /app/.eas and its plot pages
answered 500 in a cluster).

No container engine here: the image is imitated. The wheel is built from the checkout and
installed into a fresh virtual environment (it sees this machine's packages, as the image has
its dependencies); when the test runs as root, the server runs as UID/GID 10001 in a user
namespace (``unshare --user --map-user=10001``: root's files, the interpreter included, are its
own there, but it has no privilege, so a folder without write permission stays read-only to
it); otherwise as the test's own, non-root user. The image's ``ENV`` lines are read
from the Containerfile and its absolute paths moved into a sandbox (``/tmp`` -> a world-writable
folder, ``/app`` -> a read-only one, ``/home/eas`` -> a folder of the user's own).
"""
from __future__ import annotations

import os
import re
import shutil
import stat
import subprocess
import sys
import tempfile
from pathlib import Path

import numpy as np
import pytest
import requests

from eas_runtime import devservers
from eas_runtime.db.models import ProductVersion
from eas_runtime.db.products import ensure_product
from eas_runtime.lightcurve import LightCurve, write_lightcurve
from eas_runtime.resources import Resources
from eas_runtime.settings import PROJECT_ROOT, Settings
from tests.e2e.helpers import wait_for

from .conftest import build_wheel
from .conftest import env_without_pythonpath as _clean_env

pytestmark = [pytest.mark.slow, pytest.mark.timeout(600)]
IMAGE_UID = 10001
PNG_MAGIC = b"\x89PNG\r\n\x1a\n"


def image_env() -> dict[str, str]:
    """The ENV of the base image, as its Containerfile sets it."""
    text = (PROJECT_ROOT / "functions" / "Containerfile.base").read_text()
    block = re.search(r"^ENV (.*?)(?<!\\)\n", text, re.S | re.M).group(1)
    return dict(re.findall(r"([A-Z_][A-Z0-9_]*)=(\S+)", block))


@pytest.fixture
def sandbox():
    root = Path(tempfile.mkdtemp(prefix="eas-image-"))
    root.chmod(0o755)
    yield root
    shutil.rmtree(root, ignore_errors=True)


def _installed_wheel(sandbox: Path) -> Path:
    wheel = build_wheel(sandbox, ("pyproject.toml", "README.md", "eas_runtime", "functions"))
    venv = sandbox / "venv"
    subprocess.run([sys.executable, "-m", "venv", "--system-site-packages", str(venv)], check=True, timeout=120)
    subprocess.run([str(venv / "bin" / "python"), "-m", "pip", "install", "-q", "--no-deps", "--no-index", str(wheel)],
                   check=True, capture_output=True, timeout=300, env=_clean_env())
    return venv


def _light_curve_version(settings: Settings, folder: Path) -> int:
    res = Resources(settings)
    res.db.create_schema()
    time = np.arange(3000) * (120 / 86400)
    path = write_lightcurve(LightCurve(time, 1 + 1e-3 * np.sin(time * 7)), folder / "star.fits")
    info = res.store.put_file("inbox/star.fits", path)
    with res.db.session() as s:
        product = ensure_product(s, "inbox/star.fits", semantic_type="upload")
        version = ProductVersion(product_id=product.id, etag=info.etag, size=info.size, passed_qc=True)
        s.add(version)
        s.flush()
        return version.id


def _serve(venv: Path, env: dict[str, str], app: Path, port: int) -> subprocess.Popen:
    argv = [str(venv / "bin" / "eas"), "serve", "index", "--host", "127.0.0.1", "--port", str(port)]
    if os.geteuid() == 0:
        argv = ["unshare", "--user", f"--map-user={IMAGE_UID}", f"--map-group={IMAGE_UID}", *argv]
    return subprocess.Popen(argv, cwd=app, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)


def _answers(url: str) -> bool:
    try:
        return requests.get(url, timeout=2).status_code == 200
    except requests.RequestException:
        return False


def test_the_wheel_serves_plots_as_the_image_user_over_a_read_only_app(sandbox):
    image = image_env()
    assert image.get("EAS_HOME", "").startswith("/tmp/"), "the image must set EAS_HOME to a writable folder"
    venv = _installed_wheel(sandbox)
    where = subprocess.run([str(venv / "bin" / "python"), "-c", "import eas_runtime; print(eas_runtime.__file__)"],
                           capture_output=True, text=True, check=True, cwd=sandbox, env=_clean_env()).stdout.strip()
    assert where.startswith(str(venv)), f"the checkout was imported, not the wheel: {where}"
    # Where the image's paths are here.
    tmp, app, home, data = (sandbox / n for n in ("tmp", "app", "home", "data"))
    for folder in (tmp, app / "functions", home, data):
        folder.mkdir(parents=True)
    tmp.chmod(0o1777)
    moved = {"/tmp": str(tmp), "/app": str(app), "/home/eas": str(home)}

    def here(value: str) -> str:
        for prefix, target in moved.items():
            if value == prefix or value.startswith(prefix + "/"):
                return target + value[len(prefix):]
        return value
    # The cluster gives the database and the store by environment (here SQLite and a folder).
    settings = Settings.load(environ={}, home=str(data), store="local")
    version = _light_curve_version(settings, sandbox)
    for p in [app, *app.rglob("*")]:
        p.chmod(stat.S_IRUSR | stat.S_IXUSR | stat.S_IRGRP | stat.S_IXGRP | stat.S_IROTH | stat.S_IXOTH)
    env = {"PATH": f"{venv / 'bin'}:/usr/local/bin:/usr/bin:/bin", "LANG": "C.UTF-8",
           **{k: here(v) for k, v in image.items()},
           "EAS_DATABASE_URL": settings.db_url, "EAS_STORE": "local", "EAS_STORE_ROOT": str(settings.store_path)}
    port = devservers.free_port()
    server = _serve(venv, env, app, port)
    try:
        base = f"http://127.0.0.1:{port}"
        wait_for(lambda: server.poll() is not None or _answers(base + "/healthz"), timeout_s=120, what="eas serve index")
        assert server.poll() is None, server.stdout.read()
        page = requests.get(f"{base}/products/file/inbox/star.fits", timeout=60)
        assert page.status_code == 200, page.text[:2000]
        png = requests.get(f"{base}/plots/{version}/lc.png", timeout=120)
        assert png.status_code == 200 and png.content.startswith(PNG_MAGIC), png.text[:2000]
        assert list(Path(env["EAS_HOME"]).rglob("*.png")), "the plot cache is under EAS_HOME"
        assert sorted(p.name for p in app.iterdir()) == ["functions"]       # nothing written to /app
    finally:
        server.terminate()
        server.wait(timeout=60)
