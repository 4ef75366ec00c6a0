"""The index site in real headless Chromium, on a small pipeline that has really run.

- ``site`` (session): an embedded runtime (broker, every function its own process, control,
  index site; SQLite + local store) with an API token, after two good light curves and one
  truncated gzip were uploaded to ``inbox/`` and ingest -> verify -> BLS ran to quiescence.
  Its facts (keys, task ids, MD5s) are read from the task database, not from the site.
- ``driver`` (module): headless Chromium through selenium and Debian's chromedriver, with its
  own profile, the browser console and the network log recorded; always quit.
- ``shoot(name)``: a PNG of the whole current page in the artifacts folder
  (``$EAS_TEST_ARTIFACTS``, else ``tests/artifacts/screenshots/``).
- A failed test leaves ``FAILED-<test>.html`` and ``.png`` of the page it was on beside them.

Tests here carry ``@pytest.mark.browser`` (the package marks them all). A missing Chromium or
chromedriver skips them with the reason, except with ``CI=true`` where it fails them.
"""
from __future__ import annotations

import base64
import os
import re
import shutil
from dataclasses import dataclass, field
from pathlib import Path

import pytest
from sqlalchemy import select

from eas_runtime import devservers
from eas_runtime.db.models import DONE, FAILED, Attempt, Product, ProductVersion, Task, TaskInput
from eas_runtime.demo import make_lightcurves
from eas_runtime.embedded import EmbeddedRuntime
from eas_runtime.resources import Resources
from eas_runtime.settings import PROJECT_ROOT, Settings
from tests.e2e.helpers import CHAIN, settled, wait_for, watch

# Read at import: the autouse fixture of tests/conftest.py removes EAS_* variables per test.
ARTIFACTS = Path(os.environ.get("EAS_TEST_ARTIFACTS") or PROJECT_ROOT / "tests" / "artifacts" / "screenshots")
API_TOKEN = "browser-test-token"
BAD_UPLOAD = "inbox/truncated.gz"
SAMPLES = PROJECT_ROOT / "functions" / "ingest_external_lcs" / "sample"
CHROMIUM_FLAGS = ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage",
                  "--disable-quic", "--no-first-run", "--disable-background-networking",
                  "--disable-component-update", "--disable-sync", "--window-size=1280,900"]
#: Tallest full-page screenshot [CSS px]; longer pages are cut there.
MAX_SHOT_HEIGHT = 6000


def pytest_collection_modifyitems(items):
    here = Path(__file__).parent
    for item in items:
        if Path(str(item.fspath)).parent == here:
            item.add_marker(pytest.mark.browser)


# --------------------------------------------------------------------------- Chromium
def _ci() -> bool:
    return os.environ.get("CI", "").strip().lower() == "true"


def require_chromium() -> tuple[str, str]:
    """(chromium binary, chromedriver) or skip; with ``CI=true`` a missing one fails."""
    found = devservers.find_chromium()
    driver = shutil.which("chromedriver")
    problem = None
    if found is None or driver is None:
        problem = ("Chromium and its driver are not installed: `apt-get install chromium "
                   "chromium-driver` (or `python -m eas_runtime.devservers install` as root)")
    else:
        try:
            import selenium  # noqa: F401
        except ImportError:
            problem = "selenium is not installed: pip install -e '.[test]'"
    if problem is None:
        return str(found), driver
    if _ci():
        pytest.fail(problem)
    pytest.skip(problem)


@pytest.fixture(scope="module")
def driver(tmp_path_factory):
    chromium, chromedriver = require_chromium()
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for flag in CHROMIUM_FLAGS:
        options.add_argument(flag)
    options.add_argument(f"--user-data-dir={tmp_path_factory.mktemp('chromium-profile')}")
    options.set_capability("goog:loggingPrefs", {"browser": "ALL", "performance": "ALL"})
    browser = webdriver.Chrome(service=Service(executable_path=chromedriver), options=options)
    browser.set_page_load_timeout(60)
    try:
        yield browser
    finally:
        browser.quit()


# --------------------------------------------------------------------------- artifacts
def artifact_name(name: str) -> str:
    """A file name from a page name: ``/products/file/a b`` -> ``products-file-a_b``."""
    cleaned = re.sub(r"[^A-Za-z0-9_.-]+", "_", name.strip("/").replace("/", "-"))
    return cleaned or "index"


def save_screenshot(browser, path: Path) -> Path:
    """A PNG of the whole page (up to MAX_SHOT_HEIGHT CSS px tall) at ``path``."""
    path.parent.mkdir(parents=True, exist_ok=True)
    try:
        metrics = browser.execute_cdp_cmd("Page.getLayoutMetrics", {})
        size = metrics.get("cssContentSize") or metrics["contentSize"]
        clip = {"x": 0, "y": 0, "width": max(1, size["width"]),
                "height": max(1, min(size["height"], MAX_SHOT_HEIGHT)), "scale": 1}
        shot = browser.execute_cdp_cmd("Page.captureScreenshot", {
            "format": "png", "captureBeyondViewport": True, "clip": clip})
        path.write_bytes(base64.b64decode(shot["data"]))
    except Exception:               # noqa: BLE001 - the viewport is better than nothing
        browser.save_screenshot(str(path))
    return path


