"""The index site (Flask): products and errors of the pipeline, as pages and as JSON.

Read-only by default: every request that changes state needs ``Authorization: Bearer <token>``
with the token from the settings (``EAS_API_TOKEN``); with no token configured, such requests are
refused. Templates autoescape everything, so an object named ``<script>`` shows as text.
"""
from __future__ import annotations

from flask import Flask

from eas_runtime.resources import Resources


def create_app(resources: Resources | None = None, test_config: dict | None = None) -> Flask:
    from eas_runtime.settings import Settings

    app = Flask(__name__, template_folder="templates")
    app.name = "eas-index"
    app.config.update(test_config or {})
    res = resources or Resources(Settings.load())
    app.extensions["eas_resources"] = res

    from eas_runtime.site import actions, views
    app.register_blueprint(views.bp)
    app.register_blueprint(actions.bp)
    return app
