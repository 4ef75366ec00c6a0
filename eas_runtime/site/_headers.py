"""Security headers on every answer of the site (pages, JSON, plots, CSV, downloads, errors).

The pages load only their own files: one stylesheet, ``static/eas.js`` and ``static/plots.js``,
plot images and the favicon, all from this origin; no inline script, event handler or style
attribute (the bars and indents are classes and SVG attributes), so the policy allows nothing
inline. The activity timeline is inline SVG markup, which CSP does not restrict. Downloads
redirected to a presigned MinIO URL are navigations, which CSP does not govern either.
"""
from __future__ import annotations

from flask import Flask, Response

CONTENT_SECURITY_POLICY = "; ".join((
    "default-src 'self'",
    "script-src 'self'",
    "style-src 'self'",
    "img-src 'self'",
    "connect-src 'self'",
    "object-src 'none'",
    "base-uri 'none'",
    "form-action 'self'",
    "frame-ancestors 'none'",
))
HEADERS = {
    "Content-Security-Policy": CONTENT_SECURITY_POLICY,
    "X-Frame-Options": "DENY",                  # frame-ancestors for browsers without CSP 2
    "X-Content-Type-Options": "nosniff",        # a CSV or a user's file is never run as script
    # same-origin, not no-referrer: the error page's "back" link needs the referring page.
    "Referrer-Policy": "same-origin",
}


def _add(response: Response) -> Response:
    for name, value in HEADERS.items():
        response.headers.setdefault(name, value)
    return response


def install(app: Flask) -> None:
    """Add :data:`HEADERS` to every response, also those of error handlers and static files."""
    app.after_request(_add)
