"""Products: directories with file counts, files with every version, downloads and plots.

Pages and their JSON twins (same query parameters)::

    /products?prefix=DIR/&page=N          /api/products?prefix=DIR/&page=N
    /products/file/<key>?page=N           /api/products/file/<key>?page=N
    /products/download/<version id>       (302 to a presigned URL, or the file itself)
    /plots/<version id>/<kind>.png        /api/plots/<version id>/<kind>   (kind: lc, folded,
                                                                 periodogram, detrended)

``folded`` takes ``task=<id>`` to choose the search whose period and epoch fold the light
curve (default: the newest search that read it). ``detrended`` draws a detrend task's output
over the light curve that task read (404 for a version no detrend task wrote). Errors: 400
for a bad parameter, 404 for an unknown file, version or kind, 410 for a version the store no
longer holds, 422 for a file that cannot be plotted (the message names the file and the
defect), 503 when the database or the store is down. JSON under /api/, plain text for plot
images, an HTML page otherwise.
"""
from __future__ import annotations

import os
import tempfile
from pathlib import Path

from flask import (
    Blueprint,
    current_app,
    jsonify,
    redirect,
    render_template,
    request,
    send_file,
    url_for,
)
from werkzeug.exceptions import HTTPException

from eas_runtime.db.session import DatabaseUnavailable
from eas_runtime.diagnostics import DiagnosticsError, NotFound
from eas_runtime.site import _product_queries as queries
from eas_runtime.site import _product_store as stored
from eas_runtime.site import plots
from eas_runtime.site._plot_cache import PlotCache
from eas_runtime.diagnostics._common import shown as _shown
from eas_runtime.site._request import check_text, id_arg, page_args
from eas_runtime.store import InvalidKey, StoreError, StoreUnavailable

bp = Blueprint("products", __name__)
#: Seconds a presigned download URL stays valid (the browser follows it at once).
PRESIGN_S = 900
#: Seconds a browser may keep a plot without asking again: a version's plot never changes;
#: the default fold follows the newest search, so it is revalidated sooner.
PLOT_MAX_AGE_S, DEFAULT_FOLD_MAX_AGE_S = 86400, 60
#: Folded previews the file page shows at most (one per search).
MAX_FOLDS = 4


def _resources():
    return current_app.extensions["eas_resources"]


def _cache() -> PlotCache:
    """The app's plot cache, under ``<EAS_HOME>/plot-cache``."""
    ext = current_app.extensions
    if "eas_plot_cache" not in ext:
        ext["eas_plot_cache"] = PlotCache(_resources().settings.home_path / "plot-cache")
    return ext["eas_plot_cache"]


# ---------------------------------------------------------------------- arguments and errors
#: Longest object key S3 allows (bytes of UTF-8).
MAX_KEY_BYTES = 1024


def _key(key: str) -> str:
    """A product key from the path: 400 for one no store could hold (too long, or a NUL,
    which PostgreSQL refuses in text); any other key is looked up (404 when unknown)."""
    if len(key.encode("utf-8", "surrogatepass")) > MAX_KEY_BYTES or "\x00" in key:
        raise DiagnosticsError(f"key must be an object key of at most {MAX_KEY_BYTES} bytes without NUL, "
                               f"got {_shown(key)}")
    return key


def _query(*names: str) -> dict:
    """The request's parameters among ``names`` (for links to the same view)."""
    return {n: request.args[n] for n in names if request.args.get(n)}


def _answer(status: int, message: str):
    if request.path.startswith("/api/"):
        return jsonify(error=message), status
    if request.path.startswith("/plots/"):
        return message, status, {"Content-Type": "text/plain; charset=utf-8"}
    return render_template("product_error.html", status=status, message=message), status


# A version recorded under a key the store refuses (recorded before keys were checked where
# they enter) cannot be read from the store: 410, as for any version the store cannot serve.
for _error, _status in ((DiagnosticsError, 400), (NotFound, 404), (stored.Superseded, 410),
                        (InvalidKey, 410), (plots.PlotError, 422)):
    bp.register_error_handler(_error, lambda exc, status=_status: _answer(status, str(exc)))
bp.register_error_handler(DatabaseUnavailable, lambda exc: _answer(
    503, f"the task database is unavailable: {exc}"))
bp.register_error_handler(StoreUnavailable, lambda exc: _answer(
    503, f"the object store is unavailable: {exc}"))
