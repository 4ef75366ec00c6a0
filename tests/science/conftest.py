"""Fixtures of the science tests: the shared data folder and small synthetic light curves."""
from __future__ import annotations

import os
from pathlib import Path

import numpy as np
import pytest

from eas_runtime.lightcurve import LightCurve

REPO_ROOT = Path(__file__).resolve().parents[2]
SHARED = Path(os.environ.get("EAS_SHARED_DIR") or REPO_ROOT.parent / "shared")
FUNCTIONS = REPO_ROOT / "functions"


def _shared(*parts: str) -> Path:
    path = SHARED.joinpath(*parts)
    if not path.exists():
        pytest.fail(f"{path} is missing: set EAS_SHARED_DIR to the shared data folder")
    return path


@pytest.fixture(scope="session")
def real_dir() -> Path:
    """Folder of real mission light curves (see its README.md), kept in the repository."""
    return REPO_ROOT / "examples" / "real_data" / "lightcurves"


@pytest.fixture(scope="session")
def demo_superearth() -> Path:
    """The prototype's demo light curve (P = 50 d); its metadata is beside it."""
    return _shared("prototype", "data", "demo_superearth.gz")


@pytest.fixture(scope="session")
def functions_dir() -> Path:
    return FUNCTIONS


def make_lc(n: int = 100, step: float = 1.0, t0: float = 0.0, flux=None, flux_err=None,
            flags=None, meta=None) -> LightCurve:
    time = t0 + step * np.arange(n)
    if flux is None:
        flux = 1.0 + 0.01 * np.sin(time / 3.0)
    return LightCurve(time, flux, flux_err, flags, meta)


@pytest.fixture
def lc_factory():
    """``lc_factory(n=100, step=1.0, t0=0.0, flux=None, ...)`` -> LightCurve."""
    return make_lc
