"""Every page of the site except the products area, one blueprint per area.

errors (failed attempts, dead letters), tasks (tree, running view, one task), jobs (list,
one job, the forms that drive actions.py), tables (progress, timings, pass/fail, CSV), logs,
activity (timeline per worker), candidates (the catalogue of vetted transit candidates), stars (each star's segments,
products and candidates) and
functions (Services and their processes), experiments (a job's report: what its searches found). Each HTML page has
a JSON twin under ``/api/`` with the same query parameters; bad parameters answer 400 and
unknown ids 404 (``_request.py``).
"""
from __future__ import annotations

from flask import Flask

from eas_runtime.site import (activity, candidates, errors, experiments, functions, jobs, logs, stars,
                              tables, tasks)

BLUEPRINTS = (candidates.bp, stars.bp, errors.bp, tasks.bp, jobs.bp, tables.bp, logs.bp, activity.bp, functions.bp,
              experiments.bp)


def register(app: Flask) -> None:
    for bp in BLUEPRINTS:
        app.register_blueprint(bp)
