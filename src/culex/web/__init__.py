"""The HTTP side of culex: an h11 server and what it serves (metrics, health). Imported only
when a listener with ``protocol = "http"`` is configured."""

from ._app import Logins, WebApp
from ._dashboard import Dashboard
from ._server import Request, Response, start_http_listener
from ._view import DashboardView

__all__ = ["Dashboard", "DashboardView", "Logins", "Request", "Response", "WebApp",
           "start_http_listener"]