bp.register_error_handler(StoreError, lambda exc: _answer(502, f"the object store failed: {exc}"))
bp.register_error_handler(HTTPException, lambda exc: _answer(exc.code or 500,
                                                             exc.description or exc.name))


# ---------------------------------------------------------------------- directory listing
def listing_data() -> dict:
    """Sub-directories of ``prefix`` with file counts, then its files with their latest
    version (paged: ``page``, ``page_size``); links as ``url`` fields."""
    prefix = check_text("prefix", request.args.get("prefix", ""))
    data = queries.listing(_resources().db, prefix, **page_args())
    for item in data["items"]:
        if item["kind"] == "directory":
            item["url"] = url_for("products.products", prefix=item["prefix"])
        else:
            item["url"] = url_for("products.product_file", key=item["key"])
            if item["latest"]:
                item["latest"]["download"] = url_for("products.download",
                                                     version_id=item["latest"]["id"])
    return data


@bp.get("/products")
def products():
    return render_template("products.html", data=listing_data(),
                           api=url_for("products.api_products", **_query("prefix", "page", "page_size")))


@bp.get("/api/products")
def api_products():
    return jsonify(listing_data())


# ---------------------------------------------------------------------- one file
def file_data(key: str) -> dict:
    """The file, its versions (each says whether the store still holds it, with a download
    link when it does) and the previews of the newest held version on this page."""
    data = queries.file_detail(_resources().db, _key(key), **page_args())
    product, versions = data["product"], data["versions"]["items"]
    try:
        current, store_note = stored.current_etag(_resources().store, key), None
    except StoreError as exc:
        current, store_note = None, f"the object store cannot be asked: {exc}"
    store = _resources().store
    for v in versions:
        try:
            v["held"] = stored.held(v, current) or stored.kept(store, {**v, "key": key}) is not None
        except StoreError:
            v["held"] = False
        v["download"] = url_for("products.download", version_id=v["id"]) if v["held"] else None
    data["store"] = {"etag": current, "note": store_note}
    shown = next((v for v in versions if v["held"]), None)
    data["previews"] = _previews(product, shown) if shown else []
    return data


def _previews(product: dict, version: dict) -> list[dict]:
    kinds = plots.preview_kinds(product["semantic_type"], product["name"])
    source = None
    if "lc" in kinds and product.get("generator_task_type") in queries.DETRENDERS:
        source = queries.detrend_source(_resources().db, version["id"])
    if source is not None:          # the detrended plot shows this light curve and its raw
        kinds = ["detrended" if k == "lc" else k for k in kinds]
    wanted = [(kind, None) for kind in kinds]
    if "lc" in kinds:
        wanted += [("folded", s) for s in product["searches"][:MAX_FOLDS]]
    out = []
    for kind, search in wanted:
        args = {"version_id": version["id"], "kind": kind}
        if search:
            args["task"] = search["task_id"]
        if search:
            attempt = search["attempt_id"]
        elif kind == "detrended":
            assert source is not None       # kinds has "detrended" only with a source
            attempt = source["attempt_id"]
        else:
            attempt = None
        name = PlotCache.name(version["id"], version["md5"], kind, attempt)
        out.append({"kind": kind, "version_id": version["id"], "search": search,
                    "raw": source if kind == "detrended" else None,
                    "pixels": plots.PIXELS_TALL if kind == "detrended" else plots.PIXELS,
                    "png": url_for("products.plot_png", **args),
                    "json": url_for("products.plot_json", **args),
                    "error": _cache().error(name)})
    return out


@bp.get("/products/file/<path:key>")
def product_file(key: str):
    return render_template("product_file.html", data=file_data(key),
                           api=url_for("products.api_product_file", key=key,
                                       **_query("page", "page_size")))


@bp.get("/api/products/file/<path:key>")
def api_product_file(key: str):
    return jsonify(file_data(key))