@pytest.fixture
def shoot(driver):
    """``shoot(name) -> Path``: screenshot of the current page, named after ``name``."""
    def take(name: str) -> Path:
        return save_screenshot(driver, ARTIFACTS / f"{artifact_name(name)}.png")
    return take


@pytest.hookimpl(hookwrapper=True)
def pytest_runtest_makereport(item, call):
    outcome = yield
    report = outcome.get_result()
    browser = getattr(item, "funcargs", {}).get("driver")
    if report.when != "call" or not report.failed or browser is None:
        return
    stem = ARTIFACTS / f"FAILED-{artifact_name(item.name)}"
    try:
        stem.parent.mkdir(parents=True, exist_ok=True)
        stem.with_suffix(".html").write_text(
            f"<!-- {browser.current_url} -->\n{browser.page_source}", encoding="utf-8")
        save_screenshot(browser, stem.with_suffix(".png"))
        report.sections.append(("browser", f"page saved to {stem}.html and .png"))
    except Exception as exc:        # noqa: BLE001 - a dead browser must not hide the failure
        report.sections.append(("browser", f"could not save the page: {exc}"))


# --------------------------------------------------------------------------- the pipeline
@dataclass
class Site:
    """The running site and what the pipeline made, as the task database has it."""

    runtime: EmbeddedRuntime
    url: str                     #: origin, no trailing slash: http://127.0.0.1:<port>
    token: str
    #: light curves a search read: key -> (id, MD5) of its latest version
    searched: dict[str, tuple[int, str]] = field(default_factory=dict)
    #: periodogram products: key -> (id, MD5) of its latest version
    periodograms: dict[str, tuple[int, str]] = field(default_factory=dict)
    failed_task_id: int = 0
    failed_attempt_number: int = 0
    failed_error_text: str = ""

    def at(self, path: str) -> str:
        return self.url + path


def _settings(home: Path) -> Settings:
    # environ={}: nothing of the developer's EAS_* variables reaches this pipeline
    return Settings.load(environ={}, home=str(home), gateway_port=0, index_port=0, adapter_port=0,
                         reconcile_s=1.0, heartbeat_s=0.3, stall_s=3.0, redeliver_s=5.0,
                         idle_s=600.0, retry_backoff_s=0.5, api_token=API_TOKEN,
                         max_unanswered_sends=24)


def _latest_version(s, key: str) -> tuple[int, str]:
    return tuple(s.execute(select(ProductVersion.id, ProductVersion.etag).join(Product)
                           .where(Product.key == key).order_by(ProductVersion.id.desc()).limit(1)).one())


def _facts(site: Site) -> Site:
    with site.runtime.db.read() as s:
        searches = s.scalars(select(Task.id).where(Task.task_type == CHAIN[-1], Task.state == DONE)).all()
        for key in s.scalars(select(TaskInput.key).where(TaskInput.task_id.in_(searches))):
            site.searched[key] = _latest_version(s, key)
        for key in s.scalars(select(Product.key).where(Product.semantic_type == "periodogram")):
            site.periodograms[key] = _latest_version(s, key)
        failed = s.execute(select(Task.id, Attempt.number, Attempt.error_text).join(Attempt, Attempt.task_id == Task.id)
                           .join(TaskInput, TaskInput.task_id == Task.id)
                           .where(Task.state == FAILED, TaskInput.key == BAD_UPLOAD)).first()
    assert len(site.searched) == 2 and len(site.periodograms) == 2, \
        f"the pipeline did not search both light curves: {site.searched}, {site.periodograms}"
    assert failed is not None, f"the ingest of {BAD_UPLOAD} did not fail"
    site.failed_task_id, site.failed_attempt_number, site.failed_error_text = failed
    return site


@pytest.fixture(scope="session")
def site(tmp_path_factory):
    """The embedded runtime after a small pipeline ran to quiescence (see the module doc)."""
    require_chromium()          # no pipeline for tests that will not run
    work = tmp_path_factory.mktemp("browser-site")
    runtime = EmbeddedRuntime(_settings(work / "eas-home")).start()
    try:
        watch(runtime)
        store = Resources(runtime.settings, db=runtime.db).store
        for path, _ in make_lightcurves(work / "lcs", 2):
            store.put_file(f"inbox/{path.name}", path)
        truncated = work / "truncated.gz"
        truncated.write_bytes((SAMPLES / "demo_superearth_first_5d.gz").read_bytes()[:700])
        store.put_file(BAD_UPLOAD, truncated)
        wait_for(settled(runtime.db, expected_tasks=3 * len(CHAIN)), timeout_s=300,
                 what="the three uploads to be processed")
        yield _facts(Site(runtime=runtime, url=runtime.index_url.rstrip("/"), token=API_TOKEN))
    finally:
        runtime.stop()
