"""The index site (Flask): products and errors of the pipeline, as pages and as JSON.

Read-only by default: every request that changes state needs ``Authorization: Bearer <token>``
with the token from the settings (``EAS_API_TOKEN``); with no token configured, such requests are
refused. Templates autoescape everything, so an object named ``<script>`` shows as text, and
every answer carries a strict Content-Security-Policy and the other security headers
(``_headers.py``). Bad parameters are 400, unknown ids 404, each with a message
(``_request.py``).
"""
from __future__ import annotations

from flask import Flask

from eas_runtime.resources import Resources


def create_app(resources: Resources | None = None, test_config: dict | None = None) -> Flask:
    from eas_runtime.settings import Settings

    app = Flask(__name__, template_folder="templates", static_folder="static")
    app.name = "eas-index"
    # Paths are taken as sent: werkzeug would otherwise redirect "/products/file//etc/x" (the
    # key "/etc/x", which no store accepts) to the page of another key, "etc/x".
    app.url_map.merge_slashes = False
    # The largest request body read: a job description is bounded (jobs/_bounds.py) far below.
    app.config["MAX_CONTENT_LENGTH"] = 8 * 1024 * 1024
    app.config.update(test_config or {})
    res = resources or Resources(Settings.load())
    app.extensions["eas_resources"] = res

    from eas_runtime.site import _headers, _request
    _headers.install(app)
    _request.install_app(app)     # before the blueprints: it bounds their <int:...> ids
    # One blueprint per area; the URL map is listed in the README ("The index site").
    from eas_runtime.site import actions, pages, products, views
    app.register_blueprint(views.bp)
    app.register_blueprint(products.bp)
    pages.register(app)
    app.register_blueprint(actions.bp)
    return app
