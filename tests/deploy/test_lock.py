"""constraints.txt pins every package the project installs (issue 15: two image builds of one
commit differed, SQLAlchemy 2.1.9 in one, numba 0.68.1 in another)."""
from __future__ import annotations

import re

import pytest

from eas_runtime.deploy import images, lock
from eas_runtime.settings import PROJECT_ROOT

LOCKED = PROJECT_ROOT / lock.LOCK_FILE


def test_every_line_is_an_exact_pin_of_one_package():
    pins = lock.read(LOCKED)
    names = [line.split("==")[0] for line in LOCKED.read_text().splitlines() if line and not line.startswith("#")]
    assert len(names) == len(pins) > 50
    for must in ("numpy", "astropy", "sqlalchemy", "numba", "wotan", "transitleastsquares", "psycopg2-binary",
                 "gunicorn", "functions-framework"):
        assert must in pins, must


def test_the_lock_is_this_environment_s_closure():
    """The test command installs under the constraints, so here the closure of the project's
    requirements is exactly what is pinned; a new or moved package needs `just lock`."""
    assert lock.closure() == lock.read(LOCKED), "constraints.txt is stale: run `just lock`"
    assert lock.main(["--check"]) == 0


def test_a_bad_line_is_refused_with_its_place(tmp_path):
    bad = tmp_path / "c.txt"
    bad.write_text("# fine\nnumpy==2.0\nscipy>=1\n")
    with pytest.raises(lock.LockError, match=r"c.txt:3: 'scipy>=1' is not name==version"):
        lock.read(bad)


def test_the_images_install_under_the_constraints():
    base = (PROJECT_ROOT / "functions" / "Containerfile.base").read_text()
    assert re.search(r"pip wheel [^\n]*-c constraints.txt", base)
    assert "COPY --from=wheels /src/constraints.txt /app/constraints.txt" in base
    assert re.search(r"pip install [^\n]*-c /app/constraints.txt \"plato-eas\[postgres\]\"", base)
    assert "constraints.txt" in images.CONTEXT_FILES
    function_files = sorted(PROJECT_ROOT.glob("functions/*/Containerfile"))
    assert function_files
    for path in function_files:
        for line in path.read_text().splitlines():
            if "pip install" in line:
                assert "-c /app/constraints.txt" in line, path
