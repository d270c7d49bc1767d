"""The dashboard's page: one HTML document, a script and a stylesheet (``static/``), written
by hand with no build step, served from the package; nothing is fetched from elsewhere, and a
strict Content-Security-Policy tells the browser so (no inline script or style either)."""

from __future__ import annotations

from importlib import resources

from ._server import Response

PAGE_HEADERS = [
    ("content-security-policy",
     "default-src 'none'; script-src 'self'; style-src 'self'; img-src 'self'; "
     "connect-src 'self'; form-action 'self'; frame-ancestors 'none'; base-uri 'none'"),
    ("referrer-policy", "no-referrer"),
    ("x-frame-options", "DENY"),
]

TYPES = {"/": ("index.html", "text/html; charset=utf-8"),
         "/static/dashboard.js": ("dashboard.js", "text/javascript; charset=utf-8"),
         "/static/dashboard.css": ("dashboard.css", "text/css; charset=utf-8")}


class Assets:
    """The page's files, read once."""

    def __init__(self) -> None:
        folder = resources.files(__package__) / "static"
        self._files = {path: ((folder / name).read_bytes(), kind)
                       for path, (name, kind) in TYPES.items()}

    def get(self, path: str) -> Response | None:
        found = self._files.get(path)
        if found is None:
            return None
        return Response(200, found[0], content_type=found[1], headers=list(PAGE_HEADERS))
