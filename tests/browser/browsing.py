"""What the browser tests do to a page: open it, click links, wait, read the console and the
network log."""
from __future__ import annotations

import json
import time
from urllib.parse import parse_qs, unquote, urlsplit

from selenium.common.exceptions import StaleElementReferenceException, TimeoutException
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

#: How long to wait for a page or an element [s] (a bound, never asserted on).
WAIT_S = 30.0


def wait(driver, predicate, what: str, timeout_s: float = WAIT_S):
    """Wait until ``predicate(driver)`` is truthy; AssertionError naming ``what`` otherwise."""
    try:
        return WebDriverWait(driver, timeout_s, poll_frequency=0.1,
                             ignored_exceptions=(StaleElementReferenceException,)).until(predicate)
    except TimeoutException:
        raise AssertionError(f"timed out after {timeout_s:.0f} s waiting for {what} "
                             f"on {driver.current_url}") from None


def loaded(driver) -> bool:
    return driver.execute_script("return document.readyState") == "complete"


def open_page(driver, url: str) -> None:
    """Load ``url`` and wait for the document and everything it loads."""
    driver.get(url)
    wait(driver, loaded, f"{url} to load")


def click(driver, element) -> None:
    """Click a link and wait for the page it leads to."""
    before = driver.find_element(By.TAG_NAME, "html")
    element.click()

    def replaced(d):
        try:
            _ = before.tag_name       # raises once the old document is gone
            return False
        except StaleElementReferenceException:
            return loaded(d)
    wait(driver, replaced, "the next page after a click")


def one(driver, css: str, what: str = ""):
    """The first element matching ``css`` in the page (``driver``) or inside an element;
    AssertionError naming it when there is none."""
    found = driver.find_elements(By.CSS_SELECTOR, css)
    page = getattr(driver, "parent", driver)          # an element's parent is its driver
    assert found, f"no {what or css} on {page.current_url}"
    return found[0]


def path_of(href: str) -> str:
    return unquote(urlsplit(href).path)


def prefix_of(href: str) -> str | None:
    parts = urlsplit(href)
    if parts.path != "/products":
        return None
    return parse_qs(parts.query).get("prefix", [None])[0]


def link_to_prefix(driver, prefix: str):
    """The link on the page to the directory listing of ``prefix`` (``/products?prefix=...``)."""
    for a in driver.find_elements(By.CSS_SELECTOR, "a[href]"):
        if prefix_of(a.get_attribute("href")) == prefix:
            return a
    raise AssertionError(f"no link to the directory {prefix!r} on {driver.current_url}")


def link_to_path(driver, path: str, within: str = "body"):
    """The first link inside ``within`` whose (unquoted) path is ``path``."""
    for a in driver.find_elements(By.CSS_SELECTOR, f"{within} a[href]"):
        if path_of(a.get_attribute("href")) == path:
            return a
    raise AssertionError(f"no link to {path} in {within} on {driver.current_url}")


def images(driver, css: str = "img.plot") -> list[dict]:
    """Every image matching ``css``: src, alt, complete and naturalWidth [px], once every one
    has finished loading (or failed to)."""
    script = """return Array.from(document.querySelectorAll(arguments[0])).map(
        i => ({src: i.currentSrc || i.src, alt: i.alt, complete: i.complete, width: i.naturalWidth}));"""
    wait(driver, lambda d: all(i["complete"] for i in d.execute_script(script, css)),
         f"the images {css} to load")
    return driver.execute_script(script, css)


def console_errors(driver) -> list[str]:
    """Console messages of level SEVERE since the last call: uncaught script errors,
    console.error and failed loads (the site declares its icon, so none is expected)."""
    return [f"{e.get('source', '')}: {e['message']}" for e in driver.get_log("browser")
            if e.get("level") == "SEVERE"]


def network_log(driver) -> list[dict]:
    """The DevTools network events (``{"method", "params"}``) since the last call."""
    out = []
    for entry in driver.get_log("performance"):
        message = json.loads(entry["message"])["message"]
        if message.get("method", "").startswith("Network."):
            out.append(message)
    return out


def requested_urls(driver, log: list[dict], origin: str) -> list[str]:
    """Every URL the site's pages asked the network for: the requests in ``log`` (see
    network_log) made by a document of ``origin`` (not by the browser's own pages), and the
    current page's resource timing entries."""
    urls = [m["params"]["request"]["url"] for m in log
            if m["method"] == "Network.requestWillBeSent"
            and m["params"].get("documentURL", "").startswith(origin + "/")]
    return urls + driver.execute_script(
        "return performance.getEntriesByType('resource').map(e => e.name);")


def document_status(log: list[dict], url: str) -> int | None:
    """HTTP status of the last response to ``url`` in ``log`` (None when there was none)."""
    status = None
    for m in log:
        if m["method"] == "Network.responseReceived" and m["params"]["response"]["url"] == url:
            status = m["params"]["response"]["status"]
    return status


def settle(driver, quiet_s: float = 0.5) -> None:
    """Wait until the page has started no new request for ``quiet_s`` (scripts that fetch data
    after the load have run), at most WAIT_S."""
    count = "return performance.getEntriesByType('resource').length;"
    state = {"n": -1, "since": 0.0}

    def quiet(d):
        n, now = d.execute_script(count), time.monotonic()
        if n != state["n"]:
            state.update(n=n, since=now)
            return False
        return now - state["since"] >= quiet_s
    wait(driver, quiet, "the page to stop loading data")


def foreign(urls: list[str], origin: str) -> list[str]:
    """The URLs that do not belong to ``origin`` (data: and blob: URLs are local)."""
    return sorted({u for u in urls
                   if not (u == origin or u.startswith((origin + "/", "data:", "blob:")))})
