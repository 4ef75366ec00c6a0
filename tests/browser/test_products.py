"""From the product listing to a light curve's plots, by clicking, as a scientist would."""
from __future__ import annotations

from tests.browser.browsing import (
    click,
    images,
    link_to_path,
    link_to_prefix,
    one,
    open_page,
    path_of,
)


def _directories(key: str) -> list[str]:
    """``a/b/c.fits`` -> ``["a/", "a/b/"]``."""
    parts = key.split("/")[:-1]
    return ["/".join(parts[:i + 1]) + "/" for i in range(len(parts))]


def _walk_to_file(site, driver, key: str) -> None:
    """From /products through each directory listing to the file page of ``key``."""
    open_page(driver, site.at("/products"))
    one(driver, "table#products")
    for prefix in _directories(key):
        click(driver, link_to_prefix(driver, prefix))
    click(driver, link_to_path(driver, f"/products/file/{key}", within="table#products"))
    assert path_of(driver.current_url) == f"/products/file/{key}"


def _check_versions(driver, version_id: int, md5: str) -> None:
    versions = one(driver, "table#versions", "table of versions")
    assert md5 in versions.text, f"the version's MD5 {md5} is not in table#versions"
    link_to_path(driver, f"/products/download/{version_id}", within="table#versions")


def _plots(driver) -> dict[str, int]:
    """Loaded plots by kind (the file name of /plots/<id>/<kind>.png): naturalWidth [px]."""
    return {path_of(i["src"]).rsplit("/", 1)[-1].removesuffix(".png"): i["width"]
            for i in images(driver, "img.plot")}


def test_light_curve_a_search_used_shows_its_versions_and_plots(site, driver, shoot):
    key = min(site.searched)
    version_id, md5 = site.searched[key]
    _walk_to_file(site, driver, key)
    _check_versions(driver, version_id, md5)
    plots = _plots(driver)
    shoot("product-file-lightcurve")
    assert {"lc", "folded"} <= set(plots), f"plots on the page: {sorted(plots)}"
    assert plots["lc"] > 0 and plots["folded"] > 0, f"a plot did not load: {plots}"
    for img in images(driver, "img.plot"):
        assert path_of(img["src"]).startswith(f"/plots/{version_id}/"), \
            f"{img['src']} is not a plot of the latest version {version_id}"


def test_periodogram_product_shows_its_periodogram(site, driver, shoot):
    key = min(site.periodograms)
    version_id, md5 = site.periodograms[key]
    _walk_to_file(site, driver, key)
    _check_versions(driver, version_id, md5)
    plots = _plots(driver)
    shoot("product-file-periodogram")
    assert plots.get("periodogram", 0) > 0, f"no loaded periodogram plot: {plots}"
