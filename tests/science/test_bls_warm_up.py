"""The image-build warm-up of the BLS kernels (functions/Containerfile.base runs it)."""
from __future__ import annotations

from pathlib import Path

from eas_runtime.bls import warm_up
from eas_runtime.settings import PROJECT_ROOT


def test_warm_up_runs_every_method_of_the_search():
    warm_up()   # raises if a kernel cannot compile or the tiny light curve is refused


def test_base_image_runs_the_warm_up_as_its_user():
    text = Path(PROJECT_ROOT, "functions", "Containerfile.base").read_text()
    user = text.index("USER 10001:10001")
    warm = text.index("from eas_runtime.bls import warm_up; warm_up()")
    assert warm > user, "the cache must be written where the image's user finds it"
    assert "NUMBA_CACHE_DIR=/home/eas/" in text