# ---------------------------------------------------------------------- download
@bp.get("/products/download/<int:version_id>")
def download(version_id: int):
    """302 to a presigned URL (MinIO), or the file streamed with its name (local store)."""
    version = queries.version_info(_resources().db, version_id)
    store = _resources().store
    path = stored.local_path(store, version)
    if path is not None:
        handle = _open_held(store, version, path)
    else:
        stored.check_held(store, version)
        url = stored.url(store, version, PRESIGN_S)
        if url:
            return redirect(url, 302)
        fd, name = tempfile.mkstemp(prefix="eas-download-")
        os.close(fd)
        try:
            stored.fetch(store, version, Path(name))
            handle = open(name, "rb")  # noqa: SIM115 - send_file closes it
        finally:
            os.unlink(name)  # the open handle keeps the content until it is sent
    size = os.fstat(handle.fileno()).st_size
    response = send_file(handle, mimetype=_mime(version), as_attachment=True,
                         download_name=version["name"], etag=version["md5"] or False, max_age=0)
    if response.status_code == 200:
        response.content_length = size  # a file object gives none: say it, for progress bars
    return response


def _open_held(store, version: dict, path: Path):
    """The local file opened, then checked to be this version: an overwrite after the open
    does not change what is sent (the handle keeps the old content)."""
    try:
        handle = open(path, "rb")  # noqa: SIM115 - send_file closes it
    except FileNotFoundError:
        handle = None
    try:
        stored.check_held(store, version)
        if handle is None:
            raise stored.Superseded(f"version {version['id']} of {version['key']} vanished "
                                    f"from the object store while it was being read")
    except BaseException:
        if handle is not None:
            handle.close()
        raise
    return handle


def _mime(version: dict) -> str:
    from eas_runtime.db.products import guess_mime
    return guess_mime(version["key"])


# ---------------------------------------------------------------------- plots
def _plot_target(version_id: int, kind: str) -> tuple[dict, dict | None, str]:
    """The version, the search a fold uses (for ``detrended``: the raw version), and the
    cache name; 404s named."""
    if kind not in plots.KINDS:
        raise NotFound(f"no plot kind {kind!r}; kinds: {', '.join(plots.KINDS)}")
    version = queries.version_info(_resources().db, version_id)
    search = None
    if kind == "folded":
        task_id = id_arg("task", "a task")
        found = queries.searches(_resources().db, version["key"], task_id)
        if not found:
            raise NotFound(
                f"no folded plot of {version['key']}: "
                + (f"task {task_id} did not read it or recorded no period and epoch"
                   if task_id else "no search that read it recorded a period and an epoch"))
        search = found[0]
    if kind == "detrended":
        search = queries.detrend_source(_resources().db, version_id)
        if search is None:
            raise NotFound(f"no detrended plot of {version['key']}: no detrend task wrote "
                           f"version {version_id}, or its attempt recorded no input version")
    name = PlotCache.name(version["id"], version["md5"], kind,
                          search["attempt_id"] if search else None)
    return version, search, name


def _plot_data(version: dict, kind: str, search: dict | None) -> plots.PlotData:
    with tempfile.TemporaryDirectory(prefix="eas-plot-") as folder:
        path = stored.fetch(_resources().store, version, Path(folder) / "object")
        if kind == "lc":
            return plots.lightcurve_data(path, version["key"])
        if kind == "folded":
            assert search is not None           # a folded plot belongs to a search
            return plots.folded_data(path, version["key"], search)
        if kind == "detrended":
            assert search is not None           # here: the raw light curve
            raw = stored.fetch(_resources().store, search, Path(folder) / "raw")
            return plots.detrended_data(raw, search["key"], path, version["key"])
        return plots.periodogram_data(path, version["key"])


@bp.get("/plots/<int:version_id>/<kind>.png")
def plot_png(version_id: int, kind: str):
    version, search, name = _plot_target(version_id, kind)
    path = _cache().get(name, ".png", lambda: plots.render_png(_plot_data(version, kind, search)))
    fixed = kind != "folded" or "task" in request.args
    return send_file(path, mimetype="image/png", etag=name, conditional=True,
                     max_age=PLOT_MAX_AGE_S if fixed else DEFAULT_FOLD_MAX_AGE_S)


@bp.get("/api/plots/<int:version_id>/<kind>")
def plot_json(version_id: int, kind: str):
    """The plotted data (binned to at most plots.MAX_POINTS points) with names and units."""
    import json

    version, search, name = _plot_target(version_id, kind)
    path = _cache().get(name, ".json", lambda: json.dumps(
        {"version_id": version_id, **_plot_data(version, kind, search).to_dict()}).encode())
    return send_file(path, mimetype="application/json", etag=name, conditional=True, max_age=0)
